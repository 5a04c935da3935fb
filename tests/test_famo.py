"""FAMO (`hgfn_keras.multitask.famo`): one update against numpy, its weights, a fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import TASK_WEIGHTINGS, FastAdaptiveMultitaskOptimization, build_model
from tests.conftest import TINY_MODALITIES, TINY_TASKS, tiny_xy


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _numpy_famo_step(logits, previous, losses, beta, gamma, eps):
    """Algorithm 1 of Liu et al. (2023), by hand: the step's weights (at the package's
    sum T) and the logits after ξ ← ξ − β(Jᵀδ + γξ), J the softmax Jacobian."""
    z = _softmax(logits)
    inverse = z / (losses + eps)
    weights = len(z) * inverse / inverse.sum()
    delta = np.log(previous + eps) - np.log(losses + eps)
    jacobian = np.diag(z) - np.outer(z, z)  # dz_i / dξ_j
    return weights, logits - beta * (jacobian.T @ delta + gamma * logits)


def _famo(logits, previous, **kwargs):
    famo = FastAdaptiveMultitaskOptimization(**kwargs)
    famo.build((len(logits),))
    famo.logits.assign(np.asarray(logits, "float32"))
    famo.previous_losses.assign(np.asarray(previous, "float32"))
    famo.has_previous.assign(1.0)
    return famo


def test_one_update_matches_numpy():
    logits = np.array([0.3, -0.2, 0.5, 0.0])
    previous = np.array([0.9, 0.4, 1.3, 0.7])
    losses = np.array([0.5, 0.38, 1.2, 0.2])
    famo = _famo(logits, previous, learning_rate=0.5, decay=0.1)
    famo.update(tf.constant(losses, "float32"))
    weights, expected = _numpy_famo_step(logits, previous, losses, 0.5, 0.1, 1e-8)
    np.testing.assert_allclose(famo.logits.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(famo.task_weights.numpy(), weights, rtol=1e-5)
    np.testing.assert_allclose(famo.previous_losses.numpy(), losses, rtol=1e-6)
    assert famo.task_weights.numpy().sum() == pytest.approx(4.0, abs=1e-5)
    # The task whose log loss fell most (the last, 0.7 -> 0.2) loses logit the most.
    moved = famo.logits.numpy() - logits
    assert np.argmin(moved) == 3


def test_the_loss_weighs_without_a_gradient_through_the_weights():
    famo = _famo(np.array([0.1, -0.4, 0.2]), np.ones(3))
    losses = tf.Variable([0.6, 1.5, 0.05])
    with tf.GradientTape() as tape:
        total = famo(losses)
    weights, _ = _numpy_famo_step(np.array([0.1, -0.4, 0.2]), np.ones(3),
                                  np.array([0.6, 1.5, 0.05]), 0.0, 0.0, 1e-8)
    # d total / d L_f = w_f: the gradient of Σ z log L scaled by c, times T.
    np.testing.assert_allclose(tape.gradient(total, losses).numpy(), weights, rtol=1e-5)
    assert float(total) == pytest.approx(float(weights @ [0.6, 1.5, 0.05]), rel=1e-5)


def test_first_step_keeps_the_logits_and_a_zero_loss_gets_no_weight():
    famo = FastAdaptiveMultitaskOptimization(learning_rate=1.0)
    famo.build((3,))
    famo.update(tf.constant([0.5, 0.0, 1.0]))  # no previous step: ξ stays 0
    np.testing.assert_array_equal(famo.logits.numpy(), np.zeros(3))
    weights = famo.task_weights.numpy()
    assert weights[1] == 0 and weights.sum() == pytest.approx(3.0)
    np.testing.assert_allclose(weights[[0, 2]], [2.0, 1.0], rtol=1e-6)  # ∝ 1 / L
    # Next step: the task without a loss either time has δ = 0 (only the others move).
    famo.update(tf.constant([0.25, 0.0, 1.0]))
    z = np.full(3, 1 / 3)
    delta = np.array([np.log(0.5 / 0.25), 0.0, 0.0])
    expected = -1.0 * ((np.diag(z) - np.outer(z, z)) @ delta)
    np.testing.assert_allclose(famo.logits.numpy(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kwargs, message", [
    ({"learning_rate": -1}, "learning_rate"), ({"decay": "x"}, "decay"),
    ({"epsilon": 0}, "epsilon")])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FastAdaptiveMultitaskOptimization(**kwargs)


def test_fit_moves_the_logits_and_saves_them(tmp_path):
    assert TASK_WEIGHTINGS["famo"] is FastAdaptiveMultitaskOptimization
    keras.utils.set_random_seed(0)
    model = build_model(list(TINY_MODALITIES), list(TINY_TASKS), fusion="cfc",
                        fusion_kwargs={"units": 8}, head_units=4, mtl="famo",
                        mtl_kwargs={"learning_rate": 0.5})
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = tiny_xy(n=24)
    history = model.fit(x, y, epochs=3, batch_size=6, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    famo = model.task_weighting
    assert np.any(famo.logits.numpy() != 0)
    assert model.task_weights.numpy().sum() == pytest.approx(len(TINY_TASKS), abs=1e-4)
    path = str(tmp_path / "famo.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.task_weighting.logits.numpy(), famo.logits.numpy())
    assert loaded.task_weighting.learning_rate == 0.5
