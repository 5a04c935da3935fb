"""Writing the streamed form: `ShardWriter` (batch by batch) and `write_tfrecord`."""

import os

import numpy as np

from hgfn_keras.data.dataset import (
    MASK_KEY,
    SPLITS,
    MultimodalDataset,
    check_mask_values,
)
from hgfn_keras.data.tfrecord.format import (
    DEFAULT_SHARD_ROWS,
    FORMAT,
    HEADER,
    SPLIT_KEY,
    VERSION,
    _bytes_feature,
    _field,
    _float_feature,
    _int64_feature,
    _modality_config,
    _shape,
)
from hgfn_keras.data.tfrecord.reader import StreamedDataset
from hgfn_keras.feature_checks import check_finite
from hgfn_keras.labels import check_label_range
from hgfn_keras.utils.io_utils import StagedOutput, atomic_write_json, write_error


class ShardWriter:
    """Writes rows of a dataset to TFRecord shards, batch by batch, and its header.

    Rows are appended per split; a split's shard is closed when it holds
    `shard_rows` rows. `close()` (or leaving the `with` block) writes
    `dataset.json` last, so that a folder with a header is complete; a shard is
    written under a temporary name and renamed when it is closed.

    Args:
        out_dir: the folder to write (created; it must not hold a dataset yet).
        modalities: the `Modality` specs (`"vector"`, `"sequence"` with `steps`,
            or `"text"`), in the model's order.
        tasks: the `Task` specs; labels must be in [0, K) or -1.
        shard_rows: rows per shard.
        masked: names of the modalities whose rows may be missing (they get a
            `mask_<modality>` field); None: none.
        name: the dataset's name (default: the folder's name).
        description: one line for reports.

    Example:

    >>> import numpy as np, tempfile
    >>> from hgfn_keras.specs import Modality, Task
    >>> writer = ShardWriter(tempfile.mkdtemp(), [Modality("a", width=3),
    ...                      Modality("b", width=2)], [Task("t", 2)], shard_rows=4)
    >>> for split in ("train", "validation", "test"):
    ...     writer.write(split, {"a": np.ones((5, 3)), "b": np.zeros((5, 2))},
    ...                  {"t": np.arange(5) % 2})
    >>> data = writer.close()
    >>> [(s["split"], s["rows"]) for s in data.header["shards"]][:2]
    [('train', 4), ('train', 1)]
    """

    def __init__(self, out_dir, modalities, tasks, shard_rows=DEFAULT_SHARD_ROWS, masked=None,
                 name=None, description=""):
        import tensorflow as tf

        self._tf = tf
        if isinstance(shard_rows, bool) or not isinstance(shard_rows, int) or shard_rows < 1:
            raise ValueError(
                f"`shard_rows` must be a positive integer. Received: shard_rows={shard_rows!r}")
        self.out_dir = os.fspath(out_dir)
        if os.path.exists(os.path.join(self.out_dir, HEADER)):
            raise ValueError(
                f"{self.out_dir!r} holds a dataset already ({HEADER}); write to a new folder.")
        self.modalities = list(modalities)
        self.tasks = list(tasks)
        if len(self.modalities) < 2 or not self.tasks:
            raise ValueError(
                "A dataset needs at least two modalities and one task. Received: "
                f"{[m.name for m in self.modalities]}, {[t.name for t in self.tasks]}")
        for m in self.modalities:
            if m.kind == "sequence" and m.steps is None:
                raise ValueError(f"Sequence modality {m.name!r} needs a fixed `steps` to be "
                                 "stored in fixed-length records.")
        names = [m.name for m in self.modalities]
        self.masked = set(masked or ())
        unknown = sorted(self.masked - set(names))
        if unknown:
            raise ValueError(f"`masked` names unknown modalities {unknown}. Known: {names}")
        self.shard_rows = shard_rows
        self.name = name or os.path.basename(os.path.normpath(self.out_dir))
        self.description = description
        os.makedirs(self.out_dir, exist_ok=True)
        self._shards = []  # finished shards' header entries
        self._open = {}  # split -> [writer, its StagedOutput, file name, rows]
        self._counts = {split: 0 for split in SPLITS}
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        else:  # leave no header: the folder is not a dataset
            for writer, staged, _, _ in self._open.values():
                writer.close()
                staged.discard()
            self._open.clear()

    def _check_batch(self, split, x, y):
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
        rows = None
        arrays = {}
        for m in self.modalities:
            if m.name not in x:
                raise ValueError(f"The batch lacks modality {m.name!r}. Received: {sorted(x)}")
            value = np.asarray(x[m.name])
            if m.kind == "text":
                value = value.astype(object)
                if value.ndim != 1:
                    raise ValueError(f"Text modality {m.name!r} must be [rows]. "
                                     f"Received: shape={value.shape}")
            else:
                value = value.astype(np.float32)
                if value.shape[1:] != tuple(_shape(m)):
                    raise ValueError(
                        f"Modality {m.name!r} must be [rows, {', '.join(map(str, _shape(m)))}]. "
                        f"Received: shape={value.shape}")
                check_finite(value, f"Modality {m.name!r}")
            arrays[f"x_{m.name}"] = value
            rows = value.shape[0] if rows is None else rows
        for t in self.tasks:
            if t.name not in y:
                raise ValueError(f"The batch lacks task {t.name!r}. Received: {sorted(y)}")
            arrays[f"y_{t.name}"] = check_label_range(y[t.name], t.num_classes, task=t.name)
        mask = x.get(MASK_KEY)
        if mask is not None:  # 0/1 only: the fusion multiplies by it
            mask = check_mask_values(mask)
            if mask.ndim != 2 or mask.shape[1] != len(self.modalities):
                raise ValueError(
                    f"`{MASK_KEY}` must be [rows, {len(self.modalities)}] (one column per "
                    f"modality, in the order {[m.name for m in self.modalities]}). Received: "
                    f"shape={mask.shape}")
        for i, m in enumerate(self.modalities):
            if m.name in self.masked:
                column = (np.ones(rows, np.float32) if mask is None
                          else np.asarray(mask, np.float32)[:, i])
                arrays[f"mask_{m.name}"] = column
            elif mask is not None and np.any(np.asarray(mask)[:, i] == 0):
                raise ValueError(f"Rows miss modality {m.name!r} (`modality_mask` 0), but it "
                                 "was not declared in `masked`.")
        for key, value in arrays.items():
            if value.shape[0] != rows:
                raise ValueError(f"Every array of a batch must have the same rows. "
                                 f"Received: {key} has {value.shape[0]}, expected {rows}")
        return arrays, rows

    def _example(self, arrays, row, split_code):
        fields = []
        for m in self.modalities:
            value = arrays[f"x_{m.name}"][row]
            if m.kind == "text":
                text = value if isinstance(value, bytes) else str(value).encode("utf-8")
                fields.append(_bytes_feature(f"x_{m.name}", text))
            else:
                fields.append(_float_feature(f"x_{m.name}", value))
            if m.name in self.masked:
                fields.append(_float_feature(f"mask_{m.name}",
                                             arrays[f"mask_{m.name}"][row:row + 1]))
        for t in self.tasks:
            fields.append(_int64_feature(f"y_{t.name}", int(arrays[f"y_{t.name}"][row])))
        fields.append(_int64_feature(SPLIT_KEY, split_code))
        return _field(1, b"".join(fields))  # Example.features

    def write(self, split, x, y):
        """Appends rows to `split`.

        Args:
            split: `"train"`, `"validation"` or `"test"`.
            x: `{modality name: array [rows, ...]}`, plus `"modality_mask"` `[rows, M]`
                when some rows miss a modality declared in `masked`.
            y: `{task name: int array [rows]}`.
        """
        if self._closed:
            raise ValueError("The writer is closed.")
        arrays, rows = self._check_batch(split, x, y)
        code = SPLITS.index(split)
        for row in range(rows):
            entry = self._open.get(split)
            if entry is None:
                index = sum(1 for s in self._shards if s["split"] == split)
                file_name = f"{split}-{index:05d}.tfrecord"
                staged = StagedOutput(os.path.join(self.out_dir, file_name), "the shard",
                                      errors=(OSError, self._tf.errors.OpError))
                try:
                    entry = [self._tf.io.TFRecordWriter(staged.begin()), staged, file_name, 0]
                except BaseException as error:
                    staged.discard()
                    if isinstance(error, staged.errors):
                        raise write_error(error, staged.path, staged.what) from error
                    raise
                self._open[split] = entry
            entry[0].write(self._example(arrays, row, code))
            entry[3] += 1
            if entry[3] == self.shard_rows:
                self._finish(split)
        self._counts[split] += rows

    def _finish(self, split):
        writer, staged, file_name, rows = self._open.pop(split)
        try:
            writer.close()
        except BaseException as error:
            staged.discard()
            if isinstance(error, staged.errors):
                raise write_error(error, staged.path, staged.what) from error
            raise
        staged.commit()
        self._shards.append({
            "file": file_name, "split": split, "rows": rows,
            "modalities": {m.name: _shape(m) for m in self.modalities},
            "tasks": {t.name: int(t.num_classes) for t in self.tasks},
        })

    def close(self):
        """Closes the open shards, writes `dataset.json` and returns the `StreamedDataset`."""
        if not self._closed:
            for split in list(self._open):
                self._finish(split)
            self._closed = True
            order = {s: i for i, s in enumerate(SPLITS)}
            shards = sorted(self._shards, key=lambda s: (order[s["split"]], s["file"]))
            header = {
                "format": FORMAT, "version": VERSION, "name": self.name,
                "description": self.description,
                "modalities": [_modality_config(m, m.name in self.masked)
                               for m in self.modalities],
                "tasks": [{"name": t.name, "num_classes": int(t.num_classes)}
                          for t in self.tasks],
                "rows": int(sum(self._counts.values())),
                "splits": dict(self._counts),
                "shards": shards,
            }
            atomic_write_json(os.path.join(self.out_dir, HEADER), header)
        return StreamedDataset(self.out_dir)


def write_tfrecord(dataset_or_npz_path, out_dir, shard_rows=DEFAULT_SHARD_ROWS, seed=0):
    """Writes a dataset, or an npz feature file, as sharded TFRecord files.

    Args:
        dataset_or_npz_path: a `MultimodalDataset` (its splits, in their row
            order) or the path of an `.npz` feature file, read with
            `load_npz(path, seed)`: the same rows in the same splits and order as
            training from the npz.
        out_dir: the folder to write; it must not hold a dataset yet.
        shard_rows: rows per shard (each shard holds rows of one split).
        seed: seeds the 60/20/20 split of an npz file without a `split` array.

    Returns:
        The written `StreamedDataset`.
    """
    if isinstance(dataset_or_npz_path, MultimodalDataset):
        dataset = dataset_or_npz_path
    else:
        from hgfn_keras.data.npz import load_npz

        dataset = load_npz(dataset_or_npz_path, seed=seed)
    masked = set()
    for split in SPLITS:
        mask = np.asarray(dataset.splits[split][0].get(MASK_KEY, np.ones((0, 0))))
        if mask.size:
            masked.update(m.name for i, m in enumerate(dataset.modalities)
                          if np.any(mask[:, i] == 0))
    writer = ShardWriter(out_dir, dataset.modalities, dataset.tasks, shard_rows=shard_rows,
                         masked=sorted(masked), name=dataset.name,
                         description=dataset.description)
    with writer:
        for split in SPLITS:
            x, y = dataset.splits[split]
            rows = dataset.size(split)
            for start in range(0, rows, shard_rows):
                end = min(start + shard_rows, rows)
                writer.write(split, {k: np.asarray(v)[start:end] for k, v in x.items()},
                             {k: np.asarray(v)[start:end] for k, v in y.items()})
    return writer.close()


