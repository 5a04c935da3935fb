"""A run's backup carries the settings it was trained with; it is resumed only by a run
with the same settings.

`BackupAndRestore` resumes whatever backup it finds in its folder. The default output
folder is `runs/<fusion>_<dataset>`, so an interrupted run rerun with another
`--learning-rate` or `--seed` continued the *old* run (while `config.json` recorded the
new settings), and one rerun with another `--mtl` failed on every rerun until the
backup was deleted by hand. Here the backup folder holds `fingerprint.json`, the
`TrainConfig` of its run: every field changes what a run computes (the output-only
arguments, such as `--verbose` or `--export-dir`, are not `TrainConfig` fields). A
rerun whose settings differ is refused with one line naming the fields; `restart=True`
(`training.train --restart`) moves the old backup aside to `<backup>.old-<timestamp>`
and starts afresh.
"""

import json
import os
import time

from hgfn_keras.data.fingerprint import data_differences, data_fingerprint
from hgfn_keras.utils.io_utils import atomic_write_json

FINGERPRINT_FILE = "fingerprint.json"
#: What `AtomicBackupAndRestore` writes once an epoch is backed up: its presence
#: means that a run started in this folder resumes.
METADATA_FILE = "training_metadata.json"


class BackupMismatchError(ValueError):
    """A backup of a run with other settings (or with none recorded) is in the way."""


def settings_fingerprint(config):
    """`{field: value}` of the settings that change a run's result: every field of
    the `TrainConfig`, as JSON has them (tuples become lists)."""
    return json.loads(json.dumps(config.to_dict(), sort_keys=True))


def differing_fields(old, new):
    """`[(field, old value, new value)]` where two fingerprints differ, sorted by field;
    a field only one of them has (added in a later version) differs too."""
    missing = "<not recorded>"
    return [(name, old.get(name, missing), new.get(name, missing))
            for name in sorted(set(old) | set(new)) if old.get(name, missing) != new.get(name, missing)]


def _resumable(backup_dir):
    return os.path.isfile(os.path.join(backup_dir, METADATA_FILE))


def check_backup(backup_dir, config):
    """Refuses to resume a backup of another run; writes nothing.

    Args:
        backup_dir: the run's backup folder (`recipe.backup_path(output_dir)`).
        config: the `TrainConfig` of the run about to start.

    Returns:
        True when there is a backup of the same settings to resume, False when
        there is none.

    Raises:
        BackupMismatchError: one line naming the fields that differ (or saying that
            the backup records no settings) and the way out, `--restart`.
    """
    if not _resumable(backup_dir):
        return False
    path = os.path.join(backup_dir, FINGERPRINT_FILE)
    way_out = (f"Rerun with the same settings to resume it, or with --restart "
               f"(`restart=True`) to move it aside to {backup_dir}.old-<timestamp> and start "
               "afresh.")
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
        recorded = document["settings"]
    except FileNotFoundError:
        raise BackupMismatchError(
            f"{backup_dir} holds the backup of an interrupted run that records no settings "
            f"(no {FINGERPRINT_FILE}), so it cannot be told to be this run's. {way_out}"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BackupMismatchError(
            f"{backup_dir} holds the backup of an interrupted run whose {FINGERPRINT_FILE} "
            f"cannot be read ({error}). {way_out}") from None
    differences = differing_fields(recorded, settings_fingerprint(config))
    if differences:
        listed = "; ".join(f"{name}: {old!r} there, {new!r} now"
                           for name, old, new in differences)
        raise BackupMismatchError(
            f"{backup_dir} holds the backup of an interrupted run with other settings "
            f"({listed}); it is never resumed with other settings. {way_out}")
    # The data too (issue 30): a backup recorded before this was kept has no "data".
    changed = data_differences(document.get("data"), data_fingerprint(config.dataset))
    if changed:
        raise BackupMismatchError(
            f"{backup_dir} holds the backup of an interrupted run on other data: "
            f"{'; '.join(changed)} since it was backed up ({config.dataset}). It is never "
            f"resumed on other data. {way_out}")
    return True


def claim_backup(backup_dir, config, restart=False):
    """Makes `backup_dir` the backup folder of `config`'s run, before training.

    With `restart=True` an existing backup is moved aside first. Then a backup of
    the same settings is left to be resumed, one of other settings is refused
    (`check_backup`), and otherwise the folder gets the run's fingerprint.

    Args:
        backup_dir: the run's backup folder.
        config: the run's `TrainConfig`.
        restart: move an existing backup aside and start afresh.

    Returns:
        The folder the old backup was moved to, or None.

    Raises:
        BackupMismatchError: as `check_backup`.
    """
    moved = None
    if restart and os.path.exists(backup_dir):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved, n = f"{backup_dir}.old-{stamp}", 1
        while os.path.exists(moved):
            n += 1
            moved = f"{backup_dir}.old-{stamp}-{n}"
        os.rename(backup_dir, moved)
    if check_backup(backup_dir, config):
        return moved
    os.makedirs(backup_dir, exist_ok=True)
    atomic_write_json(os.path.join(backup_dir, FINGERPRINT_FILE),
                      {"settings": settings_fingerprint(config),
                       "data": data_fingerprint(config.dataset)})
    return moved


__all__ = ["BackupMismatchError", "FINGERPRINT_FILE", "check_backup", "claim_backup",
           "differing_fields", "settings_fingerprint"]
