"""`AtomicBackupAndRestore`: a backup that survives a kill, with the callbacks' state."""

import json
import os

import keras

from hgfn_keras.recipe import resume_state
from hgfn_keras.utils.io_utils import atomic_write_json


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backup survives a kill at any moment,
    and that keeps the callbacks' state with the weights.

    Keras writes `latest.weights.h5` in place and then the epoch in
    `training_metadata.json`: a SIGKILL during the first write leaves a truncated
    HDF5 file that the next run cannot open (`OSError: Unable to synchronously open
    file (truncated file ...)`), and one between the two writes pairs the weights of
    epoch e + 1 with the epoch number e. Here the weights go to a temporary file
    renamed to a name that holds the epoch, and then the metadata, written
    atomically, names that file: the metadata always describes a complete backup,
    and a run killed at any point resumes from the last one.

    With `keep`, each backup also holds the state of those callbacks (early
    stopping's best value, wait, best epoch and best weights; the history; the
    task-weight records; see `hgfn_keras.recipe.resume_state`) and the model's random
    states, in a file of the same epoch that the metadata names too: a resumed run
    continues the histories and stops, and restores its best weights, where the
    unbroken run does. A backup taken after the run was told to stop (early
    stopping, `TerminateOnNaN`) trains no further epoch when resumed.

    Put it **last** in the callback list (after the callbacks in `keep`): Keras
    calls callbacks in list order, so at each epoch's end it then saves their state
    after they have updated it, and at the start of training restores it after
    their `on_train_begin` has reset it.

    Args:
        backup_dir, save_freq, delete_checkpoint: as `keras.callbacks.BackupAndRestore`
            (`double_checkpoint` is not needed, and not supported).
        keep: the callbacks whose state the backup keeps (others of the list, of
            classes that keep no state across epochs, are skipped).
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, keep=()):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.keep = list(keep)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        stem = f"epoch{self._current_epoch}-batch{self._last_batch_seen}"
        name, state = f"{stem}.weights.h5", f"{stem}.state.npz"
        partial = os.path.join(self.backup_dir, ".partial.weights.h5")
        self.model.save_weights(filepath=partial, overwrite=True)
        os.replace(partial, os.path.join(self.backup_dir, name))
        partial = os.path.join(self.backup_dir, ".partial.state.npz")
        resume_state.snapshot(partial, self.model, self.keep,
                              stopped=bool(self.model.stop_training))
        os.replace(partial, os.path.join(self.backup_dir, state))
        atomic_write_json(self._training_metadata_path, {
            "epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name,
            "state": state})
        for other in os.listdir(self.backup_dir):
            if other.endswith((".weights.h5", ".state.npz")) and other not in (name, state):
                os.remove(os.path.join(self.backup_dir, other))

    def _load_model(self):
        if not os.path.exists(self._training_metadata_path):
            return  # no complete backup: start from the beginning
        with open(self._training_metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        self.model._initial_epoch = metadata["epoch"]
        if "state" in metadata:  # a backup written before states were kept has none
            stopped = resume_state.restore(os.path.join(self.backup_dir, metadata["state"]),
                                           self.model, self.keep)
            if stopped:  # the unbroken run stopped here: no further epoch
                self.model._initial_epoch = max(metadata["epoch"], self.params["epochs"])


__all__ = ["AtomicBackupAndRestore"]
