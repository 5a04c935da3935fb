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


def test_float32_inside_masked_softmax_and_losses():
    logits = np.array([[1.0, 2.0, 3.0]], "float16")
    weights = masked_softmax(logits, np.array([[1.0, 0.0, 1.0]], "float32"))
    assert "float16" in str(weights.dtype)  # returned in the input's dtype
    np.testing.assert_allclose(np.asarray(weights, "float32"), [[0.1192, 0.0, 0.8808]],
                               atol=1e-3)
    loss = task_loss(Task("t", 3), np.array([0, 2]), np.array([[0.7, 0.2, 0.1],
                                                               [0.1, 0.1, 0.8]], "float16"))
    assert "float32" in str(loss.dtype)


def test_similarity_in_float32_under_mixed_float16():
    from hgfn_keras.fusion.similarity_edge_weights import SimilarityEdgeWeights

    layer = SimilarityEdgeWeights(dtype="mixed_float16")
    v = np.random.default_rng(0).random((2, 3, 4)).astype("float16")
    assert layer.similarity_scores(v, v[:, ::-1]).dtype == "float32"
    w = np.full((2, 3), 0.5, "float16")
    weights = layer(v, v[:, ::-1], w, w)
    assert weights.dtype == "float16"  # the layer's compute dtype
    np.testing.assert_allclose(np.asarray(weights, "float32").sum(axis=1), 1.0, atol=2e-3)
