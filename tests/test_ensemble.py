"""Parameter-efficient ensembles of the heads (`build_model(ensemble=k)`, issue 28 item 3):
the layers against numpy, the loss as the mean of the members' losses, the output as the
mean of their probabilities, and one `.keras` file / SavedModel that look as without."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import Task, TrainConfig, build_model
from hgfn_keras.multitask.ensemble import (
    EnsembleAdapter,
    EnsembleDense,
    MemberMean,
    RandomSigns,
)
from hgfn_keras.serving.export import export_saved_model
from tests.conftest import TINY_MODALITIES, TINY_TASKS, make_model, tiny_xy
from training.train import parse_config

K = 4


def _one_vs_rest_tasks():
    return [Task("t1", 2), Task("t2", 3), Task("r", 3, one_vs_rest=True)]


def _xy(n=16, seed=0):
    x, y = tiny_xy(n, seed, with_mask=True)
    y["r"] = (np.arange(n) + 1) % 3
    y["t1"] = y["t1"].copy()
    y["t1"][3] = -1  # a missing label
    return x, y


def test_random_signs_and_the_adapter_scale_each_member():
    signs = keras.ops.convert_to_numpy(RandomSigns(seed=1)((8, 50)))
    assert set(np.unique(signs)) == {-1.0, 1.0}
    adapter = EnsembleAdapter(3, seed=0)
    x = np.random.default_rng(0).normal(size=(5, 7)).astype("float32")
    out = keras.ops.convert_to_numpy(adapter(x))
    scales = keras.ops.convert_to_numpy(adapter.scales)
    assert out.shape == (5, 3, 7)
    np.testing.assert_allclose(out, x[:, None, :] * scales[None], rtol=1e-6)


def test_ensemble_dense_is_one_dense_per_member():
    layer = EnsembleDense(2, activation="sigmoid", seed=0)
    x = np.random.default_rng(1).normal(size=(5, 3, 6)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(x))
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    bias = np.random.default_rng(2).normal(size=(3, 2)).astype("float32")
    layer.bias.assign(bias)
    out = keras.ops.convert_to_numpy(layer(x))
    for i in range(3):
        expected = 1 / (1 + np.exp(-(x[:, i] @ kernel[i] + bias[i])))
        np.testing.assert_allclose(out[:, i], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(kernel[0], kernel[1])  # members start apart
    mean = keras.ops.convert_to_numpy(MemberMean()(out))
    np.testing.assert_allclose(mean, out.mean(axis=1), rtol=1e-6)


def test_outputs_are_the_members_mean_and_the_members_stay_internal():
    x, y = _xy()
    plain = make_model(TINY_MODALITIES, _one_vs_rest_tasks())
    model = make_model(TINY_MODALITIES, _one_vs_rest_tasks(), ensemble=K)
    predictions = model.predict(x, verbose=0)
    assert sorted(predictions) == sorted(plain.predict(x, verbose=0))  # no member keys
    everything = model.network_outputs(x)
    for name, members in model.member_outputs.items():
        assert tuple(everything[members].shape[:2]) == (16, K)
        np.testing.assert_allclose(predictions[name],
                                   np.mean(everything[members], axis=1), rtol=1e-5)
    assert set(model.member_outputs) == set(model.loss_names)
    assert all(isinstance(model.head_layers[n], EnsembleDense) for n in model.loss_names)


def _numpy_loss(task, labels, p, weights, concept=None):
    """Mean cross-entropy of one member's probabilities over the labelled rows."""
    rows = labels >= 0
    if concept is not None or task.is_binary:
        positive = labels == concept if concept is not None else labels == 1
        q = np.clip(p[:, 0], 1e-7, 1 - 1e-7)
        per_row = -np.where(positive, np.log(q), np.log(1 - q))
    else:
        per_row = -np.log(np.clip(p[np.arange(len(p)), np.maximum(labels, 0)], 1e-7, 1))
    w = weights * rows
    return float((per_row * w).sum() / w.sum())


def test_training_loss_is_the_mean_of_the_members_losses_and_evaluation_the_means():
    x, y = _xy()
    weights = np.linspace(0.5, 2.0, 16).astype("float32")
    model = make_model(TINY_MODALITIES, _one_vs_rest_tasks(), ensemble=K)
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in model.network_outputs(x).items()}
    losses = keras.ops.convert_to_numpy(model.multitask_loss(y, outputs, weights))
    tasks = {t.name: t for t in model.tasks}
    expected = []
    for name in model.loss_names:
        task = tasks[name.split(".")[0]]
        concept = int(name.split(".")[1]) if "." in name else None
        members = outputs[model.member_outputs[name]]
        expected.append(np.mean([_numpy_loss(task, y[task.name], members[:, i], weights,
                                             concept) for i in range(K)]))
    np.testing.assert_allclose(losses, expected, rtol=1e-4)
    # Without the members (what `call` and evaluation see): the loss of the mean.
    means = {k: v for k, v in outputs.items() if k not in model.member_outputs.values()}
    on_means = keras.ops.convert_to_numpy(model.multitask_loss(y, means, weights))
    assert not np.allclose(on_means, losses)
    first = model.loss_names[0]
    np.testing.assert_allclose(
        on_means[0], _numpy_loss(tasks[first], y[first], means[first], weights), rtol=1e-4)


@pytest.mark.parametrize("fusion,mtl", [
    ("cfc", "gradnorm"),
    *(pytest.param("hgfn", mtl, marks=pytest.mark.slow) for mtl in ("dmtl", "moo", "famo"))])
def test_every_weighting_trains_an_ensemble_with_masks_and_modality_dropout(fusion, mtl):
    x, y = _xy(24)
    model = make_model(TINY_MODALITIES, _one_vs_rest_tasks(), fusion=fusion, mtl=mtl,
                       ensemble=K, modality_dropout=0.3)
    before = keras.ops.convert_to_numpy(model.task_weights).copy()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_data=(x, y))
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.all(np.isfinite(history.history["val_loss"]))
    if mtl in ("dmtl", "gradnorm"):  # gradient norms on the members' kernels moved them
        assert not np.allclose(keras.ops.convert_to_numpy(model.task_weights), before)


@pytest.mark.slow
def test_one_keras_file_and_one_saved_model_with_the_plain_signature(tmp_path):
    x, y = _xy()
    del y["r"]
    model = make_model(TINY_MODALITIES, TINY_TASKS, ensemble=K, head_units=8)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.set_decision_thresholds({"t1": 0.3})
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.member_outputs == model.member_outputs
    for name, value in loaded.predict(x, verbose=0).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6)

    plain = make_model(TINY_MODALITIES, TINY_TASKS, head_units=8)
    plain.set_decision_thresholds({"t1": 0.3})
    folders = [export_saved_model(m, str(tmp_path / name), version=1)
               for name, m in (("ensemble", model), ("plain", plain))]
    signatures = [tf.saved_model.load(f).signatures["serving_default"] for f in folders]
    assert (sorted(signatures[0].structured_outputs)
            == sorted(signatures[1].structured_outputs))
    assert "t1_decision" in signatures[0].structured_outputs
    served = signatures[0](**{k: tf.constant(v) for k, v in x.items()})
    np.testing.assert_allclose(served["t2"].numpy(), expected["t2"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(served["t1_decision"].numpy().ravel(),
                                  (expected["t1"] >= 0.3).astype(int).ravel())


def test_bad_ensembles_are_refused_by_name():
    for value in (0, -2, 2.5, True, "4"):
        with pytest.raises(ValueError, match=r"`ensemble` must be a positive integer"):
            build_model(list(TINY_MODALITIES), list(TINY_TASKS), ensemble=value)
    with pytest.raises(ValueError, match=r"dense heads only.*heads='mtinet'"):
        build_model(list(TINY_MODALITIES), list(TINY_TASKS), ensemble=2, heads="mtinet")
    with pytest.raises(ValueError, match=r"t1_members"):
        build_model(list(TINY_MODALITIES), [Task("t1", 2), Task("t1_members", 2)],
                    ensemble=2)
    with pytest.raises(ValueError, match=r"`ensemble` works with the dense heads only"):
        TrainConfig(heads="mtinet", mtl="lsew", ensemble=4)
    with pytest.raises(ValueError, match=r"`ensemble` must be a positive integer"):
        TrainConfig(ensemble=0)


def test_ensemble_is_a_field_and_a_flag():
    assert parse_config(["--ensemble", "8"]).ensemble == 8
    assert TrainConfig().ensemble == 1  # chosen on validation: docs/QUALITY.md, "Ensembles of the heads"
    assert TrainConfig.from_json(TrainConfig(ensemble=4).to_json()).ensemble == 4
