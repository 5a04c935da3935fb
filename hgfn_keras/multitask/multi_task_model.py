"""A Keras model with one head per task and a custom train step."""

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from hgfn_keras import distribute
from hgfn_keras.data.dataset import MASK_KEY
from hgfn_keras.feature_normalization import FeatureNormalization
from hgfn_keras.multitask.dynamic_task_balancing import DynamicTaskBalancing, GradNorm
from hgfn_keras.multitask.min_norm_weighting import (
    DynamicWeightAverage,
    MinNormWeighting,
    UncertaintyWeighting,
)
from hgfn_keras.multitask.mti_net import INTERMEDIATE_SUFFIX
from hgfn_keras.multitask.task_loss import task_loss
from hgfn_keras.multitask.task_rebalancing import TaskRebalancing
from hgfn_keras.multitask.task_weighting import (
    TaskWeighting,
    task_counts,
    warn_degenerate_tasks,
)
from hgfn_keras.registry import resolve
from hgfn_keras.specs import Task


@keras.saving.register_keras_serializable(package="hgfn_keras")
class MultiTaskModel(keras.Model):
    """Wraps a network with one output per task and trains it on the task losses.

    The training loss is Σ_f w_f L_f, where L_f is task f's focal loss
    (`task_loss`, eq. 10; missing labels left out) and w_f its weight, held by
    the model's `task_weighting`: the base `TaskWeighting` keeps every w_f at 1 (LSEW),
    `DynamicTaskBalancing` (DMTL) moves them after every step from the per-task
    gradient norms (eq. 11) and re-balances them at each epoch's end. The weights
    are non-trainable variables: the main optimizer never touches them, and they
    are saved with the model and its checkpoints.

    `train_step` and `test_step` share `compute_losses`, so they cannot drift
    apart. Every training step logs the weighted total (`loss`), each task's
    loss (`<task>_loss`) and weight (`<task>_weight`). The validation `loss` is
    the plain sum of the task losses, so that early stopping compares the same
    quantity from epoch to epoch while the weights move.

    Args:
        network: a Keras model mapping the modality inputs to a dict
            `{task name: probabilities}` (see `hgfn_keras.build_model`).
        tasks: the `Task` list (or their configs).
        task_weighting: `"lsew"`, `"dmtl"`, or a `TaskWeighting` layer.
        beta: the focal loss' β ≥ 0 (0: cross-entropy).
        **kwargs: standard `keras.Model` arguments.

    Labels are a dict `{task name: int [batch]}` with -1 for a missing label.
    The modality inputs are a dict `{modality name: ...}`; when the network
    takes a `modality_mask` and the dict has none, every modality is taken as
    present.
    """

    def __init__(self, network, tasks, task_weighting="lsew", beta=0.0, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.tasks = [t if isinstance(t, Task) else Task.from_config(t) for t in tasks]
        if not self.tasks:
            raise ValueError("`tasks` is empty: a multi-task model needs at least one task.")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta < 0:
            raise ValueError(f"`beta` must be a number >= 0. Received: beta={beta!r}")
        self.beta = float(beta)
        self.task_weighting = get_task_weighting(task_weighting)
        self.task_weighting.configure(len(self.tasks))
        if self.task_weighting.grad_norm_layer == "shared":
            try:
                self.network.get_layer("shared")
            except ValueError:
                raise ValueError(
                    "grad_norm_layer='shared' takes the gradient norms on the last shared "
                    "layer, a Dense named 'shared' between the fusion and the task heads: "
                    "build the model with `shared_units`."
                ) from None
        self._with_fused = None  # built on first use (MGDA-UB needs Z)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.task_loss_trackers = [keras.metrics.Mean(name=f"{t.name}_loss") for t in self.tasks]
        # The network is a built functional model and the task weighting has its
        # variables: every weight exists, so the model is built (BackupAndRestore
        # and export need that before the first batch).
        self.built = self.network.built

    @property
    def task_names(self):
        return [t.name for t in self.tasks]

    @property
    def task_weights(self):
        """The task weights w_f, a non-trainable variable `[T]`."""
        return self.task_weighting.task_weights

    @property
    def metrics(self):
        return [self.loss_tracker, *self.task_loss_trackers]

    def set_task_counts(self, labels):
        """Gives the task weighting N and n_f from the training labels (DMTL's N / n_f).

        `fit` calls it on numpy labels; call it yourself before fitting on a
        `tf.data.Dataset`.
        """
        labels = self.check_labels(labels)
        warn_degenerate_tasks(self.tasks, labels)
        num_samples, positives = task_counts(self.tasks, labels)
        self.task_weighting.set_task_counts(num_samples, positives, self.task_names)

    @property
    def normalization_layers(self):
        """The network's `FeatureNormalization` layers, `{modality name: layer}`."""
        return {layer.modality: layer for layer in self.network.layers
                if isinstance(layer, FeatureNormalization)}

    def adapt(self, x):
        """Sets every modality's normalisation statistics from training inputs.

        Args:
            x: the training inputs, a dict `{modality name: array}`; rows whose
                `modality_mask` entry is 0 are left out of that modality's
                statistics. Pass the training split only: validation or test rows
                would leak into the model.
        """
        if not isinstance(x, dict):
            raise TypeError(
                "`adapt` needs the training inputs as a dict {modality name: array}. "
                f"Received: {type(x).__name__}")
        layers = self.normalization_layers
        missing = [name for name in layers if name not in x]
        if missing:
            raise ValueError(f"`adapt`: the inputs lack the modality(ies) {missing}. "
                             f"Received keys: {sorted(x)}")
        modality_names = [n for n in self.input_names if n != MASK_KEY]
        mask = x.get(MASK_KEY)
        for name, layer in layers.items():
            present = None if mask is None else np.asarray(mask)[:, modality_names.index(name)]
            layer.adapt(x[name], present=present)

    @property
    def input_names(self):
        """The network's input names, in order: the modalities, then the mask."""
        return [t.name for t in self.network.inputs]

    def _complete_inputs(self, inputs):
        """The network's input list from a dict (an absent mask: all present)."""
        if MASK_KEY in self.input_names and MASK_KEY not in inputs:
            first = inputs[next(n for n in self.input_names if n in inputs)]
            width = self.network.inputs[self.input_names.index(MASK_KEY)].shape[-1]
            inputs = dict(inputs, **{MASK_KEY: tf.ones((tf.shape(first)[0], width))})
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ValueError(
                f"Missing model input(s) {missing}. Expected: {self.input_names}; "
                f"received: {sorted(inputs)}"
            )
        return [inputs[n] for n in self.input_names]

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            inputs = self._complete_inputs(inputs)
        return self.network(inputs, training=training)

    def compute_losses(self, y, y_pred):
        """The weighted total Σ w_f L_f and the stacked task losses `[T]`.

        A network output `<task>_intermediate` (MTI-Net's intermediate
        predictions) adds its loss on the same labels to the task's loss.
        """
        losses = []
        for t in self.tasks:
            loss = task_loss(t, y[t.name], y_pred[t.name], self.beta)
            intermediate = y_pred.get(t.name + INTERMEDIATE_SUFFIX) if isinstance(
                y_pred, dict) else None
            if intermediate is not None:
                loss = loss + task_loss(t, y[t.name], intermediate, self.beta)
            losses.append(loss)
        task_losses = ops.stack(losses)
        return self.task_weighting(task_losses), task_losses

    def _update_trackers(self, total, task_losses):
        self.loss_tracker.update_state(total)
        for index, tracker in enumerate(self.task_loss_trackers):
            tracker.update_state(task_losses[index])
        return {m.name: m.result() for m in self.metrics}

    def _gradient_norm_variables(self):
        """The weights W that DMTL's G_f are taken on: each task's last kernel
        ("task"), or the kernel of the last shared layer ("shared")."""
        if self.task_weighting.grad_norm_layer == "shared":
            return [self.network.get_layer("shared").kernel]
        return [self.network.get_layer(t.name).kernel for t in self.tasks]

    def _forward_with_fused(self, x, training):
        """The outputs and the fused representation Z from one forward pass."""
        if self._with_fused is None:
            fused = self.network.get_layer("fusion").output
            self._with_fused = keras.Model(self.network.inputs, [self.network.output, fused])
        if isinstance(x, dict):
            x = self._complete_inputs(x)
        return self._with_fused(x, training=training)

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        weighting = self.task_weighting
        shared_norms = weighting.needs_gradient_norms and weighting.grad_norm_layer == "shared"
        on_fused = weighting.needs_representation_gradients
        with tf.GradientTape(persistent=shared_norms or on_fused) as tape:
            if on_fused:
                y_pred, fused = self._forward_with_fused(x, training=True)
            else:
                y_pred = self(x, training=True)
            total, task_losses = self.compute_losses(y, y_pred)
            objective = total + ops.sum(self.losses) if self.losses else total
            # Under tf.distribute the optimizer sums the replicas' gradients.
            objective = distribute.scale_for_replicas(objective)
            if shared_norms:
                weighted = distribute.scale_for_replicas(
                    ops.cast(weighting.task_weights, task_losses.dtype) * task_losses)
            # Mixed float16: scale the loss against underflow (the optimizer unscales).
            objective = self._scale_loss(objective)
        variables = self.trainable_variables
        if on_fused:
            # MGDA-UB: the T task gradients w.r.t. Z in one vectorised call give the
            # weights; the update is then Σ_f w_f ∇L_f, through `output_gradients`.
            jacobian = tape.jacobian(task_losses, fused, experimental_use_pfor=True)
            weights = ops.cast(weighting.set_from_representation_gradients(jacobian),
                               task_losses.dtype)
            total = ops.sum(weights * task_losses)
            targets = [task_losses]
            seeds = [self._scale_loss(distribute.scale_for_replicas(weights))]
            if self.losses:
                targets.append(ops.sum(self.losses))
                seeds.append(self._scale_loss(distribute.scale_for_replicas(
                    ops.ones_like(targets[-1]))))
            gradients = tape.gradient(targets, variables, output_gradients=seeds)
            del tape
        else:
            gradients = tape.gradient(objective, variables)
        norms = None
        if weighting.needs_gradient_norms:
            if shared_norms:
                # All T per-task gradients on the shared kernel in one vectorised call.
                (kernel,) = self._gradient_norm_variables()
                jacobian = tape.jacobian(weighted, kernel, experimental_use_pfor=True)
                # The replicas' sum: the gradients of the global batch's mean losses.
                jacobian = distribute.replica_sum(jacobian)
                norms = tf.norm(tf.reshape(jacobian, (len(self.tasks), -1)), axis=1)
                del tape
            else:
                # ∇_{W_f} Σ_g w_g L_g = w_f ∇_{W_f} L_f: G_f comes from the one backward pass.
                index = {id(v): i for i, v in enumerate(variables)}
                norms = ops.stack([
                    tf.norm(self._unscale(distribute.replica_sum(gradients[index[id(k)]])))
                    for k in self._gradient_norm_variables()])
        # Every replica updates the task weights from the same, reduced values.
        weighting.update(distribute.replica_mean(ops.stop_gradient(task_losses)), norms)
        self.optimizer.apply(gradients, variables)
        logs = self._update_trackers(total, task_losses)
        for i, name in enumerate(self.task_names):
            logs[f"{name}_weight"] = weighting.task_weights[i]
        return distribute.logs_for_reduction(logs)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        _, task_losses = self.compute_losses(y, y_pred)
        return distribute.logs_for_reduction(
            self._update_trackers(ops.sum(task_losses), task_losses))

    def _scale_loss(self, value):
        """The loss scaled by a `LossScaleOptimizer` (mixed float16), else itself."""
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            if not self.optimizer.built:  # else the first trace keeps the initial scale
                self.optimizer.build(self.trainable_variables)
            return self.optimizer.scale_loss(value)
        return value

    def _unscale(self, gradient):
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return gradient / ops.cast(self.optimizer.dynamic_scale, gradient.dtype)
        return gradient

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras bug workaround, keras-team/keras#20585: see hgfn_keras/distribute.py.
        if not distribute.symbolic_build(self, iterator, data_batch):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

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
            if np.asarray(value).dtype.kind == "f":
                finite = np.isfinite(np.asarray(value))
                if not finite.all():
                    rows = np.flatnonzero(~finite.reshape(len(finite), -1).all(axis=1))
                    raise ValueError(
                        f"The input {tensor.name!r} holds NaN or inf in {len(rows)} row(s), "
                        f"the first at row {int(rows[0])}."
                    )
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

    def fit(self, x=None, y=None, validation_data=None, callbacks=None, **kwargs):
        """`keras.Model.fit`, with checks of numpy inputs and labels, N / n_f taken
        from numpy labels, and a `TaskRebalancing` callback added when none is given."""
        x = self.prepare_inputs(x)
        y = self.check_labels(y)
        if isinstance(y, dict):
            self.set_task_counts(y)
        unadapted = [n for n, layer in self.normalization_layers.items() if not layer.adapted]
        if unadapted and isinstance(x, dict):
            self.adapt(x)
        elif unadapted:
            warnings.warn(
                f"The normalisation of modality(ies) {unadapted} has no statistics: call "
                "`model.adapt(x_train)` before fitting on a dataset, or the raw features "
                "go in unscaled.", stacklevel=2)
        callbacks = list(callbacks or [])
        if not any(isinstance(c, TaskRebalancing) for c in callbacks):
            callbacks.insert(0, TaskRebalancing())
        if isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
            validation_data = (
                self.prepare_inputs(validation_data[0]),
                self.check_labels(validation_data[1]),
                *validation_data[2:],
            )
        return super().fit(x, y, validation_data=validation_data, callbacks=callbacks, **kwargs)

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
                "task_weighting": keras.saving.serialize_keras_object(self.task_weighting),
                "beta": self.beta,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        if isinstance(config.get("task_weighting"), dict):
            config["task_weighting"] = keras.saving.deserialize_keras_object(
                config["task_weighting"])
        return cls(**config)


TASK_WEIGHTINGS = {
    "lsew": TaskWeighting,
    "dmtl": DynamicTaskBalancing,
    "moo": MinNormWeighting,
    "gradnorm": GradNorm,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
}


def get_task_weighting(task_weighting, **kwargs):
    """A `TaskWeighting` from its name (a key of `TASK_WEIGHTINGS`) or the layer itself.

    >>> get_task_weighting("dmtl", alpha=0.5).alpha
    0.5
    """
    return resolve(task_weighting, TASK_WEIGHTINGS, TaskWeighting, "multi-task strategy", kwargs)
