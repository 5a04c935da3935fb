"""`ValidationMetrics`: the project's metrics on the validation split, in the epoch logs."""

import math
import warnings

import keras
import numpy as np

from hgfn_keras.evaluation.metrics import METRIC_NAMES, multitask_metrics
from hgfn_keras.utils.arguments import positive_int


class ValidationMetrics(keras.callbacks.Callback):
    """Adds F1, Hamming loss, MAP and accuracy on the validation data to the logs.

    At each epoch's end it predicts the validation inputs, computes
    `hgfn_keras.evaluation.metrics.multitask_metrics` and writes `val_mean_<metric>` (the
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

    #: The attribute a resumed run must get back (`hgfn_keras.recipe.resume_state`).
    backup_state = ("history",)

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
