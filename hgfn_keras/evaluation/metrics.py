"""Evaluation metrics for multi-task classification, in plain numpy.

For each task the project reports four numbers:

- F1: for a binary task, the F1 of the positive class with prediction
  `prob >= 0.5` (or the task's decision threshold, when one is given: see
  `hgfn_keras.evaluation.decision_thresholds`); for a K-class task, the macro F1 over all K classes with
  prediction `argmax(prob)` (a class with no true and no predicted example
  counts F1 = 0).
- Hamming loss (HL): the fraction of rows whose predicted class differs from the
  true class.
- MAP: for a binary task, the average precision of the positive class; for a
  K-class task, the mean of the one-vs-rest average precisions of the classes
  that have at least one positive example.
- Accuracy: 1 - hamming loss.

A label of -1 marks a missing label; such rows are left out of every metric.

A one-vs-rest task (`Task(..., one_vs_rest=True)`) is reported twice: as its
K-class task (its normalised probabilities, argmax) under "tasks", like any
other, and each of its binary concepts `<task>.<k>` ("class k or not", from
the concept's own sigmoid) under "concepts".
The numbers match scikit-learn (`f1_score`, `hamming_loss`, `accuracy_score`,
`average_precision_score`), but this module needs only numpy.
"""

import math
import warnings

import numpy as np

from hgfn_keras.labels import check_label_range

METRIC_NAMES = ("f1", "hamming_loss", "map", "accuracy")

# Column titles of `format_results_table`, in the order of METRIC_NAMES.
_TABLE_COLUMNS = (("f1", "F1"), ("hamming_loss", "HL"), ("map", "MAP"), ("accuracy", "Acc"))


def _task_label(name):
    """A prefix for error messages: "Task 'x': " or "" when there is no name."""
    if name is None:
        return ""
    return f"Task {name!r}: "


def _check_num_classes(num_classes, name):
    is_integer = isinstance(num_classes, (int, np.integer)) and not isinstance(num_classes, bool)
    if not is_integer or num_classes < 2:
        raise ValueError(
            f"{_task_label(name)}`num_classes` must be an integer >= 2 (2 = binary). "
            f"Received: num_classes={num_classes!r}"
        )
    return int(num_classes)


def _check_probabilities(y_prob, num_rows, num_classes, name):
    """Returns y_prob as float64, shape [N] (binary) or [N, K] (K > 2)."""
    probs = np.asarray(y_prob, dtype=np.float64)
    if probs.ndim == 0:
        raise ValueError(
            f"{_task_label(name)}`y_prob` must be an array with one row per label. "
            f"Received: a scalar y_prob={y_prob!r}"
        )
    if probs.shape[0] != num_rows:
        raise ValueError(
            f"{_task_label(name)}`y_true` and `y_prob` must have the same number of "
            f"rows. Received: y_true has {num_rows} rows, y_prob.shape={probs.shape}"
        )
    if num_classes == 2:
        if probs.ndim == 2 and probs.shape[1] == 1:
            probs = probs[:, 0]
        if probs.ndim != 1:
            raise ValueError(
                f"{_task_label(name)}for a binary task (num_classes=2), `y_prob` is the "
                f"probability of class 1, of shape [N] or [N, 1]. Received: "
                f"y_prob.shape={probs.shape}"
            )
    else:
        if probs.ndim != 2 or probs.shape[1] != num_classes:
            raise ValueError(
                f"{_task_label(name)}for a task with num_classes={num_classes}, `y_prob` "
                f"must have shape [N, {num_classes}]. Received: y_prob.shape={probs.shape}"
            )
    if not np.all(np.isfinite(probs)):
        raise ValueError(
            f"{_task_label(name)}`y_prob` must hold finite numbers. Received: "
            f"{int(np.sum(~np.isfinite(probs)))} NaN or infinite values"
        )
    return probs


def _f1_from_counts(tp, fp, fn):
    """F1 = 2 tp / (2 tp + fp + fn), or 0 when the denominator is 0."""
    denominator = 2 * tp + fp + fn
    if denominator == 0:
        return 0.0
    return 2.0 * tp / denominator


def average_precision(is_positive, scores):
    """Average precision of one class, the same as sklearn's `average_precision_score`.

    Rows are ranked by decreasing score; rows with the same score form one
    threshold. With precision P_n and recall R_n at the n-th distinct threshold
    (R_0 = 0), AP = sum_n (R_n - R_{n-1}) * P_n.

    Args:
        is_positive: bool array [N], True where the row belongs to the class.
        scores: float array [N], the score of the class for each row.

    Returns:
        The average precision as a float, or NaN when no row is positive.

    >>> average_precision(np.array([True, False, True]), np.array([0.9, 0.8, 0.3]))
    0.8333333333333333
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    num_positive = int(np.sum(is_positive))
    if num_positive == 0:
        return math.nan

    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_positive = is_positive[order].astype(np.float64)

    # Index of the last row of each group of tied scores.
    last_of_group = np.nonzero(np.diff(sorted_scores))[0]
    last_of_group = np.append(last_of_group, len(sorted_scores) - 1)

    true_positives = np.cumsum(sorted_positive)[last_of_group]
    predicted_positives = last_of_group + 1.0
    precision = true_positives / predicted_positives
    recall = true_positives / num_positive
    previous_recall = np.concatenate([[0.0], recall[:-1]])
    return float(np.sum((recall - previous_recall) * precision))


UNDEFINED_SUFFIX = "_undefined"


def _nan_metrics(reason):
    metrics = {metric: math.nan for metric in METRIC_NAMES}
    metrics.update({metric + UNDEFINED_SUFFIX: reason for metric in METRIC_NAMES})
    return metrics


def check_threshold(threshold, name=None):
    """A binary decision threshold as a float in (0, 1); else a ValueError naming
    the task and the value.

    >>> check_threshold(0.25)
    0.25
    """
    is_number = isinstance(threshold, (int, float, np.integer, np.floating)) and not \
        isinstance(threshold, (bool, np.bool_))
    if not is_number or not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"{_task_label(name)}a decision threshold must be a number in "
                         f"(0, 1). Received: threshold={threshold!r}")
    return float(threshold)


def task_metrics(y_true, y_prob, num_classes, name=None, threshold=0.5):
    """F1, hamming loss, MAP and accuracy of one task.

    Rows whose label is -1 (missing) are left out of every metric.

    - F1: binary: F1 of class 1 with prediction `y_prob >= threshold`; K > 2 classes:
      macro F1 over all K classes with prediction `argmax(y_prob)`, where a class
      with tp + fp + fn == 0 counts F1 = 0.
    - hamming_loss: fraction of valid rows whose predicted class != true class.
    - map: binary: average precision of class 1 (NaN, with a warning, when no
      valid row is positive); K > 2 classes: mean of the one-vs-rest average
      precisions, skipping the classes that have no positive row in `y_true`.
    - accuracy: 1 - hamming_loss.

    Args:
        y_true: int array [N] (or [N, 1]) of labels in [0, num_classes), -1 for
            a missing label.
        y_prob: binary task: the probability of class 1, shape [N] or [N, 1];
            K > 2 classes: class probabilities [N, K].
        num_classes: 2 for a binary task, K > 2 for a K-class task.
        name: optional task name, used in error and warning messages.
        threshold: a binary task's decision threshold in (0, 1) (e.g. from
            `hgfn_keras.evaluation.decision_thresholds.choose_thresholds`); it changes F1,
            Hamming loss and accuracy, not MAP. A K-class task decides by argmax
            and takes none (only the default 0.5).

    Returns:
        A dict `{"f1", "hamming_loss", "map", "accuracy"}` of Python floats. An
        undefined value is NaN (with a warning) and the dict then also holds
        `"<metric>_undefined"`: the reason, a string (`hgfn_keras.utils.io_utils`
        writes such a value as JSON `null` beside its reason). When no row has a
        valid label, every value is NaN.

    Raises:
        ValueError: if num_classes < 2, a label is outside [-1, num_classes),
            y_true and y_prob have different numbers of rows, y_prob has the
            wrong shape for num_classes, or the threshold is not in (0, 1) or is
            given for a K-class task.

    >>> m = task_metrics([1, 0, 1, -1], [0.9, 0.6, 0.3, 0.5], num_classes=2)
    >>> {k: round(v, 4) for k, v in m.items()}
    {'f1': 0.5, 'hamming_loss': 0.6667, 'map': 0.8333, 'accuracy': 0.3333}
    >>> m = task_metrics([1, 0, 1, -1], [0.9, 0.6, 0.3, 0.5], num_classes=2, threshold=0.2)
    >>> {k: round(v, 4) for k, v in m.items()}
    {'f1': 0.8, 'hamming_loss': 0.3333, 'map': 0.8333, 'accuracy': 0.6667}
    """
    num_classes = _check_num_classes(num_classes, name)
    threshold = check_threshold(threshold, name)
    if num_classes != 2 and threshold != 0.5:
        raise ValueError(
            f"{_task_label(name)}a task with num_classes={num_classes} decides by argmax "
            f"and takes no decision threshold. Received: threshold={threshold!r}")
    labels = check_label_range(y_true, num_classes, name)
    probs = _check_probabilities(y_prob, labels.shape[0], num_classes, name)

    valid = labels != -1
    num_valid = int(np.sum(valid))
    if num_valid == 0:
        warnings.warn(
            f"{_task_label(name)}no valid label (0 of {labels.shape[0]} rows have a "
            "label other than -1); every metric is NaN.",
            stacklevel=2,
        )
        return _nan_metrics(f"no label in the evaluated rows (0 of {labels.shape[0]})")
    labels = labels[valid]
    probs = probs[valid]

    if num_classes == 2:
        predictions = (probs >= threshold).astype(np.int64)
    else:
        predictions = np.argmax(probs, axis=1)

    hamming = float(np.mean(predictions != labels))

    if num_classes == 2:
        tp = int(np.sum((predictions == 1) & (labels == 1)))
        fp = int(np.sum((predictions == 1) & (labels == 0)))
        fn = int(np.sum((predictions == 0) & (labels == 1)))
        f1 = _f1_from_counts(tp, fp, fn)

        if np.any(labels == 1):
            mean_ap = average_precision(labels == 1, probs)
        else:
            warnings.warn(
                f"{_task_label(name)}no positive label among {num_valid} valid rows; "
                "average precision is undefined, so `map` is NaN.",
                stacklevel=2,
            )
            mean_ap = math.nan
    else:
        f1_per_class = []
        ap_per_class = []
        for k in range(num_classes):
            tp = int(np.sum((predictions == k) & (labels == k)))
            fp = int(np.sum((predictions == k) & (labels != k)))
            fn = int(np.sum((predictions != k) & (labels == k)))
            f1_per_class.append(_f1_from_counts(tp, fp, fn))
            if np.any(labels == k):
                ap_per_class.append(average_precision(labels == k, probs[:, k]))
        f1 = float(np.mean(f1_per_class))
        # Every valid row is a positive of its class, so the list is not empty.
        mean_ap = float(np.mean(ap_per_class))

    result = {
        "f1": float(f1),
        "hamming_loss": hamming,
        "map": float(mean_ap),
        "accuracy": 1.0 - hamming,
    }
    if math.isnan(result["map"]):
        result["map" + UNDEFINED_SUFFIX] = (
            f"no positive label among the {num_valid} labelled evaluated rows"
        )
    return result


def _mean_ignoring_nan(values):
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return math.nan
    return float(np.mean(kept))


def multitask_metrics(tasks, y_true, y_prob, thresholds=None):
    """Metrics of every task, and their mean over tasks.

    Args:
        tasks: a list of objects with `.name` and `.num_classes`, such as
            `hgfn_keras.specs.Task` (and `.one_vs_rest`, `.concepts` for a
            one-vs-rest task).
        y_true: dict task name -> labels [N] (-1 = missing).
        y_prob: dict task name -> probabilities ([N] or [N, 1] for a binary
            task, [N, K] for a K-class task); for a one-vs-rest task also
            concept name `<task>.<k>` -> that concept's sigmoid [N] or [N, 1]
            (what the model's `predict` returns).
        thresholds: None, or dict binary task name -> its decision threshold
            in (0, 1) (`task_metrics`' `threshold`); a binary task left out
            decides at 0.5.

    Returns:
        `{"tasks": {name: task_metrics(...)}, "mean": {metric: mean}, "mean_over":
        ...}`, and when a task is one-vs-rest `"concepts": {concept name:
        task_metrics(...) of the binary concept}` (its label 1 where the task's
        label is k, -1 where it is missing); where each
        mean is taken over the tasks whose value is not NaN (NaN, with a
        `"<metric>_undefined"` reason beside it, if all are), and `"mean_over":
        {metric: {"num_tasks": n, "skipped_tasks": [names]}}` says over how many
        tasks each mean was taken and which were left out. The means are over
        "tasks" only.

    Raises:
        ValueError: if `tasks` is empty, a task name repeats, a task is missing
            from `y_true` or `y_prob`, a task's arrays are invalid, or
            `thresholds` names an unknown task or a K-class task.

    >>> from types import SimpleNamespace as Task
    >>> tasks = [Task(name="spam", num_classes=2), Task(name="topic", num_classes=3)]
    >>> y_true = {"spam": [1, 0], "topic": [2, 0]}
    >>> y_prob = {"spam": [0.8, 0.1], "topic": [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]}
    >>> multitask_metrics(tasks, y_true, y_prob)["mean"]["accuracy"]
    1.0
    >>> multitask_metrics(tasks, y_true, y_prob, thresholds={"spam": 0.9})["tasks"]["spam"]["f1"]
    0.0
    """
    tasks = list(tasks)
    if not tasks:
        raise ValueError("`tasks` must list at least one task. Received: tasks=[]")
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"Task names must be unique. Received: {names}")

    for label, arrays in (("y_true", y_true), ("y_prob", y_prob)):
        for name in names:
            if name not in arrays:
                raise ValueError(
                    f"Task {name!r} is missing from `{label}`. Received keys: "
                    f"{sorted(arrays.keys(), key=str)}"
                )

    thresholds = dict(thresholds or {})
    unknown = sorted((k for k in thresholds if k not in names), key=str)
    if unknown:
        raise ValueError(f"`thresholds` names unknown task(s) {unknown}. Tasks: {names}")
    multiclass = [t.name for t in tasks if t.name in thresholds and t.num_classes != 2]
    if multiclass:
        raise ValueError(
            f"`thresholds` names K-class task(s) {multiclass}: they decide by argmax and "
            f"take no decision threshold. Received: thresholds={thresholds}")

    per_task = {}
    for task in tasks:
        per_task[task.name] = task_metrics(
            y_true[task.name], y_prob[task.name], task.num_classes, name=task.name,
            threshold=thresholds.get(task.name, 0.5),
        )

    mean, mean_over = {}, {}
    for metric in METRIC_NAMES:
        values = [per_task[name][metric] for name in names]
        mean[metric] = _mean_ignoring_nan(values)
        skipped = [name for name, value in zip(names, values) if math.isnan(value)]
        mean_over[metric] = {"num_tasks": len(names) - len(skipped), "skipped_tasks": skipped}
        if len(skipped) == len(names):
            mean[metric + UNDEFINED_SUFFIX] = f"undefined for every one of the {len(names)} task(s)"
    result = {"tasks": per_task, "mean": mean, "mean_over": mean_over}
    concepts = _concept_metrics(tasks, y_true, y_prob)
    if concepts:
        result["concepts"] = concepts
    return result


def _concept_metrics(tasks, y_true, y_prob):
    """`{concept name: binary metrics}` of every one-vs-rest task's concepts."""
    concepts = {}
    for task in tasks:
        if not getattr(task, "one_vs_rest", False):
            continue
        labels = check_label_range(y_true[task.name], task.num_classes, task.name)
        for k, concept in enumerate(task.concepts):
            if concept not in y_prob:
                raise ValueError(
                    f"Task {task.name!r} is one-vs-rest: `y_prob` must hold each concept's "
                    f"sigmoid ({task.concepts}, as the model's `predict` returns). Missing "
                    f"{concept!r}; received keys: {sorted(y_prob.keys(), key=str)}")
            binary = np.where(labels < 0, -1, (labels == k).astype(np.int64))
            concepts[concept] = task_metrics(binary, y_prob[concept], 2, name=concept)
    return concepts


def format_results_table(metrics):
    """A plain-text table of `multitask_metrics` results.

    One row per task and a final "mean" row; columns Task | F1 | HL | MAP | Acc
    with 3 decimals; an undefined value (NaN or None) reads "n/a".

    Args:
        metrics: the dict returned by `multitask_metrics`.

    Returns:
        The table as a string (no trailing newline).

    >>> result = {"tasks": {"spam": {"f1": 0.5, "hamming_loss": 0.25, "map": 0.8,
    ...                              "accuracy": 0.75}},
    ...           "mean": {"f1": 0.5, "hamming_loss": 0.25, "map": 0.8, "accuracy": 0.75}}
    >>> print(format_results_table(result))
    Task |    F1 |    HL |   MAP |   Acc
    -----+-------+-------+-------+------
    spam | 0.500 | 0.250 | 0.800 | 0.750
    mean | 0.500 | 0.250 | 0.800 | 0.750
    """
    if not isinstance(metrics, dict) or "tasks" not in metrics or "mean" not in metrics:
        received = sorted(metrics.keys(), key=str) if isinstance(metrics, dict) else type(metrics).__name__
        raise ValueError(
            "`metrics` must be the dict returned by `multitask_metrics`, with keys "
            f"'tasks' and 'mean'. Received: {received}"
        )

    def cell(value):
        if value is None or math.isnan(value):
            return "n/a"
        return f"{value:.3f}"

    rows = []
    for name, values in metrics["tasks"].items():
        rows.append([str(name)] + [cell(values[key]) for key, _ in _TABLE_COLUMNS])
    rows.append(["mean"] + [cell(metrics["mean"][key]) for key, _ in _TABLE_COLUMNS])

    header = ["Task"] + [title for _, title in _TABLE_COLUMNS]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]

    def format_row(cells):
        first = cells[0].ljust(widths[0])
        others = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
        return " | ".join([first] + others)

    separator = "-+-".join("-" * width for width in widths)
    lines = [format_row(header), separator] + [format_row(row) for row in rows]
    return "\n".join(lines)
