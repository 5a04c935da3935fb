"""Raw text as the model takes it: one Python `str` per row, in a numpy object array.

A text modality arrives in many forms: a numpy unicode array (`<U..`, what
`np.array(list_of_str)` and `np.load` give), a bytes array (`S..`, what TFRecord
and `h5py` give, UTF-8), a Python list, an object array. Keras' `fit` takes only the
object array (a `<U` array fails with "Invalid dtype: str1792", a list with a
many-thousand-character error), and numpy's own `astype(str)` decodes bytes as ASCII.
`as_text_array` turns each into the one form, decoding bytes as UTF-8, and is what
`MultiTaskModel`'s numpy inputs, the npz reader, the TFRecord writer's source and
`training.predict` use, so that text reads the same on every path.
"""

import numpy as np

#: numpy dtype kinds that hold text: unicode (`U`) and bytes (`S`).
TEXT_KINDS = "US"


def is_text_array(values) -> bool:
    """Whether `values` holds text: a `<U`/`S` numpy array, or an object array or a list
    whose first element is a `str` or `bytes`.

    >>> is_text_array(np.array(["a"])), is_text_array([b"a"]), is_text_array(np.zeros(2))
    (True, True, False)
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind in TEXT_KINDS:
            return True
        if values.dtype != object or values.size == 0:
            return False
        first = values.reshape(-1)[0]
    elif isinstance(values, (list, tuple)):
        if not values:
            return False
        first = values[0]
    else:
        return False
    return isinstance(first, (str, bytes, np.str_, np.bytes_))


def as_text_array(values, what="The text input"):
    """`values` as a 1-D object array of Python `str`, bytes decoded as UTF-8.

    Args:
        values: a numpy `<U`, `S` or object array `[N]` (or `[N, 1]`), or a list of
            `str` / `bytes`.
        what: the input's description for the messages, e.g. "The input 'review'".

    Raises:
        ValueError: for a shape other than `[N]` / `[N, 1]`, an element that is not
            text, or bytes that are not UTF-8; naming `what` and the first row.

    >>> as_text_array(np.array([b"caf\\xc3\\xa9", b""])).tolist()
    ['café', '']
    >>> as_text_array(["a", 3], "The input 'review'")
    Traceback (most recent call last):
    ...
    ValueError: The input 'review' must hold text (str or UTF-8 bytes): row 1 holds int 3.
    """
    array = np.asarray(values, dtype=object) if isinstance(values, (list, tuple)) \
        else np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{what} must be text of shape [N] (one string per row). "
                         f"Received: shape={array.shape}")
    if array.dtype.kind == "U":
        return np.array(array.tolist(), dtype=object).reshape(-1)
    result = np.empty(len(array), dtype=object)
    for row, value in enumerate(array.tolist()):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{what} must be UTF-8 text: row {row} is not UTF-8 "
                                 f"({error.reason} at byte {error.start}).") from None
        elif not isinstance(value, str):
            raise ValueError(f"{what} must hold text (str or UTF-8 bytes): row {row} holds "
                             f"{type(value).__name__} {value!r:.40}.")
        result[row] = value
    return result


__all__ = ["TEXT_KINDS", "as_text_array", "is_text_array"]
