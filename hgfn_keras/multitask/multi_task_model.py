"""A Keras model with one head per task and a custom train step."""

import keras
import tensorflow as tf
from keras import ops

from hgfn_keras.evaluation.decision_thresholds import check_decision_thresholds
from hgfn_keras.feature_checks import MASK_KEY, check_inputs, placeholder_row
from hgfn_keras.feature_normalization import adapt_normalization, normalization_layers
from hgfn_keras.labels import check_task_labels
from hgfn_keras.multitask.handles import find_handles, require_head_layers
from hgfn_keras.multitask.keras_contract import check_compile_arguments, refuse_export
from hgfn_keras.multitask.loss_tracker import TaskLossTracker
from hgfn_keras.multitask.multi_task_loss import MultiTaskLoss
from hgfn_keras.multitask.numpy_fit import checked_sample_weight, prepare_numpy_fit
from hgfn_keras.multitask.task_weightings import TASK_WEIGHTINGS, get_task_weighting
from hgfn_keras.multitask.task_rebalancing import with_task_rebalancing
from hgfn_keras.multitask.task_weighting import task_counts, warn_degenerate_tasks
from hgfn_keras.specs import Task
from hgfn_keras.utils import distribute


@keras.saving.register_keras_serializable(package="hgfn_keras")
class MultiTaskModel(keras.Model):
    """Wraps a network with one output per task and trains it on the task losses.

    The training loss is Σ_f w_f L_f: L_f is weighted loss f's focal loss (eq. 10,
    missing labels left out), computed by the model's `multitask_loss`
    (`MultiTaskLoss`: per task, a one-vs-rest task's concepts each on their own
    sigmoid, auxiliary outputs, sample weights); w_f its weight, a non-trainable
    variable of the `task_weighting` (the base `TaskWeighting` keeps every w_f at 1,
    LSEW; `DynamicTaskBalancing`, DMTL, moves them after every step from the
    per-task gradient norms, eq. 11), saved with the model and its checkpoints.

    `train_step` reads like Keras' own, with the task weighting's hook
    `task_weighting.compute_gradients` (DMTL, GradNorm and MGDA-UB add their norms
    or Jacobians there); it logs the weighted total (`loss`), each weighted loss
    (`<name>_loss`) and weight (`<name>_weight`). `test_step` logs the plain sum of
    the losses over every labelled row, so that early stopping compares the same
    quantity while the weights move. A one-vs-rest task is K weighted losses
    `<task>.<k>` (`loss_names`); its output `<task>` holds the K probabilities.

    Args:
        network: a Keras model mapping the modality inputs to a dict
            `{task name: probabilities}` (see `hgfn_keras.build_model`).
        tasks: the `Task` list (or their configs).
        task_weighting: `"lsew"`, `"dmtl"`, or a `TaskWeighting` layer.
        beta: the focal loss' β ≥ 0 (0: cross-entropy).
        fusion_layer, shared_layer, head_layers: the handles (`handles.find_handles`):
            the fusion layer (None: the network's one `Fusion`), the last shared
            layer or None, and `{loss name: last layer}` (None: the layer producing
            each output); layers or their names. A task weighting that needs one (DMTL's
            heads, MGDA-UB's fusion) raises a clear error when it is missing.
        auxiliary_outputs: `{network output name: task name}` (MTI-Net): their loss
            on the task's labels adds to the task's loss.
        member_outputs: `{output name: network output name}` of an ensemble's
            members (`build_model(ensemble=k)`): the training loss of that output is
            the mean of the k members' losses on these `[batch, k, units]`
            probabilities; `call`, `predict` and evaluation return and score the
            output itself (the members' mean), without the members.
        decision_thresholds: `{binary task name: threshold in (0, 1)}`, or None.
        **kwargs: standard `keras.Model` arguments.

    Labels are a dict `{task name: int [batch]}` with -1 for a missing label; the
    inputs a dict `{modality name: ...}` (without `modality_mask`, every modality
    is present). The model computes its own loss: `compile` takes no `loss` or
    `metrics` (per-task F1 / MAP: `ValidationMetrics`, `recipe.evaluate`).
    """

    def __init__(self, network, tasks, task_weighting="lsew", beta=0.0, fusion_layer=None,
                 shared_layer=None, head_layers=None, auxiliary_outputs=None,
                 decision_thresholds=None, member_outputs=None, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.tasks = [t if isinstance(t, Task) else Task.from_config(t) for t in tasks]
        if not self.tasks:
            raise ValueError("`tasks` is empty: a multi-task model needs at least one task.")
        # The per-task losses (eq. 10) are the loss object's; the model weighs them.
        self.multitask_loss = MultiTaskLoss(self.tasks, beta, auxiliary_outputs,
                                            member_outputs)
        self.multitask_loss.check_outputs(network)
        num_losses = len(self.loss_names)
        self.task_weighting = get_task_weighting(task_weighting)
        if not self.task_weighting.built:
            self.task_weighting.build((num_losses,))
        elif self.task_weighting.num_tasks != num_losses:
            raise ValueError(
                f"The task weighting was built for {self.task_weighting.num_tasks} tasks; "
                f"the model has {num_losses} weighted losses: {self.loss_names}")
        self.task_weighting.set_chance_losses(self.multitask_loss.chance_losses())
        self.handles = find_handles(network, self.loss_names, fusion_layer, shared_layer,
                                    head_layers)
        self.task_weighting.check_model(self)
        self.set_decision_thresholds(decision_thresholds or {})
        self._with_fused = None  # built on first use (MGDA-UB needs Z)
        # Training logs the mean over batches (as `keras.metrics.Mean`); evaluation
        # the sum over every labelled row divided by their count (`test_step`).
        self.loss_tracker = TaskLossTracker(num_losses, name="loss")
        self.task_loss_trackers = [TaskLossTracker(1, name=f"{n}_loss") for n in self.loss_names]
        # Every weight exists (a built functional network, the weighting's variables):
        # the model is built, as BackupAndRestore and export need before the first batch.
        self.built = self.network.built

    @property
    def task_names(self):
        return [t.name for t in self.tasks]

    @property
    def loss_names(self):
        """The names of the weighted losses, in the order of `task_weights`: each
        task's name, a one-vs-rest task's replaced by its concepts `<task>.<k>`."""
        return self.multitask_loss.loss_names

    beta = property(lambda self: self.multitask_loss.beta, doc="The focal loss' β.")
    auxiliary_outputs = property(lambda self: dict(self.multitask_loss.auxiliary_outputs),
                                 doc="`{network output name: task name}`.")
    member_outputs = property(lambda self: dict(self.multitask_loss.member_outputs),
                              doc="`{output name: its ensemble members' output name}`.")

    @property
    def decision_thresholds(self):
        """`{binary task name: threshold}` of `prob >= threshold` (a copy; in `model.keras`;
        the SavedModel's `<task>_decision`)."""
        return dict(self._decision_thresholds)

    def set_decision_thresholds(self, thresholds):
        """Stores `{binary task name: threshold in (0, 1)}` (`check_decision_thresholds`,
        e.g. from `choose_thresholds` on the validation split); `{}` clears them."""
        self._decision_thresholds = check_decision_thresholds(thresholds, self.tasks)

    task_weights = property(lambda self: self.task_weighting.task_weights,
                            doc="The task weights w_f, a variable `[T]` (`loss_names`).")

    fusion_layer = property(lambda self: self.handles.fusion, doc="The fusion layer, or None.")
    shared_layer = property(lambda self: self.handles.shared, doc="The last shared layer.")
    head_layers = property(lambda self: self.handles.heads,
                           doc="`{loss name: its last layer}` (keyed by `loss_names`).")

    def require_head_layers(self, who):
        """Raises unless every weighted loss has a head layer with a kernel (for `who`)."""
        require_head_layers(self.head_layers, self.loss_names, who)

    @property
    def metrics(self):
        return [self.loss_tracker, *self.task_loss_trackers]

    def set_task_counts(self, labels, sample_weight=None):
        """Gives the task weighting N and n_f from the training labels (DMTL's N / n_f;
        a row counts as its weight). `fit` calls it on numpy labels; call it yourself
        before fitting on a `tf.data.Dataset`."""
        labels = self.check_labels(labels)
        warn_degenerate_tasks(self.tasks, labels)
        num_samples, positives = task_counts(self.tasks, labels, sample_weight)
        self.task_weighting.set_task_counts(num_samples, positives, self.loss_names)

    @property
    def normalization_layers(self):
        """The network's `FeatureNormalization` layers, `{modality name: layer}`."""
        return normalization_layers(self.network)

    def adapt(self, x):
        """Sets every modality's normalisation statistics from the training inputs
        `{modality name: array}` (`feature_normalization.adapt_normalization`: rows
        whose `modality_mask` entry is 0 are left out; pass the training split only)."""
        adapt_normalization(self.network, x)

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
            raise ValueError(f"Missing model input(s) {missing}. Expected: "
                             f"{self.input_names}; received: {sorted(inputs)}")
        return [inputs[n] for n in self.input_names]

    def call(self, inputs, training=False):
        """The network's outputs, an ensemble's members left out (`network_outputs`)."""
        outputs = self.network_outputs(inputs, training=training)
        hidden = set(self.multitask_loss.member_outputs.values())
        return {k: v for k, v in outputs.items() if k not in hidden} if hidden else outputs

    def network_outputs(self, inputs, training=False):
        """Every output of the network, an ensemble's members (`member_outputs`) too."""
        if isinstance(inputs, dict):
            inputs = self._complete_inputs(inputs)
        return self.network(inputs, training=training)

    def compute_losses(self, y, y_pred, sample_weight=None):
        """The weighted total Σ w_f L_f and the stacked losses `[T]` (`multitask_loss`:
        one per `loss_names`; `sample_weight`: `[batch]` or `{task name: [batch]}`)."""
        task_losses = self.multitask_loss(y, y_pred, sample_weight)
        return self.task_weighting(task_losses), task_losses

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
                y_pred = self.network_outputs(x, training=True)  # members too
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
        self.loss_tracker.update_state(total)
        for index, tracker in enumerate(self.task_loss_trackers):
            tracker.update_state(task_losses[index])
        logs = {m.name: m.result() for m in self.metrics}
        for i, name in enumerate(self.loss_names):
            logs[f"{name}_weight"] = weighting.task_weights[i]
        return distribute.logs_for_reduction(logs)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        # Sums and counts over the whole evaluation: a task's loss is the mean over
        # every labelled row, whatever the batch size; "loss" is their sum over tasks.
        sums, counts = self.multitask_loss.terms(y, y_pred, sample_weight)
        self.loss_tracker.update_state(sums=sums, counts=counts)
        for index, tracker in enumerate(self.task_loss_trackers):
            tracker.update_state(sums=sums[index:index + 1], counts=counts[index:index + 1])
        return distribute.logs_for_reduction({m.name: m.result() for m in self.metrics})

    def scale_loss(self, value):
        """`optimizer.scale_loss(value)` (a `LossScaleOptimizer` scales, mixed float16)."""
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
        # Keras bug workaround, keras-team/keras#20585: see hgfn_keras/utils/distribute.py.
        if not distribute.symbolic_build(self, iterator, data_batch):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def prepare_inputs(self, x):
        """`x` checked against the network's inputs (`feature_checks.check_inputs`)."""
        return check_inputs(x, self.network.inputs)

    def check_labels(self, y):
        """`y` checked against the tasks, as int32 `[N]` (`labels.check_task_labels`)."""
        return check_task_labels(y, self.tasks)

    def summary(self, *args, expand_nested=True, **kwargs):
        """`keras.Model.summary`, nested layers shown by default (encoders, fusion, heads;
        `expand_nested=False`: the network as one row)."""
        return super().summary(*args, expand_nested=expand_nested, **kwargs)

    def fit(self, x=None, y=None, validation_data=None, callbacks=None, sample_weight=None,
            class_weight=None, **kwargs):
        """`keras.Model.fit`, with checks of numpy inputs and labels, N / n_f taken
        from numpy labels, the normalisation adapted to numpy inputs when it has no
        statistics, and a `TaskRebalancing` callback added when none is given.

        `sample_weight`: `[N]` for every task or `{task: [N]}`; `class_weight`:
        `{"rating": {0: 3.0, ...}}` per task (`class_weights.balanced_class_weights`),
        turned into the row weights it stands for and multiplied into
        `sample_weight`. Both need numpy labels (with a `tf.data.Dataset`, yield
        `(x, y, sample_weight)`). A row of weight 2 counts as that row twice, in the
        losses and in DMTL's N / n_f.
        """
        x, y, sample_weight, validation_data = prepare_numpy_fit(
            self, x, y, sample_weight, class_weight, validation_data)
        callbacks, _ = with_task_rebalancing(callbacks)
        return super().fit(x, y, validation_data=validation_data, callbacks=callbacks,
                           sample_weight=sample_weight, **kwargs)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, weighted_metrics=None,
                **kwargs):
        """`keras.Model.compile`; `loss` and `metrics` are refused (they would be ignored)."""
        check_compile_arguments(loss, kwargs.get("loss_weights"), metrics, weighted_metrics)
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras' own, which skips a model whose `compile` is overridden (this one only
        # refuses arguments that a saved model never holds).
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def export(self, filepath, format="tf_saved_model", **kwargs):
        refuse_export(filepath)

    def evaluate(self, x=None, y=None, **kwargs):
        """`keras.Model.evaluate`: the losses (`loss`, `<name>_loss`) over every
        labelled row; for F1, MAP and accuracy use `hgfn_keras.recipe.evaluate(model,
        (x, y))` or `hgfn_keras.multitask_metrics` on `predict`'s output."""
        y = self.check_labels(y)
        if kwargs.get("sample_weight") is not None:
            kwargs["sample_weight"] = checked_sample_weight(self, kwargs["sample_weight"], y)
        return super().evaluate(self.prepare_inputs(x), y, **kwargs)

    def predict(self, x, **kwargs):
        x = self.prepare_inputs(x)
        if isinstance(x, dict) and x and len(next(iter(x.values()))) == 0:
            # Keras' own stops on no batch at all: the outputs of one placeholder row, cut.
            outputs = super().predict(placeholder_row(x), **kwargs)
            return keras.tree.map_structure(lambda a: a[:0], outputs)
        return super().predict(x, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "network": keras.saving.serialize_keras_object(self.network),
            "tasks": [t.to_config() for t in self.tasks],
            "task_weighting": keras.saving.serialize_keras_object(self.task_weighting),
            "beta": self.beta,
            # The handles, by their names inside `network`.
            "fusion_layer": None if self.fusion_layer is None else self.fusion_layer.name,
            "shared_layer": None if self.shared_layer is None else self.shared_layer.name,
            "head_layers": {n: layer.name for n, layer in self.head_layers.items()},
            "auxiliary_outputs": dict(self.auxiliary_outputs),
            "member_outputs": self.member_outputs,
            "decision_thresholds": self.decision_thresholds,
        })
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
