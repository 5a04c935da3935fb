"""Constructor argument checks, one helper per kind, with the project's message shape:
"`name` must be ... Received: name=value" (as keras' own layers). A bool is never a number;
a numpy integer (`np.int64(3)`, as `len` of an array or a value read from an npz gives) is
an integer, and comes back as a Python `int` so that configs stay JSON.

>>> positive_int("iterations", 3)
3
>>> positive_int("units", np.int64(8)), type(positive_int("units", np.int64(8))).__name__
(8, 'int')
>>> number("beta", True, minimum=0)
Traceback (most recent call last):
...
ValueError: `beta` must be a number >= 0. Received: beta=True
"""

import numbers

import numpy as np


def is_number(value):
    """Whether `value` is a real number: Python's or numpy's, never a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


_is_number = is_number


def is_integer(value):
    """Whether `value` is an integer: a Python int or a numpy integer, never a bool
    (`True`, `np.True_`)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(name, value):
    """`int(value)` if it is an integer >= 1 (not a bool); else a `ValueError` naming `name`."""
    if not is_integer(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def optional_positive_int(name, value):
    """None, or `positive_int(name, value)`; the message says None is allowed."""
    if value is None:
        return None
    if not is_integer(value) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer or None. Received: {name}={value!r}")
    return int(value)


def number(name, value, minimum=None, maximum=None, exclusive_minimum=False,
           exclusive_maximum=False):
    """`float(value)` if it is a real number (not a bool) within the bounds given."""
    ok = _is_number(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if exclusive_maximum else value <= maximum
    if ok:
        return float(value)
    if minimum is not None and maximum is not None:
        bounds = (f" in {'(' if exclusive_minimum else '['}{minimum}, "
                  f"{maximum}{')' if exclusive_maximum else ']'}")
    elif minimum is not None:
        bounds = f" {'>' if exclusive_minimum else '>='} {minimum}"
    elif maximum is not None:
        bounds = f" {'<' if exclusive_maximum else '<='} {maximum}"
    else:
        bounds = ""
    raise ValueError(f"`{name}` must be a number{bounds}. Received: {name}={value!r}")
