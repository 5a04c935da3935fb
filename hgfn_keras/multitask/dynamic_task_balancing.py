"""DMTL's task level: dynamic task balancing (TDB, eq. 11) and the epoch-end re-balancing."""

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from hgfn_keras.multitask.task_weighting import TaskWeighting
from hgfn_keras.utils.arguments import is_number, number
from hgfn_keras.utils.distribute import (
    STATE_AGGREGATION,
    replica_sum,
    scale_for_replicas,
)

GRAD_NORM_LAYERS = ("task", "shared")
#: What the epoch-end re-balancing reads: the epoch's mean training losses (the
#: paper) or the validation losses Keras computed at the epoch's end.
REBALANCE_ON = ("train", "validation")
#: TDB's default SGD step η (on the normalised step), chosen on the validation
#: splits of scene, human and the embedded reviews (3 seeds each; docs/RESULTS.md).
DEFAULT_TDB_LEARNING_RATE = 0.02
_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="hgfn_keras")
class DynamicTaskBalancing(TaskWeighting):
    """Task weights that follow each task's training rate (paper III-C, eq. 11).

    After every step, with L_f the task losses, w_f the weights (positive,
    summing to T) and W the weights the gradient norms are taken on:

    - G_f = ‖∇_W (w_f L_f)‖₂ and Ḡ = mean_f G_f;
    - L̃_f = L_f(t) / L_f(0) and r_f = L̃_f / mean(L̃) (the inverse training rate);
    - L_TDB = Σ_f (N / n_f) |G_f − Ḡ · r_f^α|, with the target Ḡ · r_f^α held
      constant;
    - w ← w − η ∇_w L_TDB by the weights' own optimizer, then the weights are made
      positive and renormalised to sum to T.

    A task that trains slowly (large r_f) gets a larger target and so a larger
    weight; the inverted sample ratio N / n_f makes rare tasks count more. With
    `grad_norm_layer="task"` (default, the paper's "last task-specific layer"),
    G_f = w_f ‖∇_{W_f} L_f‖ comes out of the ordinary backward pass at no extra
    cost; `"shared"` takes GradNorm's last shared layer instead, whose per-task
    gradients `compute_gradients` takes in one batched Jacobian call. The model's
    handles (`head_layers`, `shared_layer`) name those layers.

    Design choices (docs/DESIGN.md, "DMTL (paper III-C)", "Task level: TDB
    (eq. 11)"): the weights' optimizer defaults to plain SGD, because Adam
    divides each coordinate by its own gradient scale and would cancel the
    per-task constant N / n_f; L_f(0) is each task's loss at the first step in
    which it is not 0; n_f is the count of the task's rarest class (for a binary
    task the smaller of positives and negatives: the paper's "positive samples"
    are the rare side in its data); n_f = 0 is counted as 1 (with a warning), so
    the ratio stays finite.

    At each epoch's end (`end_epoch`, called by the model's `TaskRebalancing`
    callback) the weights are re-balanced: with ā_f the epoch's mean unweighted
    training loss of task f divided by its chance loss c_f (the loss of a uniform
    prediction, log K for β = 0) and s_f = max_g ā_g / ā_f, the next epoch starts
    from w_f = T · s_f / Σ_g s_g, and TDB moves them from there during the epoch.
    With binary tasks only (the paper's concept tasks) every c_f is the same and
    s_f is the paper's; with tasks of different class counts, dividing by c_f
    keeps a K-class task's structurally larger cross-entropy from being taken for
    a hard task (docs/DESIGN.md, "Re-balancing"). The
    weights are *reset*, never multiplied by s_f: the paper's unit "assigns a set
    of initial task loss weights at the beginning of the training cycles", and a
    product over epochs (w_f ∝ Π 1/ā_f) would switch off every task but the
    easiest. No training step runs between an epoch's end and the next one's
    start, so setting them at the end is the same as at the start.

    Args:
        alpha: α of eq. 11 (1, as in the paper).
        learning_rate: the weights' SGD learning rate η (used when `optimizer` is
            None). 0.02 on the normalised step: at 1e-4 TDB moved the weights by
            0.002 in an epoch (no effect); at 0.1 it swung them by up to 0.8
            within an epoch and full DMTL was at or below LSEW on all three
            development sets; 0.02 had the better validation F1 on all three
            (scene 0.736 / 0.732, human 0.111 / 0.081, embedded reviews 0.655 /
            0.648, 3 seeds).
        grad_norm_layer: `"task"` (default) or `"shared"`.
        rebalance: apply the epoch-end re-balancing (True).
        rebalance_on: the losses ā_f the re-balancing reads: `"train"` (the
            paper: the epoch's mean training losses) or `"validation"` (each
            task's validation loss at the epoch's end, `val_<task>_loss` in
            Keras' logs). On training losses a task the model has already fitted
            (near-zero training loss) gets the largest weight and is pushed
            further into overfitting; its validation loss does not fall that way.
            Without validation data the training losses are used.
        max_weight_ratio: None (the paper) or a number >= 1 that caps each
            s_f = max_g ā_g / ā_f, so that the re-balanced weights of two tasks
            differ by at most this factor (before TDB moves them).
        min_weight: the floor that keeps the weights positive before
            renormalising.
        optimizer: optional Keras optimizer for the weights (default plain SGD).
        use_sample_ratios: weigh each task's term by N / n_f (True, the paper);
            False gives every task the factor 1 (GradNorm).
        tdb: move the weights after every step by eq. 11 (True); False keeps
            only the epoch-end re-balancing (an ablation).
        normalize_losses: divide each task's mean loss by its chance loss
            before the re-balancing (True); False compares the raw losses.
            Without effect when every task has the same number of classes.
        normalize_step: divide the step by the mean of N / n_f (True), so that
            η means the same on data with rare and with common labels; the
            ratios between the tasks' factors N / n_f, which are what the paper
            uses them for, are unchanged.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np, keras
    >>> from hgfn_keras import Modality, Task, build_model
    >>> model = build_model([Modality("a", width=4), Modality("b", width=3)],
    ...                     [Task("t1", 2), Task("t2", 3)], mtl="dmtl",
    ...                     mtl_kwargs={"alpha": 1.0, "learning_rate": 1e-3})
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> x = {"a": np.random.rand(32, 4), "b": np.random.rand(32, 3)}
    >>> y = {"t1": np.random.randint(0, 2, 32), "t2": np.random.randint(0, 3, 32)}
    >>> _ = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    >>> w = model.task_weights.numpy()
    >>> bool(np.all(w > 0)), round(float(w.sum()), 4)
    (True, 2.0)

    Reference: Wang & Chen, III-C, eq. 11; Chen et al., "GradNorm", ICML 2018.
    """

    def __init__(self, alpha=1.0, learning_rate=DEFAULT_TDB_LEARNING_RATE, grad_norm_layer="task",
                 rebalance=True, min_weight=1e-3, optimizer=None, use_sample_ratios=True, tdb=True,
                 normalize_step=True, normalize_losses=True, rebalance_on="train",
                 max_weight_ratio=None, **kwargs):
        super().__init__(**kwargs)
        number("alpha", alpha, minimum=0)
        if not is_number(learning_rate) or not learning_rate > 0:
            raise ValueError(
                f"`learning_rate` must be a positive number. Received: learning_rate={learning_rate!r}"
            )
        if grad_norm_layer not in GRAD_NORM_LAYERS:
            raise ValueError(
                f"`grad_norm_layer` must be one of {GRAD_NORM_LAYERS}. "
                f"Received: grad_norm_layer={grad_norm_layer!r}"
            )
        if rebalance_on not in REBALANCE_ON:
            raise ValueError(f"`rebalance_on` must be one of {REBALANCE_ON}. "
                             f"Received: rebalance_on={rebalance_on!r}")
        if max_weight_ratio is not None and (
                not is_number(max_weight_ratio) or not max_weight_ratio >= 1):
            raise ValueError("`max_weight_ratio` must be None or a number >= 1. "
                             f"Received: max_weight_ratio={max_weight_ratio!r}")
        if not 0 < min_weight < 1:
            raise ValueError(f"`min_weight` must be in (0, 1). Received: min_weight={min_weight!r}")
        self.alpha = float(alpha)
        self.learning_rate = float(learning_rate)
        self.grad_norm_layer = grad_norm_layer
        self.rebalance = bool(rebalance)
        self.rebalance_on = rebalance_on
        self.max_weight_ratio = None if max_weight_ratio is None else float(max_weight_ratio)
        self.min_weight = float(min_weight)
        self.use_sample_ratios = bool(use_sample_ratios)
        self.tdb = bool(tdb)
        self.normalize_step = bool(normalize_step)
        self.normalize_losses = bool(normalize_losses)
        self.weight_optimizer = optimizer or keras.optimizers.SGD(learning_rate=self.learning_rate)

    def build(self, input_shape):
        super().build(input_shape)
        t = self.num_tasks
        self.sample_ratios = self.add_weight(
            shape=(t,), initializer="ones", trainable=False, name="sample_ratios",
            aggregation=STATE_AGGREGATION,
        )  # N / n_f
        self.initial_losses = self.add_weight(  # L_f(0)
            shape=(t,), initializer="zeros", trainable=False, name="initial_losses",
            aggregation=STATE_AGGREGATION)
        # c_f: derived from the tasks (the model sets it), so a constant, not saved state.
        self.chance_losses = np.ones((t,), "float32")
        self.weight_optimizer.build([self.task_weights])

    @property
    def persistent_tape(self):
        # "shared": a Jacobian on top of the ordinary backward pass.
        return self.grad_norm_layer == "shared"

    def check_model(self, model):
        if self.grad_norm_layer == "shared" and model.shared_layer is None:
            raise ValueError(
                f"{type(self).__name__} with grad_norm_layer='shared' takes the gradient "
                "norms on the last shared layer, a Dense between the fusion and the task "
                "heads: build the model with `shared_units` (or pass `shared_layer=` to "
                "`MultiTaskModel`).")
        if self.grad_norm_layer == "task":
            model.require_head_layers(f"{type(self).__name__} (grad_norm_layer='task')")

    def compute_gradients(self, tape, objective, task_losses, variables, model, fused=None):
        """The ordinary backward pass, and G_f = ‖∇_W (w_f L_f)‖ for `update`."""
        if self.grad_norm_layer == "shared":
            with tape:  # recorded on the same (persistent) tape as the forward pass
                weighted = scale_for_replicas(
                    ops.cast(self.task_weights, task_losses.dtype) * task_losses)
            gradients = tape.gradient(objective, variables)
            # All T per-task gradients on the shared kernel in one vectorised call.
            jacobian = tape.jacobian(weighted, model.shared_layer.kernel,
                                     experimental_use_pfor=True)
            # The replicas' sum: the gradients of the global batch's mean losses.
            jacobian = replica_sum(jacobian)
            norms = tf.norm(tf.reshape(jacobian, (self.num_tasks, -1)), axis=1)
            return gradients, None, norms
        gradients = tape.gradient(objective, variables)
        # ∇_{W_f} Σ_g w_g L_g = w_f ∇_{W_f} L_f: G_f comes from the one backward pass.
        index = {id(v): i for i, v in enumerate(variables)}
        norms = ops.stack([
            tf.norm(model.unscale(replica_sum(gradients[index[id(head.kernel)]])))
            for head in (model.head_layers[n] for n in model.loss_names)])
        return gradients, None, norms

    def set_task_counts(self, num_samples, positives, task_names=None):
        """Sets N / n_f from the training labels (see `task_counts`)."""
        if not self.use_sample_ratios:
            return
        positives = np.asarray(positives, "float64")
        if positives.shape != (self.num_tasks,):
            raise ValueError(
                f"`positives` must hold one count per task ({self.num_tasks}). "
                f"Received: {positives.tolist()}"
            )
        names = task_names or [f"task {i}" for i in range(self.num_tasks)]
        for name, count in zip(names, positives):
            if count <= 0:
                warnings.warn(
                    f"Task {name!r} has a class with no training label (n_f = 0, the "
                    "count of its rarest class): DMTL counts it as 1 so that N / n_f "
                    "stays finite.",
                    stacklevel=3,
                )
        self.sample_ratios.assign(float(num_samples) / np.maximum(positives, 1.0))

    def _normalise(self, weights):
        weights = ops.maximum(weights, self.min_weight)
        return weights * (self.num_tasks / ops.sum(weights))

    def tdb_loss(self, weights, unweighted_norms, task_losses):
        """L_TDB of eq. 11 as a function of the weights (the rest held constant)."""
        initial = ops.where(self.initial_losses > 0, self.initial_losses, task_losses)
        inverse_rate = task_losses / ops.maximum(initial, _EPSILON)  # L̃_f
        rate = inverse_rate / ops.maximum(ops.mean(inverse_rate), _EPSILON)  # r_f
        norms = weights * unweighted_norms  # G_f
        target = ops.stop_gradient(ops.mean(norms) * rate**self.alpha)  # Ḡ r_f^α
        return ops.sum(self.sample_ratios * ops.abs(norms - target))

    def update(self, task_losses, gradient_norms=None):
        task_losses = ops.stop_gradient(ops.cast(task_losses, "float32"))
        norms = ops.stop_gradient(ops.cast(gradient_norms, "float32"))
        unweighted = norms / ops.maximum(self.task_weights, _EPSILON)  # ‖∇_W L_f‖
        weights = self.task_weights.value
        with tf.GradientTape() as tape:
            tape.watch(weights)
            loss = self.tdb_loss(weights, unweighted, task_losses)
        # The inputs were reduced across replicas, so every replica has this same
        # gradient; the optimizer sums the replicas' gradients, hence the scaling.
        gradient = scale_for_replicas(tape.gradient(loss, weights))
        if self.normalize_step:
            gradient = gradient / ops.maximum(ops.mean(self.sample_ratios), _EPSILON)
        if self.tdb:
            self.weight_optimizer.apply([gradient], [self.task_weights])
            self.task_weights.assign(self._normalise(self.task_weights))
        self.initial_losses.assign(
            ops.where(self.initial_losses > 0, self.initial_losses, task_losses))
        super().update(task_losses)
        return loss

    def set_chance_losses(self, losses):
        """Sets c_f, each task's chance loss (`task_loss.chance_loss`)."""
        losses = np.asarray(losses, "float32").reshape(-1)
        if losses.shape != (self.num_tasks,) or not np.all(losses > 0):
            raise ValueError(f"Expected {self.num_tasks} positive chance losses. "
                             f"Received: {losses.tolist()}")
        self.chance_losses = losses

    def loss_references(self):
        """c_f when `normalize_losses`, else ones."""
        return self.chance_losses if self.normalize_losses else super().loss_references()

    def rebalancing_losses(self, validation_losses=None):
        """The losses ā_f the re-balancing reads, `[T]`: `validation_losses` with
        `rebalance_on="validation"` when they are given, else the epoch's mean
        training losses."""
        if self.rebalance_on == "validation" and validation_losses is not None:
            return ops.convert_to_tensor(np.asarray(validation_losses, "float32"))
        return self.epoch_mean_losses()

    def rebalancing_scalars(self, validation_losses=None):
        """s_f = max_g ā_g / ā_f from the losses ā_f (`rebalancing_losses`), each
        divided by its chance loss c_f when `normalize_losses`."""
        losses = self.rebalancing_losses(validation_losses)
        mean_losses = ops.maximum(losses / self.loss_references(), _EPSILON)
        scalars = ops.max(mean_losses) / mean_losses
        if self.max_weight_ratio is not None:
            scalars = ops.minimum(scalars, self.max_weight_ratio)
        return scalars

    def rebalanced_weights(self, validation_losses=None):
        """The next epoch's initial weights w_f = T · s_f / Σ_g s_g (floored at
        `min_weight`, then summing to T)."""
        scalars = self.rebalancing_scalars(validation_losses)
        return self._normalise(self.num_tasks * scalars / ops.sum(scalars))

    def end_epoch(self, validation_losses=None):
        if self.rebalance and float(ops.convert_to_numpy(self.epoch_steps)) > 0:
            self.task_weights.assign(self.rebalanced_weights(validation_losses))
        return super().end_epoch()

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha": self.alpha,
                "learning_rate": self.learning_rate,
                "grad_norm_layer": self.grad_norm_layer,
                "rebalance": self.rebalance,
                "rebalance_on": self.rebalance_on,
                "max_weight_ratio": self.max_weight_ratio,
                "min_weight": self.min_weight,
                "optimizer": keras.optimizers.serialize(self.weight_optimizer),
                "use_sample_ratios": self.use_sample_ratios,
                "tdb": self.tdb,
                "normalize_step": self.normalize_step,
                "normalize_losses": self.normalize_losses,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("optimizer") is not None:
            config["optimizer"] = keras.optimizers.deserialize(config["optimizer"])
        return cls(**config)
