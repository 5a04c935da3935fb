"""The package's floor plan (issue 29): files saved by the flat layout of 0.1 still load,
and the 0.1 import paths still reach the moved modules (the same objects, not copies)."""

import importlib
import pathlib

import keras
import numpy as np
import pytest

import hgfn_keras

DATA = pathlib.Path(__file__).parent / "data"

MOVED = {
    "arguments": "utils.arguments", "registry": "utils.registry",
    "io_utils": "utils.io_utils", "distribute": "utils.distribute",
    "metrics": "evaluation.metrics", "decision_thresholds": "evaluation.decision_thresholds",
    "report": "evaluation.report", "inspection": "evaluation.inspection",
    "export": "serving.export", "train_config": "recipe.train_config",
    "resume_state": "recipe.resume_state", "backup_fingerprint": "recipe.backup_fingerprint",
    "tensorboard_logging": "recipe.tensorboard_logging",
    "class_weights": "multitask.class_weights",
}


def test_a_model_saved_by_the_flat_layout_loads_and_predicts_the_same():
    # tests/data/layout_0_1.keras: a tiny HGFN + DMTL model saved at commit c514a6d,
    # before the modules moved; its predictions on the saved inputs beside it.
    expected = np.load(DATA / "layout_0_1_expected.npz")
    model = keras.saving.load_model(DATA / "layout_0_1.keras")
    x = {name[2:]: expected[name] for name in expected.files if name.startswith("x_")}
    predicted = model.predict(x, verbose=0)
    for task in ("t1", "t2"):
        np.testing.assert_allclose(np.asarray(predicted[task]), expected[task], atol=1e-6)


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_old_import_paths_are_the_moved_modules(old, new):
    assert importlib.import_module(f"hgfn_keras.{old}") is importlib.import_module(
        f"hgfn_keras.{new}")
    assert getattr(hgfn_keras, old) is importlib.import_module(f"hgfn_keras.{new}")


def test_old_paths_of_the_split_callbacks_module_and_the_recipe():
    from hgfn_keras.callbacks import AtomicBackupAndRestore, ValidationMetrics
    from hgfn_keras.recipe.backup import AtomicBackupAndRestore as backup_class

    assert ValidationMetrics is hgfn_keras.ValidationMetrics
    assert AtomicBackupAndRestore is backup_class
    from hgfn_keras import recipe
    from hgfn_keras.recipe import training

    for name in training.__all__:
        assert getattr(recipe, name) is getattr(training, name), name


def test_the_top_floor_holds_at_most_ten_modules():
    top = [p.stem for p in pathlib.Path(hgfn_keras.__file__).parent.glob("*.py")
           if p.stem != "__init__"]
    assert len(top) <= 10, top
