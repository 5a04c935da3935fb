"""Exported version folders: readable by other users, and a next free version for each
of several exports running at once."""

import os
import stat
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from hgfn_keras import Modality, Task, build_model
from hgfn_keras.serving.export import export_saved_model

MODALITIES = (Modality("image", width=4), Modality("audio", width=2))
TASKS = (Task("flood", 2),)


def _model():
    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), list(TASKS), fusion="cfc", fusion_kwargs={"units": 4},
                        head_units=4)
    rng = np.random.default_rng(0)
    model.predict({m.name: rng.normal(size=(3, m.width)).astype("float32") for m in MODALITIES},
                  verbose=0)
    return model


@pytest.fixture(scope="module")
def model():
    return _model()


def _modes(root):
    """`{relative path: permission bits}` of every folder and file below `root`, itself too."""
    modes = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            modes[os.path.relpath(path, root)] = stat.S_IMODE(os.stat(path).st_mode)
    return modes


@pytest.mark.parametrize("umask, folder_mode, file_mode", [(0o022, 0o755, 0o644),
                                                           (0o027, 0o750, 0o640)],
                         ids=["umask022", "umask027"])
def test_version_folder_follows_the_umask(model, tmp_path, umask, folder_mode, file_mode):
    old = os.umask(umask)
    try:
        path = export_saved_model(model, str(tmp_path / "tiny"))
    finally:
        os.umask(old)
    modes = _modes(path)
    assert modes["."] == folder_mode, oct(modes["."])  # was mkdtemp's 0700
    for name, mode in modes.items():
        expected = folder_mode if os.path.isdir(os.path.join(path, name)) else file_mode
        assert mode == expected, (name, oct(mode))
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))


def test_a_version_taken_meanwhile_gives_the_next(model, tmp_path, monkeypatch):
    """Another export renames its version into place while this one writes: this one
    takes the next free version instead of failing with "Directory not empty"."""
    base = tmp_path / "tiny"
    archive_class = type(keras.export.ExportArchive())  # the backend's subclass
    write_out = archive_class.write_out
    taken = []

    def slow_write_out(self, filepath, **kwargs):
        write_out(self, filepath, **kwargs)
        # Meanwhile two other exports finished: versions 1 and 2 appear.
        for version in ("1", "2")[: 2 - len(taken)]:
            os.makedirs(base / version)
            (base / version / "saved_model.pb").write_bytes(b"other")
            taken.append(version)

    monkeypatch.setattr(archive_class, "write_out", slow_write_out)
    path = export_saved_model(model, str(base))
    assert path == str(base / "3")
    assert (base / "1" / "saved_model.pb").read_bytes() == b"other"  # untouched
    assert (base / "2" / "saved_model.pb").read_bytes() == b"other"
    assert os.path.getsize(base / "3" / "saved_model.pb") > 1000
    assert sorted(os.listdir(base)) == ["1", "2", "3"]  # no `.partial` folder left
    # A version asked for by number is never moved: it is refused, nothing left behind.
    taken.clear()
    with pytest.raises(FileExistsError, match=r"/tiny/4 exists already: TF Serving versions"):
        def takes_4(self, filepath, **kwargs):
            write_out(self, filepath, **kwargs)
            os.makedirs(base / "4")
            (base / "4" / "saved_model.pb").write_bytes(b"other")

        monkeypatch.setattr(archive_class, "write_out", takes_4)
        export_saved_model(model, str(base), version=4)
    assert sorted(os.listdir(base)) == ["1", "2", "3", "4"]
    assert (base / "4" / "saved_model.pb").read_bytes() == b"other"


_EXPORT = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[3])
    from tests.test_export_folders import _model
    from hgfn_keras.serving.export import export_saved_model
    model = _model()
    # Start the exports together: each says it is ready, then waits for the others (a
    # barrier, not a fixed start time: no process waits longer than the slowest start).
    ready, count = sys.argv[2], int(sys.argv[4])
    open(os.path.join(ready, str(os.getpid())), "w").close()
    deadline = time.time() + 240
    while len(os.listdir(ready)) < count and time.time() < deadline:
        time.sleep(0.01)
    print(export_saved_model(model, sys.argv[1]))
    """
)


@pytest.mark.slow
def test_three_exports_at_once_take_three_versions(tmp_path):
    base = str(tmp_path / "tiny")
    ready = tmp_path / "ready"
    ready.mkdir()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    runs = [subprocess.Popen([sys.executable, "-c", _EXPORT, base, str(ready), root, "3"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for _ in range(3)]
    results = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, results):
        assert run.returncode == 0, err[-3000:]
    assert len(os.listdir(ready)) == 3  # all three reached the barrier
    paths = sorted(out.strip().splitlines()[-1] for out, _ in results)
    assert paths == [os.path.join(base, v) for v in ("1", "2", "3")]
    assert sorted(os.listdir(base)) == ["1", "2", "3"]
