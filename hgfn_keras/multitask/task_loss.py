"""One task's loss on a batch: focal loss (eq. 10), missing labels left out."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def task_loss(task, y_true, y_pred, beta=0.0, sample_weight=None, concept=None):
    """Mean focal loss of one task over the batch rows whose label is not -1.

    `task_loss_terms`' sum divided by its count (0 when the count is 0).

    L_s = −(1 − p_d)^β log p_d (eq. 10); β = 0 is plain cross-entropy. Keras'
    `BinaryFocalCrossentropy(gamma=β, apply_class_balancing=False)` and
    `CategoricalFocalCrossentropy(alpha=1.0, gamma=β)` compute exactly this, so
    they are used rather than written again (docs/DESIGN.md, "Sample level: the
    focal loss (eq. 10)").

    Args:
        task: a `hgfn_keras.Task`.
        y_true: int labels `[batch]` (or `[batch, 1]`), -1 = missing.
        y_pred: the task head's probabilities: `[batch, 1]` (binary) or
            `[batch, K]`.
        beta: the focusing parameter β ≥ 0.
        sample_weight: optional per-row weights `[batch]`.
        concept: for a one-vs-rest task, the class k whose binary concept
            ("class k or not") this loss is: `y_pred` is then that concept's
            sigmoid `[batch, 1]`, and its 0/1 label is `y_true == k` (a
            missing label, -1, stays missing). None: the task's own loss.

    Returns:
        A scalar: the (weighted) mean over rows with a label, 0 when the batch
        has none (or their weights sum to 0).

    Example:

    >>> import numpy as np
    >>> from hgfn_keras.specs import Task
    >>> rating = Task("rating", 3, one_vs_rest=True)
    >>> y = np.array([2, 0, -1])
    >>> p = np.array([[0.5], [0.5], [0.9]])  # concept 2's sigmoid
    >>> round(float(task_loss(rating, y, p, concept=2)), 4)  # −log 0.5, row 3 left out
    0.6931
    """
    total, count = task_loss_terms(task, y_true, y_pred, beta, sample_weight, concept)
    return total / ops.where(count > 0, count, 1.0)


def chance_loss(num_classes, beta=0.0):
    """The loss of a uniform prediction: (1 − 1/K)^β · log K (log 2 for a binary
    task with β = 0).

    The loss a task starts near and that a model which has learnt nothing keeps:
    DMTL's re-balancing divides each task's mean loss by it, so that a 6-class
    cross-entropy is not taken for a hard task only because it is structurally
    larger than a binary one (docs/DESIGN.md, "Re-balancing").

    A one-vs-rest task's concepts are binary (K = 2).

    >>> round(chance_loss(2), 4), round(chance_loss(6), 4), round(chance_loss(2, beta=2.0), 4)
    (0.6931, 1.7918, 0.1733)
    """
    k = num_classes
    return float((1.0 - 1.0 / k) ** beta * np.log(k))


def task_loss_terms(task, y_true, y_pred, beta=0.0, sample_weight=None, concept=None):
    """The sum of one task's per-row focal losses over the rows with a label, and
    their count (the sum of their weights with `sample_weight`).

    Kept apart so that an evaluation can add them over every batch and divide
    once: the loss over missing labels then does not depend on the batch size
    (a mean of batch means would weigh a batch with 2 labels like one with 16).

    Args: as `task_loss`.

    Returns:
        `(sum, count)`, two float32 scalars.
    """
    # Keras' focal losses clip p inside the log but not inside (1 − p_d)^β, whose
    # gradient is 0 · 0^(−1) = NaN once a sigmoid or softmax saturates to exactly
    # 1.0 in float32. Clipping here, to the same epsilon, keeps the value equal to
    # eq. 10 wherever p is not saturated and the gradient finite where it is.
    epsilon = keras.config.epsilon()
    # float32 under mixed precision too: 1 - 1e-7 is 1.0 in float16 and the log
    # of a float16 probability loses digits; the loss is float32.
    y_pred = ops.clip(ops.cast(y_pred, "float32"), epsilon, 1.0 - epsilon)
    y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    # Labels that arrive through tf.data escape the numpy checks of `fit`: check
    # them here too, or a label of 7 for a 3-class task would add 0 loss silently.
    tf.debugging.assert_greater_equal(
        y_true, -1, message=f"Task {task.name!r}: labels must be >= -1 (-1 = missing)")
    tf.debugging.assert_less(
        y_true, task.num_classes,
        message=f"Task {task.name!r}: labels must be < num_classes={task.num_classes}")
    valid = ops.cast(y_true >= 0, y_pred.dtype)
    labels = ops.maximum(y_true, 0)
    if concept is not None:
        if not 0 <= concept < task.num_classes:
            raise ValueError(f"Task {task.name!r}: `concept` must be a class in "
                             f"[0, {task.num_classes}). Received: concept={concept!r}")
        labels = ops.cast(ops.equal(labels, concept), "int32")  # class k or not
    if task.is_binary or concept is not None:
        loss_fn = keras.losses.BinaryFocalCrossentropy(
            gamma=beta, apply_class_balancing=False, reduction=None
        )
        per_row = loss_fn(ops.cast(ops.expand_dims(labels, -1), y_pred.dtype), y_pred)
    else:
        loss_fn = keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=beta, reduction=None)
        per_row = loss_fn(ops.one_hot(labels, task.num_classes, dtype=y_pred.dtype), y_pred)
    per_row = ops.reshape(per_row, (-1,))
    weights = valid if sample_weight is None else (
        valid * ops.reshape(ops.cast(sample_weight, y_pred.dtype), (-1,)))
    return ops.sum(per_row * weights), ops.sum(weights)
