"""`python -m training.train`'s help and refusals, run in this process (`main(argv)`): a
refusal needs no process of its own (the end-to-end runs are in test_train_cli.py)."""

import re

import numpy as np
import pytest

from tests.conftest import error_lines as _error_lines
from tests.conftest import run_in_process
from training import train


def test_help():
    result = run_in_process(train.main, "--help")
    assert result.returncode == 0
    for option in ("--dataset", "--fusion", "--epochs", "--seed", "--output-dir"):
        assert option in result.stdout


@pytest.fixture(scope="module")
def broken_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("broken") / "one_modality.npz"
    np.savez(path, x_image=np.zeros((30, 4), np.float32), y_flood=np.arange(30) % 2)
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--theta", "1.5"], r"`theta` must be in \(0, 1\]. Received: theta=1.5"),
        (["--epochs", "0"], r"`epochs` must be a positive integer( or None)?\. Received: epochs=0"),
        (["--fusion", "nope"], r"--fusion.*invalid choice: 'nope'"),
        (["--dataset", "nope"], r"'clothing', 'npz:PATH'.*'tfrecord:DIR'.*Received: spec='nope'"),
        (["--dataset", "npz:/does/not/exist.npz"], r"does not exist.*/does/not/exist\.npz"),
        (["--dataset", "npz:BROKEN"], r"at least two modalities.*x_image"),
        (["--learning-rate", "nan"], r"`learning_rate` must be a positive number. "
                                     r"Received: learning_rate=nan"),
        (["--mtl", "dmtl", "--alpha", "nan"], r"`alpha` must be a number >= 0 or None. "
                                              r"Received: alpha=nan"),
        (["--rebalance", "--no-rebalance"], r"--rebalance and --no-rebalance contradict"),
        (["--mtl", "lsew", "--rebalance"], r"`rebalance` \(--rebalance\) does not apply to "
                                           r"mtl='lsew'"),
        (["--modality-dropout", "1"], r"`modality_dropout` must be in \[0, 1\) or None. "
                                     r"Received: modality_dropout=1.0"),
        (["--keep-modalities", "maybe"], r"--keep-modalities.*expected yes, no or weighted"),
    ],
    ids=["theta", "epochs", "fusion", "dataset", "missing-npz", "broken-npz", "nan-learning-rate",
         "nan-alpha", "rebalance-both", "rebalance-lsew", "modality-dropout", "keep-modalities"],
)
def test_bad_arguments(args, message, broken_npz, tmp_path):
    args = [a.replace("BROKEN", str(broken_npz)) for a in args]
    result = run_in_process(train.main, *args, "--no-export", "--output-dir", tmp_path / "run")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = _error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert re.search(message, errors[0]), errors[0]
    assert not (tmp_path / "run").exists()


def test_a_model_of_many_tasks_is_announced_before_it_is_built(tiny_npz_file, tmp_path,
                                                                 monkeypatch):
    """Hundreds of tasks take minutes to build and trace with no Keras output (issue 30):
    the program says so first. The threshold lowered to the tiny file's 2 tasks."""
    assert train.many_tasks_note(train.MANY_TASKS - 1) is None
    assert "300 tasks" in train.many_tasks_note(300)
    monkeypatch.setattr(train, "MANY_TASKS", 2)
    result = run_in_process(train.main, "--dataset", f"npz:{tiny_npz_file}", "--epochs", 1,
                            "--head-units", 4, "--no-export", "--verbose", 0,
                            "--output-dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[1].startswith("Building a model of 2 tasks: "), lines[:3]
