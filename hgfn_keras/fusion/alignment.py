"""Modality alignment: bring M vectors of different widths to one width D."""

import keras
from keras import ops

ALIGNMENTS = ("pad", "project")


@keras.saving.register_keras_serializable(package="hgfn_keras")
class ModalityAlignment(keras.layers.Layer):
    """Brings M modality vectors to one width and stacks them.

    `alignment="pad"` zero-pads every vector to the widest one (or to `units`),
    as the paper does before the DAU ("Padding is performed to ensure the features
    of each modality have the same dimension", III-B). `alignment="project"`
    learns one Dense(units) projection per modality instead; it is the project's
    option for modalities whose widths differ a lot (DESIGN.md item 1).

    Args:
        alignment: `"pad"` (default, the paper) or `"project"`.
        units: the common width D. None: the widest input's width.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a list of M tensors `[batch, width_i]`.

    Returns:
        A tensor `[batch, M, D]`.

    >>> import numpy as np
    >>> layer = ModalityAlignment()
    >>> tuple(layer([np.ones((2, 3)), np.ones((2, 5))]).shape)
    (2, 2, 5)
    """

    def __init__(self, alignment="pad", units=None, **kwargs):
        super().__init__(**kwargs)
        if alignment not in ALIGNMENTS:
            raise ValueError(
                f"`alignment` must be one of {ALIGNMENTS}. Received: alignment={alignment!r}"
            )
        if units is not None and (not isinstance(units, int) or units < 1):
            raise ValueError(f"`units` must be a positive integer or None. Received: units={units!r}")
        self.alignment = alignment
        self.units = units

    def build(self, input_shape):
        widths = [int(shape[-1]) for shape in input_shape]
        self.output_width = self.units or max(widths)
        if self.alignment == "pad" and self.output_width < max(widths):
            raise ValueError(
                f"With alignment='pad', `units` ({self.units}) must be at least the "
                f"widest modality's width. Received widths: {widths}"
            )
        self.projections = []
        if self.alignment == "project":
            for i, shape in enumerate(input_shape):
                dense = keras.layers.Dense(
                    self.output_width, name=f"projection_{i}", dtype=self.dtype_policy
                )
                dense.build(tuple(shape))
                self.projections.append(dense)

    def call(self, inputs):
        aligned = []
        for i, x in enumerate(inputs):
            if self.alignment == "project":
                x = self.projections[i](x)
            else:
                pad = self.output_width - x.shape[-1]
                if pad:
                    x = ops.pad(x, [[0, 0], [0, pad]])
            aligned.append(x)
        return ops.stack(aligned, axis=1)

    def compute_output_shape(self, input_shape):
        width = self.units or max(int(s[-1]) for s in input_shape)
        return (input_shape[0][0], len(input_shape), width)

    def get_config(self):
        config = super().get_config()
        config.update({"alignment": self.alignment, "units": self.units})
        return config
