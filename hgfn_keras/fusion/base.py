"""The interface every fusion layer shares.

A fusion takes M modality vectors (a dict keyed by modality name, or a list in
`modality_names` order) and an optional per-sample modality mask `[batch, M]`
(1 = present), and returns one fused vector per sample. Any fusion can therefore
be swapped for any other by name (see `hgfn_keras.fusion.get_fusion`).
"""

import keras
from keras import ops


class Fusion(keras.layers.Layer):
    """Base class of the fusion layers: input checking and ordering.

    Subclasses implement `build_fusion(widths)` (create weights, given each
    modality's width in order) and `fuse(vectors, mask)` (the computation; `vectors`
    is a list of M float tensors `[batch, width_i]`, `mask` is `[batch, M]` or None).

    Args:
        modality_names: optional list of the modality names, in order. When given,
            a dict input must have exactly these keys, and a list input must have
            this many entries. When left out, a dict input is read in sorted key
            order.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).
    """

    def __init__(self, modality_names=None, **kwargs):
        super().__init__(**kwargs)
        if modality_names is not None:
            modality_names = list(modality_names)
            bad = [n for n in modality_names if not isinstance(n, str) or not n]
            if bad or len(set(modality_names)) != len(modality_names):
                raise ValueError(
                    "`modality_names` must be distinct non-empty strings. "
                    f"Received: modality_names={modality_names}"
                )
            if len(modality_names) < 2:
                raise ValueError(
                    "A fusion needs at least 2 modalities (M >= 2). "
                    f"Received: modality_names={modality_names}"
                )
        self.modality_names = modality_names
        self.supports_masking = False

    # -- ordering and checks -------------------------------------------------
    def _ordered(self, inputs, what="inputs"):
        """Returns the inputs as a list in modality order, checking names and M."""
        if isinstance(inputs, dict):
            keys = list(inputs.keys())
            if self.modality_names is None:
                names = sorted(keys)
            else:
                names = self.modality_names
                missing = [n for n in names if n not in inputs]
                extra = [k for k in keys if k not in names]
                if missing or extra:
                    raise ValueError(
                        f"{self.__class__.__name__} {self.name!r}: the {what} do not "
                        f"match `modality_names`={names}. Missing: {missing}; "
                        f"unexpected: {extra}. Received keys: {keys}"
                    )
            ordered = [inputs[n] for n in names]
        elif isinstance(inputs, (list, tuple)):
            ordered = list(inputs)
            if self.modality_names is not None and len(ordered) != len(self.modality_names):
                raise ValueError(
                    f"{self.__class__.__name__} {self.name!r}: expected "
                    f"{len(self.modality_names)} modality {what} "
                    f"({self.modality_names}). Received: {len(ordered)}"
                )
        else:
            raise TypeError(
                f"{self.__class__.__name__} {self.name!r}: the {what} must be a dict "
                "{modality name: tensor} or a list of tensors. Received: "
                f"{type(inputs).__name__}"
            )
        if len(ordered) < 2:
            raise ValueError(
                f"{self.__class__.__name__} {self.name!r}: a fusion needs at least 2 "
                f"modalities (M >= 2). Received: M={len(ordered)}"
            )
        return ordered

    def _names(self, count):
        if self.modality_names is not None:
            return list(self.modality_names)
        return [f"modality_{i}" for i in range(count)]

    def build(self, input_shape):
        shapes = self._ordered(input_shape, what="input shapes")
        widths = []
        for name, shape in zip(self._names(len(shapes)), shapes):
            shape = tuple(shape)
            if len(shape) != 2 or shape[-1] is None:
                raise ValueError(
                    f"{self.__class__.__name__} {self.name!r}: modality {name!r} must "
                    "be a 2-D tensor [batch, width] with a known width. "
                    f"Received: shape={shape}"
                )
            widths.append(int(shape[-1]))
        self.input_widths = widths
        self.num_modalities = len(widths)
        self.build_fusion(widths)

    def build_fusion(self, widths):
        raise NotImplementedError

    def fuse(self, vectors, mask):
        raise NotImplementedError

    def _check_call(self, inputs, modality_mask):
        vectors = self._ordered(inputs)
        names = self._names(len(vectors))
        for i, (name, v) in enumerate(zip(names, vectors)):
            width = v.shape[-1]
            if width is not None and width != self.input_widths[i]:
                raise ValueError(
                    f"{self.__class__.__name__} {self.name!r}: modality {name!r} was "
                    f"built with width {self.input_widths[i]}. Received: width={width}"
                )
        if modality_mask is not None:
            shape = tuple(modality_mask.shape)
            if len(shape) != 2 or (shape[-1] is not None and shape[-1] != len(vectors)):
                raise ValueError(
                    f"{self.__class__.__name__} {self.name!r}: `modality_mask` must "
                    f"have shape [batch, {len(vectors)}] (one column per modality, "
                    f"in the order {names}). Received: shape={shape}"
                )
            modality_mask = ops.cast(modality_mask, self.compute_dtype)
        return vectors, modality_mask

    def get_config(self):
        config = super().get_config()
        config.update({"modality_names": self.modality_names})
        return config
