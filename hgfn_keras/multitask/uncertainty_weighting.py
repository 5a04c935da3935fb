"""Homoscedastic-uncertainty weighting (Kendall et al. 2018): a baseline beyond the paper."""

import keras
from keras import ops

from hgfn_keras.multitask.task_weighting import TaskWeighting


@keras.saving.register_keras_serializable(package="hgfn_keras")
class UncertaintyWeighting(TaskWeighting):
    """Homoscedastic-uncertainty weighting (Kendall et al. 2018): a baseline beyond the paper.

    Learns s_f = log σ_f² with the network: the training loss is
    Σ_f exp(−s_f) L_f + s_f. The s_f are trainable variables of this layer (the
    main optimizer updates them); `task_weights` shows exp(−s_f) after each step.

    Reference: Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to
    Weigh Losses", CVPR 2018.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.log_variances = self.add_weight(shape=(self.num_tasks,), initializer="zeros",
                                             trainable=True, name="log_variances")

    def call(self, task_losses):
        s = ops.cast(self.log_variances, task_losses.dtype)
        return ops.sum(ops.exp(-s) * task_losses + s)

    def update(self, task_losses, gradient_norms=None):
        self.task_weights.assign(ops.exp(-self.log_variances))
        super().update(task_losses)
