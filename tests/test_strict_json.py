"""Strict JSON (no NaN), atomic writes that fail cleanly, and a default run's output."""

import errno
import json
import math
import os

import numpy as np
import pytest

from hgfn_keras.utils.io_utils import (
    atomic_write_json,
    atomic_write_text,
    strict_json_value,
)
from tests.conftest import run_as_process


def strict_loads(text):
    """`json.loads` that refuses NaN / Infinity, as a browser's `JSON.parse` does."""

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_strict_parser_refuses_what_python_writes_by_default():
    with pytest.raises(ValueError, match="NaN"):
        strict_loads(json.dumps({"map": math.nan}))


def test_explained_nan_becomes_null_and_unexplained_nan_is_refused(tmp_path):
    data = {"map": np.float32("nan"), "map_undefined": "no positive label", "n": np.int64(3),
            "ok": np.bool_(True), "a": np.arange(2)}
    path = tmp_path / "m.json"
    atomic_write_json(path, data)
    assert strict_loads(path.read_text()) == {
        "map": None, "map_undefined": "no positive label", "n": 3, "ok": True, "a": [0, 1]}
    with pytest.raises(ValueError, match=r"h.json.loss\[1\] is nan: JSON has no NaN"):
        atomic_write_json(tmp_path / "h.json", {"loss": [0.5, math.nan]})
    with pytest.raises(ValueError, match=r"data.x is inf"):
        strict_json_value({"x": math.inf})
    # A list under an explained key: e.g. a history whose loss diverged.
    assert strict_json_value({"loss": [0.5, math.nan], "loss_undefined": "diverged"}) == {
        "loss": [0.5, None], "loss_undefined": "diverged"}
    assert sorted(os.listdir(tmp_path)) == ["m.json"]  # the refused write left nothing


def test_a_file_where_the_folder_should_be_is_a_clear_error(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("")
    with pytest.raises(OSError, match=r"Cannot write .*out/metrics.json.*output folder"):
        atomic_write_json(blocker / "metrics.json", {"a": 1})
    assert sorted(os.listdir(tmp_path)) == ["out"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=r"Cannot write .*ro/a.json.*writable"):
            atomic_write_text(folder / "a.json", "{}")
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.ENOENT, errno.EROFS])
def test_a_write_failing_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch,
                                                                     failure):
    # A full disk, the folder removed meanwhile, a file system remounted read-only: the
    # rename fails after the temporary file was written.
    path = tmp_path / "metrics.json"
    path.write_text('{"old": 1}')

    def failing_replace(src, dst):
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match=r"Cannot write .*metrics.json") as caught:
        atomic_write_json(path, {"new": 2})
    assert caught.value.errno == failure
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]
    assert strict_loads(path.read_text()) == {"old": 1}


def test_a_vanished_folder_is_recreated(tmp_path):
    folder = tmp_path / "out"
    atomic_write_json(folder / "a.json", {"a": 1})
    (folder / "a.json").unlink()
    folder.rmdir()
    atomic_write_json(folder / "a.json", {"a": 2})
    assert strict_loads((folder / "a.json").read_text()) == {"a": 2}


# ------------------------------------------------------------ a default CLI run


@pytest.fixture(scope="module")
def degenerate_run(tmp_path_factory):
    """A tiny default training run whose task 'rare' has no positive test label."""
    base = tmp_path_factory.mktemp("strict")
    rng = np.random.default_rng(0)
    n = 60
    split = np.array([0] * 36 + [1] * 12 + [2] * 12)
    rare = np.where(split == 2, 0, np.arange(n) % 2)
    path = base / "tiny.npz"
    np.savez(path, x_a=rng.normal(size=(n, 3)), x_b=rng.normal(size=(n, 2)),
             y_rare=rare, y_level=np.arange(n) % 3, split=split)
    out = base / "run"
    from training import train

    result = run_as_process(train.main, "--dataset", f"npz:{path}", "--epochs", "2",
                            "--no-export", "--head-units", "4", "--batch-size", "16",
                            "--output-dir", out)
    return result, out


@pytest.mark.slow
def test_every_json_of_a_run_is_strict_and_an_undefined_metric_is_null(degenerate_run):
    result, out = degenerate_run
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(p.name for p in out.glob("*.json"))
    assert written == ["config.json", "history.json", "metrics.json"]
    parsed = {name: strict_loads((out / name).read_text()) for name in written}
    metrics = parsed["metrics.json"]
    assert metrics["tasks"]["rare"]["map"] is None
    assert "no positive label" in metrics["tasks"]["rare"]["map_undefined"]
    assert metrics["mean_over"]["map"] == {"num_tasks": 1, "skipped_tasks": ["rare"]}
    assert metrics["mean"]["map"] == metrics["tasks"]["level"]["map"]
    assert metrics["mean_over"]["f1"]["num_tasks"] == 2
    assert "n/a" in result.stdout  # the printed table


def test_a_default_run_never_runs_out_of_data(degenerate_run):
    result, _ = degenerate_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ran out of data" not in result.stdout + result.stderr
