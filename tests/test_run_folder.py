"""One run per output folder at a time; a finished run is never replaced unasked (issue 30).

A second run into a folder in use is refused naming the holder; a lock left by a killed
process is recognised and taken over with a warning naming it; a folder with a finished
run (`metrics.json`, no backup to resume) is refused unless `--overwrite`, also when the
run was started with `--config` of that run's `config.json` (which records its
`output_dir`).
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hgfn_keras.recipe.run_folder import (
    LOCK_FILE,
    FinishedRunError,
    RunFolderBusyError,
    claim_run_folder,
    is_finished_run,
    worker_lock_name,
)
from training import train

HOLDER = textwrap.dedent("""
    import fcntl, json, os, socket, sys, time
    path = sys.argv[1]
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": "2026-01-01 00:00:00", "command": "holder"}).encode())
    print("locked", flush=True)
    time.sleep(120)
""")


def _holder(folder):
    """A process that holds `folder`'s lock as a run does (stdlib only: starts fast)."""
    os.makedirs(folder, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder / LOCK_FILE)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def _errors(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_holder(
        tiny_npz_file, tmp_path, capsys):
    folder = tmp_path / "run"
    holder = _holder(folder)
    try:
        code = train.main(["--dataset", f"npz:{tiny_npz_file}", "--epochs", "1",
                           "--output-dir", str(folder), "--no-export", "--verbose", "0"])
        errors = _errors(capsys)
        assert code == 2 and len(errors) == 1, errors
        assert f"is in use by another run (pid {holder.pid} on " in errors[0]
        assert "started 2026-01-01 00:00:00" in errors[0]
        assert not os.path.exists(folder / "backup")  # nothing trained, nothing written
        with pytest.raises(RunFolderBusyError):  # the library says the same
            claim_run_folder(folder)
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning(tmp_path):
    folder = tmp_path / "run"
    holder = _holder(folder)
    holder.send_signal(signal.SIGKILL)  # no chance to clean up: the file stays
    holder.wait()
    assert os.path.exists(folder / LOCK_FILE)
    with pytest.warns(UserWarning, match=rf"had a stale lock from a run that no longer runs "
                      rf"\(pid {holder.pid} on .*\): taken over"):
        lock = claim_run_folder(folder)
    with lock:
        recorded = json.loads((folder / LOCK_FILE).read_text())
        assert recorded["pid"] == os.getpid()
        with pytest.raises(RunFolderBusyError, match=rf"pid {os.getpid()} on "):
            claim_run_folder(folder)
    assert not os.path.exists(folder / LOCK_FILE)  # released: the next run starts clean
    with claim_run_folder(folder):
        pass


def _finished(folder, **config):
    os.makedirs(folder / "backup", exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps({"mean": {"f1": 0.5}}))
    (folder / "config.json").write_text(json.dumps(config))
    return (folder / "metrics.json").read_text()


def test_a_finished_run_is_refused_unless_overwrite(tiny_npz_file, tmp_path, capsys):
    folder = tmp_path / "run"
    kept = _finished(folder)
    code = train.main(["--dataset", f"npz:{tiny_npz_file}", "--epochs", "1",
                       "--output-dir", str(folder), "--no-export", "--verbose", "0"])
    errors = _errors(capsys)
    assert code == 2 and len(errors) == 1, errors
    assert errors[0].startswith(f"error: --output-dir: {str(folder)!r} holds a finished run "
                                "(metrics.json written ")
    assert "pass --overwrite to replace it" in errors[0]
    assert (folder / "metrics.json").read_text() == kept
    assert not os.path.exists(folder / LOCK_FILE)
    with pytest.raises(FinishedRunError):
        claim_run_folder(folder)
    with claim_run_folder(folder, overwrite=True):  # asked for: the old result goes first
        assert not os.path.exists(folder / "metrics.json")


def test_a_run_started_with_an_earlier_run_s_config_does_not_overwrite_it(
        tiny_npz_file, tmp_path, capsys):
    folder = tmp_path / "earlier"
    # The earlier run's config.json, as training.train writes it (vars(args)); it even
    # records that it was itself started with --overwrite, which a file never repeats.
    kept = _finished(folder, dataset=f"npz:{tiny_npz_file}", epochs=1, output_dir=str(folder),
                     no_export=True, verbose=0, overwrite=True, restart=False)
    code = train.main(["--config", str(folder / "config.json")])
    errors = _errors(capsys)
    assert code == 2 and len(errors) == 1, errors
    assert "holds a finished run" in errors[0] and "--overwrite" in errors[0]
    assert (folder / "metrics.json").read_text() == kept


def test_a_run_killed_after_its_metrics_but_before_its_export_still_resumes(tmp_path):
    folder = tmp_path / "run"
    _finished(folder)
    (folder / "backup" / "training_metadata.json").write_text("{}")
    assert not is_finished_run(folder)
    with claim_run_folder(folder):  # not refused, and nothing removed
        assert os.path.exists(folder / "metrics.json")
    os.remove(folder / "backup" / "training_metadata.json")
    assert is_finished_run(folder)


def test_the_workers_of_one_multi_worker_run_lock_apart(monkeypatch):
    cluster = {"worker": ["a:1", "b:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 0}}))
    assert worker_lock_name("multi-worker") == LOCK_FILE
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    assert worker_lock_name("multi-worker") == f"{LOCK_FILE}.worker1"
    assert worker_lock_name("mirrored") == LOCK_FILE


@pytest.mark.slow
def test_two_runs_racing_for_one_folder_leave_one_holder(tmp_path):
    folder, release = tmp_path / "run", tmp_path / "release"
    module_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                               "hgfn_keras", "recipe", "run_folder.py")
    start = time.time() + 3.0  # all four try at once
    script = textwrap.dedent(f"""
        import importlib.util, os, sys, time
        spec = importlib.util.spec_from_file_location("run_folder", {module_path!r})
        module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
        time.sleep(max(0.0, {start} - time.time()))
        try:
            lock = module.claim_run_folder({str(folder)!r})
        except module.RunFolderBusyError:
            print("refused", flush=True); sys.exit(0)
        print("holder", flush=True)
        while not os.path.exists({str(release)!r}):
            time.sleep(0.05)
        lock.release()
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            for _ in range(4)]
    try:
        outcomes = sorted(run.stdout.readline().strip() for run in runs)
    finally:
        release.write_text("")
        for run in runs:
            run.wait(timeout=60)
    assert outcomes == ["holder", "refused", "refused", "refused"], outcomes
