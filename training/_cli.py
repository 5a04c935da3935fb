"""The programs' one error policy: what a `main()` does with an exception.

- A **user error** (something the person at the terminal can fix) prints
  `error: <its message>` on stderr and the exit status is 2 (argparse's status for a
  bad argument). The package's messages are one line; a library's may go on (Keras'
  "in user code:" before the message), but a traceback appended to one is cut. User
  errors are a `ValueError` (the package's own errors derive from it: a refused
  argument, a damaged model file, a busy run folder, a backup of another run,
  undecodable text), an `OSError` (a missing, existing or unwritable file, a full disk),
  an `ImportError` (an optional dependency not installed; the package's say what to
  install), `csv.Error` (a malformed CSV file), and TensorFlow's file and data errors
  (`NotFoundError`, `PermissionDeniedError`, `AlreadyExistsError`, `DataLossError`).
- **Ctrl-C** prints one line, `error: interrupted (Ctrl-C).` and what the program keeps
  (a resumable run says how to resume), and the exit status is 130 (128 + SIGINT).
- Anything else (`TypeError`, `KeyError`, `RuntimeError`, ...) is a bug: its traceback
  stays, for the bug report. A program that drives a library whose failures are the
  user's to fix adds them (`tuning.search`: KerasTuner's `RuntimeError` when trials keep
  failing).

Standard library only (TensorFlow's errors are looked up only once TensorFlow is
imported), so that a program's `--help` does not import TensorFlow. Used by every program
in `training/` and `tuning/`; `hgfn_keras` never imports it (a library raises, the program
decides).
"""

import csv
import sys

#: The exceptions every program reports as one `error:` line with exit status 2.
USER_ERRORS = (ValueError, OSError, ImportError, csv.Error)
#: TensorFlow's errors (`tf.errors.<name>`) that are about files and data, not bugs.
TF_USER_ERRORS = ("NotFoundError", "PermissionDeniedError", "AlreadyExistsError",
                  "DataLossError")
USER_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130


def user_errors(extra=()):
    """The exception classes reported as user errors: `USER_ERRORS`, TensorFlow's file
    and data errors (once TensorFlow is imported) and `extra`.

    >>> ValueError in user_errors() and TypeError not in user_errors()
    True
    >>> RuntimeError in user_errors(extra=(RuntimeError,))
    True
    """
    tf = sys.modules.get("tensorflow")
    errors = getattr(tf, "errors", None)
    tf_errors = tuple(getattr(errors, name) for name in TF_USER_ERRORS
                      if errors is not None and hasattr(errors, name))
    return USER_ERRORS + tf_errors + tuple(extra)


def error_message(error):
    """What a user error prints after `error: `: its message as it is (TensorFlow's
    errors: their `message`, without the op's name), up to a traceback that a library
    appended to it (KerasTuner's "Number of consecutive failures exceeded the limit"
    carries the last trial's); an empty message: the exception's class name.

    >>> error_message(ValueError("`epochs` must be >= 1. Received: epochs=0"))
    '`epochs` must be >= 1. Received: epochs=0'
    >>> error_message(RuntimeError("3 trials failed.\\nTraceback (most recent call last): ..."))
    '3 trials failed.'
    >>> error_message(FileNotFoundError())
    'FileNotFoundError'
    """
    message = getattr(error, "message", None)
    text = message if isinstance(message, str) else str(error)
    lines = text.strip().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            lines = lines[:i]
            break
    return "\n".join(lines).strip() or type(error).__name__


def run_main(function, *args, interrupted="", extra_errors=()):
    """Runs a program's work, `function(*args)`, under the one error policy; returns the
    exit status: 0 when it returns (whatever it returns: a program's `run` returns its
    results to a caller in Python, not a status), 2 or 130 as above.

    Args:
        function: the program's work (after its arguments are parsed).
        *args: passed to `function`.
        interrupted: what Ctrl-C leaves and how to go on, added to the one line it prints
            (e.g. "Started again with the same command, the run resumes ...").
        extra_errors: exception classes that are user errors in this program too.

    Example:

    >>> import contextlib, io
    >>> def work(path):
    ...     raise FileNotFoundError(f"The feature file does not exist: {path!r}")
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     status = run_main(work, "x.npz")
    >>> status, err.getvalue()
    (2, "error: The feature file does not exist: 'x.npz'\\n")
    >>> run_main(lambda: {"mean": {"f1": 0.5}})  # not `sys.exit`'s argument: status 0
    0
    """
    try:
        function(*args)
    except KeyboardInterrupt:
        note = f" {interrupted}" if interrupted else ""
        print(f"error: interrupted (Ctrl-C).{note}", file=sys.stderr)
        return INTERRUPTED_STATUS
    except user_errors(extra_errors) as error:
        print(f"error: {error_message(error)}", file=sys.stderr)
        return USER_ERROR_STATUS
    return 0
