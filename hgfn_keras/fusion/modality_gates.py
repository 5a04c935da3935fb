"""Per-modality sigmoid gates: the GFN preset's unimodal weights."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hgfn_keras")
class ModalityGates(keras.layers.Layer):
    """w_i = sigmoid(a_i · V_i + b_i), one linear unit per modality.

    Graph Fusion Network (Mai et al. 2020) weighs each unimodal vertex with its
    own sigmoid(Linear) score, not normalised across modalities; the HGFN paper
    replaces it by the `DynamicAttentionUnit`. A masked modality gets weight 0.

    Call arguments:
        inputs: the aligned vectors `[batch, M, D]`.
        modality_mask: optional `[batch, M]`.

    Returns:
        `[batch, M]` in (0, 1).

    >>> import numpy as np
    >>> tuple(ModalityGates()(np.ones((2, 3, 4), "float32")).shape)
    (2, 3)
    """

    def build(self, input_shape):
        _, m, d = input_shape
        self.kernel = self.add_weight(shape=(m, d), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(m,), initializer="zeros", name="bias")

    def call(self, inputs, modality_mask=None):
        gates = ops.sigmoid(ops.sum(inputs * self.kernel, axis=-1) + self.bias)
        if modality_mask is not None:
            gates = gates * ops.cast(modality_mask, gates.dtype)
        return gates

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2])
