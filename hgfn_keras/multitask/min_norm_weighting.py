"""MGDA-UB (Sener & Koltun 2018): the paper's MOO baseline."""

import keras
import tensorflow as tf
from keras import ops

from hgfn_keras.multitask.task_weighting import TaskWeighting
from hgfn_keras.utils import distribute
from hgfn_keras.utils.arguments import positive_int


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

    At every step, before the backward pass, `compute_gradients` takes the
    gradient of each task's loss with respect to the fused representation Z (the
    shared representation's upper bound, "UB") in one vectorised Jacobian call,
    takes their Gram matrix, finds the min-norm convex combination α with
    `min_norm_weights`, and sets w_f = T · α_f (so that the weights sum to T like
    every other weighting). The step's update is then Σ_f w_f ∇L_f.

    Args:
        iterations: Frank–Wolfe steps at most (250, as Sener & Koltun's code).
        **kwargs: standard `keras.layers.Layer` arguments.

    Reference: Sener & Koltun, "Multi-Task Learning as Multi-Objective
    Optimization", NeurIPS 2018.
    """

    needs_fused_representation = True

    def __init__(self, iterations=250, **kwargs):
        super().__init__(**kwargs)
        self.iterations = positive_int("iterations", iterations)

    @property
    def persistent_tape(self):
        return True  # a Jacobian, then the backward pass

    def check_model(self, model):
        if model.fusion_layer is None:
            raise ValueError(
                "MinNormWeighting (MGDA-UB) takes the task gradients w.r.t. the fused "
                "representation: the model needs its fusion layer (`build_model` keeps "
                "it; pass `fusion_layer=` to a hand-built `MultiTaskModel`).")

    def set_from_representation_gradients(self, jacobian):
        """Sets w_f = T · α_f from the `[T, batch, width]` task gradients w.r.t. Z."""
        flat = tf.reshape(tf.cast(jacobian, tf.float32), (self.num_tasks, -1))
        # The Gram matrix sums over samples, so under tf.distribute the global one is
        # the replicas' sum (up to a constant factor, which leaves α unchanged): every
        # replica then finds the same α.
        gram = distribute.replica_sum(tf.matmul(flat, flat, transpose_b=True))
        alpha = min_norm_weights(gram, self.iterations)
        self.task_weights.assign(alpha * float(self.num_tasks))
        return self.task_weights

    def compute_gradients(self, tape, objective, task_losses, variables, model, fused=None):
        """The T task gradients w.r.t. Z in one vectorised call give the weights;
        the update is then Σ_f w_f ∇L_f, through `output_gradients`."""
        jacobian = tape.jacobian(task_losses, fused, experimental_use_pfor=True)
        weights = ops.cast(self.set_from_representation_gradients(jacobian), task_losses.dtype)
        total = ops.sum(weights * task_losses)
        targets = [task_losses]
        seeds = [model.scale_loss(distribute.scale_for_replicas(weights))]
        if model.losses:
            targets.append(ops.sum(model.losses))
            seeds.append(model.scale_loss(distribute.scale_for_replicas(
                ops.ones_like(targets[-1]))))
        return tape.gradient(targets, variables, output_gradients=seeds), total, None

    def get_config(self):
        config = super().get_config()
        config.update({"iterations": self.iterations})
        return config
