"""A file-size limit (`ulimit -f`, `RLIMIT_FSIZE`) hit while writing (issue 30).

Each CLI runs in a subprocess under the limit, with SIGXFSZ ignored (as Python does by
default), so that the write fails with `EFBIG`. Each must print one line naming what
was written, where, and the OS's reason; leave no staging file or half-written output;
and keep the earlier good backup, SavedModel version or predictions. Before: an
`OSError` traceback and staging files (`.partial.weights.h5`, `.1.partial-…`, h5py's
"Can't decrement id ref count" tracebacks and a segmentation fault for the backup).
"""

import csv
import os
import resource
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _limited(limit):
    def start():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return start


def _run(args, limit=None, code=None):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", *args]
    return subprocess.run(command + (list(args) if code else []), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False,
                          preexec_fn=_limited(limit) if limit else None)


def _error_lines(stderr):
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _partials(folder):
    return [os.path.join(d, f) for d, dirs, files in os.walk(folder) for f in dirs + files
            if ".partial" in f]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 1-epoch run of a 60-row npz, its `model.keras` and SavedModel 1."""
    root = tmp_path_factory.mktemp("limits")
    rng = np.random.default_rng(0)
    n = 60
    npz = root / "own.npz"
    np.savez(npz, x_audio=rng.normal(size=(n, 3)).astype("float32"),
             x_video=rng.normal(size=(n, 4)).astype("float32"),
             y_happy=np.arange(n) % 2, y_mood=np.arange(n) % 3)
    done = _run(["training.train", "--dataset", f"npz:{npz}", "--epochs", "1",
                 "--output-dir", str(root / "run"), "--export-dir", str(root / "sm")])
    assert done.returncode == 0, done.stderr[-3000:]
    return root


# The second backup under a limit smaller than the weights file: the first (epoch 1)
# is written, then the limit is set (`_save_model` wrapped in the subprocess).
TRAIN_UNDER_A_LIMIT = textwrap.dedent("""
    import resource, sys
    from hgfn_keras.recipe.backup import AtomicBackupAndRestore
    from training import train
    real, calls = AtomicBackupAndRestore._save_model, []
    def limited(self):
        calls.append(1)
        if len(calls) == 2:
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        real(self)
    AtomicBackupAndRestore._save_model = limited
    sys.exit(train.main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_a_file_size_limit_hit_writing_the_backup_is_one_line_and_keeps_the_last(trained):
    run = trained / "limited-run"
    args = ["--dataset", f"npz:{trained / 'own.npz'}", "--epochs", "3", "--output-dir",
            str(run), "--no-export", "--patience", "0"]
    done = _run(args, code=TRAIN_UNDER_A_LIMIT)
    lines = _error_lines(done.stderr)
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    backup = run / "backup"
    assert lines[0].startswith(f"error: [Errno 27] Cannot write the backup's weights "
                               f"{str(backup / 'epoch2-batch0.weights.h5')!r}: File too large.")
    assert _partials(run) == []
    assert sorted(f for f in os.listdir(backup) if not f.startswith(".")) == [
        "epoch1-batch0.state.npz", "epoch1-batch0.weights.h5", "fingerprint.json",
        "training_metadata.json"]
    # The backup kept is whole: without the limit the run resumes from it and finishes.
    done = _run(["training.train", *args])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 2/3" in done.stdout.lower() and "epoch 1/3" not in done.stdout.lower()


@pytest.mark.slow
def test_a_file_size_limit_hit_writing_the_savedmodel_is_one_line_and_keeps_version_1(
        trained):
    sm = trained / "sm"
    before = {f: os.path.getsize(os.path.join(d, f))
              for d, _, files in os.walk(sm / "1") for f in files}
    done = _run(["training.export", "--model", str(trained / "run" / "model.keras"),
                 "--export-dir", str(sm)], limit=4096)
    lines = _error_lines(done.stderr)
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(f"error: [Errno 27] Cannot write the SavedModel "
                               f"{str(sm / '2')!r}: File too large.")
    assert sorted(os.listdir(sm)) == ["1"]  # no staging folder, no version 2
    assert {f: os.path.getsize(os.path.join(d, f))
            for d, _, files in os.walk(sm / "1") for f in files} == before


@pytest.mark.slow
def test_a_file_size_limit_hit_writing_predictions_is_one_line_and_keeps_the_old(trained):
    out = trained / "p.csv"
    args = ["training.predict", "--model", str(trained / "run" / "model.keras"), "--input",
            str(trained / "own.npz"), "--output", str(out)]
    done = _run(args)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out, newline="", encoding="utf-8") as f:
        good = f.read()
    assert len(good) > 2048 and len(list(csv.reader(good.splitlines()))) == 61
    done = _run(args, limit=1024)
    lines = _error_lines(done.stderr)
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(f"error: [Errno 27] Cannot write the predictions "
                               f"{str(out)!r}: File too large.")
    assert _partials(trained) == []
    with open(out, newline="", encoding="utf-8") as f:
        assert f.read() == good  # the earlier output, whole
