"""A backup is resumed only on the data it was trained on (issue 30): an npz rewritten
between a kill and the rerun is refused in one line (it resumed silently before, epoch 1
trained on the old file and the rest on the new); the same bytes with a new
modification time (a copy, a `touch`) resume."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from hgfn_keras import TrainConfig, load_npz, recipe
from hgfn_keras.recipe.backup_fingerprint import FINGERPRINT_FILE, BackupMismatchError
from hgfn_keras.data.fingerprint import data_differences, data_fingerprint


class Killed(Exception):
    """Stands for a SIGKILL after an epoch's backup."""


class KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch=None):
        super().__init__()
        self.epoch, self.seen = epoch, []

    def on_epoch_begin(self, epoch, logs=None):
        if self.epoch is not None and epoch == self.epoch + 1:
            raise Killed
        self.seen.append(epoch)


def _run(path, output_dir, kill_after=None):
    config = TrainConfig(dataset=f"npz:{path}", epochs=3, patience=0, batch_size=8,
                         head_units=4)
    keras.utils.set_random_seed(0)
    callback = KillAfter(kill_after)
    recipe.train_and_evaluate(config, load_npz(str(path)), str(output_dir), verbose=0,
                              callbacks=[callback])
    return callback.seen


def test_an_npz_rewritten_between_kill_and_rerun_is_refused(tiny_npz_file, tmp_path):
    path = tmp_path / "own.npz"
    shutil.copy(tiny_npz_file, path)
    output_dir = tmp_path / "run"
    with pytest.raises(Killed):
        _run(path, output_dir, kill_after=0)
    size = os.path.getsize(path)
    with np.load(path) as data:  # the same shapes, other numbers
        arrays = {k: data[k] for k in data.files}
    arrays["x_audio"] = arrays["x_audio"] + 1.0
    np.savez(path, **arrays)
    assert os.path.getsize(path) == size  # only the content tells
    with pytest.raises(BackupMismatchError) as caught:
        _run(path, output_dir)
    message = str(caught.value)
    assert "\n" not in message
    assert "on other data: the npz file's content changed (SHA-256 differs)" in message
    assert "--restart" in message
    recorded = json.loads((output_dir / "backup" / FINGERPRINT_FILE).read_text())["data"]
    assert recorded["kind"] == "npz" and recorded["size"] == size


@pytest.mark.slow
def test_the_same_bytes_with_a_new_mtime_resume(tiny_npz_file, tmp_path):
    path = tmp_path / "own.npz"
    shutil.copy(tiny_npz_file, path)
    output_dir = tmp_path / "run"
    with pytest.raises(Killed):
        _run(path, output_dir, kill_after=0)
    os.utime(path, (1e9, 1e9))
    assert _run(path, output_dir) == [1, 2]  # resumed after epoch 0


def test_shards_changed_are_named(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "dataset.json").write_text('{"shards": ["train-0.tfrecord"]}')
    (folder / "train-0.tfrecord").write_bytes(b"x" * 10)
    before = data_fingerprint(f"tfrecord:{folder}")
    (folder / "train-0.tfrecord").write_bytes(b"x" * 11)
    assert data_differences(before, data_fingerprint(f"tfrecord:{folder}")) == [
        "the shard files changed (their sizes differ)"]
    (folder / "dataset.json").write_text('{"shards": ["train-0.tfrecord", "b"]}')
    assert "the shards' dataset.json changed" in data_differences(
        before, data_fingerprint(f"tfrecord:{folder}"))
    assert data_fingerprint("clothing") is None
    assert data_differences(None, before) == []  # a backup from before: not refused
