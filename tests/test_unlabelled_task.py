"""A task with no labelled row in the training split (issue 30; docs/DESIGN.md).

Before, the recipe warned ("it will add no loss") and trained on; the task's test
scores, an untrained head's, were averaged into the run's mean F1 / MAP as if it had
been trained. Decision: the recipe refuses it before any training, naming the task, in
memory, from shards and from the CLI; `MultiTaskModel.fit` itself still only warns
(`test_reliability.py::test_degenerate_binary_task_warns_and_trains_without_nan`), as a
model may be trained on one task's rows at a time.
"""

import os

import numpy as np
import pytest

from hgfn_keras import TrainConfig, recipe
from hgfn_keras.data.dataset import MASK_KEY, MultimodalDataset
from tests.conftest import TINY_MODALITIES, TINY_TASKS, tiny_xy

MESSAGE = (r"Task 't2' has no labelled row in the training split \(its 12 training "
           r"label\(s\) are all -1, missing\): it cannot be learnt")


def _dataset(unlabelled=("t2",)):
    splits = {}
    for i, split in enumerate(("train", "validation", "test")):
        x, y = tiny_xy(seed=i)
        x[MASK_KEY] = np.ones((12, 2), "float32")
        if split == "train":
            y = {k: np.full(12, -1) if k in unlabelled else v for k, v in y.items()}
        splits[split] = (x, {k: np.asarray(v, "int32") for k, v in y.items()})
    return MultimodalDataset("toy", list(TINY_MODALITIES), list(TINY_TASKS), splits)


def test_train_and_evaluate_refuses_a_task_without_training_labels(tmp_path):
    with pytest.raises(ValueError, match=MESSAGE + r".*averaged into the mean.*remove `y_t2`"):
        recipe.train_and_evaluate(TrainConfig(epochs=1, head_units=4), _dataset(),
                                  str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_two_such_tasks_are_named_together():
    from hgfn_keras.recipe.training import check_training_labels

    with pytest.raises(ValueError, match=r"Task 't1' .*; Task 't2' .*: they cannot be "
                                         r"learnt.*remove `y_t1`, `y_t2`"):
        check_training_labels(TINY_TASKS, {"t1": [0, 0], "t2": [0, 0, 0]})
    check_training_labels(TINY_TASKS, {"t1": [1, 0], "t2": [0, 0, 2]})  # one label is enough


def test_recipe_fit_refuses_it_for_a_model_built_elsewhere():
    import keras

    from hgfn_keras import build_model

    keras.utils.set_random_seed(0)
    model = build_model(list(TINY_MODALITIES), list(TINY_TASKS), head_units=4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=MESSAGE):
        recipe.fit(model, TrainConfig(epochs=1), _dataset(), verbose=0)


def test_shards_refuse_it_too(tmp_path):
    from hgfn_keras.data.tfrecord import write_tfrecord

    streamed = write_tfrecord(_dataset(), str(tmp_path / "shards"), shard_rows=8)
    with pytest.raises(ValueError, match=MESSAGE):
        recipe.build(TrainConfig(head_units=4), streamed)


def test_training_train_refuses_it_in_one_line(tmp_path, capsys):
    from training import train

    rng = np.random.default_rng(0)
    n = 30
    split = np.repeat([0, 1, 2], 10)
    mood = np.arange(n) % 3
    mood[split == 0] = -1
    path = tmp_path / "own.npz"
    np.savez(path, x_audio=rng.normal(size=(n, 3)).astype("float32"),
             x_video=rng.normal(size=(n, 4)).astype("float32"), y_happy=np.arange(n) % 2,
             y_mood=mood, classes_mood=np.array(["low", "mid", "high"]), split=split)
    with pytest.warns(UserWarning, match="'mood' .*has no label in the training split"):
        code = train.main(["--dataset", f"npz:{path}", "--epochs", "1", "--output-dir",
                           str(tmp_path / "run"), "--no-export"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: Task 'mood' has no labelled row in the training split "
                             "(its 10 training label(s) are all -1, missing)")
    assert not os.path.exists(tmp_path / "run" / "metrics.json")
