"""Level fusion: one vector per level from its weighted vertices (eqs. 2 and 6)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hgfn_keras")
class LevelFusion(keras.layers.Layer):
    """F_level = scale · Σ_v w_v · V_v over a level's vertices.

    With `scale=1` this is eq. 6 (the bimodal, trimodal, ... levels); the
    unimodal level of eq. 2 uses `scale=1/M`.

    Args:
        scale: a constant factor (1 for eq. 6, 1/M for eq. 2).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        weights: `[batch, V]`.
        vertices: `[batch, V, D]`.

    Returns:
        `[batch, D]`.

    >>> import numpy as np
    >>> out = LevelFusion()(np.array([[0.25, 0.75]]), np.array([[[4.0], [8.0]]]))
    >>> np.asarray(out).tolist()
    [[7.0]]
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, weights, vertices):
        fused = ops.sum(ops.expand_dims(weights, -1) * vertices, axis=1)
        return fused * self.scale if self.scale != 1.0 else fused

    def compute_output_shape(self, weights_shape, vertices_shape):
        return (vertices_shape[0], vertices_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale})
        return config
