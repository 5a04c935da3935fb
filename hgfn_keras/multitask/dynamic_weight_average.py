"""Dynamic Weight Average (Liu et al. 2019): a baseline beyond the paper."""

import keras
from keras import ops

from hgfn_keras.multitask.task_weighting import TaskWeighting
from hgfn_keras.utils.arguments import number


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
        self.temperature = number("temperature", temperature, minimum=0,
                                  exclusive_minimum=True)

    def build(self, input_shape):
        super().build(input_shape)
        self.previous_losses = self.add_weight(shape=(self.num_tasks,), initializer="zeros",
                                               trainable=False, name="previous_losses")

    def end_epoch(self, validation_losses=None):
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
