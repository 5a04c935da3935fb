"""A run's backup records its settings: a rerun with other settings is refused with one
line naming the fields (never resumed silently); `--restart` moves the old backup aside."""

import json
import os
import re

import keras
import pytest

from hgfn_keras import TrainConfig, load_npz, recipe
from hgfn_keras.recipe.backup_fingerprint import (
    FINGERPRINT_FILE,
    BackupMismatchError,
    check_backup,
    claim_backup,
    settings_fingerprint,
)
from tests.conftest import error_lines as _error_lines, run_in_process
from training import train

EPOCHS = 3


class Killed(Exception):
    """Stands for a SIGKILL after an epoch's backup."""


class Epochs(keras.callbacks.Callback):
    """Records the epochs a fit runs (a resumed fit starts past the backed-up ones)."""

    def __init__(self, kill_after=None):
        super().__init__()
        self.seen, self.kill_after = [], kill_after

    def on_epoch_begin(self, epoch, logs=None):
        # The backup is the last callback of an epoch's end (it keeps the others'
        # state): a kill after epoch `kill_after`'s backup is one as the next begins.
        if self.kill_after is not None and epoch == self.kill_after + 1:
            raise Killed
        self.seen.append(epoch)


def _config(path, **changes):
    return TrainConfig(dataset=f"npz:{path}", epochs=EPOCHS, patience=0, batch_size=8,
                       head_units=4, **changes)


def _run(config, dataset, output_dir, kill_after=None, **kwargs):
    keras.utils.set_random_seed(config.seed)
    epochs = Epochs(kill_after)
    recipe.train_and_evaluate(config, dataset, str(output_dir), verbose=0,
                              callbacks=[epochs], **kwargs)
    return epochs.seen


def _interrupted(config, dataset, output_dir):
    """Two epochs backed up, then killed."""
    with pytest.raises(Killed):
        _run(config, dataset, output_dir, kill_after=1)
    backup = output_dir / "backup"
    assert (backup / "training_metadata.json").is_file()
    # The backup records the settings the run trained with: the size-aware ones resolved.
    assert json.loads((backup / FINGERPRINT_FILE).read_text())["settings"] == (
        settings_fingerprint(recipe.resolve_config(config, dataset)))
    return backup


@pytest.mark.slow
def test_other_settings_are_refused_naming_the_fields_and_restart_moves_the_backup_aside(
        tiny_npz_file, tmp_path):
    dataset = load_npz(tiny_npz_file)
    config, output_dir = _config(tiny_npz_file), tmp_path / "run"
    backup = _interrupted(config, dataset, output_dir)
    before = sorted(os.listdir(backup))

    other = config.replace(learning_rate=0.01, seed=1)
    with pytest.raises(BackupMismatchError) as caught:
        _run(other, dataset, output_dir)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{backup} holds the backup of an interrupted run with other "
                              "settings (learning_rate: 0.005 there, 0.01 now; seed: 0 there, "
                              "1 now); it is never resumed with other settings."), message
    assert f"--restart (`restart=True`) to move it aside to {backup}.old-<timestamp>" in message
    # Another --mtl used to fail on every rerun ("objects could not be loaded ...").
    with pytest.raises(BackupMismatchError, match=r"\(mtl: 'dmtl' there, 'lsew' now\)"):
        _run(config.replace(mtl="lsew"), dataset, output_dir)
    assert sorted(os.listdir(backup)) == before  # the backup untouched, nothing written
    assert sorted(os.listdir(output_dir)) == ["backup"]

    # The same settings resume it: only the third epoch runs.
    assert _run(config, dataset, output_dir) == [2]
    assert not backup.exists() and (output_dir / "metrics.json").is_file()

    # --restart: the old backup moved aside, the new settings trained from epoch 0.
    _interrupted(config, dataset, output_dir)
    assert _run(other, dataset, output_dir, restart=True) == [0, 1, 2]
    old = [n for n in os.listdir(output_dir) if n.startswith("backup.old-")]
    assert len(old) == 1 and re.fullmatch(r"backup\.old-\d{8}-\d{6}", old[0]), old
    kept = json.loads((output_dir / old[0] / FINGERPRINT_FILE).read_text())["settings"]
    assert kept == settings_fingerprint(recipe.resolve_config(config, dataset))
    assert (output_dir / old[0] / "training_metadata.json").is_file()
    assert json.loads((output_dir / "config.json").read_text())["learning_rate"] == 0.01


def test_a_backup_without_settings_is_refused_and_a_fresh_folder_is_claimed(tmp_path):
    config = TrainConfig()
    backup = tmp_path / "backup"
    # Killed before the first epoch's end: only the fingerprint, nothing to resume.
    backup.mkdir()
    (backup / FINGERPRINT_FILE).write_text(json.dumps({"settings": {"seed": 5}}))
    assert check_backup(str(backup), config) is False
    assert claim_backup(str(backup), config) is None
    assert json.loads((backup / FINGERPRINT_FILE).read_text())["settings"]["seed"] == 0
    # A backup from before fingerprints were kept: never resumed blindly.
    (backup / "training_metadata.json").write_text('{"epoch": 1}')
    (backup / FINGERPRINT_FILE).unlink()
    with pytest.raises(BackupMismatchError, match=r"records no settings \(no fingerprint.json\)"):
        claim_backup(str(backup), config)
    (backup / FINGERPRINT_FILE).write_text("{not json")
    with pytest.raises(BackupMismatchError, match=r"fingerprint.json cannot be read"):
        check_backup(str(backup), config)
    moved = claim_backup(str(backup), config, restart=True)
    assert os.path.isfile(os.path.join(moved, "training_metadata.json"))
    assert sorted(os.listdir(backup)) == [FINGERPRINT_FILE]


@pytest.mark.slow
def test_cli_refuses_other_settings_in_one_line_and_restarts(tiny_npz_file, tmp_path):
    output_dir = tmp_path / "run"
    backup = output_dir / "backup"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 0}')
    (backup / FINGERPRINT_FILE).write_text(json.dumps(
        {"settings": settings_fingerprint(recipe.resolve_config(  # as the CLI resolves it
            TrainConfig(dataset=f"npz:{tiny_npz_file}", epochs=1, head_units=4),
            load_npz(tiny_npz_file)))}))
    args = ["--dataset", f"npz:{tiny_npz_file}", "--epochs", 1, "--head-units", 4,
            "--no-export", "--output-dir", output_dir]
    refused = run_in_process(train.main, *args, "--learning-rate", "0.01")
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr, refused.stderr[-3000:]
    errors = _error_lines(refused.stderr)
    assert len(errors) == 1, refused.stderr
    assert re.search(r"^error: .*/backup holds the backup of an interrupted run with other "
                     r"settings \(learning_rate: 0.005 there, 0.01 now\); .* or with "
                     r"--restart", errors[0]), errors[0]
    assert sorted(os.listdir(output_dir)) == ["backup"]
    restarted = run_in_process(train.main, *args, "--learning-rate", "0.01", "--restart")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert (output_dir / "metrics.json").is_file()
    assert any(n.startswith("backup.old-") for n in os.listdir(output_dir))
    assert not backup.exists()
