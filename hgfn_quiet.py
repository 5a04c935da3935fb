"""A quiet terminal: TensorFlow's start-up and C++ log lines off unless asked for.

Standard library only, and a module of its own beside the `hgfn_keras` package (whose
import imports TensorFlow): the programs (`training/`, `tuning/`, `benchmarks/`) import it
and call `configure_program` before TensorFlow's first import. Importing `hgfn_keras` itself changes nothing in
the process: a notebook or a server that imports the library keeps TensorFlow's logs
as it set them. Where each noise line comes from and how it is stopped:

- `WARNING: All log messages before absl::InitializeLog() ...`, `port.cc ... oneDNN
  custom operations are on` and `cudart_stub.cc ... Could not find cuda drivers`, twice:
  static initialisers in TensorFlow's two shared libraries (each carries its own absl
  logging), run while `import tensorflow` loads them. absl writes everything to stderr
  before `InitializeLog`, whatever `TF_CPP_MIN_LOG_LEVEL` says, so these lines are
  filtered out of file descriptor 2 during that import only (`install`); any other line
  printed then is passed through.
- `E0000 ... cuda_platform.cc ... failed call to cuInit` (a CUDA build of TensorFlow on a
  machine without a GPU driver), `E0000 ... meta_optimizer.cc ... remapper failed`
  (Grappler) and `E0000 ... oneDNN supports DT_INT64 only on platforms with AVX-512`:
  C++ ERROR-level logs after start-up; `TF_CPP_MIN_LOG_LEVEL=3` (set here unless the
  user chose a level) stops them. Errors that matter reach Python as exceptions.
- absl's Python logger is set to ERROR after TensorFlow's import.

`HGFN_VERBOSE=1` (what a bare `--verbose` on a command line sets) turns all of this off and sets
`TF_CPP_MIN_LOG_LEVEL=0` unless the user chose a level.
"""

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

VERBOSE_ENV = "HGFN_VERBOSE"
# Lines TensorFlow prints while it is imported, before absl's logging is initialised.
STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]0000 .*(port\.cc|cudart_stub\.cc|cpu_feature_guard\.cc|cuda_(fft|dnn|blas)\.cc)"
    r"|E0000 .*(cuda_(fft|dnn|blas)\.cc|Unable to register cu))"
)


def is_verbose() -> bool:
    """Whether the user asked for TensorFlow's logs (`HGFN_VERBOSE=1`)."""
    return os.environ.get(VERBOSE_ENV, "").lower() not in ("", "0", "false", "no")


def asks_for_logs(argv: "list[str]") -> bool:
    """Whether a command line has a bare `--verbose` (not `--verbose N`, Keras' verbosity).

    >>> asks_for_logs(["--verbose"]), asks_for_logs(["--verbose", "--epochs", "1"])
    (True, True)
    >>> asks_for_logs(["--verbose", "2"]), asks_for_logs(["--verbose=1"]), asks_for_logs([])
    (False, False, False)
    """
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--verbose" and (i + 1 == len(argv) or not argv[i + 1].isdigit()):
            return True
    return False


def configure_program() -> None:
    """`configure` for one of the project's programs: a bare `--verbose` counts only on
    a command line of ours, `python -m <package>.<name>` (argv[0] is "-m" while the
    package is imported) or an `hgfn-*` console script; not, say, pytest's."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    ours = program == "-m" or program.startswith("hgfn-")
    configure(sys.argv[1:] if ours else None)


def configure(argv: "list[str] | None" = None) -> None:
    """Sets the log environment before TensorFlow is imported; installs the start-up filter.

    Args:
        argv: a command line; a bare `--verbose` in it sets `HGFN_VERBOSE=1` (see
            `asks_for_logs`). None: leave `HGFN_VERBOSE` as it is.
    """
    if argv is not None and asks_for_logs(argv):
        os.environ[VERBOSE_ENV] = "1"
    if is_verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    install()


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader with stderr's start-up noise filtered out."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _filtered_stderr():
            self._loader.exec_module(module)
        try:
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
        except ImportError:  # absl comes with TensorFlow; nothing to quiet without it
            pass


class _TensorFlowFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the first `import tensorflow`, then removes itself."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        _remove_finder()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _remove_finder():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TensorFlowFinder)]


def install() -> None:
    """Filters TensorFlow's start-up lines out of stderr during its first import.

    Does nothing when TensorFlow is already imported or the filter is installed.
    """
    if "tensorflow" in sys.modules or is_verbose():
        return
    if not any(isinstance(f, _TensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowFinder())


class _filtered_stderr:
    """Sends file descriptor 2 to a temporary file; on exit writes back what is not noise."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, ValueError):  # no usable fd 2 (e.g. some notebooks): leave it
            self._saved = None
            return self
        self._file = tempfile.TemporaryFile(mode="w+b")
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        kept = [line for line in text.splitlines(keepends=True)
                if not STARTUP_NOISE.match(line)]
        if kept:
            os.write(2, "".join(kept).encode("utf-8"))
        return False
