"""The Callback that drives the epoch-level part of a task weighting."""

import keras
import numpy as np


class TaskRebalancing(keras.callbacks.Callback):
    """Calls the model's task weighting at each epoch's start and end.

    For DMTL that resets the per-epoch loss sums and re-balances: the next epoch
    starts from w_f = T · s_f / Σ_g s_g with s_f = max_g ā_g / ā_f, ā_f the
    epoch's mean unweighted training loss of task f divided by its chance loss
    (log K for β = 0): the weights are reset, not
    multiplied (see `DynamicTaskBalancing` and docs/DESIGN.md, "DMTL (paper
    III-C)", "Re-balancing"). It also keeps the
    task weights at the end of every epoch in `history` (a list of
    `(epoch, weights)`, the weights the next epoch starts from) and, in
    `records`, per epoch the mean unweighted loss of each task that the
    re-balancing read (training losses, or validation losses with DMTL's
    `rebalance_on="validation"`; and
    the chance losses the re-balancing divides them by, 1 when it does not) and the
    weights before (`"tdb"`: after the epoch's TDB steps) and after
    (`"rebalanced"`) the re-balancing, which the training CLI writes to
    `task_weights.csv`. `MultiTaskModel.fit` adds one when none is given.
    """

    #: The attributes a resumed run must get back (`hgfn_keras.recipe.resume_state`).
    backup_state = ("history", "records")

    def restored(self):
        """Called after a resume set `backup_state`: JSON gave lists for the pairs."""
        self.history = [tuple(item) for item in self.history]

    def on_train_begin(self, logs=None):
        self.history = []
        self.records = []
        if not hasattr(self.model, "task_weighting"):
            raise ValueError(
                "TaskRebalancing needs a MultiTaskModel (a model with a `task_weighting`). "
                f"Received: {type(self.model).__name__}"
            )

    def on_epoch_begin(self, epoch, logs=None):
        self.model.task_weighting.start_epoch()

    def on_epoch_end(self, epoch, logs=None):
        weighting = self.model.task_weighting
        validation = self.validation_losses(logs)
        losses = np.asarray(
            keras.ops.convert_to_numpy(weighting.rebalancing_losses(validation)), "float64")
        before = np.asarray(keras.ops.convert_to_numpy(weighting.task_weights), "float64")
        weights = np.asarray(weighting.end_epoch(validation_losses=validation), "float64")
        self.history.append((epoch, weights.tolist()))
        chance = np.asarray(weighting.loss_references(), "float64")
        self.records.append({"epoch": epoch, "losses": losses.tolist(),
                             "chance_losses": chance.tolist(),
                             "tdb": before.tolist(), "rebalanced": weights.tolist()})
        if logs is not None:
            for name, value in zip(self.model.loss_names, weights):
                logs[f"{name}_weight"] = float(value)

    def validation_losses(self, logs):
        """Each task's validation loss `[T]` from the epoch's logs (`val_<task>_loss`),
        or None when the epoch had no validation data."""
        keys = [f"val_{name}_loss" for name in self.model.loss_names]
        if not logs or not all(k in logs for k in keys):
            return None
        return np.asarray([float(logs[k]) for k in keys], "float64")


def with_task_rebalancing(callbacks):
    """`callbacks` (a list, or None) with a `TaskRebalancing` first unless one is there
    already, and that callback: the one place that adds it, for `MultiTaskModel.fit`
    and `recipe.fit`.

    >>> callbacks, rebalancing = with_task_rebalancing(None)
    >>> callbacks == [rebalancing], isinstance(rebalancing, TaskRebalancing)
    (True, True)
    """
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if isinstance(callback, TaskRebalancing):
            return callbacks, callback
    rebalancing = TaskRebalancing()
    return [rebalancing, *callbacks], rebalancing
