"""`AtomicBackupAndRestore`: a backup that survives a kill, with the callbacks' state."""

import io
import json
import os

import keras

from hgfn_keras.recipe import resume_state
from hgfn_keras.utils.io_utils import StagedOutput, atomic_write_json

#: What a failed backup write raises: `OSError` (numpy, the rename) and h5py's errors
#: (an `OSError` subclass, or a `RuntimeError` when HDF5 fails while closing the file).
BACKUP_WRITE_ERRORS = (OSError, RuntimeError)


def weights_h5_bytes(model):
    """The bytes of `model.save_weights(path)`'s `.weights.h5` file, made in memory.

    HDF5 writing straight to a file that hits a full disk or a file-size limit
    leaves the file open inside h5py, prints "Exception ignored ... Can't decrement
    id ref count" tracebacks and then crashes the process (a segmentation fault, h5py
    3.14, with `save_weights` leaving the file open on the error). Made in memory, the
    file is then written by plain Python I/O, whose failure is an ordinary `OSError`.
    Returns None if this Keras has no in-memory weights store (then the caller writes
    with `save_weights`).
    """
    try:
        from keras.src.saving import saving_lib

        save_state = saving_lib._save_state  # what `save_weights` runs on its store
        buffer = io.BytesIO()
        store = saving_lib.H5IOStore(buffer, mode="w")
    except (ImportError, AttributeError, TypeError):
        return None
    try:
        save_state(model, weights_store=store, assets_store=None, inner_path="",
                   visited_saveables=set())
    except TypeError:  # another Keras' signature: `save_weights` says what is wrong
        return None
    finally:
        store.close()
    return buffer.getvalue()


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
        StagedOutput.remove_stale(self.backup_dir)  # left by a run killed while writing
        stem = f"epoch{self._current_epoch}-batch{self._last_batch_seen}"
        name, state = f"{stem}.weights.h5", f"{stem}.state.npz"
        # Each file under a staging name of its own, renamed when whole; a failed
        # write (a full disk, a file-size limit) leaves no staging file, one line
        # naming the file, and the last complete backup as it was.
        weights = weights_h5_bytes(self.model)
        with StagedOutput(os.path.join(self.backup_dir, name), "the backup's weights",
                          errors=BACKUP_WRITE_ERRORS) as partial:
            if weights is None:  # a Keras without the in-memory store
                self.model.save_weights(filepath=partial, overwrite=True)
            else:
                with open(partial, "xb") as f:
                    f.write(weights)
        try:
            with StagedOutput(os.path.join(self.backup_dir, state), "the backup's state",
                              errors=BACKUP_WRITE_ERRORS) as partial:
                resume_state.snapshot(partial, self.model, self.keep,
                                      stopped=bool(self.model.stop_training))
        except BaseException:
            # The weights alone are no backup: the metadata still names the last one.
            if name != self._last_backup_names()[0]:
                os.remove(os.path.join(self.backup_dir, name))
            raise
        atomic_write_json(self._training_metadata_path, {
            "epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name,
            "state": state})
        for other in os.listdir(self.backup_dir):
            if other.endswith((".weights.h5", ".state.npz")) and other not in (name, state):
                os.remove(os.path.join(self.backup_dir, other))

    def _last_backup_names(self):
        """(weights, state) named by the metadata, or (None, None)."""
        try:
            with open(self._training_metadata_path, encoding="utf-8") as f:
                metadata = json.load(f)
            return metadata.get("weights"), metadata.get("state")
        except (OSError, ValueError):
            return None, None

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
