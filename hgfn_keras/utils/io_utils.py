"""Small file helpers: writes that a reader never sees half done, and strict JSON.

JSON has no NaN or infinity; Python's `json` writes them as the bare words `NaN` and
`Infinity`, which strict parsers (a browser's `JSON.parse`, `jq`, most JSON libraries in
other languages) refuse. `atomic_write_json` therefore writes only strict JSON: a
non-finite number with a reason beside it (a key `<name>_undefined` in the same dict, as
`hgfn_keras.evaluation.metrics` gives an undefined metric) is written as `null`; any other non-finite
number is refused, naming where it is.
"""

import json
import math
import os
import tempfile

import numpy as np

UNDEFINED_SUFFIX = "_undefined"


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file and a rename.

    A reader sees the old file or the whole new one, never a part; a write that fails
    (a read-only folder, a full disk, a folder removed meanwhile) leaves no temporary
    file behind and raises an `OSError` of the same kind whose message names the path
    and says what to do.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; give it a plain file's mode
        os.replace(tmp, path)
        tmp = None
    except OSError as error:
        raise type(error)(
            error.errno,
            f"Cannot write {path!r}: {error.strerror or error}. Check that the output "
            f"folder {directory!r} exists, is writable and has space, or choose another",
        ) from error
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def check_writable_folder(folder, what):
    """Refuses an output folder that cannot be written, before any work; creates nothing.

    The folder, or the nearest of its parents that exists (the folder is made later),
    must be a folder, not a file, and a probe file must be writable in it. A run that
    finds this out only when it writes its results has trained for nothing.

    Args:
        folder: the output folder.
        what: how the error names it (e.g. "--output-dir").

    Raises:
        ValueError: one line naming `what`, the path and the reason.
    """
    path = os.path.abspath(os.fspath(folder))
    existing = path
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{what}: {existing!r} is a file, not a folder, so {path!r} cannot "
                         "be written. Choose another folder.")
    try:
        handle, probe = tempfile.mkstemp(prefix=".probe-", dir=existing)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise ValueError(f"{what}: cannot write into the folder {existing!r} "
                         f"({error.strerror or error}). Choose a writable folder.") from error


#: What starts a formula in a spreadsheet (and the tab / carriage return that OWASP's
#: "CSV injection" page adds): a cell starting with one of them is escaped.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell):
    """`cell` as a CSV cell that a spreadsheet does not run as a formula.

    A string that starts with `=`, `+`, `-`, `@`, a tab or a carriage return and is
    not a number gets a leading `'` (the spreadsheets' own "this is text" mark);
    numbers and other strings are returned unchanged.

    >>> print(spreadsheet_safe('=HYPERLINK("http://x", "click")'))
    '=HYPERLINK("http://x", "click")
    >>> spreadsheet_safe("-0.5"), spreadsheet_safe("severe"), spreadsheet_safe(3)
    ('-0.5', 'severe', 3)
    """
    if not isinstance(cell, str) or not cell.startswith(FORMULA_STARTS):
        return cell
    try:
        float(cell)
        return cell
    except ValueError:
        return "'" + cell


def no_duplicate_keys(pairs):
    """A `json.load(..., object_pairs_hook=no_duplicate_keys)` hook: the object as a
    dict, or a `ValueError` naming a key given twice (Python's `json` keeps the last one
    silently, so `{"epochs": 1, "epochs": 50}` trained for 50 epochs).

    >>> import json
    >>> json.loads('{"a": 1, "b": {"c": 2, "c": 3}}', object_pairs_hook=no_duplicate_keys)
    Traceback (most recent call last):
    ...
    ValueError: the key 'c' is given twice (values 2 and 3)
    """
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} is given twice (values {result[key]!r} and "
                             f"{value!r})")
        result[key] = value
    return result


def strict_json_value(data, where="data", nulls=None):
    """`data` with numpy scalars / arrays as Python values and explained NaN/inf as None.

    Args:
        data: dicts, lists, tuples, strings, numbers (Python or numpy), bools, None.
        where: the name of `data`, for messages.
        nulls: optional dict that receives `{path: reason}` of every value written
            as None (e.g. `"quality.json.summary.rows.lr.mean.map.std"`), for a
            report that says why its numbers are missing.

    Returns:
        A structure `json.dumps(..., allow_nan=False)` accepts: every non-finite float
        under a key whose dict holds a `<key>_undefined` reason (the value itself, or
        inside its list, e.g. a history's `"loss"` with `"loss_undefined"`) becomes None.

    Raises:
        ValueError: for a non-finite number without a reason, naming its path (e.g.
            `history.json: loss[3] is nan`).
    """

    unexplained = object()  # no reason given (a reason may itself be None)

    def convert(value, path, reason):
        if isinstance(value, dict):
            return {
                k: convert(v, f"{path}.{k}", value.get(f"{k}{UNDEFINED_SUFFIX}", unexplained))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [convert(v, f"{path}[{i}]", reason) for i, v in enumerate(value)]
        if isinstance(value, np.ndarray):
            return convert(value.tolist(), path, reason)
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, (float, np.floating)):
            value = float(value)
            if math.isfinite(value):
                return value
            if reason is not unexplained:
                if nulls is not None:
                    nulls[path] = reason
                return None
            raise ValueError(
                f"{path} is {value}: JSON has no NaN or infinity, and no reason "
                f"(a `{path.rsplit('.', 1)[-1]}{UNDEFINED_SUFFIX}` key) is given to write "
                "it as null."
            )
        return value

    return convert(data, where, unexplained)


def atomic_write_json(path, data):
    """Writes `data` as indented strict JSON to `path`, atomically (see the module)."""
    data = strict_json_value(data, os.path.basename(os.fspath(path)))
    text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
    atomic_write_text(path, text + "\n")
