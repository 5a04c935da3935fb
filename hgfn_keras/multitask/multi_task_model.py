"""A Keras model with one head per task and a custom train step."""

import keras
import numpy as np
import tensorflow as tf

from hgfn_keras.data.dataset import MASK_KEY
from hgfn_keras.multitask.task_loss import task_loss
from hgfn_keras.specs import Task


@keras.saving.register_keras_serializable(package="hgfn_keras")
class MultiTaskModel(keras.Model):
    """Wraps a network with one output per task and trains it on the task losses.

    The training loss is Σ_f w_f L_f, where L_f is task f's focal loss
    (`task_loss`, missing labels left out) and w_f its weight. The weights live
    in a non-trainable variable, `task_weights`, which the main optimizer never
    touches; here they stay at 1 (LSEW, a linear sum with equal weights).
    `train_step` and `test_step` share `compute_losses`, so they cannot drift
    apart. Every step logs the total loss and each task's loss.

    Args:
        network: a Keras model mapping the modality inputs to a dict
            `{task name: probabilities}` (see `hgfn_keras.build_model`).
        tasks: the `Task` list (or their configs).
        beta: the focal loss' β (0: cross-entropy).
        **kwargs: standard `keras.Model` arguments.

    Labels are a dict `{task name: int [batch]}` with -1 for a missing label.
    The modality inputs are a dict `{modality name: ...}`; when the network
    takes a `modality_mask` and the dict has none, every modality is taken as
    present.
    """

    def __init__(self, network, tasks, beta=0.0, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.tasks = [t if isinstance(t, Task) else Task.from_config(t) for t in tasks]
        if not self.tasks:
            raise ValueError("`tasks` is empty: a multi-task model needs at least one task.")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta < 0:
            raise ValueError(f"`beta` must be a number >= 0. Received: beta={beta!r}")
        self.beta = float(beta)
        self.task_weights = self.add_weight(
            shape=(len(self.tasks),), initializer="ones", trainable=False, name="task_weights"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.task_loss_trackers = [keras.metrics.Mean(name=f"{t.name}_loss") for t in self.tasks]

    @property
    def task_names(self):
        return [t.name for t in self.tasks]

    @property
    def metrics(self):
        return [self.loss_tracker, *self.task_loss_trackers]

    @property
    def input_names(self):
        """The network's input names, in order: the modalities, then the mask."""
        return [t.name for t in self.network.inputs]

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            if MASK_KEY in self.input_names and MASK_KEY not in inputs:
                # No mask given: every modality is present.
                first = inputs[next(n for n in self.input_names if n in inputs)]
                width = self.network.inputs[self.input_names.index(MASK_KEY)].shape[-1]
                inputs = dict(inputs, **{MASK_KEY: tf.ones((tf.shape(first)[0], width))})
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(
                    f"Missing model input(s) {missing}. Expected: {self.input_names}; "
                    f"received: {sorted(inputs)}"
                )
            inputs = [inputs[n] for n in self.input_names]
        return self.network(inputs, training=training)

    def compute_losses(self, y, y_pred):
        """The weighted total loss and the list of per-task losses."""
        task_losses = [task_loss(t, y[t.name], y_pred[t.name], self.beta) for t in self.tasks]
        stacked = tf.stack(task_losses)
        total = tf.reduce_sum(tf.cast(self.task_weights, stacked.dtype) * stacked)
        return total, task_losses

    def _update_trackers(self, total, task_losses):
        self.loss_tracker.update_state(total)
        for tracker, value in zip(self.task_loss_trackers, task_losses):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            total, task_losses = self.compute_losses(y, y_pred)
            objective = total + tf.add_n(self.losses) if self.losses else total
        gradients = tape.gradient(objective, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_trackers(total, task_losses)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        total, task_losses = self.compute_losses(y, y_pred)
        return self._update_trackers(total, task_losses)

    # -- friendly checks on numpy inputs ----------------------------------------
    def prepare_inputs(self, x):
        """Checks a dict of numpy inputs against the network's inputs.

        The `modality_mask` may be left out (every modality is then present).
        Returns `x` unchanged.
        """
        if not isinstance(x, dict):
            return x
        expected = self.input_names
        missing = [n for n in expected if n not in x and n != MASK_KEY]
        extra = [k for k in x if k not in expected]
        if missing or extra:
            raise ValueError(
                f"The inputs do not match the model's modalities {expected}. "
                f"Missing: {missing}; unexpected: {extra}. Received keys: {sorted(x)}"
            )
        rows = {k: len(v) for k, v in x.items()}
        if len(set(rows.values())) > 1:
            raise ValueError(f"The inputs disagree on the number of rows: {rows}")
        for tensor in self.network.inputs:
            if tensor.name not in x:
                continue
            value = x[tensor.name]
            expected_shape = tuple(tensor.shape[1:])
            shape = np.shape(value)[1:]
            if len(shape) != len(expected_shape) or any(
                e is not None and e != s for e, s in zip(expected_shape, shape)
            ):
                what = "modality" if tensor.name != MASK_KEY else "input"
                wanted = ", ".join(["N"] + [str(e) for e in expected_shape])
                raise ValueError(
                    f"The {what} {tensor.name!r} must have shape [{wanted}]. "
                    f"Received: shape={np.shape(value)}"
                )
        return x

    def check_labels(self, y):
        """Checks a dict of numpy labels: every task present, values in range."""
        if not isinstance(y, dict):
            return y
        missing = [n for n in self.task_names if n not in y]
        extra = [k for k in y if k not in self.task_names]
        if missing or extra:
            raise ValueError(
                f"The labels do not match the model's tasks {self.task_names}. "
                f"Missing: {missing}; unexpected: {extra}. Received keys: {sorted(y)}"
            )
        checked = {}
        for task in self.tasks:
            labels = np.asarray(y[task.name]).reshape(-1)
            if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
                raise ValueError(f"Task {task.name!r}: labels hold NaN or inf.")
            if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
                raise ValueError(
                    f"Task {task.name!r}: labels must be integers. "
                    f"Received: {labels[labels != np.round(labels)][:5].tolist()}"
                )
            labels = labels.astype("int32")
            bad = labels[(labels < -1) | (labels >= task.num_classes)]
            if bad.size:
                raise ValueError(
                    f"Task {task.name!r}: labels must be in [0, {task.num_classes}) or -1 "
                    f"(missing). Received: {sorted(set(bad.tolist()))[:10]}"
                )
            checked[task.name] = labels
        return checked

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        x = self.prepare_inputs(x)
        y = self.check_labels(y)
        if isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
            validation_data = (
                self.prepare_inputs(validation_data[0]),
                self.check_labels(validation_data[1]),
                *validation_data[2:],
            )
        return super().fit(x, y, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        return super().evaluate(self.prepare_inputs(x), self.check_labels(y), **kwargs)

    def predict(self, x, **kwargs):
        return super().predict(self.prepare_inputs(x), **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": keras.saving.serialize_keras_object(self.network),
                "tasks": [t.to_config() for t in self.tasks],
                "beta": self.beta,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
