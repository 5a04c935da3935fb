"""Mixed precision: the model builds and fits under mixed_float16 / mixed_bfloat16."""

import keras
import numpy as np
import pytest

from hgfn_keras import Modality, Task, build_model
from hgfn_keras.fusion.masked_softmax import masked_softmax
from hgfn_keras.multitask.task_loss import task_loss
from tests.conftest import TINY_TASKS

MODALITIES = [Modality("a", width=6), Modality("b", width=4), Modality("c", width=3)]
TASKS = list(TINY_TASKS)


def _data(n=12):
    rng = np.random.default_rng(0)
    x = {m.name: rng.normal(size=(n, m.width)).astype("float32") for m in MODALITIES}
    x["modality_mask"] = np.ones((n, len(MODALITIES)), "float32")
    x["modality_mask"][0, 1] = 0.0
    y = {t.name: rng.integers(0, t.num_classes, n) for t in TASKS}
    return x, y


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("mtl", ["dmtl", "lsew"])
@pytest.mark.slow
def test_fit_one_step_under_mixed_policy(policy, mtl):
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = build_model(MODALITIES, TASKS, fusion="hgfn", mtl=mtl, head_units=8)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        if policy == "mixed_float16":  # Keras wraps it to scale the loss
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        x, y = _data()
        before = [w.numpy().copy() for w in model.trainable_weights]
        history = model.fit(x, y, epochs=1, batch_size=12, verbose=0)
        assert all(np.isfinite(v[-1]) for v in history.history.values())
        # The update is the unscaled one: weights moved, by an Adam-sized step.
        moved = max(float(np.max(np.abs(w.numpy() - b)))
                    for w, b in zip(model.trainable_weights, before))
        assert 1e-5 < moved < 1e-2
        fusion = model.network.get_layer("fusion")
        assert fusion.compute_dtype == policy.split("_")[1]
        y_pred = model(x, training=False)
        for name, p in y_pred.items():
            assert np.all(np.isfinite(np.asarray(p, "float32"))), name
        total, task_losses = model.compute_losses(y, y_pred)
        assert total.dtype == "float32" and task_losses.dtype == "float32"
        assert model.task_weights.dtype == "float32"
        w = model.task_weights.numpy()
        assert np.all(w > 0) and abs(w.sum() - len(TASKS)) < 1e-4
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


# How far a mixed policy's numbers may be from float32's on this tiny model: the
# compute dtype's unit roundoff (float16 2^-11 ~ 4.9e-4, bfloat16 2^-8 ~ 3.9e-3)
# times a few layers; measured: probabilities within 3.6e-4 (float16) and 3.7e-3
# (bfloat16), task losses within 6e-5 and 3.4e-4 relative, the logged training
# losses of a step within 1.6e-4 relative, DMTL's task weights after a step within
# 1e-6. The tolerances leave about 5x room; a loss that is not kept in float32, or
# a wrong cast, is off by far more.
PROBABILITY_ATOL = {"mixed_float16": 2e-3, "mixed_bfloat16": 2e-2}
LOSS_RTOL = {"mixed_float16": 5e-4, "mixed_bfloat16": 2e-3}


def _model(policy):
    """The test model under `policy` (DMTL: its task weights move in a step), with SGD
    and without dropout (masks drawn in another dtype differ); its initial weights
    are those of any other policy (the same seed; checked)."""
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = build_model(MODALITIES, TASKS, fusion="hgfn", mtl="dmtl", head_units=8,
                            dropout=0.0, modality_dropout=0.0)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    return model


def _values(model):
    """The model's numbers on `_data()`: its initial weights, outputs and task losses,
    then one SGD step's logged losses, update and task weights after it."""
    x, y = _data()
    values = {"initial": model.get_weights()}
    outputs = model(x, training=False)
    values["probabilities"] = {k: np.asarray(v, "float32") for k, v in outputs.items()}
    values["task_losses"] = np.asarray(model.compute_losses(y, outputs)[1])
    before = [w.numpy().copy() for w in model.trainable_weights]
    values["logs"] = model.fit(x, y, epochs=1, batch_size=12, verbose=0).history
    values["update"] = np.concatenate([(w.numpy() - b).ravel()
                                       for w, b in zip(model.trainable_weights, before)])
    values["task_weights"] = model.task_weights.numpy()
    return values


@pytest.fixture(scope="module")
def float32_values():
    return _values(_model("float32"))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.slow
def test_mixed_policy_gives_float32_values(policy, float32_values):
    """With SGD the update is the learning rate times the gradient, so a loss scale
    left in it (mixed_float16 scales the loss by 2^15) or a gradient lost shows
    (Adam's first step is about the learning rate whatever the gradient's scale).
    The reduced-precision gradients through the fusion differ from float32's by
    10-18% in norm on this model (measured), hence the update's tolerance 0.3."""
    expected, got = float32_values, _values(_model(policy))
    for a, b in zip(got["initial"], expected["initial"], strict=True):
        np.testing.assert_array_equal(a, b)  # the same starting point
    atol, rtol = PROBABILITY_ATOL[policy], LOSS_RTOL[policy]
    for name, value in got["probabilities"].items():
        np.testing.assert_allclose(value, expected["probabilities"][name], atol=atol,
                                   err_msg=name)
    np.testing.assert_allclose(got["task_losses"], expected["task_losses"], rtol=rtol)
    assert sorted(got["logs"]) == sorted(expected["logs"])
    for key, values in expected["logs"].items():
        np.testing.assert_allclose(got["logs"][key], values, rtol=rtol, err_msg=key)
    np.testing.assert_allclose(got["task_weights"], expected["task_weights"], atol=1e-5)
    assert np.linalg.norm(expected["update"]) > 1e-3  # the step moved the weights
    assert (np.linalg.norm(got["update"] - expected["update"])
            <= 0.3 * np.linalg.norm(expected["update"]))


def test_float32_inside_masked_softmax_and_losses():
    logits = np.array([[1.0, 2.0, 3.0]], "float16")
    weights = masked_softmax(logits, np.array([[1.0, 0.0, 1.0]], "float32"))
    assert "float16" in str(weights.dtype)  # returned in the input's dtype
    np.testing.assert_allclose(np.asarray(weights, "float32"), [[0.1192, 0.0, 0.8808]],
                               atol=1e-3)
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    loss = task_loss(Task("t", 3), np.array([0, 2]), probabilities.astype("float16"))
    assert "float32" in str(loss.dtype)
    # The value is float32's of the float16 inputs (each input within 2^-11 relative).
    expected = task_loss(Task("t", 3), np.array([0, 2]),
                         probabilities.astype("float16").astype("float32"))
    np.testing.assert_allclose(np.asarray(loss), np.asarray(expected), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(loss), -np.mean(np.log([0.7, 0.8])), rtol=1e-3)


def test_similarity_in_float32_under_mixed_float16():
    from hgfn_keras.fusion.similarity_edge_weights import SimilarityEdgeWeights

    layer = SimilarityEdgeWeights(dtype="mixed_float16")
    v = np.random.default_rng(0).random((2, 3, 4)).astype("float16")
    assert layer.similarity_scores(v, v[:, ::-1]).dtype == "float32"
    w = np.full((2, 3), 0.5, "float16")
    weights = layer(v, v[:, ::-1], w, w)
    assert weights.dtype == "float16"  # the layer's compute dtype
    np.testing.assert_allclose(np.asarray(weights, "float32").sum(axis=1), 1.0, atol=2e-3)
    # The values are float32's (float16's unit roundoff 2^-11 on weights in [0, 1]).
    reference = SimilarityEdgeWeights(dtype="float32")
    v32, w32 = v.astype("float32"), w.astype("float32")
    np.testing.assert_allclose(np.asarray(layer.similarity_scores(v, v[:, ::-1])),
                               np.asarray(reference.similarity_scores(v32, v32[:, ::-1])),
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.asarray(weights, "float32"),
                               np.asarray(reference(v32, v32[:, ::-1], w32, w32)), atol=2e-3)
