"""Modality alignment: bring M vectors of different widths to one width D."""

import keras
from keras import ops

from hgfn_keras.utils.arguments import optional_positive_int

ALIGNMENTS = ("auto", "pad", "project")

#: With `alignment="auto"` and no `units`, modalities are zero-padded to the widest
#: one up to this width, and projected to this width above it.
AUTO_PROJECT_WIDTH = 256


def resolve_alignment(alignment, units, widths):
    """The alignment actually used and the aligned width D, from the layer's arguments.

    `"auto"` with `units=None` pads to the widest modality when it is at most
    `AUTO_PROJECT_WIDTH` (256) wide, and projects every modality to 256 otherwise;
    `"auto"` with `units` given pads to `units`. `"pad"` and `"project"` use `units`,
    or the widest modality's width when it is None.

    >>> resolve_alignment("auto", None, [64, 64, 2])
    ('pad', 64)
    >>> resolve_alignment("auto", None, [2048, 1024, 128])
    ('project', 256)
    >>> resolve_alignment("pad", None, [2048, 1024])
    ('pad', 2048)
    """
    widest = max(int(w) for w in widths)
    if alignment == "auto":
        if units is None and widest > AUTO_PROJECT_WIDTH:
            return "project", AUTO_PROJECT_WIDTH
        alignment = "pad"
    return alignment, units or widest


@keras.saving.register_keras_serializable(package="hgfn_keras")
class ModalityAlignment(keras.layers.Layer):
    """Brings M modality vectors to one width and stacks them.

    `alignment="pad"` zero-pads every vector to the widest one (or to `units`),
    as the paper does before the DAU ("Padding is performed to ensure the features
    of each modality have the same dimension", III-B). `alignment="project"`
    learns one Dense(units) projection per modality instead; it is the project's
    option for modalities whose widths differ a lot (docs/DESIGN.md, "HGFN (paper
    III-B)", item 1).
    `alignment="auto"` (the default) pads while the widest modality is at most
    256 wide and projects to 256 above that (`resolve_alignment`): padding 2,048-
    and 1,024-wide features to 2,048 makes every later layer of the HGFN work at
    width 2,048 (its vertex networks' Dense layers are 8,192 x 2,048 each).
    Narrow inputs are padded as in the paper.

    Args:
        alignment: `"auto"` (default), `"pad"` (the paper) or `"project"`.
        units: the common width D. None: the widest input's width (`"auto"`: at
            most 256, see above).
        activation: the projections' activation (None: linear); padding has none.
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

    def __init__(self, alignment="auto", units=None, activation=None, **kwargs):
        super().__init__(**kwargs)
        if alignment not in ALIGNMENTS:
            raise ValueError(
                f"`alignment` must be one of {ALIGNMENTS}. Received: alignment={alignment!r}"
            )
        self.alignment = alignment
        self.units = optional_positive_int("units", units)
        self.activation = keras.activations.serialize(keras.activations.get(activation))

    def build(self, input_shape):
        widths = [int(shape[-1]) for shape in input_shape]
        self.mode, self.output_width = resolve_alignment(self.alignment, self.units, widths)
        if self.mode == "pad" and self.output_width < max(widths):
            raise ValueError(
                f"With alignment={self.alignment!r}, `units` ({self.units}) must be at least the "
                f"widest modality's width. Received widths: {widths}"
            )
        self.projections = []
        if self.mode == "project":
            for i, shape in enumerate(input_shape):
                dense = keras.layers.Dense(
                    self.output_width, activation=self.activation, name=f"projection_{i}",
                    dtype=self.dtype_policy
                )
                dense.build(tuple(shape))
                self.projections.append(dense)

    def call(self, inputs):
        aligned = []
        for i, x in enumerate(inputs):
            if self.mode == "project":
                x = self.projections[i](x)
            else:
                pad = self.output_width - x.shape[-1]
                if pad:
                    x = ops.pad(x, [[0, 0], [0, pad]])
            aligned.append(x)
        return ops.stack(aligned, axis=1)

    def compute_output_shape(self, input_shape):
        _, width = resolve_alignment(self.alignment, self.units,
                                     [int(s[-1]) for s in input_shape])
        return (input_shape[0][0], len(input_shape), width)

    def get_config(self):
        config = super().get_config()
        config.update({"alignment": self.alignment, "units": self.units,
                       "activation": self.activation})
        return config
