"""TensorBoard logging of what this package is about: task weights and modality weights."""

import os

import keras
import numpy as np

from hgfn_keras.evaluation.inspection import fusion_weights
from hgfn_keras.serving.export import has_modality_weights
from hgfn_keras.utils.arguments import positive_int

FUSION_RUN = "fusion"


class MissingTensorBoardError(ImportError, ValueError):
    """The tensorboard package is not installed. An `ImportError`, and a `ValueError` too:
    asking for TensorBoard logs without it is a bad setting, which the command lines
    report as one `error:` line (they catch `ValueError`), not a traceback."""


def _require_tensorboard():
    try:
        import tensorboard  # noqa: F401
    except ImportError as error:
        raise MissingTensorBoardError(
            "TensorBoard logging needs the tensorboard package, which TensorFlow 2.21 does "
            "not install: pip install 'hgfn-keras[tensorboard]' (or tensorboard==2.21.0)"
        ) from error


class MultiTaskTensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard` plus per-epoch histograms of the fusion's weights.

    What `keras.callbacks.TensorBoard` already writes is left to it: with the default
    `update_freq="batch"`, every training step's logs, which for a `MultiTaskModel`
    are the total loss and each task's loss and weight (`batch_<task>_loss`,
    `batch_<task>_weight`, run `train`); at each epoch's end the epoch's logs
    (`epoch_*`, runs `train` and `validation`), which hold the validation metrics
    that `hgfn_keras.ValidationMetrics` adds (`val_mean_f1`, ...) when that callback
    comes before this one in the callback list.

    Added here, with `tf.summary.histogram` into the run `fusion` at each epoch's end,
    for a model whose fusion has per-sample weights (HGFN, GFN), over the rows `x`:

    - `modality_weights/<modality>`: the dynamic attention unit's per-sample weight of
      each modality (eq. 1; 0 where the modality is masked out);
    - `level_<k>_vertex_weights/<vertex>`: each level's per-sample vertex weights
      (level 1 holds the modality weights above).

    A model without such a fusion (CFC, tensor) gets the Keras part only.

    Args:
        log_dir: the folder of the event files.
        x: model inputs (a dict of numpy arrays, as for `predict`) whose fusion
            weights are drawn each epoch; usually the validation rows. None: no
            histograms.
        max_rows: use at most this many rows of `x` (the first ones).
        update_freq: as for `keras.callbacks.TensorBoard`; "batch" (default) logs
            every step.
        **kwargs: passed to `keras.callbacks.TensorBoard`.

    >>> import tempfile
    >>> callback = MultiTaskTensorBoard(tempfile.mkdtemp())
    >>> callback.update_freq
    1
    """

    def __init__(self, log_dir: str = "logs", x: "dict[str, np.ndarray] | None" = None,
                 max_rows: int = 512, update_freq: "str | int" = "batch", **kwargs):
        _require_tensorboard()
        max_rows = positive_int("max_rows", max_rows)
        super().__init__(log_dir=log_dir, update_freq=update_freq, **kwargs)
        self.max_rows = max_rows
        self.x = None if x is None else {k: np.asarray(v)[:max_rows] for k, v in x.items()}
        self._fusion_writer = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._has_fusion_weights = self.x is not None and _has_fusion_weights(self.model)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self._has_fusion_weights:
            self._log_fusion_weights(epoch)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self._fusion_writer is not None:
            self._fusion_writer.close()
            self._fusion_writer = None

    def _log_fusion_weights(self, epoch: int) -> None:
        import tensorflow as tf

        weights, labels = fusion_weights(self.model, self.x)
        if self._fusion_writer is None:
            self._fusion_writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, FUSION_RUN))
        with self._fusion_writer.as_default():
            for level, (w, names) in enumerate(zip(weights, labels), start=1):
                prefix = "modality_weights" if level == 1 else f"level_{level}_vertex_weights"
                for j, name in enumerate(names):
                    tf.summary.histogram(f"{prefix}/{_tag(name)}", w[:, j], step=epoch)
        self._fusion_writer.flush()


def _tag(name: str) -> str:
    """A vertex label as a TensorBoard tag part (no spaces or slashes)."""
    return "".join(c if c.isalnum() or c in "_-+.()" else "_" for c in str(name))


def _has_fusion_weights(model: keras.Model) -> bool:
    try:
        return bool(has_modality_weights(model))
    except AttributeError:  # not a MultiTaskModel (no `network`)
        return False
