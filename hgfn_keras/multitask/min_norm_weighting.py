"""MGDA-UB (Sener & Koltun 2018): the paper's MOO baseline."""

import keras
import tensorflow as tf
from keras import ops

from hgfn_keras import distribute
from hgfn_keras.multitask.task_weighting import TaskWeighting


def min_norm_weights(gram, iterations=250, tolerance=1e-9):
    """The convex combination of task gradients with the smallest norm.

    Solves min_{α ∈ simplex} αᵀ K α for the Gram matrix K = [g_s · g_t] by
    Frank–Wolfe with exact line search, as Sener & Koltun do (their Algorithm 2
    is the two-task line search that each step here solves), with away steps:
    each iteration either moves towards the vertex e_s with the smallest (K α)_s
    or away from the vertex in α's support with the largest, whichever descends
    more. Plain Frank–Wolfe creeps towards an optimum on a face of the simplex;
    the away steps reach it, which the brute-force test checks.

    Args:
        gram: `[T, T]` Gram matrix of the task gradients.
        iterations: at most this many steps.
        tolerance: stop when a step changes α by less than this.

    Returns:
        α `[T]`: non-negative, summing to 1.

    >>> import numpy as np
    >>> [round(float(a), 4) for a in min_norm_weights(np.array([[1.0, 0.0], [0.0, 4.0]]))]
    [0.8, 0.2]
    """
    gram = tf.cast(tf.convert_to_tensor(gram), tf.float64)  # the line search divides small numbers
    t = tf.shape(gram)[0]
    alpha = tf.fill([t], 1.0 / tf.cast(t, tf.float64))

    def step(i, alpha, change):
        k_alpha = tf.linalg.matvec(gram, alpha)  # half the gradient of αᵀKα
        toward = tf.argmin(k_alpha, output_type=tf.int32)
        in_support = alpha > 1e-12
        away = tf.argmax(tf.where(in_support, k_alpha, -tf.float64.max), output_type=tf.int32)
        toward_gain = tf.tensordot(k_alpha, alpha, 1) - k_alpha[toward]  # −∇·d_FW / 2
        away_gain = k_alpha[away] - tf.tensordot(k_alpha, alpha, 1)  # −∇·d_A / 2
        use_away = away_gain > toward_gain
        e_toward = tf.one_hot(toward, t, dtype=tf.float64)
        e_away = tf.one_hot(away, t, dtype=tf.float64)
        direction = tf.where(use_away, alpha - e_away, e_toward - alpha)
        alpha_away = alpha[away]
        max_step = tf.where(use_away, alpha_away / tf.maximum(1.0 - alpha_away, 1e-12), 1.0)
        curvature = tf.tensordot(direction, tf.linalg.matvec(gram, direction), 1)
        slope = tf.tensordot(k_alpha, direction, 1)
        gamma = tf.where(curvature > 1e-20, -slope / tf.maximum(curvature, 1e-20), max_step)
        gamma = tf.clip_by_value(gamma, 0.0, max_step)
        new = tf.maximum(alpha + gamma * direction, 0.0)
        new = new / tf.reduce_sum(new)
        return i + 1, new, tf.reduce_max(tf.abs(new - alpha))

    _, alpha, _ = tf.while_loop(
        lambda i, alpha, change: tf.logical_and(i < iterations, change > tolerance),
        step, (tf.constant(0), alpha, tf.constant(1.0, tf.float64)),
    )
    return tf.cast(alpha, tf.float32)


@keras.saving.register_keras_serializable(package="hgfn_keras")
class MinNormWeighting(TaskWeighting):
    """MGDA-UB: task weights from the min-norm point of the task gradients (MOO).

    At every step, before the backward pass, the model computes the gradient of
    each task's loss with respect to the fused representation Z (the shared
    representation's upper bound, "UB") in one vectorised Jacobian call; this
    layer takes their Gram matrix, finds the min-norm convex combination α with
    `min_norm_weights`, and sets w_f = T · α_f (so that the weights sum to T like
    every other weighting). The step's update is then Σ_f w_f ∇L_f.

    Args:
        iterations: Frank–Wolfe steps at most (250, as Sener & Koltun's code).
        **kwargs: standard `keras.layers.Layer` arguments.

    Reference: Sener & Koltun, "Multi-Task Learning as Multi-Objective
    Optimization", NeurIPS 2018.
    """

    needs_representation_gradients = True

    def __init__(self, iterations=250, **kwargs):
        super().__init__(**kwargs)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(
                f"`iterations` must be a positive integer. Received: iterations={iterations!r}"
            )
        self.iterations = iterations

    def set_from_representation_gradients(self, jacobian):
        flat = tf.reshape(tf.cast(jacobian, tf.float32), (self.num_tasks, -1))
        # The Gram matrix sums over samples, so under tf.distribute the global one is
        # the replicas' sum (up to a constant factor, which leaves α unchanged): every
        # replica then finds the same α.
        gram = distribute.replica_sum(tf.matmul(flat, flat, transpose_b=True))
        alpha = min_norm_weights(gram, self.iterations)
        self.task_weights.assign(alpha * float(self.num_tasks))
        return self.task_weights

    def get_config(self):
        config = super().get_config()
        config.update({"iterations": self.iterations})
        return config


@keras.saving.register_keras_serializable(package="hgfn_keras")
class UncertaintyWeighting(TaskWeighting):
    """Homoscedastic-uncertainty weighting (Kendall et al. 2018): a baseline beyond the paper.

    Learns s_f = log σ_f² with the network: the training loss is
    Σ_f exp(−s_f) L_f + s_f. The s_f are trainable variables of this layer (the
    main optimizer updates them); `task_weights` shows exp(−s_f) after each step.

    Reference: Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to
    Weigh Losses", CVPR 2018.
    """

    def build_state(self):
        self.log_variances = self.add_weight(shape=(self.num_tasks,), initializer="zeros",
                                             trainable=True, name="log_variances")

    def call(self, task_losses):
        s = ops.cast(self.log_variances, task_losses.dtype)
        return ops.sum(ops.exp(-s) * task_losses + s)

    def update(self, task_losses, gradient_norms=None):
        self.task_weights.assign(ops.exp(-self.log_variances))
        super().update(task_losses)


@keras.saving.register_keras_serializable(package="hgfn_keras")
class DynamicWeightAverage(TaskWeighting):
    """Dynamic Weight Average (Liu et al. 2019): a baseline beyond the paper.

    At each epoch's end, with ā_f(e) the epoch's mean loss of task f,
    r_f = ā_f(e) / ā_f(e − 1) and w_f = T · softmax(r / temperature)_f for the next
    epoch; the first two epochs use w_f = 1.

    Args:
        temperature: the softmax temperature (2, as in the paper).

    Reference: Liu, Johns & Davison, "End-to-End Multi-Task Learning with
    Attention", CVPR 2019.
    """

    def __init__(self, temperature=2.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(
                f"`temperature` must be positive. Received: temperature={temperature!r}")
        self.temperature = float(temperature)

    def build_state(self):
        self.previous_losses = self.add_weight(shape=(self.num_tasks,), initializer="zeros",
                                               trainable=False, name="previous_losses")

    def end_epoch(self):
        current = self.epoch_mean_losses()
        if float(ops.convert_to_numpy(ops.min(self.previous_losses))) > 0:
            rate = current / self.previous_losses
            self.task_weights.assign(
                self.num_tasks * ops.softmax(rate / self.temperature, axis=-1))
        if float(ops.convert_to_numpy(self.epoch_steps)) > 0:
            self.previous_losses.assign(ops.maximum(current, 1e-8))
        return super().end_epoch()

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config
