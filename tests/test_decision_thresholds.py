"""Decision thresholds (issue 11, part 4): chosen on validation F1, scored by the
metrics, stored in the model, applied by the SavedModel's `<task>_decision`."""

import numpy as np
import pytest

from hgfn_keras import Task
from hgfn_keras.evaluation.decision_thresholds import (
    best_f1_threshold,
    choose_thresholds,
)
from hgfn_keras.evaluation.metrics import multitask_metrics, task_metrics


def _f1(labels, probs, threshold):
    predicted = probs >= threshold
    tp = np.sum(predicted & (labels == 1))
    denominator = np.sum(predicted) + np.sum(labels == 1)
    return 0.0 if denominator == 0 else 2.0 * tp / denominator


def _rare_task(seed, rows=300, rate=0.08):
    """A rare label the scores rank fairly well, all scores below 0.5 (as on human)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < rate).astype(np.int32)
    probs = np.clip(0.1 + 0.15 * labels + 0.08 * rng.normal(size=rows), 0.0, 0.49)
    return labels, np.round(probs, 2)  # two decimals: a 0.001 grid sees every cut


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_beats_half_and_equals_a_grid_search(seed):
    labels, probs = _rare_task(seed)
    t = best_f1_threshold(labels, probs)
    assert 0.0 < t < 1.0
    assert _f1(labels, probs, t) >= _f1(labels, probs, 0.5)
    grid = np.arange(0.001, 1.0, 0.001)
    assert _f1(labels, probs, t) == pytest.approx(max(_f1(labels, probs, g) for g in grid))
    # The metrics agree with the hand count at that threshold.
    assert task_metrics(labels, probs, 2, threshold=t)["f1"] == pytest.approx(
        _f1(labels, probs, t))


def test_threshold_lies_halfway_between_distinct_probabilities():
    # Cuts: 0.8 (F1 2/3), 0.6 (F1 1.0), 0.2 (F1 0.8): the best is 0.6; halfway to 0.2.
    assert best_f1_threshold([1, 1, 0], [0.8, 0.6, 0.2]) == pytest.approx(0.4)
    # The lowest distinct value: halfway to 0.
    assert best_f1_threshold([1, 1], [0.3, 0.3]) == pytest.approx(0.15)


def test_ties_take_the_highest_cut():
    # Cut 0.9: tp 1, predicted 1, F1 = 2/3; cut 0.2: tp 2, predicted 4, F1 = 4/6.
    t = best_f1_threshold([1, 0, 0, 1], [0.9, 0.5, 0.3, 0.2])
    assert 0.5 < t <= 0.9


def test_threshold_is_float32_exact():
    t = best_f1_threshold([1, 0], [0.3, 0.1])
    assert float(np.float32(t)) == t and 0.1 < t <= 0.3


def test_missing_labels_are_ignored():
    labels, probs = _rare_task(0)
    noisy_labels = np.concatenate([labels, -np.ones(50, np.int32)])
    noisy_probs = np.concatenate([probs, np.full(50, 0.45)])  # would change every cut
    assert best_f1_threshold(noisy_labels, noisy_probs) == best_f1_threshold(labels, probs)


def test_no_positive_gives_half_with_a_warning_naming_the_task():
    with pytest.warns(UserWarning, match="Task 'rare': no positive label"):
        assert best_f1_threshold([0, 0, -1], [0.2, 0.7, 0.9], name="rare") == 0.5


def test_k_class_tasks_get_no_threshold():
    tasks = [Task("flood", 2), Task("damage", 3)]
    labels, probs = _rare_task(1, rows=40, rate=0.3)
    y_true = {"flood": labels, "damage": np.arange(40) % 3}
    y_prob = {"flood": probs[:, None], "damage": np.full((40, 3), 1 / 3)}
    thresholds = choose_thresholds(tasks, y_true, y_prob)
    assert set(thresholds) == {"flood"}
    metrics = multitask_metrics(tasks, y_true, y_prob, thresholds=thresholds)
    assert metrics["tasks"]["flood"]["f1"] == pytest.approx(_f1(labels, probs, thresholds["flood"]))
    # MAP does not move; the default call is unchanged.
    plain = multitask_metrics(tasks, y_true, y_prob)
    assert metrics["tasks"]["flood"]["map"] == plain["tasks"]["flood"]["map"]
    assert plain["tasks"]["flood"]["f1"] == pytest.approx(_f1(labels, probs, 0.5))
    with pytest.raises(ValueError, match=r"K-class task\(s\) \['damage'\]"):
        multitask_metrics(tasks, y_true, y_prob, thresholds={"damage": 0.5})
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['flod'\]"):
        multitask_metrics(tasks, y_true, y_prob, thresholds={"flod": 0.3})
    with pytest.raises(ValueError, match=r"Task 'flood': .*\(0, 1\). Received: threshold=1.5"):
        multitask_metrics(tasks, y_true, y_prob, thresholds={"flood": 1.5})
    with pytest.raises(ValueError, match="missing from `y_prob`"):
        choose_thresholds(tasks, y_true, {"damage": y_prob["damage"]})


# ---------------------------------------------------------------- stored in the model


@pytest.fixture(scope="module")
def model():
    import keras

    from hgfn_keras import build_model
    from tests.conftest import TINY_MODALITIES, TINY_TASKS, tiny_xy

    keras.utils.set_random_seed(0)
    built = build_model(list(TINY_MODALITIES), list(TINY_TASKS), fusion="hgfn",
                        head_units=4, mtl="lsew")
    built.compile(optimizer="adam")
    x, y = tiny_xy(n=24)
    built.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return built


@pytest.mark.slow
def test_thresholds_are_empty_by_default_and_kept_by_a_keras_round_trip(model, tmp_path):
    import keras

    assert model.decision_thresholds == {}
    model.set_decision_thresholds({"t1": np.float32(0.25)})
    try:
        assert model.decision_thresholds == {"t1": 0.25}
        model.save(tmp_path / "model.keras")
        loaded = keras.saving.load_model(tmp_path / "model.keras")
        assert loaded.decision_thresholds == {"t1": 0.25}
        assert model.get_config()["decision_thresholds"] == {"t1": 0.25}
        copy = model.decision_thresholds
        copy["t1"] = 0.9  # a copy: the model's own is set only through the checks
        assert model.decision_thresholds == {"t1": 0.25}
    finally:
        model.set_decision_thresholds({})


@pytest.mark.parametrize("thresholds, message", [
    ({"t9": 0.3}, r"unknown task 't9' \(threshold 0.3\)"),
    ({"t2": 0.3}, r"task 't2' has 3 classes and decides by argmax.*t2=0.3"),
    ({"t1": 1.0}, r"Task 't1': .*\(0, 1\). Received: threshold=1.0"),
    ({"t1": 0}, r"Task 't1': .*\(0, 1\). Received: threshold=0"),
    ({"t1": True}, r"Task 't1': .*Received: threshold=True"),
    ([0.3], r"must be a dict"),
])
def test_bad_thresholds_are_named(model, thresholds, message):
    with pytest.raises(ValueError, match=message):
        model.set_decision_thresholds(thresholds)
    assert model.decision_thresholds == {}


def test_saved_model_decision_equals_predict_at_the_threshold(model, tmp_path):
    import tensorflow as tf

    from hgfn_keras.serving.export import DECISION_SUFFIX, export_saved_model
    from tests.conftest import tiny_xy

    x, _ = tiny_xy(n=24, seed=1, with_mask=True)
    probabilities = model.predict(x, verbose=0)["t1"]
    # The median of the probabilities: about half the rows on each side.
    threshold = float(np.median(probabilities))
    model.set_decision_thresholds({"t1": threshold})
    try:
        path = export_saved_model(model, str(tmp_path / "tiny"))
    finally:
        model.set_decision_thresholds({})
    serve = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serve(**{k: tf.constant(v) for k, v in x.items()})
    assert set(outputs) == {"t1", "t2", "t1" + DECISION_SUFFIX}
    decision = outputs["t1_decision"].numpy()
    assert decision.dtype == np.int32
    np.testing.assert_array_equal(decision, (probabilities >= threshold).astype(np.int32))
    assert 0 < decision.sum() < len(decision)
    np.testing.assert_allclose(outputs["t1"].numpy(), probabilities, rtol=1e-5, atol=1e-6)
