"""The multi-task baselines: MGDA-UB, MTI-Net, GradNorm, uncertainty weighting, DWA."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import (
    DynamicWeightAverage,
    Modality,
    Task,
    UncertaintyWeighting,
    min_norm_weights,
    task_loss,
)
from hgfn_keras.multitask import MinNormWeighting
from tests.conftest import make_inputs, make_model

MODALITIES = (Modality("image", width=5), Modality("audio", width=3))
TASKS = (Task("flood", 2), Task("damage", 3), Task("victim", 2))
ROWS = 24


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = make_inputs(MODALITIES, ROWS, rng)
    y = {t.name: rng.integers(0, t.num_classes, ROWS).astype("int32") for t in TASKS}
    return x, y


def _model(mtl, fusion="cfc", **kwargs):
    return make_model(MODALITIES, TASKS, fusion=fusion, mtl=mtl, head_units=4, dropout=0.0,
                      modality_dropout=0.0, **kwargs)


def _brute_force_min_norm(gram, steps=400):
    """min αᵀKα over a fine grid of the simplex (2 or 3 tasks)."""
    t = gram.shape[0]
    grid = np.linspace(0, 1, steps + 1)
    best, best_alpha = np.inf, None
    for head in itertools.product(grid, repeat=t - 1):
        if sum(head) > 1 + 1e-12:
            continue
        alpha = np.array([*head, 1 - sum(head)])
        value = alpha @ gram @ alpha
        if value < best:
            best, best_alpha = value, alpha
    return best, best_alpha


@pytest.mark.parametrize("num_tasks, seed", [(2, 0), (2, 1), (3, 2), (3, 3), (3, 4)])
def test_min_norm_solver_matches_brute_force(num_tasks, seed):
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(num_tasks, 6))
    gram = grads @ grads.T
    alpha = min_norm_weights(gram).numpy().astype("float64")
    assert np.all(alpha >= 0) and alpha.sum() == pytest.approx(1.0, abs=1e-6)
    best, _ = _brute_force_min_norm(gram, steps=400 if num_tasks == 2 else 200)
    assert alpha @ gram @ alpha <= best + 1e-4 * max(1.0, best)


def test_min_norm_of_two_orthogonal_gradients():
    # ‖α g1 + (1-α) g2‖² with g1 ⊥ g2, ‖g1‖² = 1, ‖g2‖² = 4: α = 4/5.
    alpha = min_norm_weights(np.array([[1.0, 0.0], [0.0, 4.0]])).numpy()
    np.testing.assert_allclose(alpha, [0.8, 0.2], atol=1e-6)


@pytest.mark.parametrize("mtl", ["moo", "mtinet", "gradnorm", "uncertainty", "dwa"])
@pytest.mark.slow
def test_strategy_trains_saves_and_reloads(mtl, tmp_path):
    model = _model(mtl)
    x, y = _data()
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    weights = model.task_weights.numpy()
    assert np.all(weights > 0)
    predictions = model.predict(x, verbose=0)
    assert predictions["damage"].shape == (ROWS, 3)
    path = str(tmp_path / f"{mtl}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for name in ("flood", "damage", "victim"):
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[name], predictions[name],
                                   atol=1e-6)
    assert type(loaded.task_weighting) is type(model.task_weighting)


def test_moo_weights_are_the_min_norm_point_of_the_step():
    model = _model("moo", fusion="hgfn")
    model.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True)  # no weight change
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=ROWS, verbose=0, shuffle=False)
    # By hand: the gradient of each task loss w.r.t. the fused vector, one tape each.
    tensors = {k: tf.constant(v) for k, v in x.items()}
    grads = []
    for task in TASKS:
        with tf.GradientTape() as tape:
            outputs, fused = model._forward_with_fused(tensors, training=True)
            loss = task_loss(task, tf.constant(y[task.name]), outputs[task.name])
        grads.append(tape.gradient(loss, fused).numpy().ravel())
    grads = np.stack(grads)
    expected = min_norm_weights(grads @ grads.T).numpy() * len(TASKS)
    np.testing.assert_allclose(model.task_weights.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert model.task_weights.numpy().sum() == pytest.approx(3.0, abs=1e-5)


def test_uncertainty_loss_by_hand():
    weighting = UncertaintyWeighting()
    weighting.build((2,))
    weighting.log_variances.assign([0.5, -1.0])
    losses = np.array([0.8, 0.3], "float32")
    expected = np.exp(-0.5) * 0.8 + 0.5 + np.exp(1.0) * 0.3 - 1.0
    assert float(weighting(tf.constant(losses))) == pytest.approx(expected, rel=1e-6)
    assert weighting.log_variances.trainable


def test_dwa_weights_by_hand():
    weighting = DynamicWeightAverage(temperature=2.0)
    weighting.build((3,))
    for epoch_losses in ([1.0, 2.0, 3.0], [0.5, 1.8, 3.0]):
        weighting.start_epoch()
        weighting.update(tf.constant(epoch_losses))
        weights = weighting.end_epoch()
    rate = np.array([0.5, 0.9, 1.0])
    expected = 3 * np.exp(rate / 2) / np.exp(rate / 2).sum()
    np.testing.assert_allclose(weights, expected, rtol=1e-5)


def test_mtinet_has_intermediate_outputs_whose_loss_counts():
    model = _model("mtinet")
    names = set(model.network.output)
    assert {"flood_intermediate", "damage_intermediate", "victim_intermediate"} <= names
    x, y = _data()
    outputs = model(x)
    total, losses = model.compute_losses(y, outputs)
    final = task_loss(TASKS[0], y["flood"], outputs["flood"])
    intermediate = task_loss(TASKS[0], y["flood"], outputs["flood_intermediate"])
    assert float(losses[0]) == pytest.approx(float(final + intermediate), rel=1e-6)


def test_bad_strategy_arguments():
    with pytest.raises(ValueError, match="iterations"):
        MinNormWeighting(iterations=0)
    with pytest.raises(ValueError, match="temperature"):
        DynamicWeightAverage(temperature=0)
