"""Constructor argument checks, one helper per kind, with the project's message shape:
"`name` must be ... Received: name=value" (as keras' own layers). A bool is never a number.

>>> positive_int("iterations", 3)
3
>>> number("beta", True, minimum=0)
Traceback (most recent call last):
...
ValueError: `beta` must be a number >= 0. Received: beta=True
"""

import numbers


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name, value):
    """`value` if it is an int >= 1 (not a bool); else a `ValueError` naming `name`."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
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
