"""DMTL: TDB (eq. 11) and the epoch-end re-balancing, checked against numbers by hand."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import (
    DynamicTaskBalancing,
    task_loss,
    Modality,
    Task,
    TaskRebalancing,
    build_model,
    task_counts,
)
from hgfn_keras.data.dataset import as_tf_dataset
from tests.conftest import make_inputs, make_model
from tests.layer_checks import check_backup_and_restore_resumes

MODALITIES = (Modality("image", width=5), Modality("audio", width=3))
TASKS = (Task("flood", 2), Task("damage", 3), Task("victim", 2))
ROWS = 32


def _data(seed=0, rows=ROWS):
    rng = np.random.default_rng(seed)
    x = make_inputs(MODALITIES, rows, rng)
    y = {"flood": rng.integers(0, 2, rows), "damage": rng.integers(0, 3, rows),
         "victim": rng.integers(0, 2, rows)}
    y["damage"][::7] = -1
    return x, {k: v.astype("int32") for k, v in y.items()}


def _model(seed=0, **mtl_kwargs):
    return make_model(MODALITIES, TASKS, seed=seed, fusion="hgfn", head_units=4, dropout=0.0,
                      mtl="dmtl", mtl_kwargs=mtl_kwargs, preset="paper",
                      shared_units=4 if mtl_kwargs.get("grad_norm_layer") == "shared" else None)


def _tdb_by_hand(w, norms, losses, initial, ratios, alpha, lr, min_weight=1e-3):
    """One TDB step of eq. 11 in numpy: returns the new weights."""
    g = norms / w  # ‖∇_W L_f‖, since G_f = w_f ‖∇_W L_f‖
    tilde = losses / initial
    r = tilde / tilde.mean()
    big_g = w * g
    target = big_g.mean() * r**alpha  # held constant
    grad = ratios * np.sign(big_g - target) * g  # d/dw_f of Σ ratio |w g − target|
    new = np.maximum(w - lr * grad, min_weight)
    return new * len(w) / new.sum()


def _weighting(num_tasks=3, **kwargs):
    weighting = DynamicTaskBalancing(**kwargs)
    weighting.build((num_tasks,))
    return weighting


def test_one_tdb_update_matches_eq_11_by_hand():
    weighting = _weighting(alpha=1.5, learning_rate=0.01, rebalance=False, normalize_step=False)
    weighting.set_task_counts(100, [20, 5, 50])
    ratios = np.array([5.0, 20.0, 2.0])
    np.testing.assert_allclose(weighting.sample_ratios.numpy(), ratios)
    w = np.ones(3)
    first_losses = np.array([0.7, 1.1, 0.6])
    norms = np.array([0.3, 0.9, 0.2])
    weighting.update(tf.constant(first_losses, "float32"), tf.constant(norms, "float32"))
    # First step: L(0) = L(1), so every r_f = 1 and the target is Ḡ.
    expected = _tdb_by_hand(w, norms, first_losses, first_losses, ratios, 1.5, 0.01)
    np.testing.assert_allclose(weighting.task_weights.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(weighting.initial_losses.numpy(), first_losses, rtol=1e-6)

    w = expected
    losses = np.array([0.35, 1.0, 0.5])
    norms = w * np.array([0.5, 0.4, 0.1])  # G_f for the current weights
    weighting.update(tf.constant(losses, "float32"), tf.constant(norms, "float32"))
    expected = _tdb_by_hand(w, norms, losses, first_losses, ratios, 1.5, 0.01)
    np.testing.assert_allclose(weighting.task_weights.numpy(), expected, rtol=1e-5)
    assert weighting.task_weights.numpy().sum() == pytest.approx(3.0, abs=1e-5)


def test_normalised_step_divides_by_the_mean_sample_ratio():
    # The same step as eq. 11 by hand with η / mean(N / n_f): the tasks' factors
    # keep their ratios, only the scale of the step changes.
    weighting = _weighting(alpha=1.0, learning_rate=0.09, rebalance=False)
    weighting.set_task_counts(100, [20, 5, 50])
    ratios = np.array([5.0, 20.0, 2.0])  # mean 9
    losses, norms = np.array([0.7, 1.1, 0.6]), np.array([0.3, 0.9, 0.2])
    weighting.update(tf.constant(losses, "float32"), tf.constant(norms, "float32"))
    expected = _tdb_by_hand(np.ones(3), norms, losses, losses, ratios, 1.0, 0.09 / 9.0)
    np.testing.assert_allclose(weighting.task_weights.numpy(), expected, rtol=1e-5)


def test_without_tdb_only_the_rebalancing_moves_the_weights():
    weighting = _weighting(tdb=False)
    weighting.set_task_counts(100, [20, 5, 50])
    weighting.update(tf.constant([0.5, 1.5, 0.25]), tf.constant([0.3, 0.9, 0.2]))
    np.testing.assert_allclose(weighting.task_weights.numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(weighting.end_epoch(), [0.9, 0.3, 1.8], rtol=1e-5)


def test_rebalancing_scalars_by_hand():
    weighting = _weighting(learning_rate=1e-6)
    weighting.task_weights.assign([0.5, 1.5, 1.0])
    weighting.epoch_loss_sums.assign([2.0, 6.0, 1.0])
    weighting.epoch_steps.assign(4.0)
    mean_losses = np.array([0.5, 1.5, 0.25])
    scalars = mean_losses.max() / mean_losses  # [3, 1, 6]
    np.testing.assert_allclose(weighting.rebalancing_scalars().numpy(), scalars, rtol=1e-6)
    new = weighting.end_epoch()
    # Reset, not multiplied: the weights before (0.5, 1.5, 1.0) play no part.
    np.testing.assert_allclose(new, 3 * scalars / scalars.sum(), rtol=1e-6)  # [0.9, 0.3, 1.8]
    np.testing.assert_allclose(new, [0.9, 0.3, 1.8], rtol=1e-6)
    weighting.start_epoch()
    assert weighting.epoch_steps.numpy() == 0 and not weighting.epoch_loss_sums.numpy().any()


def test_rebalancing_resets_over_two_epochs():
    # The same mean losses in two epochs give the same weights both times: a
    # product over epochs (the old reading) would give [0.36, 0.04, 2.6] next.
    weighting = _weighting(learning_rate=1e-6)
    for _ in range(2):
        weighting.start_epoch()
        weighting.update(tf.constant([0.5, 1.5, 0.25]), tf.constant([1.0, 1.0, 1.0]))
        weighting.update(tf.constant([0.5, 1.5, 0.25]), tf.constant([1.0, 1.0, 1.0]))
        weights = weighting.end_epoch()
        np.testing.assert_allclose(weights, [0.9, 0.3, 1.8], rtol=1e-4)
        assert weights.sum() == pytest.approx(3.0, abs=1e-5)


def test_rebalancing_divides_each_loss_by_its_chance_loss():
    # A 3-class task's loss of 1.5 is as far from its chance loss log 3 as a binary
    # task's 0.95 from log 2; the raw losses would call it the hardest task.
    weighting = _weighting(learning_rate=1e-6)
    chance = np.log([2.0, 3.0, 2.0])
    weighting.set_chance_losses(chance)
    weighting.epoch_loss_sums.assign([0.95 * 2, 1.5 * 2, 0.25 * 2])
    weighting.epoch_steps.assign(2.0)
    relative = np.array([0.95, 1.5, 0.25]) / chance
    scalars = relative.max() / relative
    np.testing.assert_allclose(weighting.rebalancing_scalars().numpy(), scalars, rtol=1e-5)
    np.testing.assert_allclose(weighting.end_epoch(), 3 * scalars / scalars.sum(), rtol=1e-5)
    raw = _weighting(learning_rate=1e-6, normalize_losses=False)
    raw.set_chance_losses(chance)
    raw.epoch_loss_sums.assign([0.95 * 2, 1.5 * 2, 0.25 * 2])
    raw.epoch_steps.assign(2.0)
    losses = np.array([0.95, 1.5, 0.25])
    np.testing.assert_allclose(raw.rebalancing_scalars().numpy(), losses.max() / losses,
                               rtol=1e-5)


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_the_model_gives_the_weighting_each_tasks_chance_loss(beta):
    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), list(TASKS), mtl="dmtl", beta=beta)
    k = np.array([2.0, 3.0, 2.0])
    np.testing.assert_allclose(np.asarray(model.task_weighting.chance_losses),
                               (1 - 1 / k) ** beta * np.log(k), rtol=1e-6)
    with pytest.raises(ValueError, match="3 positive chance losses"):
        model.task_weighting.set_chance_losses([1.0, 0.0, 1.0])


def test_task_counts_take_the_rarest_class():
    # 82 % positives: n_f is the negative count, the rare side.
    labels = {"flood": np.array([1] * 9 + [0] * 2 + [-1]), "damage": np.array([0, 1, 2] * 4),
              "victim": np.array([0] * 10 + [1] * 2)}
    assert task_counts(list(TASKS), labels) == (12, [2, 4, 2])


def test_no_rebalancing_when_switched_off():
    weighting = _weighting(rebalance=False)
    weighting.epoch_loss_sums.assign([2.0, 6.0, 1.0])
    weighting.epoch_steps.assign(4.0)
    np.testing.assert_allclose(weighting.end_epoch(), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("grad_norm_layer", ["task", "shared"])
def test_train_step_passes_the_gradient_norms_of_eq_11(grad_norm_layer, monkeypatch):
    model = _model(grad_norm_layer=grad_norm_layer)
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)  # to read the norms
    x, y = _data()
    model.task_weights.assign([0.5, 1.7, 0.8])
    seen = {}
    original = model.task_weighting.update

    def spy(task_losses, gradient_norms=None):
        seen["losses"], seen["norms"] = task_losses, gradient_norms
        return original(task_losses, gradient_norms)

    monkeypatch.setattr(model.task_weighting, "update", spy)
    model.fit(as_tf_dataset(x, y, ROWS), epochs=1, verbose=0, shuffle=False)
    norms, losses = seen["norms"].numpy(), seen["losses"].numpy()
    # The same norms by brute force: one tape per task, on fresh copies of the weights.
    model2 = _model(grad_norm_layer=grad_norm_layer)
    weights = np.array([0.5, 1.7, 0.8], "float32")
    tensors = {k: tf.constant(v) for k, v in x.items()}
    expected_norms, expected_losses = [], []
    for index, task in enumerate(TASKS):
        if grad_norm_layer == "shared":
            kernel = model2.network.get_layer("shared").kernel
        else:
            kernel = model2.network.get_layer(task.name).kernel
        with tf.GradientTape() as tape:
            y_pred = model2(tensors, training=True)
            loss = task_loss(task, tf.constant(y[task.name]), y_pred[task.name])
            weighted = weights[index] * loss
        expected_norms.append(float(tf.norm(tape.gradient(weighted, kernel))))
        expected_losses.append(float(loss))
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5)
    np.testing.assert_allclose(norms, expected_norms, rtol=1e-4)


def test_weights_stay_positive_and_sum_to_t():
    model = _model(learning_rate=0.5)  # a large step pushes weights to the floor
    x, y = _data()
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    weights = model.task_weights.numpy()
    assert np.all(weights > 0) and weights.sum() == pytest.approx(3.0, abs=1e-4)
    for name in ("flood", "damage", "victim"):
        assert all(v > 0 for v in history.history[f"{name}_weight"])


def test_changing_n_f_changes_the_weights_path():
    x, y = _data()
    paths = []
    for positives in ([16, 10, 16], [16, 1, 16]):
        model = _model(learning_rate=0.05, rebalance=False)
        model.task_weighting.set_task_counts(ROWS, positives)
        model.fit(as_tf_dataset(x, y, 8), epochs=1, verbose=0, shuffle=False)
        paths.append(model.task_weights.numpy())
    assert not np.allclose(paths[0], paths[1], atol=1e-4), paths


def test_task_counts_skip_missing_labels_and_rare_classes():
    n, positives = task_counts(list(TASKS), {"flood": np.array([1, 1, 0, -1]),
                                             "damage": np.array([0, 2, 2, -1]),
                                             "victim": np.array([0, 0, 0, 0])})
    assert n == 4
    # flood: one negative (the rare side); damage: class 1 never occurs; victim: no positive
    assert positives == [1, 0, 0]


def test_no_positive_stays_finite_with_a_warning():
    weighting = _weighting()
    with pytest.warns(UserWarning, match="'victim' has a class with no training label"):
        weighting.set_task_counts(10, [5, 2, 0], ["flood", "damage", "victim"])
    np.testing.assert_allclose(weighting.sample_ratios.numpy(), [2.0, 5.0, 10.0])
    weighting.update(tf.constant([0.5, 0.0, 0.4]), tf.constant([0.1, 0.0, 0.2]))
    assert np.all(np.isfinite(weighting.task_weights.numpy()))


def test_state_is_non_trainable_and_logged_each_step():
    model = _model()
    state = {v.path for v in model.task_weighting.weights}
    assert not any(v.path in state for v in model.trainable_variables)
    x, y = _data()
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert {"flood_weight", "damage_weight", "victim_weight"} <= set(history.history)


def test_validation_loss_is_the_plain_sum():
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.task_weights.assign([0.1, 2.5, 0.4])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(
        logs["flood_loss"] + logs["damage_loss"] + logs["victim_loss"], rel=1e-5)


def test_save_load_keeps_the_dmtl_state(tmp_path):
    model = _model(alpha=0.5, learning_rate=0.02)
    x, y = _data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = str(tmp_path / "dmtl.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.task_weighting.get_config()["alpha"] == 0.5
    for name in ("task_weights", "sample_ratios", "initial_losses"):
        np.testing.assert_allclose(getattr(loaded.task_weighting, name).numpy(),
                                   getattr(model.task_weighting, name).numpy())


@pytest.mark.slow
def test_backup_and_restore_resumes_the_same_weights(tmp_path):
    x, y = _data()
    check_backup_and_restore_resumes(lambda seed=0: _model(seed, learning_rate=0.02), x, y,
                                     epochs=4, backup_dir=str(tmp_path / "backup"))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"alpha": -1}, "alpha"), ({"learning_rate": 0}, "learning_rate"),
     ({"grad_norm_layer": "first"}, "grad_norm_layer.*first"), ({"min_weight": 2}, "min_weight")],
)
def test_bad_dmtl_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DynamicTaskBalancing(**kwargs)


def test_shared_norms_get_a_shared_layer():
    model = build_model(list(MODALITIES), list(TASKS), mtl="dmtl", head_units=4,
                        mtl_kwargs={"grad_norm_layer": "shared"})
    assert model.shared_layer.units == 4
    from hgfn_keras import MultiTaskModel

    plain = build_model(list(MODALITIES), list(TASKS), mtl="lsew")
    with pytest.raises(ValueError, match="last shared layer.*shared_layer="):
        MultiTaskModel(plain.network, list(TASKS), task_weighting="gradnorm")


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="Unknown task weighting 'mgda'"):
        build_model(list(MODALITIES), list(TASKS), mtl="mgda")


def test_task_weights_csv_shows_the_reset(tmp_path):
    # The re-balancing's reset, checked from the file alone: the `rebalanced` row
    # of each epoch is T * s / sum(s) with s_f = max_g loss_g / loss_f of that row.
    from hgfn_keras.recipe import write_task_weights

    model = _model()
    x, y = _data()
    rebalancing = TaskRebalancing()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[rebalancing])
    path = tmp_path / "task_weights.csv"
    write_task_weights(str(path), model.task_names, rebalancing)
    rows = [line.split(",") for line in path.read_text().splitlines()]
    names = [t.name for t in TASKS]
    assert rows[0] == ["epoch", "phase", *names, *(f"loss_{n}" for n in names),
                       *(f"chance_{n}" for n in names)]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("1", "tdb"), ("1", "rebalanced"), ("2", "tdb"), ("2", "rebalanced")]
    for tdb, rebalanced in (rows[1:3], rows[3:5]):
        losses = np.array([float(v) for v in rebalanced[5:8]])
        chance = np.array([float(v) for v in rebalanced[8:11]])
        np.testing.assert_allclose(chance, np.log([2, 3, 2]), atol=1e-6)
        assert [float(v) for v in tdb[5:]] == [*losses.tolist(), *chance.tolist()]
        relative = losses / chance
        scalars = relative.max() / relative
        np.testing.assert_allclose([float(v) for v in rebalanced[2:5]],
                                   3 * scalars / scalars.sum(), atol=2e-6)
        assert sum(float(v) for v in tdb[2:5]) == pytest.approx(3.0, abs=1e-5)
