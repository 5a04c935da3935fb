"""The Dynamic Attention Unit (DAU), eq. 1 of the paper."""

import keras
from keras import ops

from hgfn_keras.fusion.masked_softmax import masked_softmax
from hgfn_keras.utils.arguments import positive_int


@keras.saving.register_keras_serializable(package="hgfn_keras")
class DynamicAttentionUnit(keras.layers.Layer):
    """Per-sample importance weights of the M modalities (eq. 1).

    w_1 ⊕ ... ⊕ w_M = DAU(V_1 ⊕ ... ⊕ V_M): the aligned vectors are stacked as a
    one-channel (M, D) image per sample; a 5x5 Conv2D ('same') with LeakyReLU and
    a 1x1 Conv2D to one channel with LeakyReLU score every position; the mean over
    D gives one score per modality, and a softmax over the present modalities
    gives the weights (docs/DESIGN.md, "HGFN (paper III-B)", item 2). A masked-out
    modality gets weight 0.

    Args:
        filters: channels of the 5x5 convolution (the paper does not say; 8).
        kernel_size: the first convolution's kernel (5, as in the paper).
        negative_slope: the LeakyReLU slope (Keras' default 0.3).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: the aligned vectors `[batch, M, D]`.
        modality_mask: optional `[batch, M]`, 1 where the modality is present.

    Returns:
        Weights `[batch, M]`, non-negative, summing to 1 over present modalities.

    >>> import numpy as np
    >>> dau = DynamicAttentionUnit()
    >>> w = dau(np.random.rand(4, 3, 8).astype("float32"))
    >>> np.allclose(np.asarray(w).sum(axis=1), 1.0, atol=1e-6)
    True

    Reference: Wang & Chen, "Hierarchical Multimodal Fusion Network with Dynamic
    Multi-task Learning", III-B, eq. 1.
    """

    def __init__(self, filters=8, kernel_size=5, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int("filters", filters)
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.negative_slope = negative_slope

    def build(self, input_shape):
        _, m, d = input_shape
        self.conv_5x5 = keras.layers.Conv2D(
            self.filters, self.kernel_size, padding="same", name="conv_5x5",
            dtype=self.dtype_policy,
        )
        self.conv_5x5.build((None, m, d, 1))
        self.conv_1x1 = keras.layers.Conv2D(1, 1, name="conv_1x1", dtype=self.dtype_policy)
        self.conv_1x1.build((None, m, d, self.filters))

    def call(self, inputs, modality_mask=None):
        x = ops.expand_dims(inputs, -1)  # (batch, M, D, 1): one image per sample
        x = ops.leaky_relu(self.conv_5x5(x), self.negative_slope)
        x = ops.leaky_relu(self.conv_1x1(x), self.negative_slope)
        scores = ops.mean(ops.squeeze(x, -1), axis=-1)  # (batch, M)
        return masked_softmax(scores, modality_mask)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "negative_slope": self.negative_slope,
            }
        )
        return config
