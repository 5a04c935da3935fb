"""Class weights per task, and the per-row sample weights they stand for.

Keras' `fit(class_weight=...)` takes one `{class: weight}` for a single-output model
only; a multi-task model has one per task. `MultiTaskModel.fit` turns
`class_weight={"rating": {0: 3.0, ...}}` into per-task sample weights with
`class_weight_to_sample_weight`, so that a class weight and the row weights it
means are the same thing.
"""

import numpy as np


def balanced_class_weights(y: dict, tasks) -> dict:
    """`{task: {class: N / (K * n_c)}}`: scikit-learn's "balanced" weights, per task.

    `N` counts the task's labelled rows (label -1 = missing is left out), `K` its
    classes, `n_c` the rows of class c. A class with no row gets weight 1.0 (it
    weighs nothing anyway).

    Args:
        y: `{task name: int labels [N]}`.
        tasks: the `Task` specs.

    Returns:
        A dict for `MultiTaskModel.fit(class_weight=...)`.

    >>> from hgfn_keras.specs import Task
    >>> balanced_class_weights({"t": np.array([0, 0, 0, 1, -1])}, [Task("t", 2)])
    {'t': {0: 0.6666666666666666, 1: 2.0}}
    """
    weights = {}
    for task in tasks:
        labels = np.asarray(y[task.name]).reshape(-1)
        labels = labels[labels >= 0].astype("int64")
        counts = np.bincount(labels, minlength=task.num_classes)
        total = counts.sum()
        weights[task.name] = {
            c: float(total / (task.num_classes * n)) if n > 0 else 1.0
            for c, n in enumerate(counts)
        }
    return weights


def _describe_values(values, bad):
    """`"[nan, -1.0] at row(s) [3, 7]"`: the first few offending values and rows."""
    rows = np.flatnonzero(bad)
    found = values[bad][:5].tolist()
    return f"{found} at row(s) {rows[:10].tolist()}"


def check_sample_weight(sample_weight, task_names, num_rows: int):
    """Checks row weights for `fit`/`evaluate` on numpy labels.

    One NaN weight turns every model weight (and DMTL's task weights) into NaN, a
    negative one trains on a negative loss, and a wrong length failed deep in Keras
    with an `IndexError`: each is refused here, naming the task.

    Args:
        sample_weight: one array `[N]` (or `[N, 1]`) for every task, or a dict
            `{task: [N]}` (a task left out weighs 1); None passes.
        task_names: the model's task names.
        num_rows: N, the number of rows of the labels.

    Returns:
        The weights as float32 `[N]` arrays (a dict when a dict was given), or None.

    Raises:
        ValueError: naming the task (or "every task") and what was received, for a
            task the model does not have, a wrong length or shape, a value that is
            not a number, NaN or inf, or a negative weight.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, dict):
        unknown = sorted(set(sample_weight) - set(task_names), key=str)
        if unknown:
            raise ValueError(f"`sample_weight` names task(s) {unknown} the model does not have. "
                             f"Tasks: {list(task_names)}")
        # Every task gets its rows' weights (Keras maps the dict onto the labels' dict
        # and fails on a missing key): a task left out weighs 1, as in `class_weight`.
        return {name: _check_rows(f"`sample_weight[{name!r}]` (task {name!r})",
                                  sample_weight[name], num_rows)
                if name in sample_weight else np.ones(num_rows, "float32")
                for name in task_names}
    return _check_rows("`sample_weight` (every task's row weights)", sample_weight, num_rows)


def _check_rows(what, weights, num_rows):
    try:
        values = np.asarray(weights, dtype="float64")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must hold numbers. Received: {weights!r:.80}") from error
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != num_rows:
        raise ValueError(f"{what} must have shape [N] with N={num_rows}, one weight per row of "
                         f"the labels. Received: shape={values.shape}")
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{what} must be finite. Received: "
                         f"{_describe_values(values, ~finite)}")
    if (values < 0).any():
        raise ValueError(f"{what} must be >= 0 (0 leaves a row out). Received: "
                         f"{_describe_values(values, values < 0)}")
    return values.astype("float32")


def _class_index(task, c):
    """The class index that a `class_weight` key names (an index or a class name)."""
    names = list(task.class_names or ())
    if isinstance(c, str) and c in names:
        return names.index(c)
    if not isinstance(c, bool) and isinstance(c, (int, np.integer)) and 0 <= c < task.num_classes:
        return int(c)
    known = f"classes 0..{task.num_classes - 1}" + (f" or {names}" if names else "")
    raise ValueError(f"`class_weight[{task.name!r}]` names class {c!r}, which task {task.name!r} "
                     f"does not have ({known}).")


def class_weight_to_sample_weight(y: dict, class_weight: dict, sample_weight=None,
                                  tasks=None) -> dict:
    """Per-task row weights `{task: float32 [N]}` from per-task class weights.

    Args:
        y: `{task name: int labels [N]}`.
        class_weight: `{task name: {class: weight}}`; a task left out, or a class left
            out of its dict, weighs 1.
        sample_weight: optional row weights to multiply: one array `[N]` for every
            task, or a dict per task.
        tasks: the `Task` specs (optional): each class named must be one the task
            has, an index in [0, K) or one of its `class_names`.

    Returns:
        A dict `{task name: float32 [N]}` for every task of `y`.

    Raises:
        ValueError: for a task or a class that does not exist, or a weight that is
            negative or not finite.

    >>> class_weight_to_sample_weight({"t": np.array([0, 1, -1])}, {"t": {1: 3.0}})
    {'t': array([1., 3., 1.], dtype=float32)}
    """
    if not isinstance(y, dict):
        raise ValueError(
            "`class_weight` needs the labels as a dict of numpy arrays (`y=`); with "
            "a dataset, yield (x, y, sample_weight) instead (or `add_class_weights`). "
            f"Received: y of type {type(y).__name__}")
    if not isinstance(class_weight, dict) or not all(
            isinstance(v, dict) or v is None for v in class_weight.values()):
        raise ValueError(
            "`class_weight` must be a dict per task, e.g. {'rating': {0: 3.0, 1: 1.0}}. "
            f"Received: class_weight={class_weight!r}"
        )
    unknown = sorted(set(class_weight) - set(y))
    if unknown:
        raise ValueError(f"`class_weight` names task(s) {unknown} the labels do not have. "
                         f"Tasks: {sorted(y)}")
    specs = {task.name: task for task in tasks or ()}
    result = {}
    for name, labels in y.items():
        labels = np.asarray(labels).reshape(-1)
        weights = np.ones(labels.shape[0], "float32")
        for c, w in (class_weight.get(name) or {}).items():
            if not (isinstance(w, (int, float, np.number)) and np.isfinite(w) and w >= 0):
                raise ValueError(f"`class_weight[{name!r}][{c!r}]` must be a finite number "
                                 f">= 0. Received: {w!r}")
            index = _class_index(specs[name], c) if name in specs else int(c)
            weights[labels == index] = float(w)
        if sample_weight is not None:
            rows = sample_weight.get(name) if isinstance(sample_weight, dict) else sample_weight
            if rows is not None:
                weights = weights * np.asarray(rows, "float32").reshape(-1)
        result[name] = weights
    return result


def add_class_weights(dataset, class_weight, tasks):
    """A `tf.data.Dataset` of `(x, y)` batches as `(x, y, {task: row weights})`: the
    streamed form of `class_weight_to_sample_weight`, each row's weight looked up from
    its label (a missing label's weight does not matter: it adds no loss).

    Args:
        dataset: batches `(x, y)`, `y` a dict `{task name: int labels}`.
        class_weight: `{task name: {class index: weight}}`, as `balanced_class_weights`
            returns (a class left out weighs 1).
        tasks: the `Task` specs.
    """
    import tensorflow as tf

    tables = {t.name: tf.constant([class_weight[t.name].get(c, 1.0)
                                   for c in range(t.num_classes)], tf.float32)
              for t in tasks}

    def add(x, y):
        weights = {name: tf.gather(table, tf.maximum(tf.cast(y[name], tf.int32), 0))
                   for name, table in tables.items()}
        return x, y, weights

    return dataset.map(add, num_parallel_calls=tf.data.AUTOTUNE)
