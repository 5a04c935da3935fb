"""Output folders checked before training; the model written before its metrics."""

import os

import keras
import pytest

from hgfn_keras import MultiTaskModel, TrainConfig, load_npz, recipe
from hgfn_keras.utils.io_utils import check_writable_folder
from tests.conftest import error_lines as _error_lines
from tests.conftest import run_in_process
from training import train


def _config(path):
    return TrainConfig(dataset=f"npz:{path}", epochs=1, patience=0, batch_size=8, head_units=4)


@pytest.mark.slow
def test_a_failed_model_save_leaves_no_metrics_and_no_staging_file(tiny_npz_file, tmp_path,
                                                                   monkeypatch):
    """Was: metrics.json written before model.keras, so a failed save left metrics for a
    model that does not exist (and the `.partial` file)."""
    def full_disk(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(MultiTaskModel, "save", full_disk)
    output_dir = tmp_path / "run"
    keras.utils.set_random_seed(0)
    with pytest.raises(OSError, match="No space left on device"):
        recipe.train_and_evaluate(_config(tiny_npz_file), load_npz(tiny_npz_file),
                                  str(output_dir), verbose=0)
    # No metrics.json, no .model.partial.keras; the backup is kept, so that a rerun
    # resumes without training again (docs/RELIABILITY.md row 89).
    assert sorted(os.listdir(output_dir)) == ["backup"]


@pytest.mark.slow
def test_a_finished_run_has_the_model_when_it_has_metrics(tiny_npz_file, tmp_path):
    output_dir = tmp_path / "run"
    keras.utils.set_random_seed(0)
    recipe.train_and_evaluate(_config(tiny_npz_file), load_npz(tiny_npz_file), str(output_dir),
                              verbose=0)
    files = sorted(os.listdir(output_dir))
    assert files == ["config.json", "history.json", "metrics.json", "model.keras",
                     "task_weights.csv"]
    mtime = {n: os.stat(output_dir / n).st_mtime_ns for n in files}
    assert mtime["model.keras"] <= mtime["metrics.json"]
    assert max(mtime.values()) == mtime["metrics.json"]  # written last


def test_unwritable_folders_are_named_before_anything_is_made(tmp_path, monkeypatch):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    with pytest.raises(ValueError, match=r"^--output-dir: '.*/taken' is a file, not a folder, "
                                         r"so '.*/taken/run' cannot be written"):
        check_writable_folder(a_file / "run", "--output-dir")
    with pytest.raises(ValueError, match=r"'.*/taken' is a file, not a folder"):
        check_writable_folder(a_file, "--output-dir")
    check_writable_folder(tmp_path / "new" / "run", "--output-dir")  # its parent will be made
    assert not (tmp_path / "new").exists()  # nothing made, no probe left
    assert sorted(os.listdir(tmp_path)) == ["taken"]

    import tempfile

    def read_only(*args, **kwargs):  # as a non-root user meets a read-only folder
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(ValueError, match=r"^--export-dir: cannot write into the folder "
                                         r"'.*' \(Permission denied\). Choose a writable folder"):
        check_writable_folder(tmp_path / "models", "--export-dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_dir_is_refused_before_training(tiny_npz_file, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run_in_process(train.main, "--dataset", f"npz:{tiny_npz_file}", "--epochs", 1,
                                "--no-export", "--output-dir", folder / "run")
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and "--output-dir: cannot write into the folder" in errors[0], (
        result.stderr)


@pytest.mark.parametrize("flag", ["--output-dir", "--export-dir"])
def test_a_file_as_output_folder_is_one_error_line_before_training(tiny_npz_file, tmp_path,
                                                                   flag):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    folders = {"--output-dir": tmp_path / "run", "--export-dir": tmp_path / "models"}
    folders[flag] = a_file
    result = run_in_process(train.main, "--dataset", f"npz:{tiny_npz_file}", "--epochs", 1,
                            "--head-units", 4, *(a for k, v in folders.items() for a in (k, v)))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = _error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {flag}: '{a_file}' is a file, not a folder"), errors[0]
    assert "Epoch 1/" not in result.stdout  # refused before training
    assert sorted(os.listdir(tmp_path)) == ["taken"]
