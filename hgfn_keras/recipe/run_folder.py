"""One run per output folder at a time, and a finished run is never overwritten unasked.

Two `training.train` runs started into one `--output-dir` both exited 0 with one run's
files left (or a `BlockingIOError` on the shared backup, or "No such file ...
.partial.weights.h5"), and a run started with `--config` of an earlier run, whose
`config.json` records its `output_dir`, overwrote that run's metrics and model without a
word (issue 30). `claim_run_folder` guards a run's folder for the run's whole life:

- **A lock.** `<output_dir>/.run.lock` is locked with `fcntl.flock` and holds the
  holder's pid, host, start time and command line. A second run finds it locked and is
  refused with one line naming the holder. The kernel releases the lock when its
  process dies, however it dies (SIGKILL included): a lock file left by a dead process
  is recognised as stale (it is not locked), taken over, and a warning names the
  process that left it. Where `fcntl` is missing (Windows) the file is created with
  `O_EXCL` instead, and a stale one is taken over when its pid does not run on this
  host.
- **A finished run is kept.** A folder whose `metrics.json` is written (the last file a
  run writes) and that holds no backup to resume is a finished run: a new run into it
  is refused, unless `overwrite=True` (`training.train --overwrite`), which removes
  the old `metrics.json` first, so that a run killed halfway never leaves a folder
  that looks finished with another run's results. A folder whose run was killed after
  `metrics.json` but before its export (the backup still there) resumes as before.
"""

import json
import os
import socket
import sys
import time
import warnings

LOCK_FILE = ".run.lock"
FINISHED_FILE = "metrics.json"


class RunFolderBusyError(ValueError):
    """Another running process holds the folder's lock."""


class FinishedRunError(FileExistsError):
    """The folder holds a finished run and `overwrite` was not asked for."""


def _holder_text(holder):
    if not holder:
        return "a process that recorded nothing"
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started "
            f"{holder.get('started')}")


def _read_holder(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.read() or "null")
    except (OSError, ValueError):
        return None


def _pid_runs(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, TypeError):
        return True  # another user's process, or nothing we can check: assume it runs
    return True


class RunFolderLock:
    """The lock of one run folder; `release()` (or leaving the `with` block) frees it."""

    def __init__(self, folder, what="output_dir", lock_name=LOCK_FILE, subject=None):
        self.folder = os.fspath(folder)
        self.what = what
        self.subject = os.fspath(subject) if subject is not None else self.folder
        self.path = os.path.join(self.folder, lock_name)
        self._fd = None
        self.taken_over = None  # the holder of a stale lock taken over

    def _me(self):
        return {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv)[:500]}

    def _busy(self, holder):
        return RunFolderBusyError(
            f"{self.what}: {self.subject!r} is in use by another run ({_holder_text(holder)}; "
            f"lock file {self.path}). Wait for it to finish or choose another {self.what}.")

    def acquire(self):
        os.makedirs(self.folder, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self._acquire_exclusive()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # BlockingIOError: held by a running process
                os.close(fd)
                raise self._busy(_read_holder(self.path)) from None
            try:  # the file we locked may have been removed by its last holder
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = os.read(fd, 65536)
        if previous.strip():  # left by a process that died holding it
            try:
                self.taken_over = json.loads(previous)
            except ValueError:
                self.taken_over = {}
            warnings.warn(
                f"{self.what}: {self.subject!r} had a stale lock from a run that no longer runs "
                f"({_holder_text(self.taken_over)}): taken over.", stacklevel=3)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(self._me()).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def _acquire_exclusive(self):  # pragma: no cover - Windows
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read_holder(self.path)
                if (holder and holder.get("host") == socket.gethostname()
                        and not _pid_runs(holder.get("pid"))):
                    self.taken_over = holder
                    warnings.warn(f"{self.what}: {self.subject!r} had a stale lock from a run "
                                  f"that no longer runs ({_holder_text(holder)}): taken over.",
                                  stacklevel=3)
                    os.remove(self.path)
                    continue
                raise self._busy(holder) from None
            os.write(fd, json.dumps(self._me()).encode())
            self._fd = fd
            return self
        raise self._busy(_read_holder(self.path))

    def release(self):
        if self._fd is None:
            return
        try:
            os.remove(self.path)  # while still locked: the next run makes a new file
        except OSError:
            pass
        os.close(self._fd)  # frees the flock
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def check_folder_name(name, what="--name"):
    """Refuses a name that would leave the folder it is joined to (`runs/<name>`,
    `saved_models/<name>`): it must be one plain path component, no `/`, `\\`, `..`.

    >>> check_folder_name("hgfn_own")
    'hgfn_own'
    >>> check_folder_name("../../../x")
    Traceback (most recent call last):
    ...
    ValueError: --name must be a plain folder name (no '/', '\\', '..'), as it goes under runs/ and saved_models/. Received: name='../../../x'
    """
    if (not isinstance(name, str) or not name.strip() or name in (".", "..")
            or "/" in name or "\\" in name or "\0" in name or os.path.isabs(name)):
        raise ValueError(f"{what} must be a plain folder name (no '/', '\\', '..'), as it goes "
                         f"under runs/ and saved_models/. Received: name={name!r}")
    return name


def worker_lock_name(distribution):
    """The lock file of this process's run: `LOCK_FILE`, or for a multi-worker run's
    worker other than the first (TF_CONFIG's task index > 0, which runs the same command
    into the same folder) `LOCK_FILE.worker<i>`, so that the workers of one run do not
    refuse each other while two runs still do.

    >>> worker_lock_name(None)
    '.run.lock'
    """
    if distribution != "multi-worker":
        return LOCK_FILE
    try:
        task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
        index = int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError):
        return LOCK_FILE
    return LOCK_FILE if index == 0 and task.get("type") in (None, "worker", "chief") \
        else f"{LOCK_FILE}.{task.get('type')}{index}"


def is_finished_run(folder, backup_dir=None):
    """Whether `folder` holds a finished run: `metrics.json` written and no backup left
    to resume (`backup_dir`, default `<folder>/backup`)."""
    backup_dir = backup_dir or os.path.join(folder, "backup")
    return (os.path.isfile(os.path.join(folder, FINISHED_FILE))
            and not os.path.isfile(os.path.join(backup_dir, "training_metadata.json")))


def claim_run_folder(folder, overwrite=False, what="--output-dir", overwrite_flag="--overwrite",
                     lock_name=LOCK_FILE):
    """Locks `folder` for one run and refuses a finished run's folder.

    Args:
        folder: the run's output folder (created).
        overwrite: replace a finished run there (its `metrics.json` is removed first).
        what: how messages name the folder.
        overwrite_flag: how messages name the way to overwrite.
        lock_name: the lock file's name in `folder` (`worker_lock_name`).

    Returns:
        A `RunFolderLock`, held; release it (or use it in a `with` block) when the run
        has written everything.

    Raises:
        RunFolderBusyError: another running process holds the folder.
        FinishedRunError: the folder holds a finished run and `overwrite` is False.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with claim_run_folder(folder):
    ...     try:
    ...         claim_run_folder(folder)
    ...     except RunFolderBusyError as error:
    ...         print("in use by another run" in str(error))
    True
    """
    lock = RunFolderLock(folder, what, lock_name).acquire()
    try:
        if is_finished_run(folder):
            if not overwrite:
                recorded = _finished_when(folder)
                raise FinishedRunError(
                    f"{what}: {os.fspath(folder)!r} holds a finished run ({FINISHED_FILE} "
                    f"written {recorded}); a new run would replace its results. Choose another "
                    f"{what} (or --name), or pass {overwrite_flag} to replace it.")
            os.remove(os.path.join(folder, FINISHED_FILE))
    except BaseException:
        lock.release()
        raise
    return lock


def _finished_when(folder):
    try:
        stamp = os.path.getmtime(os.path.join(folder, FINISHED_FILE))
    except OSError:
        return "earlier"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


__all__ = [
    "LOCK_FILE",
    "FinishedRunError",
    "RunFolderBusyError",
    "RunFolderLock",
    "check_folder_name",
    "claim_run_folder",
    "is_finished_run",
    "worker_lock_name",
]
