"""`ValidationMetrics`: the project's metrics on the validation split, in the epoch logs."""

import math
import os
import warnings

import keras
import numpy as np

from hgfn_keras.arguments import positive_int
from hgfn_keras.metrics import METRIC_NAMES, multitask_metrics


class ValidationMetrics(keras.callbacks.Callback):
    """Adds F1, Hamming loss, MAP and accuracy on the validation data to the logs.

    At each epoch's end it predicts the validation inputs, computes
    `hgfn_keras.metrics.multitask_metrics` and writes `val_mean_<metric>` (the
    mean over the tasks) and `val_<task>_<metric>` into the epoch's logs, so
    that `EarlyStopping(monitor="val_mean_f1", mode="max")`, `History`, and a
    KerasTuner objective `keras_tuner.Objective("val_mean_f1", "max")` see them.
    Put it before the callbacks that read these keys: Keras calls callbacks in
    list order with one logs dict.

    A metric that is undefined on the validation split (e.g. MAP of a binary
    task with no positive label) is NaN and its warning is not repeated each
    epoch; a mean F1 that is NaN (no task has a label in the validation split)
    is an error.

    Args:
        x: the validation inputs: a dict `{modality name: array}` (with or
            without `modality_mask`), or a `tf.data.Dataset` of inputs only.
        y: the validation labels, a dict `{task name: int array [N]}` (-1 =
            missing).
        tasks: the `Task` list (anything with `name` and `num_classes`).
        batch_size: the prediction batch size (ignored for a dataset).
        per_task: also log each task's metrics.

    >>> import numpy as np
    >>> from hgfn_keras import Modality, Task, build_model
    >>> model = build_model([Modality("a", width=2), Modality("b", width=2)],
    ...                     [Task("t", 2)], head_units=2, mtl="lsew")
    >>> model.compile(optimizer="adam")
    >>> x = {"a": np.ones((4, 2), "float32"), "b": np.ones((4, 2), "float32")}
    >>> y = {"t": np.array([0, 1, 0, 1])}
    >>> history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0,
    ...                     callbacks=[ValidationMetrics(x, y, model.tasks)])
    >>> 0.0 <= history.history["val_mean_f1"][0] <= 1.0
    True
    """

    def __init__(self, x, y, tasks, batch_size=512, per_task=False):
        super().__init__()
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError("`tasks` must list at least one task. Received: tasks=[]")
        if not isinstance(y, dict):
            raise ValueError(
                "`y` must be a dict {task name: labels}. Received: "
                f"{type(y).__name__}"
            )
        missing = [t.name for t in self.tasks if t.name not in y]
        if missing:
            raise ValueError(
                f"`y` lacks the labels of task(s) {missing}. Received keys: {sorted(y)}"
            )
        batch_size = positive_int("batch_size", batch_size)
        self.x = x
        self.y = {t.name: np.asarray(y[t.name]) for t in self.tasks}
        self.batch_size = batch_size
        self.per_task = bool(per_task)
        self.history = []

    def on_train_begin(self, logs=None):
        self.history = []

    def compute(self):
        """The `multitask_metrics` of the current model on the validation data.

        Returns:
            The dict `multitask_metrics` returns.
        """
        predict_kwargs = {"verbose": 0}
        if isinstance(self.x, dict):
            predict_kwargs["batch_size"] = self.batch_size
        probabilities = self.model.predict(self.x, **predict_kwargs)
        with warnings.catch_warnings():
            # NaN metrics are reported in the logs; one warning per epoch is noise.
            warnings.simplefilter("ignore")
            return multitask_metrics(self.tasks, self.y, probabilities)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        results = self.compute()
        if math.isnan(results["mean"]["f1"]):
            raise ValueError(
                "val_mean_f1 is NaN: no task has a label in the validation data. "
                f"Received label counts: { {n: int(np.sum(v != -1)) for n, v in self.y.items()} }"
            )
        for metric in METRIC_NAMES:
            logs[f"val_mean_{metric}"] = results["mean"][metric]
            for name, values in results["tasks"].items() if self.per_task else ():
                logs[f"val_{name}_{metric}"] = values[metric]
        self.history.append(results)


__all__ = ["ValidationMetrics"]


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backup survives a kill at any moment,
    and that keeps the callbacks' state with the weights.

    Keras writes `latest.weights.h5` in place and then the epoch in
    `training_metadata.json`: a SIGKILL during the first write leaves a truncated
    HDF5 file that the next run cannot open (`OSError: Unable to synchronously open
    file (truncated file ...)`), and one between the two writes pairs the weights of
    epoch e + 1 with the epoch number e. Here the weights go to a temporary file
    renamed to a name that holds the epoch, and then the metadata, written
    atomically, names that file: the metadata always describes a complete backup,
    and a run killed at any point resumes from the last one.

    With `keep`, each backup also holds the state of those callbacks (early
    stopping's best value, wait, best epoch and best weights; the history; the
    task-weight records; see `hgfn_keras.resume_state`) and the model's random
    states, in a file of the same epoch that the metadata names too: a resumed run
    continues the histories and stops, and restores its best weights, where the
    unbroken run does. A backup taken after the run was told to stop (early
    stopping, `TerminateOnNaN`) trains no further epoch when resumed.

    Put it **last** in the callback list (after the callbacks in `keep`): Keras
    calls callbacks in list order, so at each epoch's end it then saves their state
    after they have updated it, and at the start of training restores it after
    their `on_train_begin` has reset it.

    Args:
        backup_dir, save_freq, delete_checkpoint: as `keras.callbacks.BackupAndRestore`
            (`double_checkpoint` is not needed, and not supported).
        keep: the callbacks whose state the backup keeps (others of the list, of
            classes that keep no state across epochs, are skipped).
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, keep=()):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.keep = list(keep)

    def _save_model(self):
        from hgfn_keras import resume_state
        from hgfn_keras.io_utils import atomic_write_json

        os.makedirs(self.backup_dir, exist_ok=True)
        stem = f"epoch{self._current_epoch}-batch{self._last_batch_seen}"
        name, state = f"{stem}.weights.h5", f"{stem}.state.npz"
        partial = os.path.join(self.backup_dir, ".partial.weights.h5")
        self.model.save_weights(filepath=partial, overwrite=True)
        os.replace(partial, os.path.join(self.backup_dir, name))
        partial = os.path.join(self.backup_dir, ".partial.state.npz")
        resume_state.snapshot(partial, self.model, self.keep,
                              stopped=bool(self.model.stop_training))
        os.replace(partial, os.path.join(self.backup_dir, state))
        atomic_write_json(self._training_metadata_path, {
            "epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name,
            "state": state})
        for other in os.listdir(self.backup_dir):
            if other.endswith((".weights.h5", ".state.npz")) and other not in (name, state):
                os.remove(os.path.join(self.backup_dir, other))

    def _load_model(self):
        import json

        from hgfn_keras import resume_state

        if not os.path.exists(self._training_metadata_path):
            return  # no complete backup: start from the beginning
        with open(self._training_metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        self.model._initial_epoch = metadata["epoch"]
        if "state" in metadata:  # a backup written before states were kept has none
            stopped = resume_state.restore(os.path.join(self.backup_dir, metadata["state"]),
                                           self.model, self.keep)
            if stopped:  # the unbroken run stopped here: no further epoch
                self.model._initial_epoch = max(metadata["epoch"], self.params["epochs"])
