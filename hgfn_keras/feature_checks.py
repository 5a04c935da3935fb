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

from hgfn_keras.utils.text_arrays import as_text_array

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
    """Checks a dict of numpy inputs against a network's inputs; returns them as the
    network takes them.

    The `modality_mask` may be left out (every modality is then present); when
    given, it must hold only 0 and 1, and every row needs a present modality (as the
    SavedModel's signature: `check_present_rows`). A text input (a string tensor) may
    be a `str`/`bytes` numpy array or a list: it comes back as an object array of
    `str` (`text_arrays.as_text_array`, UTF-8); another list comes back as an array.

    Args:
        x: `{input name: array}`; anything else (a `tf.data.Dataset`, a list) is
            returned unchecked.
        input_tensors: the network's `keras.KerasTensor` inputs (`network.inputs`).
    """
    if not isinstance(x, dict):
        return x
    x = _as_arrays(x, input_tensors)
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
        check_present_rows(x[MASK_KEY])
    return x


def _as_arrays(x, input_tensors):
    """`x` with each text input as `as_text_array` gives it and each list as an array."""
    text = {t.name for t in input_tensors if t.dtype == "string"}
    converted = {}
    for name, value in x.items():
        if name in text:
            value = as_text_array(value, f"The input {name!r}")
        elif isinstance(value, (list, tuple)):
            value = np.asarray(value)
        converted[name] = value
    return converted


def check_present_rows(mask, name=MASK_KEY):
    """Refuses rows whose mask is all 0 (no modality present), naming them.

    The SavedModel refuses them (`export`'s "every modality is missing"), and a model
    fed one only learns or answers a constant: `fit`, `evaluate` and `predict` refuse
    them the same way (docs/RELIABILITY.md).

    >>> check_present_rows(np.array([[1, 0], [0, 0], [0, 1]]))
    Traceback (most recent call last):
    ...
    ValueError: `modality_mask`: every modality is missing (the mask is all 0) in 1 row(s): [1]. Each row needs at least one present modality; drop those rows.
    """
    values = np.asarray(mask)
    if values.ndim != 2 or not len(values):
        return
    empty = np.flatnonzero(~(values > 0).any(axis=1))
    if len(empty):
        shown = [int(r) for r in empty[:20]] + (["..."] if len(empty) > 20 else [])
        raise ValueError(f"`{name}`: every modality is missing (the mask is all 0) in "
                         f"{len(empty)} row(s): {shown}. Each row needs at least one present "
                         "modality; drop those rows.")


def warn_zero_rows(x, modality_names, stacklevel=3):
    """Warns, once per modality, when a modality that no mask marks missing anywhere
    holds rows of only zeros while its other rows do not: what missing features
    filled with 0 look like, which the model then reads as present values.

    A modality counts as unmasked when `x` has no `modality_mask`, or when its column
    of the mask is 1 in every row (the npz contract's mask left out). A modality that
    is zero in every row is left alone (a constant input, not missing rows).

    Args:
        x: `{modality name: numpy array [N, ...]}`, with an optional `modality_mask`.
        modality_names: the modalities in the mask's column order.

    Returns:
        `{modality name: count of all-zero rows}` for the modalities warned about.
    """
    import warnings

    mask = x.get(MASK_KEY)
    mask = None if mask is None else np.asarray(mask)
    found = {}
    for column, name in enumerate(modality_names):
        values = x.get(name)
        if values is None or not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
            continue
        if mask is not None and mask.ndim == 2 and not (mask[:, column] > 0).all():
            continue  # a mask marks this modality's missing rows already
        zero = ~values.reshape(len(values), -1).any(axis=1)
        count = int(zero.sum())
        if 0 < count < len(values):
            found[name] = count
            warnings.warn(
                f"Modality {name!r}: {count} of {len(values)} row(s) hold only zeros (the "
                f"first at row {int(np.flatnonzero(zero)[0])}) and no `{MASK_KEY}` marks "
                f"the modality missing there. If those rows are missing data, give them "
                f"0 in `{MASK_KEY}` (npz: `mask_{name}`); else the model reads the zeros "
                "as present values.", stacklevel=stacklevel)
    return found


def placeholder_row(x):
    """One row of the inputs' shapes and dtypes (0, "" for text, a mask of ones): what
    a model is called on to learn its outputs' shapes when `x` has no row."""
    row = {}
    for name, value in x.items():
        value = np.asarray(value)
        fill = 1 if name == MASK_KEY else ("" if value.dtype.kind in "OUS" else 0)
        row[name] = np.full((1,) + value.shape[1:], fill, dtype=value.dtype)
    return row


__all__ = ["MASK_KEY", "check_finite", "check_inputs", "check_mask_values", "check_present_rows",
           "placeholder_row", "warn_zero_rows"]
