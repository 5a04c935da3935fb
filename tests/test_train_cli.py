"""End-to-end tests of `python -m training.train`, the clothing and npz runs through
`main(argv)` in this process (a TensorFlow start-up each saved; the command in a process
of its own is test_quiet.py's; the refusals are in test_train_cli_arguments.py)."""

import json
import math
import os

import numpy as np
import pytest

from tests.conftest import run_as_process, run_in_process
from training import train

pytestmark = pytest.mark.slow

CLOTHING_TASKS = ("recommended", "rating", "department")
CLOTHING_INPUTS = ("review", "title", "metadata", "modality_mask")
METRIC_KEYS = {"f1", "hamming_loss", "map", "accuracy"}


def _check_metrics_structure(metrics, task_names, rule="auto"):
    # "decision": the package default chooses thresholds on validation ("auto") and says
    # which decision the run uses.
    assert set(metrics) == {"tasks", "mean", "mean_over", "run", "decision"}
    assert metrics["decision"]["rule"] == rule
    assert metrics["decision"]["used"] == ("thresholds" if metrics["decision"]["thresholds"]
                                           else "0.5")
    assert list(metrics["tasks"]) == list(task_names)
    for name in task_names:
        assert set(metrics["tasks"][name]) == METRIC_KEYS
    assert set(metrics["mean"]) == METRIC_KEYS
    for values in [*metrics["tasks"].values(), metrics["mean"]]:
        for value in values.values():
            assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0
    for key in METRIC_KEYS:
        expected = np.mean([metrics["tasks"][name][key] for name in task_names])
        assert metrics["mean"][key] == pytest.approx(expected, abs=1e-12)
    # Hamming loss is the label error rate: 1 - accuracy.
    for values in metrics["tasks"].values():
        assert values["hamming_loss"] == pytest.approx(1.0 - values["accuracy"], abs=1e-12)


# ---------------------------------------------------------------------- clothing


@pytest.fixture(scope="module")
def clothing_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("clothing")
    output_dir, export_dir = base / "run", base / "export"
    result = run_as_process(
        train.main, "--dataset", "clothing", "--limit", 600, "--epochs", 2, "--seed", 0,
        "--output-dir", output_dir, "--export-dir", export_dir,
        "--embedding-dim", 8, "--batch-size", 64,
    )
    return result, output_dir, export_dir


def test_clothing_run_prints_table(clothing_run):
    result, output_dir, _ = clothing_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    metrics = json.loads((output_dir / "metrics.json").read_text())
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 5 and cells[0] in (*CLOTHING_TASKS, "mean"):
            rows[cells[0]] = [float(c) for c in cells[1:]]
    assert set(rows) == {*CLOTHING_TASKS, "mean"}, result.stdout
    order = ("f1", "hamming_loss", "map", "accuracy")
    for name in CLOTHING_TASKS:
        assert rows[name] == pytest.approx([metrics["tasks"][name][k] for k in order], abs=5e-4)
    assert rows["mean"] == pytest.approx([metrics["mean"][k] for k in order], abs=5e-4)


def test_clothing_run_metrics_json(clothing_run):
    result, output_dir, _ = clothing_run
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((output_dir / "metrics.json").read_text())
    _check_metrics_structure(metrics, CLOTHING_TASKS)
    assert metrics["run"]["dataset"] == "clothing"
    assert metrics["run"]["epochs_run"] <= 2
    assert metrics["run"]["mtl"] == "dmtl"  # the paper's full system is the default
    for name in ("config.json", "history.json"):
        assert (output_dir / name).is_file()
    rows = (output_dir / "task_weights.csv").read_text().splitlines()
    assert rows[0] == ",".join(["epoch", "phase", *CLOTHING_TASKS,
                                *(f"loss_{t}" for t in CLOTHING_TASKS),
                                *(f"chance_{t}" for t in CLOTHING_TASKS)])
    assert len(rows) == 1 + 2 * metrics["run"]["epochs_run"]
    assert [row.split(",")[1] for row in rows[1:3]] == ["tdb", "rebalanced"]
    for row in rows[1:]:
        weights = [float(v) for v in row.split(",")[2:5]]
        assert all(w > 0.1 for w in weights) and abs(sum(weights) - 3.0) < 1e-3


def test_clothing_run_exports_saved_model(clothing_run):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the SavedModel tokenises with)

    result, _, export_dir = clothing_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert (export_dir / "1" / "saved_model.pb").is_file()
    assert sorted(os.listdir(export_dir)) == ["1"]
    loaded = tf.saved_model.load(str(export_dir / "1"))
    signature = loaded.signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == sorted(CLOTHING_INPUTS)
    assert sorted(signature.structured_outputs) == sorted([*CLOTHING_TASKS, "modality_weights"])
    outputs = signature(
        review=tf.constant(["Lovely dress, fits well", "Too small and the fabric is thin", ""]),
        title=tf.constant(["Love it", "", "Meh"]),
        metadata=tf.zeros([3, 2], tf.float32),
        modality_mask=tf.constant([[1, 1, 1], [1, 0, 1], [0, 1, 1]], tf.float32),
    )
    shapes = {name: tuple(value.shape) for name, value in outputs.items()}
    assert shapes == {"recommended": (3, 1), "rating": (3, 5), "department": (3, 6),
                      "modality_weights": (3, 3)}
    weights = outputs["modality_weights"].numpy()
    assert weights[1, 1] == 0.0 and weights[2, 0] == 0.0  # the masked modalities
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    for value in outputs.values():
        value = value.numpy()
        assert np.all(np.isfinite(value)) and np.all((value >= 0) & (value <= 1))
    np.testing.assert_allclose(outputs["rating"].numpy().sum(axis=1), 1.0, atol=1e-5)


# --------------------------------------------------------------------------- npz


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 90
    y_damage = rng.integers(0, 3, n)
    y_damage[[0, 7, 30]] = -1
    path = tmp_path_factory.mktemp("npz") / "floods.npz"
    np.savez(
        path,
        x_image=rng.normal(size=(n, 6)).astype(np.float32),
        x_audio=rng.normal(size=(n, 3)).astype(np.float32),
        y_flood=rng.integers(0, 2, n),
        y_damage=y_damage,
    )
    return path


def _npz_run(npz_path, output_dir, fusion, seed):
    return run_in_process(
        train.main, "--dataset", f"npz:{npz_path}", "--fusion", fusion, "--epochs", 1,
        "--seed", seed, "--no-export", "--output-dir", output_dir, "--head-units", 4,
    )


@pytest.fixture(scope="module")
def npz_runs(npz_path, tmp_path_factory):
    """The same tiny HGFN run twice, with the same seed."""
    base = tmp_path_factory.mktemp("npz_runs")
    return [
        (_npz_run(npz_path, base / f"run{i}", "hgfn", seed=3), base / f"run{i}")
        for i in range(2)
    ]


def _check_npz_run(result, output_dir, fusion):
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    metrics = json.loads((output_dir / "metrics.json").read_text())
    _check_metrics_structure(metrics, ["damage", "flood"])  # ordered by name
    assert metrics["run"]["fusion"] == fusion
    assert metrics["run"]["dataset"] == "floods"
    assert "Exported" not in result.stdout


def test_npz_run(npz_runs):
    _check_npz_run(*npz_runs[0], fusion="hgfn")


def test_npz_run_cfc(npz_path, tmp_path):
    # Regression: build() read args.cfc_units before --cfc-units existed (AttributeError).
    _check_npz_run(_npz_run(npz_path, tmp_path / "run", "cfc", seed=0), tmp_path / "run", "cfc")


def test_npz_same_seed_same_metrics(npz_runs):
    (first, first_dir), (second, second_dir) = npz_runs
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-3000:]
    a = json.loads((first_dir / "metrics.json").read_text())
    b = json.loads((second_dir / "metrics.json").read_text())
    assert a["tasks"] == b["tasks"]
    assert a["mean"] == b["mean"]


# --------------------------------------------------------------- arguments


def test_npz_run_with_decision_thresholds(npz_path, tmp_path):
    import keras

    from hgfn_keras.data import load_dataset
    from hgfn_keras.evaluation.decision_thresholds import choose_thresholds
    from hgfn_keras.evaluation.metrics import multitask_metrics

    output_dir, export_dir = tmp_path / "run", tmp_path / "export"
    result = run_in_process(train.main, "--dataset", f"npz:{npz_path}", "--epochs", 1,
                            "--seed", 1, "--output-dir", output_dir,
                            "--export-dir", export_dir, "--head-units", 4,
                            "--decision-thresholds")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "At the decision thresholds chosen on the validation split (flood=" in result.stdout
    metrics = json.loads((output_dir / "metrics.json").read_text())
    _check_metrics_structure(metrics, ["damage", "flood"], rule="all")  # the flag: every task
    decision = metrics.pop("decision")
    thresholds = decision["thresholds"]
    assert set(thresholds) == {"flood"} and 0.0 < thresholds["flood"] < 1.0
    assert decision["tasks"]["damage"] == metrics["tasks"]["damage"]  # argmax: unchanged

    # Chosen on the validation split by the saved model, scored on the test split.
    model = keras.saving.load_model(output_dir / "model.keras")
    assert model.decision_thresholds == thresholds
    dataset = load_dataset(f"npz:{npz_path}", seed=1)
    x_val, y_val = dataset.splits["validation"]
    assert choose_thresholds(dataset.tasks, y_val, model.predict(x_val, verbose=0)) == thresholds
    x_test, y_test = dataset.splits["test"]
    rescored = multitask_metrics(dataset.tasks, y_test, model.predict(x_test, verbose=0),
                                 thresholds=thresholds)
    assert decision["mean"] == pytest.approx(rescored["mean"])

    import tensorflow as tf

    (version,) = os.listdir(export_dir)
    serve = tf.saved_model.load(str(export_dir / version)).signatures["serving_default"]
    assert "flood_decision" in serve.structured_outputs
    assert "damage_decision" not in serve.structured_outputs
