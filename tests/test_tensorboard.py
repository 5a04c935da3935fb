"""MultiTaskTensorBoard: the event files hold task weights, validation metrics, fusion weights."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("tensorboard")

from hgfn_keras import Modality, ValidationMetrics, build_model  # noqa: E402
from hgfn_keras.recipe.tensorboard_logging import MultiTaskTensorBoard  # noqa: E402
from tests.conftest import FLOOD_DAMAGE, make_inputs

MODALITIES = (Modality("image", width=4), Modality("audio", width=2), Modality("text", width=3))
TASKS = FLOOD_DAMAGE


def _data(num_rows, seed):
    x = make_inputs(MODALITIES, num_rows, np.random.default_rng(seed), missing=[(1, 0)])
    y = {"flood": (np.arange(num_rows) % 2).astype("int32"),
         "damage": (np.arange(num_rows) % 3).astype("int32")}
    return x, y


def _events(folder):
    """{tag: [(step, plugin)]} of every event file under `folder`."""
    found = {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(
                    (event.step, value.metadata.plugin_data.plugin_name))
    return found


def _fit(tmp_path, fusion, epochs=2):
    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), list(TASKS), fusion=fusion,
                        fusion_kwargs={"units": 4} if fusion == "cfc" else {"theta": 0.5},
                        head_units=4, mtl="dmtl")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = _data(16, 0)
    x_val, y_val = _data(8, 1)
    log_dir = str(tmp_path / "tensorboard")
    callbacks = [ValidationMetrics(x_val, y_val, list(TASKS)),
                 MultiTaskTensorBoard(log_dir, x=x_val)]
    model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=4, verbose=0,
              callbacks=callbacks)
    return log_dir


@pytest.mark.slow
def test_hgfn_run_logs_task_weights_metrics_and_fusion_weights(tmp_path):
    log_dir = _fit(tmp_path, "hgfn")
    train = _events(os.path.join(log_dir, "train"))
    # Per step (4 steps x 2 epochs): each task's weight and loss.
    for task in ("flood", "damage"):
        assert [s for s, _ in train[f"batch_{task}_weight"]] == list(range(1, 9)), train.keys()
        assert len(train[f"batch_{task}_loss"]) == 8
        assert [s for s, _ in train[f"epoch_{task}_weight"]] == [0, 1]
    validation = _events(os.path.join(log_dir, "validation"))
    assert [s for s, _ in validation["epoch_mean_f1"]] == [0, 1], validation.keys()
    assert "epoch_loss" in validation
    fusion = _events(os.path.join(log_dir, "fusion"))
    for m in MODALITIES:
        assert fusion[f"modality_weights/{m.name}"] == [(0, "histograms"), (1, "histograms")]
    level_2 = [t for t in fusion if t.startswith("level_2_vertex_weights/")]
    assert level_2, fusion.keys()


def test_fusion_without_weights_gets_the_keras_part_only(tmp_path):
    log_dir = _fit(tmp_path, "cfc", epochs=1)
    assert "batch_flood_weight" in _events(os.path.join(log_dir, "train"))
    assert not os.path.exists(os.path.join(log_dir, "fusion"))


def test_max_rows_is_checked():
    with pytest.raises(ValueError, match="max_rows"):
        MultiTaskTensorBoard("logs", max_rows=0)


@pytest.mark.slow
# 300 rows of the reviews lack a rare department; the CLI says so (warnings, which the
# suite's settings would otherwise raise in this process).
@pytest.mark.filterwarnings("ignore:Task 'department'")
def test_training_cli_tensorboard_and_balanced_class_weights(tmp_path):
    import json

    from tests.conftest import run_in_process
    from training import train as train_cli

    out = tmp_path / "run"
    result = run_in_process(train_cli.main, "--dataset", "clothing", "--limit", "300",
                            "--epochs", "1", "--no-export", "--tensorboard",
                            "--class-weight", "balanced", "--output-dir", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((out / "config.json").read_text())["class_weight"] == "balanced"
    train = _events(str(out / "tensorboard" / "train"))
    assert "batch_rating_weight" in train and "batch_department_loss" in train, train.keys()
    assert "epoch_mean_f1" in _events(str(out / "tensorboard" / "validation"))
    fusion = _events(str(out / "tensorboard" / "fusion"))
    assert {"modality_weights/review", "modality_weights/title",
            "modality_weights/metadata"} <= set(fusion), fusion.keys()
