"""How task losses are weighed: the interface, and equal weights (LSEW)."""

import keras
import numpy as np
from keras import ops

from hgfn_keras.utils.distribute import STATE_AGGREGATION


@keras.saving.register_keras_serializable(package="hgfn_keras")
class TaskWeighting(keras.layers.Layer):
    """Holds the task weights w_f of the training loss Σ_f w_f L_f.

    A `MultiTaskModel` owns one. The weights are a non-trainable variable, so
    they are saved with the model and its checkpoints and the main optimizer
    never updates them. This base class keeps them at 1: a linear sum of the
    task losses with equal weights (LSEW, the paper's baseline). Subclasses
    (`DynamicTaskBalancing`, `GradNorm`, `MinNormWeighting`,
    `UncertaintyWeighting`, `DynamicWeightAverage`) update them after each step
    (`update`), inside the step's backward pass (`compute_gradients`, the hook
    of the model's `train_step`) or at each epoch's end (`end_epoch`). Every
    weighting keeps the running sums of the epoch's task losses. Its state is
    created in `build((T,))`, which the model calls.

    Args:
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    #: Whether the train step's forward pass must also return the fused
    #: representation Z (`compute_gradients` then gets it as `fused`; MGDA-UB).
    needs_fused_representation = False

    def __init__(self, **kwargs):
        # The weights and the weighted sum stay float32 under a mixed precision policy.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.num_tasks = None

    def build(self, input_shape):
        """Creates the state for `input_shape = (T,)` tasks (the model calls it).

        Subclasses that need more state override `build` and call `super().build`.
        """
        self.num_tasks = int(input_shape[0])
        # Updated in replica context from values reduced across replicas: every
        # replica holds the first one's value (hgfn_keras/utils/distribute.py).
        self.task_weights = self.add_weight(
            shape=(self.num_tasks,), initializer="ones", trainable=False, name="task_weights",
            aggregation=STATE_AGGREGATION,
        )
        zeros = dict(shape=(self.num_tasks,), initializer="zeros", trainable=False,
                     aggregation=STATE_AGGREGATION)
        self.epoch_loss_sums = self.add_weight(name="epoch_loss_sums", **zeros)
        self.epoch_steps = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           name="epoch_steps", aggregation=STATE_AGGREGATION)

    @property
    def persistent_tape(self):
        """Whether `compute_gradients` takes more than one gradient from the tape."""
        return False

    def check_model(self, model):
        """Raises a clear error when `model` lacks a handle this task weighting needs.

        Called when the `MultiTaskModel` is built. The base needs none.
        """

    def compute_gradients(self, tape, objective, task_losses, variables, model, fused=None):
        """The step's gradients, from the tape of its forward pass.

        The base does one ordinary backward pass of the (replica- and
        loss-scaled) objective Σ_f w_f L_f. Task weightings that need more (per-task
        gradient norms, Jacobians) override it.

        Args:
            tape: the `tf.GradientTape` that recorded the forward pass and the
                losses (persistent when `persistent_tape`).
            objective: the scaled scalar the optimizer's gradients come from.
            task_losses: the step's task losses `[T]` (sample weights applied).
            variables: the trainable variables to differentiate.
            model: the `MultiTaskModel` (its handles, `scale_loss`, `unscale`).
            fused: the fused representation Z, when `needs_fused_representation`.

        Returns:
            `(gradients, total, gradient_norms)`: the gradients to apply (one per
            variable), the weighted total loss to log (None: the model's), and
            what `update` needs besides the task losses (None here).
        """
        return tape.gradient(objective, variables), None, None

    def update(self, task_losses, gradient_norms=None):
        """Called after every training step with the step's task losses `[T]`
        and the `gradient_norms` that `compute_gradients` returned.
        Subclasses that override it call `super().update(...)`."""
        self.epoch_loss_sums.assign_add(ops.stop_gradient(ops.cast(task_losses, "float32")))
        self.epoch_steps.assign_add(1.0)

    def epoch_mean_losses(self):
        """The mean training loss of each task over the epoch so far, `[T]`."""
        return self.epoch_loss_sums / ops.maximum(self.epoch_steps, 1.0)

    def rebalancing_losses(self, validation_losses=None):
        """The per-task losses `[T]` an epoch-end re-balancing reads: the epoch's
        mean training losses (DMTL may read `validation_losses` instead)."""
        return self.epoch_mean_losses()

    def start_epoch(self):
        """Called at each epoch's start: resets the epoch's loss sums."""
        self.epoch_loss_sums.assign(ops.zeros_like(self.epoch_loss_sums))
        self.epoch_steps.assign(0.0)

    def end_epoch(self, validation_losses=None):
        """Called at each epoch's end (with each task's validation loss, `[T]`,
        when there was validation data); returns the weights as a numpy array."""
        return np.asarray(ops.convert_to_numpy(self.task_weights))

    def set_task_counts(self, num_samples, positives, task_names=None):
        """Task weightings that use N / n_f take the counts here; others ignore them."""

    def set_chance_losses(self, losses):
        """Task weightings that compare the tasks' losses with each other take each
        task's chance loss here (`task_loss.chance_loss`, the loss of a uniform
        prediction; the model calls it); others ignore it."""

    def loss_references(self):
        """What the epoch's mean losses are divided by before they are compared,
        `[T]` (numpy): ones, unless the task weighting compares chance-normalised losses."""
        return np.ones((self.num_tasks,), "float32")

    def call(self, task_losses):
        """The weighted total loss Σ_f w_f L_f of a `[T]` vector of losses."""
        return ops.sum(ops.cast(self.task_weights, task_losses.dtype) * task_losses)


def task_counts(tasks, labels, sample_weight=None):
    """N and n_f of DMTL's inverted task sample distribution ratio N / n_f.

    N is the number of training rows. n_f is the count of the task's rarest
    class: for a binary task the smaller of its positive and negative counts (the
    paper's "positive samples", which are the rare side in its data), for a
    K-class task its rarest class; missing labels (-1) count for nothing. A
    one-vs-rest task (`Task(..., one_vs_rest=True)`) has one n_f per concept k,
    the smaller of its positives (rows of class k) and negatives (the other
    labelled rows): the list holds one count per weighted loss, in the order of
    the tasks' `concepts`.

    With `sample_weight` (one array `[N]` for every task, or a dict per task), a
    row counts as its weight, so that a row of weight 2 counts as that row twice
    and a row of weight 0 not at all: n_f sums the task's own row weights, and N
    sums each row's mean weight over the tasks (the sum of the weights when every
    task has the same ones).

    >>> from hgfn_keras.specs import Task
    >>> task_counts([Task("a", 2), Task("b", 3)],
    ...             {"a": np.array([1, 0, 1, 1, -1]), "b": np.array([0, 0, 1, 2, 2])})
    (5, [1, 1])
    >>> task_counts([Task("a", 2)], {"a": np.array([1, 0, 0])},
    ...             sample_weight=np.array([2.0, 1.0, 0.0]))
    (3.0, [1.0])
    >>> task_counts([Task("b", 3, one_vs_rest=True)], {"b": np.array([0, 0, 1, 2, 2, -1])})
    (6, [2, 1, 2])
    """
    if sample_weight is None:
        positives = []
        num_samples = None
        for task in tasks:
            y = np.asarray(labels[task.name]).reshape(-1)
            num_samples = len(y) if num_samples is None else num_samples
            counts = np.bincount(y[y >= 0].astype("int64"), minlength=task.num_classes)
            positives += [int(n) for n in _rarest_counts(task, counts)]
        return int(num_samples or 0), positives
    positives, row_weights = [], []
    for task in tasks:
        y = np.asarray(labels[task.name]).reshape(-1)
        w = sample_weight.get(task.name) if isinstance(sample_weight, dict) else sample_weight
        w = np.ones(len(y)) if w is None else np.asarray(w, "float64").reshape(-1)
        row_weights.append(w)
        present = y >= 0
        counts = np.bincount(y[present].astype("int64"), weights=w[present],
                             minlength=task.num_classes)
        positives += [float(n) for n in _rarest_counts(task, counts)]
    num_samples = float(np.mean(row_weights, axis=0).sum()) if row_weights else 0.0
    return num_samples, positives


def _rarest_counts(task, counts):
    """n_f of each of the task's weighted losses from its class counts: the rarest
    class, or per concept of a one-vs-rest task min(positives, negatives)."""
    if not getattr(task, "one_vs_rest", False):
        return [counts.min()]
    return [min(n, counts.sum() - n) for n in counts]


def warn_degenerate_tasks(tasks, labels):
    """Warns, naming the task, about training labels that cannot teach it much.

    A task whose labels are all missing, a binary task without a positive or
    without a negative label, a multi-class task with a class that never occurs.
    Training still runs: a task without labels adds no loss, and DMTL's n_f
    counts an absent class as 1. Returns the list of messages.
    """
    import warnings

    messages = []
    for task in tasks:
        y = np.asarray(labels[task.name]).reshape(-1)
        y = y[y >= 0].astype("int64")
        if y.size == 0:
            messages.append(f"Task {task.name!r} has no training label (all are -1): it "
                            "adds no loss and learns nothing.")
            continue
        counts = np.bincount(y, minlength=task.num_classes)
        if task.is_binary and (counts[1] == 0 or counts[0] == 0):
            missing = "positive" if counts[1] == 0 else "negative"
            messages.append(f"Task {task.name!r} has no {missing} training label "
                            f"({int(counts.sum())} labels, all {1 - int(counts[1] == 0)}).")
        elif not task.is_binary and np.any(counts == 0):
            absent = [task.class_names[c] if task.class_names else c
                      for c in np.flatnonzero(counts == 0).tolist()]
            messages.append(f"Task {task.name!r}: class(es) {absent} never occur in the "
                            "training labels.")
    for message in messages:
        warnings.warn(message, stacklevel=3)
    return messages
