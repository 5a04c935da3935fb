"""The Keras contract of MultiTaskModel: what `compile`, `export` and `evaluate` take."""

import numpy as np
import pytest

import hgfn_keras
from hgfn_keras import Modality, Task, build_model


def _model():
    return build_model([Modality("a", width=3), Modality("b", width=2)],
                       [Task("t", 2), Task("k", 3)],
                       fusion="cfc", mtl="lsew")


@pytest.mark.parametrize("arguments", [{"loss": "binary_crossentropy"},
                                       {"loss_weights": [1.0, 2.0]}])
def test_compile_refuses_a_loss(arguments):
    with pytest.raises(ValueError, match="computes its own loss"):
        _model().compile(optimizer="adam", **arguments)


@pytest.mark.parametrize("arguments", [{"metrics": ["accuracy"]},
                                       {"weighted_metrics": ["accuracy"]}])
def test_compile_refuses_metrics_and_says_what_to_use(arguments):
    with pytest.raises(ValueError, match="ValidationMetrics"):
        _model().compile(optimizer="adam", **arguments)


def test_export_names_the_package_export(tmp_path):
    with pytest.raises(ValueError, match="export_saved_model"):
        _model().export(str(tmp_path / "model"))


def test_load_model_restores_the_optimizer(tmp_path):
    import keras

    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    x = {"a": np.ones((4, 3), "float32"), "b": np.ones((4, 2), "float32")}
    model.fit(x, {"t": np.array([0, 1, 0, 1]), "k": np.array([0, 1, 2, 0])}, epochs=1,
              verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.compiled
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.01)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 1


def test_losses_are_the_loss_objects():
    model = _model()
    assert isinstance(model.multitask_loss, hgfn_keras.multitask.MultiTaskLoss)
    assert model.loss_names == model.multitask_loss.loss_names == ["t", "k"]


def test_predict_on_no_row_gives_outputs_of_no_row():
    # Keras' own predict stops with an UnboundLocalError when there is no batch at all.
    model = _model()
    x = {"a": np.zeros((0, 3), "float32"), "b": np.zeros((0, 2), "float32")}
    outputs = model.predict(x, verbose=0)
    assert {k: v.shape for k, v in outputs.items()} == {"t": (0, 1), "k": (0, 3)}
    assert all(v.dtype == np.float32 for v in outputs.values())
    # One row still goes through Keras' own path.
    one = model.predict({k: np.ones((1,) + v.shape[1:], "float32") for k, v in x.items()},
                        verbose=0)
    assert one["k"].shape == (1, 3)
