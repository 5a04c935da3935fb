"""Fast Adaptive Multitask Optimization (Liu et al. 2023): a baseline beyond the paper."""

import keras
from keras import ops

from hgfn_keras.utils.arguments import number
from hgfn_keras.utils.distribute import STATE_AGGREGATION
from hgfn_keras.multitask.task_weighting import TaskWeighting


@keras.saving.register_keras_serializable(package="hgfn_keras")
class FastAdaptiveMultitaskOptimization(TaskWeighting):
    """FAMO (Liu et al. 2023): weights that make every task's log loss fall alike.

    Task logits ξ (zeros at first) give z = softmax(ξ). Each step descends
    Σ_f z_f log(L_f + ε) scaled by c = (Σ_f z_f / (L_f + ε))⁻¹, i.e. the task
    losses with the weights w_f = c · z_f / (L_f + ε) (no gradient through them):
    one backward pass, no per-task gradients. Kept at the package's convention
    (`TaskWeighting`: equal weights are all 1, the weights sum to T), the weights
    are T · c · z_f / (L_f + ε); they are the `task_weights` of the step.

    After a step the logits move against the tasks whose log loss fell most
    (Algorithm 1 of the paper): with δ_f = log(L_f(t−1) + ε) − log(L_f(t) + ε),
    ξ ← ξ − β (Jᵀ δ + γ ξ), J = ∂z/∂ξ = diag(z) − z zᵀ, β = `learning_rate`, γ =
    `decay`. The paper measures L(t) on the step's own batch after the update (a
    second forward pass); here, to keep the step at equal weights' cost, δ
    compares the losses of consecutive steps (each on its own batch), so ξ lags
    one step; the first step of a run leaves ξ as it is. The paper's update is
    the gradient step written here; its code steps ξ with Adam (same β and γ).
    A task whose loss is 0 in a step (no labelled row in the batch) gets weight 0
    there and δ_f = 0.

    Args:
        learning_rate: β, the step size of the logits (0.025, the paper's).
        decay: γ, the logits' weight decay (0.01, the paper's).
        epsilon: ε added to every loss before its log and its inverse.

    Reference: Liu, Feng, Stone & Liu, "FAMO: Fast Adaptive Multitask
    Optimization", NeurIPS 2023.

    >>> import numpy as np
    >>> famo = FastAdaptiveMultitaskOptimization()
    >>> famo.build((2,))
    >>> float(famo(np.array([1.0, 3.0], "float32")))  # 2 · (1/2 + 1/6)⁻¹ · (1/2 + 1/2)
    3.0
    """

    def __init__(self, learning_rate=0.025, decay=0.01, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.learning_rate = number("learning_rate", learning_rate, minimum=0)
        self.decay = number("decay", decay, minimum=0)
        self.epsilon = number("epsilon", epsilon, minimum=0, exclusive_minimum=True)

    def build(self, input_shape):
        super().build(input_shape)
        state = dict(shape=(self.num_tasks,), initializer="zeros", trainable=False,
                     aggregation=STATE_AGGREGATION)
        self.logits = self.add_weight(name="logits", **state)
        self.previous_losses = self.add_weight(name="previous_losses", **state)
        self.has_previous = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                            name="has_previous",
                                            aggregation=STATE_AGGREGATION)

    def weights_for(self, task_losses):
        """The step's weights T · c · z_f / (L_f + ε) of `task_losses` `[T]` (0 where L_f is 0)."""
        losses = ops.cast(ops.stop_gradient(task_losses), "float32")
        z = ops.softmax(self.logits, axis=-1)
        inverse = ops.where(losses > 0, z / (losses + self.epsilon), 0.0)
        total = ops.sum(inverse)
        return ops.where(total > 0, self.num_tasks * inverse / ops.maximum(total, 1e-30),
                         ops.ones_like(inverse))

    def call(self, task_losses):
        weights = ops.cast(self.weights_for(task_losses), task_losses.dtype)
        return ops.sum(weights * task_losses)

    def update(self, task_losses, gradient_norms=None):
        losses = ops.cast(task_losses, "float32")
        self.task_weights.assign(self.weights_for(losses))  # the weights this step used
        previous = self.previous_losses
        present = ops.logical_and(losses > 0, previous > 0)
        delta = ops.where(present, ops.log(previous + self.epsilon)
                          - ops.log(losses + self.epsilon), 0.0)
        delta = delta * self.has_previous
        z = ops.softmax(self.logits, axis=-1)
        # Jᵀ δ with J = diag(z) − z zᵀ (symmetric): z ⊙ (δ − z·δ).
        direction = z * (delta - ops.sum(z * delta))
        step = self.learning_rate * (direction + self.decay * self.logits)
        self.logits.assign(self.logits - step * self.has_previous)
        self.previous_losses.assign(losses)
        self.has_previous.assign(1.0)
        super().update(task_losses)

    def get_config(self):
        config = super().get_config()
        config.update({"learning_rate": self.learning_rate, "decay": self.decay,
                       "epsilon": self.epsilon})
        return config
