"""Small file helpers: writes that a reader never sees half done, and strict JSON.

JSON has no NaN or infinity; Python's `json` writes them as the bare words `NaN` and
`Infinity`, which strict parsers (a browser's `JSON.parse`, `jq`, most JSON libraries in
other languages) refuse. `atomic_write_json` therefore writes only strict JSON: a
non-finite number with a reason beside it (a key `<name>_undefined` in the same dict, as
`hgfn_keras.evaluation.metrics` gives an undefined metric) is written as `null`; any other non-finite
number is refused, naming where it is.
"""

import errno
import json
import math
import os
import re
import shutil
import tempfile
import uuid

import numpy as np

UNDEFINED_SUFFIX = "_undefined"


def write_error(error, path, what="the file"):
    """An `OSError` of one line naming what was written, where, and the OS's reason.

    Keeps the kind (`PermissionError`, ...) and `errno` of an `OSError`; any other
    error (h5py's, a TensorFlow `OpError` from a SavedModel write) becomes an `OSError`
    whose errno is recognised from the text when it names one ("File too large").

    >>> str(write_error(OSError(27, "File too large"), "/out/m.keras", "the model"))
    "[Errno 27] Cannot write the model '/out/m.keras': File too large. Check that the \
output folder '/out' exists, is writable and has space (and that no file-size limit, \
`ulimit -f`, is hit), or choose another"
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    else:
        text = getattr(error, "message", None) or str(error)
    text = text if isinstance(text, str) else str(text)
    number = getattr(error, "errno", None)
    if not isinstance(number, int):
        number = next((code for code in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT,
                                         errno.EACCES, errno.EROFS)
                       if os.strerror(code).lower() in text.lower()), None)
    kind = type(error) if isinstance(error, OSError) else OSError
    reason = " ".join(text.split()) or type(error).__name__
    if number is not None and (len(reason) > 120 or "\n" in text.strip()):
        # HDF5's and TensorFlow's texts run over lines, with internal temporary
        # names: the OS's reason is what the user can act on.
        reason = os.strerror(number)
    elif number is not None and os.strerror(number).lower() not in reason.lower():
        reason = f"{os.strerror(number)} ({reason})"
    message = (f"Cannot write {what} {path!r}: {reason}. Check that the output folder "
               f"{directory!r} exists, is writable and has space (and that no file-size "
               "limit, `ulimit -f`, is hit), or choose another")
    if number is None:
        return kind(message)
    return kind(number, message)


#: A staging name of `StagedOutput`: `.<target>.<pid>-<8 hex>.partial<extension>`.
_STAGING_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.partial(\..*)?$")


def _pid_runs(pid):
    """True if a process of this id runs on this machine (or cannot be told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


class StagedOutput:
    """A file (or folder) written under a staging name beside its path, then renamed.

    The one way the package writes an output that a reader must never see half done
    (a backup, a model, a SavedModel version, predictions, shards, pictures): the
    writer writes `staging`, a hidden name of this process's own in the target's
    folder (`.<name>.<pid>-<random>.partial<extension>`: the extension kept, as
    Keras, numpy and matplotlib pick the format from it); `commit()` renames it onto
    the target (atomic on one file system); on any failure, or an interrupt, the
    staging file or folder is removed and the target left as it was. An `OSError`
    (or another kind listed in `errors`) becomes one line naming `what`, the target
    and the OS's reason (`write_error`).

    Used as a context manager it gives the staging path and commits on leaving the
    block without an error; `begin()`, `commit()` and `discard()` do the same by
    hand (for a file kept open across calls, as a shard).

    Args:
        path: the target file or folder.
        what: what the message calls it ("the backup", "the SavedModel", ...).
        folder: stage a folder (made empty by `begin`) instead of a file.
        suffix: the staging name's ending (default: the target's extension, all of
            `.weights.h5` for `x.weights.h5`).
        commit: a function of the staging path that puts it in place (default:
            `os.replace(staging, path)`), e.g. one that picks a free version folder.
        errors: the exception kinds turned into the one-line `OSError`.

    Example:

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with StagedOutput(os.path.join(folder, "a.txt"), "the notes") as staging:
    ...     with open(staging, "w") as f:
    ...         _ = f.write("done")
    >>> os.listdir(folder)
    ['a.txt']
    >>> with StagedOutput(os.path.join(folder, "b.txt")) as staging:
    ...     with open(staging, "w") as f:
    ...         _ = f.write("half")
    ...     raise OSError(27, "File too large")
    Traceback (most recent call last):
    ...
    OSError: [Errno 27] Cannot write the file '.../b.txt': File too large. ...
    >>> os.listdir(folder)
    ['a.txt']
    """

    def __init__(self, path, what="the file", folder=False, suffix=None, commit=None,
                 errors=(OSError,)):
        self.path = os.fspath(path)
        self.what = what
        self.folder = folder
        base = os.path.basename(self.path.rstrip(os.sep)) or "output"
        if suffix is None:
            stem = base.lstrip(".")
            suffix = "" if folder or "." not in stem else "." + stem.split(".", 1)[1]
        self.staging = os.path.join(
            os.path.dirname(os.path.abspath(self.path)),
            f".{base}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{suffix}")
        self._commit = commit
        self.errors = tuple(errors)

    @staticmethod
    def remove_stale(folder, target=None):
        """Removes the staging files and folders in `folder` left by processes that no
        longer run (killed with SIGKILL or SIGTERM while writing); returns their names.

        A staging name holds its process's id: one of a process still running on this
        machine (another run writing now) is left alone. With `target` (a file name),
        only that target's staging names are looked at.
        """
        removed = []
        try:
            names = os.listdir(folder)
        except OSError:
            return removed
        for name in names:
            found = _STAGING_NAME.match(name)
            if not found or (target is not None and found["target"] != target):
                continue
            pid = int(found["pid"])
            if pid == os.getpid() or _pid_runs(pid):
                continue
            StagedOutput._remove(os.path.join(folder, name))
            removed.append(name)
        return removed

    @staticmethod
    def _remove(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            try:
                os.remove(path)
            except OSError:
                pass

    def begin(self):
        """Makes the folder (and, with `folder=True`, the empty staging folder);
        returns the staging path."""
        try:
            os.makedirs(os.path.dirname(self.staging), exist_ok=True)
            if self.folder:
                os.mkdir(self.staging)  # follows the umask (mkdtemp's 0700 would not)
        except OSError as error:
            raise write_error(error, self.path, self.what) from error
        return self.staging

    def commit(self):
        """Puts the staging file or folder in place; on failure removes it (one-line
        `OSError`)."""
        try:
            if self._commit is None:
                os.replace(self.staging, self.path)
            else:
                self._commit(self.staging)
        except BaseException as error:
            self.discard()
            if isinstance(error, self.errors):
                raise write_error(error, self.path, self.what) from error
            raise

    def discard(self):
        """Removes the staging file or folder, if there is one."""
        self._remove(self.staging)

    def __enter__(self):
        return self.begin()

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.commit()
            return False
        self.discard()
        if isinstance(value, self.errors):
            raise write_error(value, self.path, self.what) from value
        return False


def atomic_write_text(path, text):
    """Writes `text` to `path` through a staging file and a rename (`StagedOutput`).

    A reader sees the old file or the whole new one, never a part; a write that fails
    (a read-only folder, a full disk, a folder removed meanwhile) leaves no staging
    file behind and raises an `OSError` of the same kind whose message names the path
    and says what to do.
    """
    with StagedOutput(path) as staging, open(staging, "x", encoding="utf-8") as f:
        f.write(text)


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
