"""Tensor fusion (TFN), full or low-rank: the paper's MATF stand-in (IV-C)."""

import math

import keras
from keras import ops

from hgfn_keras.fusion.base import Fusion
from hgfn_keras.utils.arguments import is_integer, positive_int

_MAX_FULL_SIZE = 65536


@keras.saving.register_keras_serializable(package="hgfn_keras")
class TensorFusion(Fusion):
    """Fuses by the outer product of the modality vectors, each with a 1 appended.

    Full form (Zadeh et al. 2017, TFN): z = vec((V_1 ⊕ 1) ⊗ ... ⊗ (V_M ⊕ 1)), then
    Dense(units). The appended 1 keeps every unimodal and lower-order product in
    z. Its width Π(d_i + 1) grows fast with M, so the low-rank form (Liu et al.
    2018, LMF) computes the same kind of map with rank-R factors instead:
    Σ_{r=1..R} Π_i ((V_i ⊕ 1) W_i^(r)) + b, never forming the product.

    It stands in for MATF (the paper's tensor baseline), as docs/DESIGN.md says
    ("Baselines (paper IV-C)"). A masked-out modality is zeroed before the product
    (its appended 1 stays).

    Args:
        units: the fused width (128).
        rank: None or `"auto"`: the full product when Π(d_i + 1) ≤ 65,536, else
            low-rank with rank 8; an integer: low-rank with that rank; 0: always the
            full product.
        activation: applied to the fused vector (`"relu"`).
        modality_names: optional modality names, in order (see `Fusion`).
        **kwargs: standard `keras.layers.Layer` arguments.

    >>> import numpy as np
    >>> fusion = TensorFusion(units=8)
    >>> tuple(fusion([np.ones((2, 3)), np.ones((2, 4))]).shape)
    (2, 8)
    >>> TensorFusion(units=8, rank=4)([np.ones((2, 3)), np.ones((2, 4))]).shape[-1]
    8

    Reference: Zadeh et al., "Tensor Fusion Network", EMNLP 2017; Liu et al.,
    "Efficient Low-rank Multimodal Fusion", ACL 2018.
    """

    def __init__(self, units=128, rank="auto", activation="relu", modality_names=None,
                 **kwargs):
        super().__init__(modality_names=modality_names, **kwargs)
        units = positive_int("units", units)
        if not (rank is None or (isinstance(rank, str) and rank == "auto")
                or (is_integer(rank) and rank >= 0)):
            raise ValueError(
                f"`rank` must be None, 'auto' or an integer >= 0. Received: rank={rank!r}"
            )
        self.units = units
        self.rank = int(rank) if is_integer(rank) else rank
        self.activation = keras.activations.serialize(keras.activations.get(activation))

    def build_fusion(self, widths):
        full_size = math.prod(w + 1 for w in widths)
        if self.rank in (None, "auto"):
            self.effective_rank = 0 if full_size <= _MAX_FULL_SIZE else 8
        else:
            self.effective_rank = self.rank
        if self.effective_rank == 0:
            if full_size > 10 * _MAX_FULL_SIZE:
                raise ValueError(
                    f"The full tensor product of widths {widths} has {full_size} entries: "
                    "too many. Use a low `rank` (for example rank=8)."
                )
            self.dense = keras.layers.Dense(self.units, name="dense", dtype=self.dtype_policy)
            self.dense.build((None, full_size))
        else:
            self.factors = [
                self.add_weight(shape=(self.effective_rank, w + 1, self.units),
                                initializer="glorot_uniform", name=f"factor_{i}")
                for i, w in enumerate(widths)
            ]
            self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs, modality_mask=None):
        vectors, mask = self._check_call(inputs, modality_mask)
        if mask is not None:
            vectors = [v * mask[:, i : i + 1] for i, v in enumerate(vectors)]
        ones = ops.ones_like(vectors[0][:, :1])
        vectors = [ops.concatenate([v, ones], axis=-1) for v in vectors]
        if self.effective_rank == 0:
            product = vectors[0]
            for v in vectors[1:]:  # a loop over modalities (M is small), not vertices
                product = ops.reshape(ops.expand_dims(product, -1) * ops.expand_dims(v, 1),
                                      (-1, product.shape[-1] * v.shape[-1]))
            fused = self.dense(product)
        else:
            fused = None
            for v, factor in zip(vectors, self.factors):
                projected = ops.einsum("bd,rdu->bru", v, factor)  # (batch, rank, units)
                fused = projected if fused is None else fused * projected
            fused = ops.sum(fused, axis=1) + self.bias
        return keras.activations.get(self.activation)(fused)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "rank": self.rank, "activation": self.activation})
        return config
