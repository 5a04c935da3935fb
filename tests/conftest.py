"""Shared tiny fixtures: two modalities, two tasks (binary and 3-class), a dozen rows,
and a tiny npz file. Test files may still define their own when they need other sizes."""

import contextlib
import io
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from hgfn_keras import Modality, Task

TINY_MODALITIES = (Modality("a", width=4), Modality("b", width=3))
TINY_TASKS = (Task("t1", 2), Task("t2", 3))


def tiny_xy(n=12, seed=0, with_mask=False):
    """Inputs `{a, b}` and labels `{t1, t2}` (every class present) of `n` rows."""
    rng = np.random.default_rng(seed)
    x = {"a": rng.normal(size=(n, 4)).astype("float32"),
         "b": rng.normal(size=(n, 3)).astype("float32")}
    if with_mask:
        x["modality_mask"] = np.ones((n, 2), "float32")
        x["modality_mask"][0, 1] = 0.0
    y = {"t1": np.arange(n) % 2, "t2": np.arange(n) % 3}
    return x, y


@pytest.fixture
def tiny_modalities():
    return list(TINY_MODALITIES)


@pytest.fixture
def tiny_tasks():
    return list(TINY_TASKS)


@pytest.fixture
def tiny_data():
    return tiny_xy()


@pytest.fixture(scope="module")
def tiny_npz_file(tmp_path_factory):
    """A 40-row npz (audio [40, 3], video [40, 4]; happy binary, mood 3-class)."""
    rng = np.random.default_rng(0)
    n = 40
    path = tmp_path_factory.mktemp("tiny") / "tiny.npz"
    np.savez(path, x_audio=rng.normal(size=(n, 3)).astype("float32"),
             x_video=rng.normal(size=(n, 4)).astype("float32"),
             y_happy=np.arange(n) % 2, y_mood=np.arange(n) % 3)
    return path


def make_inputs(modalities, rows, rng, mask=False, missing=()):
    """Random inputs `{modality name: float32 [rows, width]}` drawn from `rng` (a numpy
    Generator, which the caller may go on drawing labels from); with `mask` (or any
    `missing`), a `modality_mask` of ones with 0 at each `(row, modality index)` in
    `missing`."""
    x = {m.name: rng.normal(size=(rows, m.width)).astype("float32") for m in modalities}
    if mask or missing:
        x["modality_mask"] = np.ones((rows, len(modalities)), "float32")
        for row, column in missing:
            x["modality_mask"][row, column] = 0.0
    return x


def make_model(modalities, tasks, optimizer=None, seed=0, **build_kwargs):
    """`build_model(modalities, tasks, **build_kwargs)` after seeding, compiled with
    `optimizer` (default SGD 0.05): the tests' tiny model."""
    import keras

    from hgfn_keras import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(list(modalities), list(tasks), **build_kwargs)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.05))
    return model


REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=240):
    """`python -m training.train ARGS` in a process of its own (for end-to-end runs, and
    where the process is the point: signals, concurrency)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "training.train", *map(str, args)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_in_process(main, *args):
    """A CLI's `main(argv)` run in this process, as `subprocess.run` would report it:
    `returncode` (argparse's `SystemExit` included), `stdout`, `stderr`. For refusals
    and help, which need no process (and so no TensorFlow start-up) of their own; an
    exception that `main` lets through fails the test as a traceback would."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) or exit.code is None else 1
    return subprocess.CompletedProcess(list(args), code or 0, out.getvalue(), err.getvalue())


def error_lines(stderr):
    """The lines of stderr that carry an error message (TF's start-up noise left out)."""
    return [line for line in stderr.splitlines()
            if line.startswith("error:") or re.match(r"^\S.*: error: ", line)]
