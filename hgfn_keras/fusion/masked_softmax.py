"""Softmax over the present entries only (used by the DAU and every level)."""

from keras import ops

_LARGE_NEGATIVE = -1e9


def masked_softmax(logits, mask=None, axis=-1):
    """Softmax of `logits` along `axis` where `mask` is 1; 0 where it is 0.

    A row whose mask is all 0 gets all-zero weights (not NaN), so a sample with
    every vertex of a level missing contributes a zero level vector. Masked
    entries are replaced before `exp`, so neither the value nor the gradient can
    become inf or NaN whatever the masked logits hold. It computes in float32
    (under a mixed precision policy too: -1e9 and the sum of the exponentials
    overflow float16) and returns the dtype of `logits`.

    >>> import numpy as np
    >>> w = masked_softmax(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 0.0, 1.0]]))
    >>> np.round(np.asarray(w), 4).tolist()
    [[0.1192, 0.0, 0.8808]]
    """
    logits = ops.convert_to_tensor(logits)
    dtype = logits.dtype
    if mask is None:
        if logits.shape[axis] == 1:  # a level with one vertex: its weight is 1
            return ops.ones_like(logits)
        return ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=axis), dtype)
    logits = ops.cast(logits, "float32")
    mask = ops.cast(mask, "float32")
    present = mask > 0
    top = ops.max(ops.where(present, logits, _LARGE_NEGATIVE), axis=axis, keepdims=True)
    shifted = ops.where(present, logits - ops.stop_gradient(top), 0.0)
    exp = ops.exp(shifted) * mask
    return ops.cast(exp / ops.maximum(ops.sum(exp, axis=axis, keepdims=True), 1e-12), dtype)
