"""Per-task decision thresholds chosen on validation F1.

A binary task's prediction is `prob >= threshold`. At 0.5, a model of a rare label
may predict no positive at all (F1 = 0) while it ranks the rows well (a good MAP);
the threshold that maximises the F1 on the validation split is the standard fix.
Choose it on validation rows, never on the rows you report.

- `best_f1_threshold`: one binary task's threshold.
- `choose_thresholds`: `{task name: threshold}` for every binary task of a
  multi-task prediction (a K-class task decides by argmax and gets none).
- `winning_thresholds`: those of them that win the (cross-fitted) validation
  F1 over 0.5 (`TrainConfig(decision_thresholds="auto")`, the package default).

The thresholds are stored in a model with `MultiTaskModel.set_decision_thresholds`,
applied by the SavedModel's `<task>_decision` outputs
(`hgfn_keras.serving.export.export_saved_model`) and scored with
`hgfn_keras.evaluation.metrics.multitask_metrics(..., thresholds=...)`.
"""

import warnings

import numpy as np

from hgfn_keras.evaluation.metrics import (
    _check_probabilities,
    _task_label,
    check_threshold,
)
from hgfn_keras.labels import check_label_range

#: The threshold of a task that has no positive label among the rows.
DEFAULT_THRESHOLD = 0.5


def _between(high, low):
    """A threshold t with low < t <= high: the midpoint, as a float32 value when one
    fits, so that comparing float32 probabilities (the model's, the SavedModel's)
    and their float64 copies (the metrics') gives the same decisions."""
    midpoint = (high + low) / 2.0
    rounded = float(np.float32(midpoint))
    if low < rounded <= high:
        return rounded
    return midpoint if low < midpoint <= high else high


def best_f1_threshold(y_true, y_prob, name=None):
    """The threshold that maximises a binary task's F1 on the given rows.

    The prediction is `y_prob >= threshold`. Every distinct probability v > 0 is
    a cut (the rows with probability >= v predicted positive); the threshold
    returned for a cut lies halfway between v and the next lower distinct
    probability (0 below the lowest), so that on new rows it does not sit on a
    probability seen in validation. Rows labelled -1 are left out.

    Ties: among the cuts with the highest F1, the highest one (the fewest rows
    predicted positive) is taken.

    Args:
        y_true: int labels [N] (or [N, 1]) in {0, 1}, -1 for a missing label.
        y_prob: the probability of class 1, [N] or [N, 1].
        name: optional task name, used in messages.

    Returns:
        The threshold, a float in (0, 1) (a float32 value when one fits between
        the two probabilities: float32 and float64 comparisons then agree). With
        no positive label among the
        rows (or every probability 0) F1 cannot be raised above 0: 0.5, with a
        warning naming the task.

    Raises:
        ValueError: if a label is outside {-1, 0, 1}, the shapes differ, or a
            probability is not finite.

    >>> t = best_f1_threshold([1, 0, 1, 0, -1], [0.3, 0.1, 0.4, 0.35, 0.9])
    >>> round(t, 6)  # halfway between 0.3 and 0.1, as float32
    0.2

    At 0.5 no row is predicted positive (F1 0); at t the F1 is 0.8.
    """
    labels = check_label_range(y_true, 2, name)
    probs = _check_probabilities(y_prob, labels.shape[0], 2, name)
    valid = labels != -1
    labels, probs = labels[valid] == 1, probs[valid]
    num_positive = int(np.sum(labels))
    if num_positive == 0 or not np.any(probs > 0):
        reason = ("no positive label among" if num_positive == 0
                  else "every probability is 0 in")
        warnings.warn(
            f"{_task_label(name)}{reason} the {labels.shape[0]} labelled rows, so no "
            f"threshold raises the F1 above 0; using {DEFAULT_THRESHOLD}.", stacklevel=2)
        return DEFAULT_THRESHOLD

    order = np.argsort(-probs, kind="stable")
    sorted_probs = probs[order]
    # The last row of each group of equal probabilities: cutting there predicts
    # every row down to that group positive.
    last = np.append(np.nonzero(np.diff(sorted_probs))[0], len(sorted_probs) - 1)
    last = last[sorted_probs[last] > 0]
    true_positives = np.cumsum(labels[order])[last]
    predicted = last + 1.0
    # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (predicted positives + positives).
    f1 = 2.0 * true_positives / (predicted + num_positive)
    best = int(np.argmax(f1))  # the first maximum: the highest cut
    high = float(sorted_probs[last[best]])
    below = sorted_probs[last[best] + 1:]
    low = float(below[0]) if below.size else 0.0
    return _between(high, low)


def choose_thresholds(tasks, y_true, y_prob):
    """`best_f1_threshold` of every binary task.

    Args:
        tasks: objects with `.name` and `.num_classes` (e.g. `hgfn_keras.Task`).
        y_true: `{task name: labels [N]}` (-1 = missing).
        y_prob: `{task name: probabilities}` (a model's `predict` output).

    Returns:
        `{task name: threshold}` for the binary tasks (num_classes == 2); a
        K-class task decides by argmax and gets none.

    Raises:
        ValueError: if a binary task is missing from `y_true` or `y_prob`.

    >>> from hgfn_keras import Task
    >>> tasks = [Task("flood", 2), Task("damage", 3)]
    >>> y_true = {"flood": [1, 0, 1, 0], "damage": [0, 1, 2, 0]}
    >>> y_prob = {"flood": [0.3, 0.1, 0.4, 0.2], "damage": [[1, 0, 0]] * 4}
    >>> choose_thresholds(tasks, y_true, y_prob)
    {'flood': 0.25}
    """
    thresholds = {}
    for task in tasks:
        if task.num_classes != 2:
            continue
        for label, arrays in (("y_true", y_true), ("y_prob", y_prob)):
            if task.name not in arrays:
                raise ValueError(f"Task {task.name!r} is missing from `{label}`. Received "
                                 f"keys: {sorted(arrays, key=str)}")
        thresholds[task.name] = best_f1_threshold(y_true[task.name], y_prob[task.name],
                                                  name=task.name)
    return thresholds


def check_decision_thresholds(thresholds, tasks):
    """`{binary task name: threshold in (0, 1)}` checked against the tasks (what
    `MultiTaskModel.set_decision_thresholds` stores); returns the floats.

    Raises:
        ValueError: for an unknown task, a K-class task (it decides by argmax) or
            a value outside (0, 1), naming the task and the value.

    >>> from hgfn_keras import Task
    >>> check_decision_thresholds({"flood": 0.25}, [Task("flood", 2), Task("damage", 3)])
    {'flood': 0.25}
    """
    if not isinstance(thresholds, dict):
        raise ValueError("`decision_thresholds` must be a dict {binary task name: "
                         f"threshold}}. Received: {thresholds!r}")
    classes = {t.name: t.num_classes for t in tasks}
    checked = {}
    for name, value in thresholds.items():
        if name not in classes:
            raise ValueError(f"`decision_thresholds` names an unknown task {name!r} "
                             f"(threshold {value!r}). Tasks: {list(classes)}")
        if classes[name] != 2:
            raise ValueError(
                f"`decision_thresholds`: task {name!r} has {classes[name]} classes and "
                f"decides by argmax; only binary tasks take a threshold. Received: "
                f"{name}={value!r}")
        checked[name] = check_threshold(value, name)
    return checked


def _f1(labels, probs, threshold):
    predicted = probs >= threshold
    true_positives = float(np.sum(predicted & labels))
    denominator = float(np.sum(predicted) + np.sum(labels))
    return 2.0 * true_positives / denominator if denominator else 0.0


def winning_thresholds(tasks, y_true, y_prob, seed=0):
    """The thresholds of `choose_thresholds`, kept only for the tasks where they
    win: `decision_thresholds="auto"`.

    A threshold chosen on the validation rows always scores at least as well
    there as 0.5 does, so "wins" is judged cross-fitted: the rows are split in
    two halves (drawn from `seed`), a threshold is chosen on each half and scored
    on the other; a task keeps its threshold (chosen on all the rows) when that
    mean F1 beats the mean F1 at 0.5 on the same halves. The others decide at
    0.5 (left out of the returned dict).

    Returns:
        `(thresholds, report)`: `{task: threshold}` for the winners, and
        `{task: {"f1_at_0.5": ..., "f1_at_threshold": ..., "threshold": ...,
        "kept": bool}}` (the cross-fitted validation F1s) for every binary task.

    >>> from hgfn_keras import Task
    >>> y = {"rare": [1, 0, 0, 0, 1, 0, 0, 0] * 4}
    >>> p = {"rare": [0.3, 0.1, 0.2, 0.1, 0.4, 0.2, 0.1, 0.1] * 4}
    >>> winning_thresholds([Task("rare", 2)], y, p)[0]
    {'rare': 0.25}
    """
    chosen = choose_thresholds(tasks, y_true, y_prob)
    thresholds, report = {}, {}
    for name, threshold in chosen.items():
        labels = check_label_range(y_true[name], 2, name)
        probs = _check_probabilities(y_prob[name], labels.shape[0], 2, name)
        valid = labels != -1
        labels, probs = labels[valid] == 1, probs[valid]
        order = np.random.default_rng(seed).permutation(labels.shape[0])
        halves = (order[: len(order) // 2], order[len(order) // 2:])
        at_half, at_threshold = [], []
        for fit_rows, score_rows in (halves, halves[::-1]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = best_f1_threshold(labels[fit_rows].astype(np.int64), probs[fit_rows],
                                           name)
            at_threshold.append(_f1(labels[score_rows], probs[score_rows], fitted))
            at_half.append(_f1(labels[score_rows], probs[score_rows], DEFAULT_THRESHOLD))
        kept = float(np.mean(at_threshold)) > float(np.mean(at_half))
        report[name] = {"f1_at_0.5": float(np.mean(at_half)),
                        "f1_at_threshold": float(np.mean(at_threshold)),
                        "threshold": threshold, "kept": kept}
        if kept:
            thresholds[name] = threshold
    return thresholds, report


__all__ = ["DEFAULT_THRESHOLD", "best_f1_threshold", "check_decision_thresholds",
           "choose_thresholds", "winning_thresholds"]
