"""A learned placeholder vector per modality, used where the modality is missing."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hgfn_keras")
class MissingPlaceholder(keras.layers.Layer):
    """Puts a learned vector in the place of each missing modality.

    For each modality m a vector `p_m` of the width of m's encoded vector is
    learned; a row whose `modality_mask` is 0 for m gets `p_m` instead of its
    (zeroed) vector:

        v'_m = mask_m * v_m + (1 - mask_m) * p_m

    The fusion then takes the M vectors as all present (the model passes it no
    mask), so a missing modality is answered by what training learned to put
    there — the "missing token" of the missing-modality literature — rather
    than by a zero slot the fusion ignores. `p_m` starts at zero. Modality
    dropout acts before this layer, so the placeholders are trained on the
    rows it drops. The paper preset, and the package by default, keep zeroed
    slots (`build_model(missing_placeholder=False)`).

    Args:
        modality_names: the modalities' names, in the mask's column order.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `{name: [batch, width_m]}`, the encoded modality vectors.
        modality_mask: `[batch, M]`, 1 where the modality is present.

    Returns:
        `{name: [batch, width_m]}`, missing slots holding their placeholder.

    >>> import numpy as np
    >>> layer = MissingPlaceholder(["a", "b"])
    >>> layer.build({"a": (None, 3), "b": (None, 1)})
    >>> _ = layer.placeholders["b"].assign([[5.0]])
    >>> out = layer({"a": np.ones((2, 3), "float32"), "b": np.ones((2, 1), "float32")},
    ...             modality_mask=np.array([[1, 0], [1, 1]], "float32"))
    >>> np.asarray(out["b"]).ravel().tolist()
    [5.0, 1.0]
    """

    def __init__(self, modality_names, **kwargs):
        super().__init__(**kwargs)
        if (not isinstance(modality_names, (list, tuple)) or len(modality_names) < 1
                or not all(isinstance(n, str) for n in modality_names)
                or len(set(modality_names)) != len(modality_names)):
            raise ValueError("`modality_names` must be a list of distinct names. "
                             f"Received: modality_names={modality_names!r}")
        self.modality_names = list(modality_names)
        self.placeholders = {}

    def build(self, inputs_shape, modality_mask_shape=None):
        for name in self.modality_names:
            self.placeholders[name] = self.add_weight(
                name=f"{name}_placeholder", shape=(1, inputs_shape[name][-1]),
                initializer="zeros", trainable=True)

    def call(self, inputs, modality_mask=None):
        mask = ops.cast(modality_mask, self.compute_dtype)
        outputs = {}
        for index, name in enumerate(self.modality_names):
            present = mask[:, index : index + 1]
            outputs[name] = (ops.cast(inputs[name], self.compute_dtype) * present
                             + ops.cast(self.placeholders[name], self.compute_dtype)
                             * (1.0 - present))
        return outputs

    def compute_output_shape(self, inputs_shape, modality_mask_shape=None):
        return {name: inputs_shape[name] for name in self.modality_names}

    def get_config(self):
        config = super().get_config()
        config.update({"modality_names": self.modality_names})
        return config
