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


def class_weight_to_sample_weight(y: dict, class_weight: dict, sample_weight=None) -> dict:
    """Per-task row weights `{task: float32 [N]}` from per-task class weights.

    Args:
        y: `{task name: int labels [N]}`.
        class_weight: `{task name: {class: weight}}`; a task left out, or a class left
            out of its dict, weighs 1.
        sample_weight: optional row weights to multiply: one array `[N]` for every
            task, or a dict per task.

    Returns:
        A dict `{task name: float32 [N]}` for every task of `y`.

    Raises:
        ValueError: for a task or a class that does not exist, or a negative weight.

    >>> class_weight_to_sample_weight({"t": np.array([0, 1, -1])}, {"t": {1: 3.0}})
    {'t': array([1., 3., 1.], dtype=float32)}
    """
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
    result = {}
    for name, labels in y.items():
        labels = np.asarray(labels).reshape(-1)
        weights = np.ones(labels.shape[0], "float32")
        for c, w in (class_weight.get(name) or {}).items():
            if not float(w) >= 0:
                raise ValueError(f"`class_weight[{name!r}][{c!r}]` must be >= 0. Received: {w!r}")
            weights[labels == int(c)] = float(w)
        if sample_weight is not None:
            rows = sample_weight.get(name) if isinstance(sample_weight, dict) else sample_weight
            if rows is not None:
                weights = weights * np.asarray(rows, "float32").reshape(-1)
        result[name] = weights
    return result
