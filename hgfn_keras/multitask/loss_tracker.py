"""A loss tracker whose evaluation value does not depend on the batch size."""

import keras
from keras import ops

from hgfn_keras.utils.arguments import positive_int


class TaskLossTracker(keras.metrics.Metric):
    """Tracks one task's loss (or the sum of several) over an epoch or an evaluation.

    Training updates it once per batch with the batch's loss (`update_state(value)`):
    its result is the mean over batches, as `keras.metrics.Mean` (the objective the
    optimizer saw). Evaluation updates it with the sum of the per-row losses over the
    rows that have a label and their count (`update_state(sums=..., counts=...)`, one
    entry per task): its result is, per task, the sum over every labelled row of the
    evaluation divided by their count, added over the tracked tasks. A task's loss over
    missing labels then does not depend on how the rows are batched (a mean of batch
    means would weigh a batch with 2 labels like one with 16).

    Keras resets metrics at the start of every epoch and of every evaluation, so the
    two kinds of update never mix.

    Args:
        num_tasks: how many task losses are tracked (1 for one task; T for the total).
        name: the metric's name (the log key).
    """

    def __init__(self, num_tasks=1, name="loss", **kwargs):
        super().__init__(name=name, **kwargs)
        num_tasks = self.num_tasks = positive_int("num_tasks", num_tasks)
        self.batch_total = self.add_variable(shape=(), initializer="zeros", name="batch_total",
                                             aggregation="sum")
        self.batches = self.add_variable(shape=(), initializer="zeros", name="batches",
                                         aggregation="sum")
        self.sums = self.add_variable(shape=(num_tasks,), initializer="zeros", name="sums",
                                      aggregation="sum")
        self.counts = self.add_variable(shape=(num_tasks,), initializer="zeros", name="counts",
                                        aggregation="sum")

    def update_state(self, value=None, sums=None, counts=None):
        if value is not None:
            self.batch_total.assign_add(ops.cast(value, self.dtype))
            self.batches.assign_add(ops.cast(1, self.dtype))
        if sums is not None:
            self.sums.assign_add(ops.reshape(ops.cast(sums, self.dtype), (self.num_tasks,)))
            self.counts.assign_add(ops.reshape(ops.cast(counts, self.dtype), (self.num_tasks,)))

    def result(self):
        per_task = ops.where(self.counts > 0, self.sums / ops.maximum(self.counts, 1e-12), 0.0)
        by_rows = ops.sum(per_task)
        by_batches = self.batch_total / ops.maximum(self.batches, 1.0)
        return ops.where(ops.sum(self.counts) > 0, by_rows, by_batches)

    def reset_state(self):
        for variable in self.variables:
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks}
