"""CFC: concatenate, then Dense (the paper's simplest baseline, IV-C)."""

import keras
from keras import ops

from hgfn_keras.fusion.base import Fusion
from hgfn_keras.utils.arguments import positive_int


@keras.saving.register_keras_serializable(package="hgfn_keras")
class ConcatFusion(Fusion):
    """Fuse by concatenation (CFC): Dense(units)(V_1 ⊕ ... ⊕ V_M).

    A masked-out modality is zeroed before the concatenation, so it contributes
    nothing but the Dense bias.

    Args:
        units: the fused width (128).
        activation: the Dense activation (`"relu"`).
        modality_names: optional modality names, in order (see `Fusion`).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a dict `{modality name: [batch, width]}` or a list of M tensors.
        modality_mask: optional `[batch, M]`, 1 where the modality is present.

    Returns:
        `[batch, units]`.

    >>> import numpy as np
    >>> fusion = ConcatFusion(units=16)
    >>> tuple(fusion([np.ones((2, 3)), np.ones((2, 5))]).shape)
    (2, 16)
    """

    def __init__(self, units=128, activation="relu", modality_names=None, **kwargs):
        super().__init__(modality_names=modality_names, **kwargs)
        self.units = positive_int("units", units)
        self.activation = keras.activations.serialize(keras.activations.get(activation))

    def build_fusion(self, widths):
        self.dense = keras.layers.Dense(
            self.units, activation=self.activation, name="dense", dtype=self.dtype_policy
        )
        self.dense.build((None, sum(widths)))

    def call(self, inputs, modality_mask=None):
        vectors, mask = self._check_call(inputs, modality_mask)
        if mask is not None:
            vectors = [v * mask[:, i : i + 1] for i, v in enumerate(vectors)]
        return self.dense(ops.concatenate(vectors, axis=-1))

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "activation": self.activation})
        return config
