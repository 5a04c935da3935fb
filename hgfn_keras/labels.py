"""The label contract: one place for what a task's labels may hold and what they mean.

A task's labels are integers: 0..K-1 for a K-class task (K = 2: binary, class 1 is the
positive class) and -1 for a missing label. Every reader, the model and the metrics check
labels here, so the rule and its messages cannot drift apart:

- `as_label_array`: the dtype / shape / integrality check of a raw label array.
- `label_from_text`: the same check on one label read from text (a manifest cell).
- `infer_num_classes`: K from the labels themselves, or from a declaration. K is inferred
  as `max + 1` only when every class in [0, K) occurs (a binary task may lack one side);
  otherwise the labels are refused, naming the unexpected value(s) and the first rows that
  hold them, because a stray value (a typo such as 7 among 0/1 labels) would silently turn
  a binary task into an 8-class one. A declared K (an npz `classes_<task>` entry, or
  `--num-classes TASK=K`) is used as given, with a warning naming the classes that never
  occur.
- `check_label_range`: labels against a known K, for the model and the metrics.
- `check_task_labels`: a dict of labels against a model's tasks (`MultiTaskModel.fit`).

>>> infer_num_classes("flood", np.array([0, 1, 1, -1]))
2
>>> infer_num_classes("level", np.array([0, 2, 1, 2]))
3
"""

import warnings

import numpy as np

MISSING = -1

# At most this many values / rows are listed in a message.
_SHOWN = 5


def _task_label(task):
    """A prefix for messages: "Task 'x': " or "" when there is no name."""
    return "" if task is None else f"Task {task!r}: "


def _first_non_integral(values):
    if not np.issubdtype(values.dtype, np.number):
        return values.flat[0] if values.size else None
    flat = values.ravel()
    bad = np.flatnonzero(~np.isfinite(flat) | (flat != np.round(flat)))
    return flat[bad[0]].item() if bad.size else None


def is_integral(values):
    """True if a numeric array holds only finite integral values."""
    values = np.asarray(values)
    if values.dtype == bool or np.issubdtype(values.dtype, np.integer):
        return True
    if not np.issubdtype(values.dtype, np.floating):
        return False
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def as_label_array(y, key):
    """Checks a raw `[N]` label array and returns it as int32.

    Args:
        y: the labels: integers (or bool, or integral floats), -1 = missing.
        key: what to call the array in messages (e.g. "`y_flood`").

    Raises:
        ValueError: naming `key`, for a wrong shape, a non-integral or non-numeric
            value, a label below -1 or one too large for int32.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{key} must be 1-D [N]. Received: shape={y.shape}")
    numeric = y.dtype == bool or (
        np.issubdtype(y.dtype, np.number) and not np.issubdtype(y.dtype, np.complexfloating)
    )
    if not numeric or not is_integral(y):
        raise ValueError(
            f"{key} must hold integer labels (0..K-1, -1 = missing). Received: "
            f"dtype={y.dtype} with non-integral values, e.g. {_first_non_integral(y)!r}"
        )
    y = y.astype(np.int64)
    if y.size and y.min() < MISSING:
        rows = np.flatnonzero(y < MISSING)[:_SHOWN].tolist()
        raise ValueError(
            f"{key} labels must be >= -1 (-1 = missing). Received: min={int(y.min())} "
            f"at row(s) {rows}"
        )
    if y.size and y.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{key} labels are too large. Received: max={int(y.max())}")
    return y.astype(np.int32)


def label_from_text(text, where):
    """One label read from text (a manifest cell): an integer >= -1; empty is -1 (missing).

    Args:
        text: the cell's text (None or blank: missing).
        where: names the cell in messages (e.g. "Label column 'flood', row 4").

    Raises:
        ValueError: naming `where` and the text, for a non-integral or non-numeric
            label, one too large for int32, or one below -1.

    >>> label_from_text(" 2 ", "x"), label_from_text("", "x"), label_from_text("1.0", "x")
    (2, -1, 1)
    """
    text = (text or "").strip()
    if not text:
        return MISSING
    try:
        number = float(text)
    except ValueError:
        number = None
    if (number is None or not np.isfinite(number) or number != round(number)
            or number > np.iinfo(np.int32).max):
        raise ValueError(
            f"{where}: labels must be integers (empty or -1 = missing). Received: {text!r}")
    if number < MISSING:
        raise ValueError(f"{where}: labels must be >= -1. Received: {int(number)}")
    return int(number)


def check_declared_num_classes(task, value, source):
    """A declared number of classes (an int >= 2, or a list of >= 2 class names).

    Returns:
        `(num_classes, class_names or None)`.
    """
    value = np.asarray(value)
    if value.ndim == 1 and value.dtype.kind in "US":
        names = tuple(str(v) for v in value.tolist())
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(
                f"{_task_label(task)}{source} must list at least 2 distinct class names. "
                f"Received: {list(names)}"
            )
        return len(names), names
    if (
        value.ndim != 0
        or value.dtype == bool
        or not np.issubdtype(value.dtype, np.number)
        or not is_integral(value)
        or int(value) < 2
    ):
        shown = value.tolist() if value.size <= _SHOWN else f"an array of shape {value.shape}"
        raise ValueError(
            f"{_task_label(task)}{source} must be an integer >= 2 (the number of classes) "
            f"or a 1-D array of class names. Received: {shown!r}"
        )
    return int(value), None


def infer_num_classes(task, y, declared=None, source=None, stacklevel=2):
    """The number of classes K of a task, from its labels or a declaration.

    Args:
        task: the task name, for messages.
        y: int `[N]` labels, -1 = missing (as returned by `as_label_array`).
        declared: `None`, or the declared K (already checked, an int >= 2).
        source: how K was declared, for messages (e.g. "`classes_flood` in the npz").

    Returns:
        K. Undeclared: 2 when every label is -1, 0 or 1; else `max + 1` when every
        class in [0, max] occurs. Declared: `declared`, with a `UserWarning` naming the
        classes that never occur among the labels.

    Raises:
        ValueError: undeclared labels with a gap (a class in [0, max] that never
            occurs), naming the unexpected values, the first rows holding them and how
            to declare the classes; or a label >= the declared K.
    """
    y = np.asarray(y)
    present = y[y != MISSING]
    counts = np.bincount(present.astype(np.int64)) if present.size else np.zeros(0, int)
    if declared is not None:
        too_large = np.flatnonzero(y >= declared)
        if too_large.size:
            values = np.unique(y[too_large])[:_SHOWN].tolist()
            raise ValueError(
                f"{_task_label(task)}labels must be in [0, {declared}) or -1 (missing) "
                f"with {declared} classes declared by {source}. Received: {values} at "
                f"row(s) {too_large[:_SHOWN].tolist()}"
            )
        absent = [c for c in range(declared) if c >= counts.size or counts[c] == 0]
        if absent and present.size:
            warnings.warn(
                f"{_task_label(task)}class(es) {absent[:20]} of the {declared} declared by "
                f"{source} never occur in the labels.",
                stacklevel=stacklevel,
            )
        return int(declared)
    if counts.size <= 2:
        return 2
    absent = np.flatnonzero(counts == 0)
    if absent.size == 0:
        return int(counts.size)
    limit = max(2, int(absent[0]))
    unexpected = np.flatnonzero(counts[limit:]) + limit
    rows = np.flatnonzero(y >= limit)
    kind = "binary task" if limit == 2 else f"{limit}-class task"
    raise ValueError(
        f"{_task_label(task)}the labels look like a {kind} ({list(range(limit))}, "
        f"-1 = missing) but also hold the value(s) "
        f"{unexpected[:_SHOWN].tolist()}, first at row(s) {rows[:_SHOWN].tolist()}; "
        f"class(es) {absent[:_SHOWN].tolist()} never occur, so the number of classes "
        f"cannot be inferred as max + 1 = {counts.size}. Fix the label(s), or declare the "
        f"classes: an npz entry `classes_{task}={counts.size}` (or the class names) or "
        f"`--num-classes {task}={counts.size}`."
    )


def check_label_range(y_true, num_classes, task=None, first_row=0):
    """Labels of a task with K = `num_classes`, checked: `[N]` (or `[N, 1]`) int64.

    Args:
        y_true: the labels, -1 = missing.
        num_classes: K.
        task: the task name, for messages.
        first_row: the number messages give the first label's row (a batch's offset
            in the file it was read from).

    Raises:
        ValueError: naming the task, for a wrong shape, a non-integral label, or a
            label outside [0, K) other than -1.
    """
    labels = np.asarray(y_true)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"{_task_label(task)}`y_true` must have shape [N] (or [N, 1]). "
            f"Received: y_true.shape={labels.shape}"
        )
    if labels.size > 0 and not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.number) or np.issubdtype(
            labels.dtype, np.complexfloating
        ):
            raise ValueError(
                f"{_task_label(task)}`y_true` must hold integer class labels. "
                f"Received: y_true.dtype={labels.dtype}"
            )
        not_integral = ~np.isfinite(labels) | (labels != np.round(labels))
        if np.any(not_integral):
            raise ValueError(
                f"{_task_label(task)}`y_true` must hold integer class labels. "
                f"Received: a label of {labels[not_integral][0]!r}"
            )
    labels = labels.astype(np.int64)
    out_of_range = (labels < MISSING) | (labels >= num_classes)
    if np.any(out_of_range):
        raise ValueError(
            f"{_task_label(task)}labels must be in [0, {num_classes}) or -1 "
            f"(missing) for num_classes={num_classes}. Received: labels "
            f"{np.unique(labels[out_of_range]).tolist()} at row(s) "
            f"{(np.flatnonzero(out_of_range)[:_SHOWN] + first_row).tolist()}"
        )
    return labels


def check_task_labels(y, tasks):
    """Checks a dict of numpy labels against the tasks: every task present, none
    other, values in range (`check_label_range`). Returns them as int32 `[N]`;
    anything not a dict (a `tf.data.Dataset`'s labels) is returned unchecked.

    >>> from hgfn_keras.specs import Task
    >>> check_task_labels({"a": [0, 1, -1]}, [Task("a", 2)])["a"].tolist()
    [0, 1, -1]
    """
    if not isinstance(y, dict):
        return y
    names = [t.name for t in tasks]
    missing = [n for n in names if n not in y]
    extra = [k for k in y if k not in names]
    if missing or extra:
        raise ValueError(
            f"The labels do not match the model's tasks {names}. Missing: {missing}; "
            f"unexpected: {extra}. Received keys: {sorted(y)}")
    return {t.name: check_label_range(y[t.name], t.num_classes, t.name).astype("int32")
            for t in tasks}


__all__ = [
    "MISSING",
    "as_label_array",
    "check_declared_num_classes",
    "check_label_range",
    "check_task_labels",
    "infer_num_classes",
    "is_integral",
    "label_from_text",
]
