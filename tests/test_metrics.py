"""Tests of hgfn_keras.evaluation.metrics against scikit-learn and hand-computed values."""

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
)
from sklearn.preprocessing import label_binarize

from hgfn_keras.evaluation.metrics import (
    METRIC_NAMES,
    average_precision,
    format_results_table,
    multitask_metrics,
    task_metrics,
)

TOL = 1e-12


def approx(value):
    return pytest.approx(value, abs=TOL, rel=TOL)


def sklearn_binary(y_true, prob):
    """Reference metrics of a binary task (prob = probability of class 1)."""
    y_true = np.asarray(y_true)
    prob = np.asarray(prob).reshape(-1)
    valid = y_true != -1
    y_true, prob = y_true[valid], prob[valid]
    pred = (prob >= 0.5).astype(int)
    return {
        "f1": f1_score(y_true, pred, pos_label=1, average="binary", zero_division=0),
        "hamming_loss": hamming_loss(y_true, pred),
        "map": average_precision_score(y_true, prob),
        "accuracy": accuracy_score(y_true, pred),
    }


def sklearn_multiclass(y_true, prob, num_classes):
    """Reference metrics of a K-class task; MAP skips classes without positives."""
    y_true = np.asarray(y_true)
    valid = y_true != -1
    y_true, prob = y_true[valid], prob[valid]
    pred = np.argmax(prob, axis=1)
    onehot = label_binarize(y_true, classes=list(range(num_classes)))
    aps = [
        average_precision_score(onehot[:, k], prob[:, k])
        for k in range(num_classes)
        if onehot[:, k].sum() > 0
    ]
    return {
        "f1": f1_score(
            y_true, pred, labels=list(range(num_classes)), average="macro", zero_division=0
        ),
        "hamming_loss": hamming_loss(y_true, pred),
        "map": float(np.mean(aps)),
        "accuracy": accuracy_score(y_true, pred),
    }


def assert_metrics_equal(actual, expected):
    assert set(actual) == {"f1", "hamming_loss", "map", "accuracy"}
    for key in actual:
        assert isinstance(actual[key], float), key
        assert actual[key] == approx(expected[key]), key


def random_softmax(rng, n, k):
    logits = rng.normal(size=(n, k)) * 2.0
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# Comparisons with scikit-learn


def test_binary_matches_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, size=300)
    # Scores that are informative but imperfect.
    prob = np.clip(0.3 * y_true + rng.uniform(0.0, 0.7, size=300), 0.0, 1.0)
    result = task_metrics(y_true, prob, num_classes=2)
    assert_metrics_equal(result, sklearn_binary(y_true, prob))


def test_binary_column_shape_matches_flat_shape():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, size=250)
    prob = rng.uniform(size=250)
    flat = task_metrics(y_true, prob, num_classes=2)
    column = task_metrics(y_true, prob.reshape(-1, 1), num_classes=2)
    assert column == flat
    assert_metrics_equal(column, sklearn_binary(y_true, prob))


def test_five_classes_all_present_match_sklearn():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 5, size=400)
    prob = random_softmax(rng, 400, 5)
    prob[np.arange(400), y_true] += 0.3  # make the predictions better than chance
    assert set(np.unique(y_true)) == set(range(5))
    result = task_metrics(y_true, prob, num_classes=5)
    assert_metrics_equal(result, sklearn_multiclass(y_true, prob, 5))


def test_binary_with_many_ties_matches_sklearn():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, size=300)
    prob = np.round(np.clip(0.25 * y_true + rng.uniform(0.0, 0.75, size=300), 0, 1), 1)
    assert len(np.unique(prob)) <= 11  # many rows share each score
    result = task_metrics(y_true, prob, num_classes=2)
    assert_metrics_equal(result, sklearn_binary(y_true, prob))
    assert average_precision(y_true == 1, prob) == approx(average_precision_score(y_true, prob))


def test_multiclass_with_many_ties_matches_sklearn():
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 4, size=300)
    prob = np.round(random_softmax(rng, 300, 4), 1)
    result = task_metrics(y_true, prob, num_classes=4)
    assert_metrics_equal(result, sklearn_multiclass(y_true, prob, 4))


def test_missing_labels_are_excluded_binary():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 2, size=300)
    prob = rng.uniform(size=300)
    y_missing = y_true.copy()
    y_missing[rng.uniform(size=300) < 0.3] = -1
    result = task_metrics(y_missing, prob, num_classes=2)
    assert_metrics_equal(result, sklearn_binary(y_missing, prob))
    keep = y_missing != -1
    assert result == task_metrics(y_missing[keep], prob[keep], num_classes=2)


def test_missing_labels_are_excluded_multiclass():
    rng = np.random.default_rng(6)
    y_true = rng.integers(0, 5, size=300)
    prob = random_softmax(rng, 300, 5)
    y_true[rng.uniform(size=300) < 0.25] = -1
    result = task_metrics(y_true, prob, num_classes=5)
    assert_metrics_equal(result, sklearn_multiclass(y_true, prob, 5))


def test_multiclass_map_skips_classes_without_positives():
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 3, size=200)  # class 3 and 4 never appear
    prob = random_softmax(rng, 200, 5)
    result = task_metrics(y_true, prob, num_classes=5)
    assert_metrics_equal(result, sklearn_multiclass(y_true, prob, 5))


# ---------------------------------------------------------------------------
# Hand-computed cases


def test_tiny_binary_case_by_hand():
    y_true = [1, 0, 1, 0, 1]
    prob = [0.8, 0.8, 0.4, 0.6, 0.2]
    # Predictions (prob >= 0.5): 1, 1, 0, 1, 0.
    # tp = 1 (row 0), fp = 2 (rows 1, 3), fn = 2 (rows 2, 4).
    # F1 = 2*1 / (2*1 + 2 + 2) = 1/3.
    # Wrong rows: 1, 2, 3, 4 -> hamming loss = 4/5, accuracy = 1/5.
    # AP, thresholds in decreasing order (3 positives):
    #   0.8 (rows 0+, 1- tied): P = 1/2, R = 1/3, dR = 1/3
    #   0.6 (row 3-):           P = 1/3, R = 1/3, dR = 0
    #   0.4 (row 2+):           P = 2/4, R = 2/3, dR = 1/3
    #   0.2 (row 4+):           P = 3/5, R = 3/3, dR = 1/3
    #   AP = 1/3 * (1/2 + 1/2 + 3/5) = 1.6 / 3
    result = task_metrics(y_true, prob, num_classes=2)
    assert result["f1"] == approx(1 / 3)
    assert result["hamming_loss"] == approx(4 / 5)
    assert result["accuracy"] == approx(1 / 5)
    assert result["map"] == approx(1.6 / 3)


def test_tiny_multiclass_case_by_hand():
    y_true = [0, 0, 1, -1]
    prob = np.array(
        [
            [0.6, 0.3, 0.1],  # true 0, predicted 0
            [0.2, 0.7, 0.1],  # true 0, predicted 1
            [0.3, 0.4, 0.3],  # true 1, predicted 1
            [0.1, 0.1, 0.8],  # missing label: ignored
        ]
    )
    # F1 class 0: tp 1, fp 0, fn 1 -> 2/3; class 1: tp 1, fp 1, fn 0 -> 2/3;
    # class 2: tp = fp = fn = 0 -> 0. Macro F1 = (2/3 + 2/3 + 0) / 3 = 4/9.
    # Wrong rows: 1 of 3 -> hamming loss = 1/3, accuracy = 2/3.
    # AP class 0, scores 0.6+, 0.3-, 0.2+: 1/2 * 1 + 0 + 1/2 * 2/3 = 5/6.
    # AP class 1, scores 0.7-, 0.4+, 0.3-: 0 + 1 * 1/2 + 0 = 1/2.
    # Class 2 has no positive -> skipped. MAP = (5/6 + 1/2) / 2 = 2/3.
    result = task_metrics(y_true, prob, num_classes=3)
    assert result["f1"] == approx(4 / 9)
    assert result["hamming_loss"] == approx(1 / 3)
    assert result["accuracy"] == approx(2 / 3)
    assert result["map"] == approx(2 / 3)


def test_no_valid_label_gives_nan_and_warns():
    with pytest.warns(UserWarning, match=r"0 of 4 rows"):
        result = task_metrics([-1, -1, -1, -1], [0.1, 0.2, 0.3, 0.4], num_classes=2)
    assert all(math.isnan(result[m]) for m in METRIC_NAMES)
    assert all("no label" in result[f"{m}_undefined"] for m in METRIC_NAMES)

    with pytest.warns(UserWarning, match=r"no valid label"):
        result = task_metrics(np.zeros(0, int), np.zeros((0, 3)), num_classes=3)
    assert all(math.isnan(result[m]) for m in METRIC_NAMES)


def test_binary_without_positive_gives_nan_map():
    with pytest.warns(UserWarning, match="no positive label"):
        result = task_metrics([0, 0, -1], [0.2, 0.7, 0.9], num_classes=2)
    assert math.isnan(result["map"])
    assert "no positive label" in result["map_undefined"]
    assert set(result) == set(METRIC_NAMES) | {"map_undefined"}
    assert result["hamming_loss"] == approx(0.5)
    assert result["f1"] == 0.0


# ---------------------------------------------------------------------------
# Bad inputs


@pytest.mark.parametrize(
    "y_true, y_prob, num_classes, message",
    [
        ([0, 1], [0.1, 0.9], 1, "num_classes=1"),
        ([0, 1], [0.1, 0.9], 2.0, "num_classes=2.0"),
        ([0, 1, 2], [0.1, 0.9, 0.5], 2, r"\[2\]"),
        ([0, -2, 1], [0.1, 0.9, 0.5], 2, r"\[-2\]"),
        ([0, 7, 1], np.full((3, 5), 0.2), 5, r"\[7\]"),
        ([0, 0.5, 1], [0.1, 0.9, 0.5], 2, "0.5"),
        ([0, 1, 1], [0.1, 0.9], 2, re.escape("y_prob.shape=(2,)")),
        ([0, 1], np.full((3, 4), 0.25), 4, "2 rows"),
        ([0, 1], np.full((2, 4), 0.25), 5, re.escape("y_prob.shape=(2, 4)")),
        ([0, 1], [0.2, 0.3], 3, re.escape("y_prob.shape=(2,)")),
        ([0, 1], np.full((2, 2), 0.5), 2, re.escape("y_prob.shape=(2, 2)")),
        ([[0, 1], [1, 0]], [0.2, 0.3], 2, re.escape("y_true.shape=(2, 2)")),
        ([0, 1], [0.2, np.nan], 2, "NaN"),
    ],
)
def test_bad_inputs_raise_value_error(y_true, y_prob, num_classes, message):
    with pytest.raises(ValueError, match=message):
        task_metrics(y_true, y_prob, num_classes)


def test_bad_input_message_names_the_task():
    with pytest.raises(ValueError, match="Task 'spam'.*\\[3\\]"):
        task_metrics([0, 3], [0.1, 0.2], 2, name="spam")


# ---------------------------------------------------------------------------
# Several tasks


def make_tasks():
    return [
        SimpleNamespace(name="spam", num_classes=2),
        SimpleNamespace(name="topic", num_classes=5),
        SimpleNamespace(name="unlabeled", num_classes=3),
    ]


def make_multitask_data():
    rng = np.random.default_rng(8)
    n = 200
    y_true = {
        "spam": rng.integers(0, 2, size=n),
        "topic": rng.integers(-1, 5, size=n),
        "unlabeled": np.full(n, -1),
    }
    y_prob = {
        "spam": rng.uniform(size=(n, 1)),
        "topic": random_softmax(rng, n, 5),
        "unlabeled": random_softmax(rng, n, 3),
    }
    return y_true, y_prob


def test_multitask_metrics_and_means():
    tasks = make_tasks()
    y_true, y_prob = make_multitask_data()
    with pytest.warns(UserWarning, match="'unlabeled'"):
        result = multitask_metrics(tasks, y_true, y_prob)

    assert set(result) == {"tasks", "mean", "mean_over"}
    assert list(result["tasks"]) == ["spam", "topic", "unlabeled"]
    spam = sklearn_binary(y_true["spam"], y_prob["spam"])
    topic = sklearn_multiclass(y_true["topic"], y_prob["topic"], 5)
    assert_metrics_equal(result["tasks"]["spam"], spam)
    assert_metrics_equal(result["tasks"]["topic"], topic)
    assert all(math.isnan(result["tasks"]["unlabeled"][m]) for m in METRIC_NAMES)
    # The NaN task is left out of the means, and the means say so.
    for key in ("f1", "hamming_loss", "map", "accuracy"):
        assert result["mean"][key] == approx((spam[key] + topic[key]) / 2)
        assert result["mean_over"][key] == {"num_tasks": 2, "skipped_tasks": ["unlabeled"]}


def test_multitask_mean_is_nan_when_every_task_is_nan():
    tasks = [SimpleNamespace(name="a", num_classes=2)]
    with pytest.warns(UserWarning):
        result = multitask_metrics(tasks, {"a": [-1, -1]}, {"a": [0.5, 0.5]})
    assert all(math.isnan(result["mean"][m]) for m in METRIC_NAMES)
    assert all(result["mean_over"][m]["num_tasks"] == 0 for m in METRIC_NAMES)
    assert "every one of the 1 task" in result["mean"]["map_undefined"]


@pytest.mark.parametrize("missing_from", ["y_true", "y_prob"])
def test_multitask_missing_task_raises(missing_from):
    tasks = make_tasks()
    y_true, y_prob = make_multitask_data()
    arrays = {"y_true": y_true, "y_prob": y_prob}
    del arrays[missing_from]["topic"]
    with pytest.raises(ValueError, match=rf"'topic'.*{missing_from}.*\['spam', 'unlabeled'\]"):
        multitask_metrics(tasks, y_true, y_prob)


def test_format_results_table():
    tasks = make_tasks()
    y_true, y_prob = make_multitask_data()
    with pytest.warns(UserWarning):
        result = multitask_metrics(tasks, y_true, y_prob)
    table = format_results_table(result)
    lines = table.split("\n")

    assert len(lines) == 2 + len(tasks) + 1  # header, separator, tasks, mean
    assert re.fullmatch(r"Task\s*\|\s*F1\s*\|\s*HL\s*\|\s*MAP\s*\|\s*Acc", lines[0])
    for task, line in zip(tasks, lines[2:-1]):
        assert line.startswith(task.name)
    assert lines[-1].startswith("mean")
    assert f"{result['mean']['f1']:.3f}" in lines[-1]
    assert f"{result['tasks']['topic']['map']:.3f}" in lines[3]
    assert "n/a" in lines[4] and "nan" not in table  # the unlabeled task
    # Columns line up: every line has the same length and "|" positions.
    assert len({len(line) for line in lines}) == 1
    bars = [[i for i, c in enumerate(line) if c in "|+"] for line in lines]
    assert all(positions == bars[0] for positions in bars)
