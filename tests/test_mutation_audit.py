"""Tests a mutation audit found missing: each fails on the mutation named in it.

- TDB's L_f(0) overwritten by every step's losses;
- the model passing β = 0 to an ordinary (not one-vs-rest) task's focal loss;
- `infer_num_classes` counting the missing label -1 as class 1 (`np.abs(y)`);
- the shard order of `StreamedDataset.splits_ds` ignoring `seed` (always 0);
- `<task>_decision` comparing with `>` instead of `>=`;
- `TaskRebalancing.on_epoch_begin` not starting a new epoch's mean.
"""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import Modality, Task, TaskRebalancing, build_model
from hgfn_keras.labels import infer_num_classes
from hgfn_keras.multitask.task_weighting import TaskWeighting
from tests.test_dmtl import _tdb_by_hand, _weighting

MODALITIES = (Modality("a", width=3), Modality("b", width=2))


def test_tdb_keeps_the_first_losses_as_l_f_0_over_three_updates():
    # Mutation: `initial_losses := task_losses` at every step. Two updates cannot see
    # it (the second reads L(0) before it is overwritten); the third does.
    weighting = _weighting(alpha=1.0, learning_rate=0.02, rebalance=False, normalize_step=False)
    weighting.set_task_counts(100, [20, 5, 50])
    ratios = np.array([5.0, 20.0, 2.0])
    first = np.array([0.7, 1.1, 0.6])
    steps = [(first, np.array([0.3, 0.9, 0.2])),
             (np.array([0.35, 1.0, 0.5]), np.array([0.5, 0.4, 0.1])),
             (np.array([0.2, 0.9, 0.55]), np.array([0.6, 0.3, 0.4]))]
    w = np.ones(3)
    for i, (losses, unweighted) in enumerate(steps):
        norms = w * unweighted if i else unweighted  # G_f = w_f ‖∇_W L_f‖
        weighting.update(tf.constant(losses, "float32"), tf.constant(norms, "float32"))
        w = _tdb_by_hand(w, norms, losses, first, ratios, 1.0, 0.02)  # L(0): the first
        np.testing.assert_allclose(weighting.task_weights.numpy(), w, rtol=1e-5)
    np.testing.assert_allclose(weighting.initial_losses.numpy(), first, rtol=1e-6)


def test_the_focal_beta_applies_to_ordinary_tasks():
    # Mutation: the model passes beta=0 for a task that is not one-vs-rest.
    model = build_model(list(MODALITIES), [Task("flood", 2), Task("damage", 3)], fusion="cfc",
                        fusion_kwargs={"units": 4}, head_units=2, mtl="lsew", beta=2.0)
    y = {"flood": np.array([1, 0]), "damage": np.array([1, 2])}
    flood = np.array([[0.8], [0.3]], "float32")
    damage = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], "float32")
    sums = np.asarray(model.multitask_loss.terms(y, {"flood": flood, "damage": damage})[0], "float64")
    pd = np.array([0.8, 0.7])  # flood: p of the true class
    np.testing.assert_allclose(sums[0], np.sum(-(1 - pd) ** 2 * np.log(pd)), rtol=1e-5)
    py = np.array([0.5, 0.1])  # damage: p of the true class
    np.testing.assert_allclose(sums[1], np.sum(-(1 - py) ** 2 * np.log(py)), rtol=1e-5)
    # ... which is not the cross-entropy that β = 0 gives.
    assert not np.isclose(sums[1], np.sum(-np.log(py)), rtol=1e-3)


def test_a_missing_label_is_not_counted_as_class_one():
    # Mutation: np.abs(y) makes the -1 of row 3 a class 1, and [0, 2, 2, -1] a 3-class
    # task without a gap. Class 1 never occurs: the labels have a gap and are refused.
    with pytest.raises(ValueError, match=r"Task 'level': the labels look like a binary task "
                       r"\(\[0, 1\], -1 = missing\) but also hold the value\(s\) \[2\], first "
                       r"at row\(s\) \[1, 2\]; class\(es\) \[1\] never occur"):
        infer_num_classes("level", np.array([0, 2, 2, -1]))
    assert infer_num_classes("flood", np.array([0, 0, -1, -1])) == 2
    assert infer_num_classes("level", np.array([0, 2, 1, -1, -1])) == 3


def _row_order(data, seed):
    ds = data.splits_ds("train", batch_size=4, seed=seed, shuffle_buffer=1)
    return [int(v) for x, _ in ds.as_numpy_iterator() for v in x["a"][:, 0]]


def test_the_shard_order_follows_the_seed(tmp_path):
    # Mutation: the shard order shuffled with seed 0 whatever `seed` is. With a row
    # buffer of 1 the rows keep their shards' order, so the order is the shards'.
    from hgfn_keras.data.tfrecord import write_tfrecord

    rows = 48  # in the training split; 4 more for validation and test
    a = np.zeros((rows + 4, 3), "float32")
    a[:, 0] = np.arange(rows + 4)
    a[:, 1] = 1.0  # no all-zero row (that would read as a missing modality)
    path = tmp_path / "rows.npz"
    np.savez(path, x_a=a, x_b=np.ones((rows + 4, 2), "float32"),
             y_t=np.arange(rows + 4) % 2, split=np.array([0] * rows + [1, 1, 2, 2]))
    data = write_tfrecord(str(path), str(tmp_path / "shards"), shard_rows=3)
    orders = {seed: _row_order(data, seed) for seed in (1, 2, 3)}
    for order in orders.values():
        assert sorted(order) == list(range(rows))
    assert _row_order(data, 1) == orders[1]  # a seed gives one order ...
    assert len({tuple(o) for o in orders.values()}) == 3  # ... and other seeds others


def test_a_probability_exactly_on_the_threshold_decides_1(tmp_path):
    # Mutation: `<task>_decision` as `prob > threshold`.
    from hgfn_keras.serving.export import export_saved_model

    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), [Task("flood", 2)], fusion="cfc",
                        fusion_kwargs={"units": 4}, head_units=2, mtl="lsew",
                        use_modality_mask=False)
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(6, 3)).astype("float32"),
         "b": rng.normal(size=(6, 2)).astype("float32")}
    serve = tf.saved_model.load(export_saved_model(model, str(tmp_path / "plain"))) \
        .signatures["serving_default"]
    p = serve(**{k: tf.constant(v) for k, v in x.items()})["flood"].numpy().reshape(-1)
    assert len(set(p.tolist())) == 6
    threshold = float(np.sort(p)[2])  # exactly row k's float32 probability
    model.set_decision_thresholds({"flood": threshold})
    serve = tf.saved_model.load(export_saved_model(model, str(tmp_path / "decided"))) \
        .signatures["serving_default"]
    out = serve(**{k: tf.constant(v) for k, v in x.items()})
    served = out["flood"].numpy().reshape(-1)
    np.testing.assert_array_equal(served, p)  # the same float32 probabilities
    decision = out["flood_decision"].numpy().reshape(-1)
    np.testing.assert_array_equal(decision, (p >= np.float32(threshold)).astype("int32"))
    assert decision[np.argsort(p)[2]] == 1 and decision.sum() == 4


def test_task_rebalancing_starts_each_epoch_s_mean_afresh():
    # Mutation: on_epoch_begin does not call `start_epoch`: the second epoch's mean
    # would average the first epoch's batches too.
    weighting = TaskWeighting()
    weighting.build((2,))
    callback = TaskRebalancing()
    callback.set_model(types.SimpleNamespace(task_weighting=weighting, loss_names=["a", "b"]))
    epochs = [[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0]], [[0.5, 1.5], [1.5, 0.5], [1.0, 1.0]]]
    callback.on_train_begin()
    for epoch, batches in enumerate(epochs):
        callback.on_epoch_begin(epoch)
        for losses in batches:
            weighting.update(tf.constant(losses))
        callback.on_epoch_end(epoch, {})
    means = [record["losses"] for record in callback.records]
    np.testing.assert_allclose(means, [[2.0, 3.0], [10.0, 20.0], [1.0, 1.0]], rtol=1e-6)
