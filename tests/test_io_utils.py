"""`io_utils.StagedOutput`: the one helper for writes through a staging name and a rename.

Every output a reader must never see half done goes through it; these tests check the
helper itself (committed whole, nothing left on a failure or an interrupt, one line naming
what, where and the OS's reason) and that the package has no hand-made
temporary-file-and-rename left beside it.
"""

import errno
import os
import pathlib
import re

import numpy as np
import pytest

from hgfn_keras.utils.io_utils import StagedOutput, write_error

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_file_is_committed_whole_under_its_extension(tmp_path):
    target = tmp_path / "epoch3-batch0.weights.h5"
    with StagedOutput(target, "the backup") as staging:
        assert staging.endswith(".partial.weights.h5")  # Keras picks the format from it
        assert os.path.dirname(staging) == str(tmp_path)  # one file system: atomic
        assert f".{os.getpid()}-" in os.path.basename(staging)
        pathlib.Path(staging).write_text("whole")
        assert not target.exists()  # a reader sees nothing until the rename
    assert os.listdir(tmp_path) == [target.name] and target.read_text() == "whole"


@pytest.mark.parametrize("failure", [OSError(errno.EFBIG, "File too large"),
                                     KeyboardInterrupt(), ValueError("bad value")])
def test_a_failure_leaves_the_old_file_and_no_staging_file(tmp_path, failure):
    target = tmp_path / "p.csv"
    target.write_text("the earlier run's rows")
    with pytest.raises(type(failure)) as caught, \
            StagedOutput(target, "the predictions") as staging:
        pathlib.Path(staging).write_text("half")
        raise failure
    assert os.listdir(tmp_path) == ["p.csv"]
    assert target.read_text() == "the earlier run's rows"
    if isinstance(failure, OSError):  # one line: what, where, the OS's reason
        message = str(caught.value)
        assert "\n" not in message and caught.value.errno == errno.EFBIG
        assert message.startswith(f"[Errno 27] Cannot write the predictions {str(target)!r}: "
                                  "File too large.")
    else:  # anything else goes through unchanged
        assert caught.value is failure


def test_a_folder_is_staged_and_removed_on_failure(tmp_path):
    target = tmp_path / "3"
    with pytest.raises(OSError, match=r"Cannot write the SavedModel .*/3': No space left"), \
            StagedOutput(target, "the SavedModel", folder=True) as staging:
        (pathlib.Path(staging) / "variables").mkdir()
        raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == []
    with StagedOutput(target, "the SavedModel", folder=True) as staging:
        (pathlib.Path(staging) / "saved_model.pb").write_text("pb")
    assert os.listdir(tmp_path) == ["3"] and os.listdir(target) == ["saved_model.pb"]


def test_a_failing_rename_removes_the_staging_file(tmp_path, monkeypatch):
    def no_rename(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="Invalid cross-device link") as caught, \
            StagedOutput(tmp_path / "a.json") as staging:
        pathlib.Path(staging).write_text("{}")
    assert caught.value.errno == errno.EXDEV
    assert os.listdir(tmp_path) == []


def test_errors_without_an_errno_are_recognised_from_their_text():
    # h5py and TensorFlow say "File too large" in words, over lines, with no errno.
    error = write_error(RuntimeError("Unable to write (file write failed: errno = 27, "
                                     "error message = 'File too large')\nmore"), "/o/w.h5")
    assert type(error) is OSError and error.errno == errno.EFBIG
    assert str(error).startswith("[Errno 27] Cannot write the file '/o/w.h5': File too "
                                 "large. Check that the output folder '/o' exists")
    assert "\n" not in str(error)
    # A short reason of other words is kept beside the OS's one.
    error = write_error(RuntimeError("disk quota reached"), "/o/p.csv", "the predictions")
    assert str(error).startswith("Cannot write the predictions '/o/p.csv': disk quota reached.")


def test_a_failed_picture_leaves_no_staging_file(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from training import plots

    plt = plots.pyplot()
    figure = plt.figure()

    def savefig_cut_short(path, **kwargs):
        pathlib.Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(figure, "savefig", savefig_cut_short)
    with pytest.raises(OSError, match=r"Cannot write the picture .*w.png': File too large"):
        plots.save_png(figure, str(tmp_path / "w.png"))
    assert os.listdir(tmp_path) == []


def test_a_backup_whose_state_fails_leaves_the_last_backup_and_no_staging_file(tmp_path,
                                                                              monkeypatch):
    import keras

    from hgfn_keras.recipe import backup, resume_state

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    folder = tmp_path / "backup"
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[backup.AtomicBackupAndRestore(str(folder), delete_checkpoint=False)])
    before = sorted(os.listdir(folder))

    def snapshot_cut_short(path, *args, **kwargs):
        pathlib.Path(path).write_bytes(b"PK half")
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(resume_state, "snapshot", snapshot_cut_short)
    with pytest.raises(OSError, match=r"Cannot write the backup's state .*epoch\d"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[
            backup.AtomicBackupAndRestore(str(folder), delete_checkpoint=False)])
    assert sorted(os.listdir(folder)) == before  # the last complete backup, nothing else


# The only renames left outside the helper: moving an old backup aside (not a write).
RENAMES_ALLOWED = {"hgfn_keras/utils/io_utils.py", "hgfn_keras/recipe/backup_fingerprint.py",
                   "hgfn_keras/serving/export.py"}  # the export's version-picking commit


def test_no_hand_made_temporary_file_and_rename_is_left():
    found = []
    for folder in ("hgfn_keras", "training", "tuning", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in RENAMES_ALLOWED:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"\bos\.(replace|rename)\(", line):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == [], "write through io_utils.StagedOutput instead:\n" + "\n".join(found)


def test_staging_left_by_a_killed_process_is_removed_and_a_live_one_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f".2.{dead_pid}-deadbeef.partial").mkdir()  # a SavedModel version
        (tmp_path / f".2.{dead_pid}-deadbeef.partial" / "saved_model.pb").write_text("half")
        (tmp_path / f".model.keras.{dead_pid}-0badf00d.partial.keras").write_text("half")
        (tmp_path / f".3.{live.pid}-12345678.partial").mkdir()  # an export running now
        (tmp_path / "1").mkdir()
        (tmp_path / ".hidden").write_text("not ours")
        assert StagedOutput.remove_stale(tmp_path, "model.keras") == [
            f".model.keras.{dead_pid}-0badf00d.partial.keras"]
        assert StagedOutput.remove_stale(tmp_path) == [f".2.{dead_pid}-deadbeef.partial"]
        assert sorted(os.listdir(tmp_path)) == [".3." + f"{live.pid}-12345678.partial",
                                                ".hidden", "1"]
    finally:
        live.kill()
        live.wait()


def test_an_export_removes_the_staging_folder_of_a_killed_export(tmp_path):
    import subprocess
    import sys

    import keras

    from hgfn_keras import Modality, Task, build_model
    from hgfn_keras.serving.export import export_saved_model

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    left = tmp_path / f".1.{int(dead.stdout)}-deadbeef.partial"
    (left / "variables").mkdir(parents=True)  # SIGTERM while TensorFlow wrote it
    keras.utils.set_random_seed(0)
    model = build_model([Modality("a", width=3), Modality("b", width=2)], [Task("t", 2)],
                        fusion="cfc", fusion_kwargs={"units": 4}, head_units=2, mtl="lsew")
    model.predict({"a": np.ones((2, 3), "float32"), "b": np.ones((2, 2), "float32")},
                  verbose=0)
    assert export_saved_model(model, str(tmp_path)) == str(tmp_path / "1")
    assert sorted(os.listdir(tmp_path)) == ["1"]


def test_the_backup_s_weights_made_in_memory_equal_save_weights_own_file(tmp_path):
    import h5py
    import keras

    from hgfn_keras import Modality, Task, build_model
    from hgfn_keras.recipe.backup import weights_h5_bytes

    keras.utils.set_random_seed(0)
    model = build_model([Modality("a", width=3), Modality("b", width=2)], [Task("t", 2)],
                        fusion="cfc", fusion_kwargs={"units": 4}, head_units=2, mtl="lsew")
    x = {"a": np.ones((2, 3), "float32"), "b": np.ones((2, 2), "float32")}
    model.predict(x, verbose=0)
    data = weights_h5_bytes(model)
    assert data is not None and data[:8] == b"\x89HDF\r\n\x1a\n"
    (tmp_path / "m.weights.h5").write_bytes(data)
    model.save_weights(str(tmp_path / "k.weights.h5"))

    def datasets(path):
        found = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, item: found.__setitem__(name, item[()])
                         if isinstance(item, h5py.Dataset) else None)
        return found

    mine, keras_own = datasets(tmp_path / "m.weights.h5"), datasets(tmp_path / "k.weights.h5")
    assert sorted(mine) == sorted(keras_own) and mine
    for name in mine:
        np.testing.assert_array_equal(mine[name], keras_own[name])
    expected = model.predict(x, verbose=0)["t"]
    keras.utils.set_random_seed(1)
    other = build_model([Modality("a", width=3), Modality("b", width=2)], [Task("t", 2)],
                        fusion="cfc", fusion_kwargs={"units": 4}, head_units=2, mtl="lsew")
    other.predict(x, verbose=0)
    other.load_weights(str(tmp_path / "m.weights.h5"))
    np.testing.assert_allclose(other.predict(x, verbose=0)["t"], expected, rtol=0, atol=0)
