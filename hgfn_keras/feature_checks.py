"""The checks of numpy features, one rule and one message each (as `labels.py` for labels).

Used by the npz reader, the TFRecord writer and reader, `MultiTaskModel`'s numpy
inputs and the normalisation's statistics, so that a bad value reads the same
wherever it is found. (The SavedModel checks its inputs in the graph,
`hgfn_keras.serving.export`; its messages follow the same words.)

- `check_finite`: no NaN or inf; names the input, the count of rows and the first.
- `check_inputs`: a dict of numpy inputs against a network's input tensors: the
  names, one row count, the shapes, finite values, a 0/1 `modality_mask`.
- `placeholder_row`: one row shaped as the inputs (for a prediction on no row).
"""

import numpy as np

#: The input that says which modalities of a row are present (1) or missing (0).
MASK_KEY = "modality_mask"


def check_mask_values(mask, name=MASK_KEY):
    """Refuses a modality mask holding anything but 0 (missing) and 1 (present).

    A mask of -1, 0.5 or 2 is not "partly present": the fusion multiplies by it,
    so it scales the modality's vector and weight and the model answers with
    confident nonsense. The serving signature refuses such masks too.

    Args:
        mask: an array-like mask (`[N, M]` or `[N]`), bool or numeric.
        name: how the error names it (an input, an npz key).

    Returns:
        The mask as a numpy array (unchanged values).

    Raises:
        ValueError: naming `name`, the values other than 0 and 1 and their rows.
    """
    values = np.asarray(mask)
    if values.dtype == bool:
        return values
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"`{name}` must hold only 0 (modality missing) and 1 (present). "
                         f"Received: dtype={values.dtype}")
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1)) if values.ndim else []
        found = np.unique(values[bad])[:10].tolist()
        raise ValueError(
            f"`{name}` must hold only 0 (modality missing) and 1 (present). Received: "
            f"value(s) {found} in {len(rows)} row(s), the first {[int(r) for r in rows[:10]]}"
        )
    return values


def check_finite(values, what, first_row=0):
    """Raises unless every value is finite.

    Args:
        values: a numpy array `[N, ...]` (or what `np.asarray` takes).
        what: the input's description for the message, e.g. "The input 'audio'" or
            "Shard 'train-0.tfrecord': modality 'audio'".
        first_row: the row number of `values[0]` in what the user knows (a shard's
            or a batch's offset), so that the message points at the right row.

    Raises:
        ValueError: "<what> holds NaN or inf in <k> row(s), the first at row <r>."

    >>> check_finite(np.array([[1.0, 2.0], [np.nan, 0.0], [3.0, np.inf]]), "The input 'x'")
    Traceback (most recent call last):
    ...
    ValueError: The input 'x' holds NaN or inf in 2 row(s), the first at row 1.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "fc":  # integers and booleans are always finite
        return
    finite = np.isfinite(values)
    if finite.all():
        return
    rows = np.flatnonzero(~finite.reshape(len(finite), -1).all(axis=1))
    raise ValueError(f"{what} holds NaN or inf in {len(rows)} row(s), the first at row "
                     f"{int(rows[0]) + first_row}.")


def check_inputs(x, input_tensors):
    """Checks a dict of numpy inputs against a network's inputs; returns `x` unchanged.

    The `modality_mask` may be left out (every modality is then present); when
    given, it must hold only 0 and 1.

    Args:
        x: `{input name: array}`; anything else (a `tf.data.Dataset`, a list) is
            returned unchecked.
        input_tensors: the network's `keras.KerasTensor` inputs (`network.inputs`).
    """
    if not isinstance(x, dict):
        return x
    expected = [t.name for t in input_tensors]
    missing = [n for n in expected if n not in x and n != MASK_KEY]
    extra = [k for k in x if k not in expected]
    if missing or extra:
        raise ValueError(
            f"The inputs do not match the model's modalities {expected}. "
            f"Missing: {missing}; unexpected: {extra}. Received keys: {sorted(x)}")
    rows = {k: len(v) for k, v in x.items()}
    if len(set(rows.values())) > 1:
        raise ValueError(f"The inputs disagree on the number of rows: {rows}")
    for tensor in input_tensors:
        if tensor.name not in x:
            continue
        value = x[tensor.name]
        check_finite(value, f"The input {tensor.name!r}")
        expected_shape, shape = tuple(tensor.shape[1:]), np.shape(value)[1:]
        if len(shape) != len(expected_shape) or any(
                e is not None and e != s for e, s in zip(expected_shape, shape)):
            what = "modality" if tensor.name != MASK_KEY else "input"
            wanted = ", ".join(["N"] + [str(e) for e in expected_shape])
            raise ValueError(f"The {what} {tensor.name!r} must have shape [{wanted}]. "
                             f"Received: shape={np.shape(value)}")
    if MASK_KEY in x:
        check_mask_values(x[MASK_KEY])
    return x


def placeholder_row(x):
    """One row of the inputs' shapes and dtypes (0, "" for text, a mask of ones): what
    a model is called on to learn its outputs' shapes when `x` has no row."""
    row = {}
    for name, value in x.items():
        value = np.asarray(value)
        fill = 1 if name == MASK_KEY else ("" if value.dtype.kind in "OUS" else 0)
        row[name] = np.full((1,) + value.shape[1:], fill, dtype=value.dtype)
    return row


__all__ = ["MASK_KEY", "check_finite", "check_inputs", "check_mask_values", "placeholder_row"]
