"""A Keras model with one head per task and a custom train step."""

import dataclasses
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from hgfn_keras import distribute
from hgfn_keras.class_weights import check_sample_weight, class_weight_to_sample_weight
from hgfn_keras.data.dataset import MASK_KEY, check_mask_values
from hgfn_keras.feature_normalization import FeatureNormalization
from hgfn_keras.fusion import Fusion
from hgfn_keras.labels import check_label_range
from hgfn_keras.multitask.strategies import TASK_WEIGHTINGS, get_task_weighting
from hgfn_keras.multitask.loss_tracker import TaskLossTracker
from hgfn_keras.multitask.task_loss import chance_loss, task_loss_terms
from hgfn_keras.multitask.task_rebalancing import TaskRebalancing
from hgfn_keras.multitask.task_weighting import task_counts, warn_degenerate_tasks
from hgfn_keras.specs import Task


@dataclasses.dataclass(frozen=True)
class Handles:
    """The parts of a `MultiTaskModel`'s network that strategies, export and
    inspection use: the fusion layer, the last shared layer (or None) and each
    weighted loss's last layer (`heads`, keyed by `MultiTaskModel.loss_names`:
    a task's name, or a one-vs-rest task's concept names). Kept as one plain
    object (not layer attributes), so that saving walks the layers once,
    through the network."""

    fusion: object = None
    shared: object = None
    heads: dict = dataclasses.field(default_factory=dict)


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

    `train_step` reads like Keras' own: unpack, forward and losses under one
    tape, the scaled objective, then the strategy's hook
    `task_weighting.compute_gradients` (the base: one ordinary backward pass;
    DMTL, GradNorm and MGDA-UB add their norms or Jacobians), apply, metrics.
    `train_step` and `test_step` share `compute_losses`, so they cannot drift
    apart; per-row sample weights reach every task's loss. Every training step logs the weighted total (`loss`), each task's
    loss (`<task>_loss`) and weight (`<task>_weight`). The validation `loss` is
    the plain sum of the task losses, so that early stopping compares the same
    quantity from epoch to epoch while the weights move.

    One-vs-rest tasks (`Task(..., one_vs_rest=True)`, paper's concepts): such a
    K-class task is trained as K binary concepts `<task>.<k>` ("class k or
    not"), each with its own focal loss on its own sigmoid (the network output
    of the concept's name, `[batch, 1]`) and its own weight w. Everything
    above that says "task" then means "weighted loss" (`loss_names`: the
    tasks, each one-vs-rest task replaced by its concepts): the strategy's
    weights, N / n_f, the gradient norms' head layers and the logs
    (`<task>.<k>_loss`, `<task>.<k>_weight`). The labels stay the task's
    K-class integers; concept k's label is `y == k`, and a missing label
    (-1) gives no loss to any concept. The network output `<task>` holds the
    K-class probabilities (`ConceptProbabilities`: the sigmoids normalised).

    Args:
        network: a Keras model mapping the modality inputs to a dict
            `{task name: probabilities}` (see `hgfn_keras.build_model`).
        tasks: the `Task` list (or their configs).
        task_weighting: `"lsew"`, `"dmtl"`, or a `TaskWeighting` layer.
        beta: the focal loss' β ≥ 0 (0: cross-entropy).
        fusion_layer: the network's fusion layer (a layer of `network` or its
            name). None: the one `Fusion` layer of the network, if any.
        shared_layer: the last shared layer between the fusion and the heads
            (a Dense, or its name), or None.
        head_layers: `{loss name: its last layer}` (a Dense, or its name),
            one per task or, for a one-vs-rest task, one per concept: the
            paper's "last task-specific layer". None: the layer that produces
            each output of that name.
        auxiliary_outputs: `{network output name: task name}`: extra outputs
            (MTI-Net's intermediate predictions) whose loss on the task's labels
            adds to the task's loss.
        decision_thresholds: `{binary task name: threshold in (0, 1)}` (see
            `set_decision_thresholds`), or None.
        **kwargs: standard `keras.Model` arguments.

    The handles are checked here: a strategy that needs one (DMTL's heads or
    shared layer, MGDA-UB's fusion) raises a clear error when it is missing.

    Labels are a dict `{task name: int [batch]}` with -1 for a missing label.
    The modality inputs are a dict `{modality name: ...}`; when the network
    takes a `modality_mask` and the dict has none, every modality is taken as
    present.
    """

    def __init__(self, network, tasks, task_weighting="lsew", beta=0.0, fusion_layer=None,
                 shared_layer=None, head_layers=None, auxiliary_outputs=None,
                 decision_thresholds=None, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.tasks = [t if isinstance(t, Task) else Task.from_config(t) for t in tasks]
        if not self.tasks:
            raise ValueError("`tasks` is empty: a multi-task model needs at least one task.")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta < 0:
            raise ValueError(f"`beta` must be a number >= 0. Received: beta={beta!r}")
        self.beta = float(beta)
        self._check_concept_outputs(network)
        num_losses = len(self.loss_names)
        self.task_weighting = get_task_weighting(task_weighting)
        if not self.task_weighting.built:
            self.task_weighting.build((num_losses,))
        elif self.task_weighting.num_tasks != num_losses:
            raise ValueError(
                f"The task weighting was built for {self.task_weighting.num_tasks} tasks; "
                f"the model has {num_losses} weighted losses: {self.loss_names}")
        self.task_weighting.set_chance_losses(
            [chance_loss(2 if task.one_vs_rest else task.num_classes, self.beta)
             for task in self.tasks for _ in task.concepts])
        fusion = self._find_layer(fusion_layer, "fusion_layer")
        if fusion_layer is None:
            fusions = [layer for layer in network.layers if isinstance(layer, Fusion)]
            fusion = fusions[0] if len(fusions) == 1 else None
        self.handles = Handles(fusion=fusion,
                               shared=self._find_layer(shared_layer, "shared_layer"),
                               heads=self._find_heads(head_layers))
        self.auxiliary_outputs = dict(auxiliary_outputs or {})
        unknown = {k: v for k, v in self.auxiliary_outputs.items() if v not in self.task_names}
        if unknown:
            raise ValueError(f"`auxiliary_outputs` names unknown tasks: {unknown}. "
                             f"Tasks: {self.task_names}")
        one_vs_rest = {k: v for k, v in self.auxiliary_outputs.items()
                       if self._task(v).one_vs_rest}
        if one_vs_rest:
            raise ValueError(f"`auxiliary_outputs` of one-vs-rest tasks are not supported "
                             f"(a K-class auxiliary loss beside K concept losses). "
                             f"Received: {one_vs_rest}")
        self.task_weighting.check_model(self)
        self.set_decision_thresholds(decision_thresholds or {})
        self._with_fused = None  # built on first use (MGDA-UB needs Z)
        # Training logs the mean over batches (as `keras.metrics.Mean`); evaluation
        # the sum over every labelled row divided by their count (`test_step`).
        self.loss_tracker = TaskLossTracker(num_losses, name="loss")
        self.task_loss_trackers = [TaskLossTracker(1, name=f"{n}_loss") for n in self.loss_names]
        # The network is a built functional model and the task weighting has its
        # variables: every weight exists, so the model is built (BackupAndRestore
        # and export need that before the first batch).
        self.built = self.network.built

    @property
    def task_names(self):
        return [t.name for t in self.tasks]

    @property
    def loss_names(self):
        """The names of the weighted losses, in the order of `task_weights`: each
        task's name, a one-vs-rest task's replaced by its concepts `<task>.<k>`."""
        return [name for t in self.tasks for name in t.concepts]

    def _task(self, name):
        return self.tasks[self.task_names.index(name)]

    def _check_concept_outputs(self, network):
        """Raises unless the network outputs every one-vs-rest task's concepts."""
        outputs = network.output if isinstance(network.output, dict) else {}
        for t in self.tasks:
            missing = [c for c in t.concepts if t.one_vs_rest and c not in outputs]
            if missing:
                raise ValueError(
                    f"Task {t.name!r} is one-vs-rest: the network must output each "
                    f"concept's sigmoid [batch, 1] under its name {t.concepts} "
                    f"(`build_model` does). Missing: {missing}; outputs: {sorted(outputs)}")

    @property
    def decision_thresholds(self):
        """`{binary task name: threshold}`: the decision `prob >= threshold` of the
        tasks that have one (a copy; empty by default). Kept in `get_config`, so
        `model.keras` keeps it; the SavedModel returns it as `<task>_decision`."""
        return dict(self._decision_thresholds)

    def set_decision_thresholds(self, thresholds):
        """Stores per-task decision thresholds, replacing those stored before.

        Args:
            thresholds: `{binary task name: threshold in (0, 1)}`, e.g. from
                `hgfn_keras.decision_thresholds.choose_thresholds` on the
                validation split; `{}` clears them.

        Raises:
            ValueError: for an unknown task, a K-class task (it decides by
                argmax) or a value outside (0, 1), naming the task and the value.
        """
        from hgfn_keras.metrics import check_threshold

        if not isinstance(thresholds, dict):
            raise ValueError("`decision_thresholds` must be a dict {binary task name: "
                             f"threshold}}. Received: {thresholds!r}")
        classes = {t.name: t.num_classes for t in self.tasks}
        checked = {}
        for name, value in thresholds.items():
            if name not in classes:
                raise ValueError(f"`decision_thresholds` names an unknown task {name!r} "
                                 f"(threshold {value!r}). Tasks: {self.task_names}")
            if classes[name] != 2:
                raise ValueError(
                    f"`decision_thresholds`: task {name!r} has {classes[name]} classes and "
                    f"decides by argmax; only binary tasks take a threshold. Received: "
                    f"{name}={value!r}")
            checked[name] = check_threshold(value, name)
        self._decision_thresholds = checked

    @property
    def task_weights(self):
        """The task weights w_f, a non-trainable variable `[T]`, one per
        weighted loss (`loss_names`)."""
        return self.task_weighting.task_weights

    @property
    def fusion_layer(self):
        """The network's fusion layer (`handles.fusion`), or None."""
        return self.handles.fusion

    @property
    def shared_layer(self):
        """The last shared layer (`handles.shared`), or None."""
        return self.handles.shared

    @property
    def head_layers(self):
        """`{loss name: its last layer}` (`handles.heads`, keyed by `loss_names`)."""
        return self.handles.heads

    def fusion_inputs_model(self, with_outputs=False):
        """A functional model from the network's inputs to the fusion's call
        inputs, `{"vectors": {modality name: [batch, width]}, "mask": ...}`
        ("mask" only when the fusion was called with one). It shares the
        network's layers (no new weights). With `with_outputs=True` it also
        returns the network's outputs as `"outputs"`, from the same pass (the
        encoders run once)."""
        fusion = self.fusion_layer
        if fusion is None:
            raise ValueError("The model has no fusion layer handle (`fusion_layer`).")
        # `Layer.input` is the flat list of the call's tensor arguments: the
        # modality vectors (a dict, flattened in sorted key order), then the mask.
        flat = fusion.input if isinstance(fusion.input, (list, tuple)) else [fusion.input]
        names = sorted(getattr(fusion, "modality_names", None)
                       or [n for n in self.input_names if n != MASK_KEY])
        outputs = {"vectors": dict(zip(names, flat[:len(names)]))}
        if len(flat) > len(names):
            outputs["mask"] = flat[len(names)]
        if with_outputs:
            outputs["outputs"] = self.network.output
        return keras.Model(self.network.inputs, outputs,
                           name=f"{self.network.name}_fusion_inputs")

    def _find_layer(self, layer, argument):
        """A layer of the network, given as the layer or its name (or None)."""
        if layer is None:
            return None
        if isinstance(layer, str):
            try:
                return self.network.get_layer(layer)
            except ValueError:
                raise ValueError(f"`{argument}`: the network has no layer {layer!r}. "
                                 f"Received: {argument}={layer!r}") from None
        if not any(layer is candidate for candidate in self.network.layers):
            raise ValueError(f"`{argument}` must be a layer of the network. "
                             f"Received: {argument}={layer.name!r}")
        return layer

    def _find_heads(self, head_layers):
        """`{loss name: last layer}`: given, or the layer producing each output."""
        if head_layers is not None:
            unknown = sorted(set(head_layers) - set(self.loss_names))
            if unknown:
                raise ValueError(f"`head_layers` names unknown tasks {unknown}. "
                                 f"Tasks (one-vs-rest ones by concept): {self.loss_names}")
            return {name: self._find_layer(layer, f"head_layers[{name!r}]")
                    for name, layer in head_layers.items()}
        outputs = self.network.output if isinstance(self.network.output, dict) else {}
        heads = {}
        for name in self.loss_names:
            tensor = outputs.get(name)
            for layer in self.network.layers:
                try:
                    produced = layer.output
                except (AttributeError, ValueError):  # called more than once
                    continue
                if tensor is not None and produced is tensor:
                    heads[name] = layer
        return heads

    def require_head_layers(self, who):
        """Raises unless every weighted loss has a head layer with a kernel (for `who`)."""
        missing = [n for n in self.loss_names
                   if getattr(self.head_layers.get(n), "kernel", None) is None]
        if missing:
            raise ValueError(
                f"{who} takes gradient norms on each task's last layer, and the model has "
                f"none with a kernel for task(s) {missing}: pass `head_layers={{task name: "
                "Dense layer}` to `MultiTaskModel`, or name the network's outputs after "
                f"the tasks {self.loss_names}.")

    @property
    def metrics(self):
        return [self.loss_tracker, *self.task_loss_trackers]

    def set_task_counts(self, labels, sample_weight=None):
        """Gives the task weighting N and n_f from the training labels (DMTL's N / n_f).

        `fit` calls it on numpy labels (with its row weights: a row counts as its
        weight, see `task_counts`); call it yourself before fitting on a
        `tf.data.Dataset`.
        """
        labels = self.check_labels(labels)
        warn_degenerate_tasks(self.tasks, labels)
        num_samples, positives = task_counts(self.tasks, labels, sample_weight)
        self.task_weighting.set_task_counts(num_samples, positives, self.loss_names)

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

    def compute_losses(self, y, y_pred, sample_weight=None):
        """The weighted total Σ w_f L_f and the stacked task losses `[T]` (one
        per `loss_names`: a one-vs-rest task's concepts each have their own).

        An auxiliary output (`auxiliary_outputs`, e.g. MTI-Net's intermediate
        predictions) adds its loss on the same labels to its task's loss.
        `sample_weight`: per-row weights `[batch]` for every task, or a dict
        `{task name: [batch]}`; None weighs the rows equally.
        """
        sums, counts = self.loss_terms(y, y_pred, sample_weight)
        task_losses = sums / ops.where(counts > 0, counts, 1.0)
        return self.task_weighting(task_losses), task_losses

    def loss_terms(self, y, y_pred, sample_weight=None):
        """Per task, the sum of the per-row losses over the rows with a label and
        their count (weights summed with `sample_weight`): two `[T]` tensors.

        A task's loss on a batch is sum / count (`compute_losses`); an evaluation
        adds both over its batches and divides once (`test_step`), so its value
        does not depend on the batch size when labels are missing.
        """
        auxiliary = {}
        for output, task_name in self.auxiliary_outputs.items():
            auxiliary.setdefault(task_name, []).append(output)
        sums, counts = [], []
        for t in self.tasks:
            weights = sample_weight.get(t.name) if isinstance(sample_weight, dict) \
                else sample_weight
            if t.one_vs_rest:  # one binary loss per concept, on its own sigmoid
                for k, concept in enumerate(t.concepts):
                    total, count = task_loss_terms(t, y[t.name], y_pred[concept], self.beta,
                                                   weights, concept=k)
                    sums.append(total)
                    counts.append(count)
                continue
            total, count = task_loss_terms(t, y[t.name], y_pred[t.name], self.beta, weights)
            for output in auxiliary.get(t.name, ()):  # same labels, same count
                total = total + task_loss_terms(t, y[t.name], y_pred[output], self.beta,
                                                weights)[0]
            sums.append(total)
            counts.append(count)
        return ops.stack(sums), ops.stack(counts)

    def _update_trackers(self, total, task_losses):
        self.loss_tracker.update_state(total)
        for index, tracker in enumerate(self.task_loss_trackers):
            tracker.update_state(task_losses[index])
        return {m.name: m.result() for m in self.metrics}

    def _forward_with_fused(self, x, training):
        """The outputs and the fused representation Z from one forward pass."""
        if self._with_fused is None:
            self._with_fused = keras.Model(self.network.inputs,
                                           [self.network.output, self.fusion_layer.output])
        if isinstance(x, dict):
            x = self._complete_inputs(x)
        return self._with_fused(x, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        weighting = self.task_weighting
        fused = None
        with tf.GradientTape(persistent=weighting.persistent_tape) as tape:
            if weighting.needs_fused_representation:
                y_pred, fused = self._forward_with_fused(x, training=True)
            else:
                y_pred = self(x, training=True)
            total, task_losses = self.compute_losses(y, y_pred, sample_weight)
            objective = total + ops.sum(self.losses) if self.losses else total
            # Under tf.distribute the optimizer sums the replicas' gradients; under
            # mixed float16 the loss is scaled against underflow (the optimizer unscales).
            objective = self.scale_loss(distribute.scale_for_replicas(objective))
        variables = self.trainable_variables
        gradients, weighted_total, norms = weighting.compute_gradients(
            tape, objective, task_losses, variables, self, fused=fused)
        if weighted_total is not None:  # the weights were set inside the step (MGDA-UB)
            total = weighted_total
        # Every replica updates the task weights from the same, reduced values.
        weighting.update(distribute.replica_mean(ops.stop_gradient(task_losses)), norms)
        self.optimizer.apply(gradients, variables)
        logs = self._update_trackers(total, task_losses)
        for i, name in enumerate(self.loss_names):
            logs[f"{name}_weight"] = weighting.task_weights[i]
        return distribute.logs_for_reduction(logs)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        # Sums and counts over the whole evaluation: a task's loss is the mean over
        # every labelled row, whatever the batch size; "loss" is their sum over tasks.
        sums, counts = self.loss_terms(y, y_pred, sample_weight)
        self.loss_tracker.update_state(sums=sums, counts=counts)
        for index, tracker in enumerate(self.task_loss_trackers):
            tracker.update_state(sums=sums[index:index + 1], counts=counts[index:index + 1])
        return distribute.logs_for_reduction({m.name: m.result() for m in self.metrics})

    def scale_loss(self, value):
        """`optimizer.scale_loss(value)`: scaled by a `LossScaleOptimizer`
        (mixed float16), else itself."""
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            if not self.optimizer.built:  # else the first trace keeps the initial scale
                self.optimizer.build(self.trainable_variables)
        return self.optimizer.scale_loss(value)

    def unscale(self, gradient):
        """A gradient of the scaled loss, unscaled (the optimizer does it itself)."""
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

        The `modality_mask` may be left out (every modality is then present); when
        given, it must hold only 0 and 1. Returns `x` unchanged.
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
        if MASK_KEY in x:
            check_mask_values(x[MASK_KEY])
        return x

    def check_labels(self, y):
        """Checks a dict of numpy labels: every task present, values in range
        (`hgfn_keras.labels.check_label_range`). Returns them as int32 `[N]`."""
        if not isinstance(y, dict):
            return y
        missing = [n for n in self.task_names if n not in y]
        extra = [k for k in y if k not in self.task_names]
        if missing or extra:
            raise ValueError(
                f"The labels do not match the model's tasks {self.task_names}. "
                f"Missing: {missing}; unexpected: {extra}. Received keys: {sorted(y)}"
            )
        # The rule and its messages live in `hgfn_keras.labels` (shared with the
        # npz reader and the metrics).
        checked = {}
        for task in self.tasks:
            checked[task.name] = check_label_range(y[task.name], task.num_classes,
                                                   task.name).astype("int32")
        return checked

    def _check_sample_weight(self, sample_weight, y):
        """Row weights checked against numpy labels (`class_weights.check_sample_weight`):
        finite, >= 0, one per row, for tasks the model has; float32."""
        if sample_weight is None or not isinstance(y, dict):
            return sample_weight
        num_rows = len(next(iter(y.values()))) if y else 0
        return check_sample_weight(sample_weight, self.task_names, num_rows)

    def summary(self, *args, expand_nested=True, **kwargs):
        """`keras.Model.summary`, nested layers shown by default: the inputs, the
        encoders and normalisation layers, the fusion and each task's head, then the
        task weighting (`expand_nested=False`: the network as one row)."""
        return super().summary(*args, expand_nested=expand_nested, **kwargs)

    def fit(self, x=None, y=None, validation_data=None, callbacks=None, sample_weight=None,
            class_weight=None, **kwargs):
        """`keras.Model.fit`, with checks of numpy inputs and labels, N / n_f taken
        from numpy labels, and a `TaskRebalancing` callback added when none is given.

        `sample_weight` weighs each row's loss: one array `[N]` for every task, or a
        dict `{task: [N]}`. `class_weight` is a dict per task,
        `{"rating": {0: 3.0, 1: 1.0, ...}}` (a task or class left out weighs 1;
        `hgfn_keras.class_weights.balanced_class_weights` gives the "balanced"
        ones); it becomes the row weights it stands for, multiplied into
        `sample_weight`. Both need numpy labels (with a `tf.data.Dataset`, yield
        `(x, y, sample_weight)`). A row of weight 0 changes nothing and a row of
        weight 2 counts as that row twice, in the losses and in DMTL's N / n_f.
        """
        x = self.prepare_inputs(x)
        y = self.check_labels(y)
        sample_weight = self._check_sample_weight(sample_weight, y)
        if class_weight is not None:
            if not isinstance(y, dict):
                raise ValueError(
                    "`class_weight` needs the labels as a dict of numpy arrays (`y=`); with "
                    "a dataset, yield (x, y, sample_weight) instead. Received: "
                    f"y of type {type(y).__name__}")
            sample_weight = class_weight_to_sample_weight(y, class_weight, sample_weight,
                                                          tasks=self.tasks)
        if isinstance(y, dict):
            self.set_task_counts(y, sample_weight)
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
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
            y_val = self.check_labels(validation_data[1])
            validation_data = (
                self.prepare_inputs(validation_data[0]),
                y_val,
                *[self._check_sample_weight(w, y_val) for w in validation_data[2:3]],
            )
        return super().fit(x, y, validation_data=validation_data, callbacks=callbacks, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        y = self.check_labels(y)
        if kwargs.get("sample_weight") is not None:
            kwargs["sample_weight"] = self._check_sample_weight(kwargs["sample_weight"], y)
        return super().evaluate(self.prepare_inputs(x), y, **kwargs)

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
                # The handles, by their names inside `network`.
                "fusion_layer": None if self.fusion_layer is None else self.fusion_layer.name,
                "shared_layer": None if self.shared_layer is None else self.shared_layer.name,
                "head_layers": {n: layer.name for n, layer in self.head_layers.items()},
                "auxiliary_outputs": dict(self.auxiliary_outputs),
                "decision_thresholds": self.decision_thresholds,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        if "shared_layer" not in config:  # a model saved before the handles existed
            names = [layer.name for layer in config["network"].layers]
            config["shared_layer"] = "shared" if "shared" in names else None
        if isinstance(config.get("task_weighting"), dict):
            config["task_weighting"] = keras.saving.deserialize_keras_object(
                config["task_weighting"])
        return cls(**config)


__all__ = ["MultiTaskModel", "TASK_WEIGHTINGS", "get_task_weighting"]
