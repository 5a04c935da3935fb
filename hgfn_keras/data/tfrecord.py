"""The npz contract, streamed: sharded TFRecord files and a JSON header.

A dataset too large for memory (a million items of 2,048 + 1,024 features is about
12 GB of float32) is kept on disk as TFRecord shards and read with `tf.data`, so
that memory does not grow with the number of rows. The fields of each example are
those of the npz contract (docs/DESIGN.md, "The feature-file contract (npz)"), one
row each:

- `x_<modality>`: float32, flattened (`[width]`, or `[steps * width]` for a
  sequence; its shape is in the header), or bytes for a `"text"` modality;
- `y_<task>`: int64, 0..K-1, or -1 for a missing label;
- `mask_<modality>`: float32 0/1, only for modalities that some row misses
  (absent: present in every row);
- `split`: int64, 0 train, 1 validation, 2 test.

The folder holds one `dataset.json` and the shards, each holding rows of one split
(`train-00000.tfrecord`, ...), so that a split is read from its own files and a
multi-worker strategy can give each worker its own files. The header lists the
modalities (name, kind, width, steps, whether they have a mask), the tasks (name,
number of classes), the row count of every split and every shard, and, per shard,
the widths and class counts it was written with. `StreamedDataset` refuses a shard
that disagrees with the dataset on a modality's width or a task's classes, naming
the shard.

Writing: `write_tfrecord(dataset_or_npz_path, out_dir, shard_rows)` for a
`MultimodalDataset` or an npz file (read whole once, as the npz contract is), or
`ShardWriter` to write batches of rows without ever holding them all (an
extractor, a generator of synthetic data). Reading: `StreamedDataset(out_dir)`,
whose `splits_ds(split, batch_size, seed)` is the `tf.data` pipeline of a split
and whose `statistics()` is the one pass over the training split that training
needs (normalisation statistics, N and n_f, label checks).

>>> import numpy as np, os, tempfile
>>> folder = tempfile.mkdtemp()
>>> rng = np.random.default_rng(0)
>>> np.savez(os.path.join(folder, "toy.npz"), x_audio=rng.normal(size=(20, 4)),
...          x_video=rng.normal(size=(20, 3, 2)), y_happy=np.arange(20) % 2)
>>> data = write_tfrecord(os.path.join(folder, "toy.npz"), os.path.join(folder, "toy"),
...                       shard_rows=8)
>>> data.modality_names, {s: data.size(s) for s in ("train", "validation", "test")}
(['audio', 'video'], {'train': 12, 'validation': 4, 'test': 4})
>>> x, y = next(iter(data.splits_ds("train", batch_size=5, seed=0)))
>>> tuple(x["video"].shape), tuple(x["modality_mask"].shape), tuple(y["happy"].shape)
((5, 3, 2), (5, 2), (5,))
"""

import dataclasses
import json
import os
import struct

import numpy as np

from hgfn_keras.data.dataset import MASK_KEY, SPLITS, MultimodalDataset
from hgfn_keras.io_utils import atomic_write_json
from hgfn_keras.labels import check_label_range
from hgfn_keras.specs import Modality, Task

HEADER = "dataset.json"
FORMAT = "hgfn_keras.tfrecord"
VERSION = 1
SPLIT_KEY = "split"
#: Rows per shard unless told otherwise.
DEFAULT_SHARD_ROWS = 10_000
#: Rows the training pipeline shuffles among (on top of shuffling the shard order):
#: its memory is bounded by this many rows, whatever the dataset's size.
DEFAULT_SHUFFLE_BUFFER = 2_048


def _shape(modality):
    """A modality's per-row shape as stored in the header (`[]` for text)."""
    if modality.kind == "text":
        return []
    if modality.kind == "sequence":
        return [int(modality.steps), int(modality.width)]
    return [int(modality.width)]


def _modality_config(modality, has_mask):
    return {"name": modality.name, "kind": modality.kind, "width": int(modality.width),
            "steps": None if modality.steps is None else int(modality.steps),
            "has_mask": bool(has_mask)}


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
        self._open = {}  # split -> [writer, temp path, file name, rows]
        self._counts = {split: 0 for split in SPLITS}
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        else:  # leave no header: the folder is not a dataset
            for writer, tmp, _, _ in self._open.values():
                writer.close()
                os.remove(tmp)
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
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"Modality {m.name!r} holds NaN or inf.")
            arrays[f"x_{m.name}"] = value
            rows = value.shape[0] if rows is None else rows
        for t in self.tasks:
            if t.name not in y:
                raise ValueError(f"The batch lacks task {t.name!r}. Received: {sorted(y)}")
            arrays[f"y_{t.name}"] = check_label_range(y[t.name], t.num_classes, task=t.name)
        mask = x.get(MASK_KEY)
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
                fields.append(_float_feature(f"mask_{m.name}", arrays[f"mask_{m.name}"][row:row + 1]))
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
                tmp = os.path.join(self.out_dir, f".tmp-{file_name}")
                entry = [self._tf.io.TFRecordWriter(tmp), tmp, file_name, 0]
                self._open[split] = entry
            entry[0].write(self._example(arrays, row, code))
            entry[3] += 1
            if entry[3] == self.shard_rows:
                self._finish(split)
        self._counts[split] += rows

    def _finish(self, split):
        writer, tmp, file_name, rows = self._open.pop(split)
        writer.close()
        os.replace(tmp, os.path.join(self.out_dir, file_name))
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


# -- tf.train.Example, encoded by hand -----------------------------------------------
# The protocol buffer's Python API builds a FloatList one float at a time (about 2,000
# rows of 3,200 floats per second); its wire format is simple enough to write from
# numpy's bytes (about 50 times faster). The records are standard `tf.train.Example`s
# (packed float and int64 lists), read by `tf.io.parse_example` and checked against
# `tf.train.Example.FromString` in tests/test_tfrecord.py.
def _varint(value):
    value &= (1 << 64) - 1  # a negative int64 is its two's complement, 10 bytes
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number, payload):
    """A length-delimited field: tag, length, payload."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _entry(key, feature):
    """One entry of `Features.feature` (a map<string, Feature>)."""
    return _field(1, _field(1, key.encode("utf-8")) + _field(2, feature))


def _float_feature(key, values):
    data = np.ascontiguousarray(values, dtype="<f4").reshape(-1).tobytes()
    return _entry(key, _field(2, _field(1, data)))  # Feature.float_list.value (packed)


def _int64_feature(key, value):
    return _entry(key, _field(3, _field(1, _varint(int(value)))))  # Feature.int64_list


def _bytes_feature(key, value):
    return _entry(key, _field(1, _field(1, value)))  # Feature.bytes_list


def _first_record(path):
    """The first record of a TFRecord file (length, CRC, data, CRC), or None if empty."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12:
            return None
        (length,) = struct.unpack("<Q", head[:8])
        data = f.read(length)
        return data if len(data) == length else None


@dataclasses.dataclass
class StreamStatistics:
    """What one pass over the training split gives.

    Attributes:
        num_rows: N, the training rows.
        modalities: per vector or sequence modality, `{"mean": [width],
            "variance": [width], "count": n}` over the training rows where it is
            present (every step of a sequence counts), as
            `FeatureNormalization.set_statistics(mean, variance, count)` takes them.
        class_counts: per task, the count of each class `[K]` (missing labels,
            -1, not counted).
        missing_labels: per task, the number of -1 labels.
    """

    num_rows: int
    modalities: dict
    class_counts: dict
    missing_labels: dict

    def sorted_labels(self):
        """Per task, labels with the split's class counts, sorted: `{task: int32 [N]}`.

        A stand-in for the training labels wherever only their counts matter:
        `model.set_task_counts(stats.sorted_labels())` gives DMTL the same N and n_f
        (and the same warnings about absent classes) as the real labels, without
        a second pass. Four bytes per row and task.
        """
        labels = {}
        for name, counts in self.class_counts.items():
            parts = [np.full(self.missing_labels[name], -1, np.int32),
                     np.repeat(np.arange(len(counts), dtype=np.int32), counts)]
            labels[name] = np.concatenate(parts)
        return labels

    def task_counts(self, tasks):
        """N and n_f of DMTL's N / n_f, as `task_counts(tasks, y_train)` gives them."""
        from hgfn_keras.multitask.task_weighting import task_counts

        return task_counts(tasks, self.sorted_labels())


class StreamedDataset:
    """A dataset written by `ShardWriter` / `write_tfrecord`, read with `tf.data`.

    Opening it reads `dataset.json`, checks every shard against it (its recorded
    widths and classes, and the shapes in its first record) and refuses one that
    disagrees, naming the shard. Nothing else is read until a pipeline runs.

    Args:
        directory: the dataset's folder.

    Attributes:
        name, description: from the header.
        modalities, tasks: the `Modality` and `Task` specs, in the model's order.
        header: the parsed `dataset.json`.

    Example: see the module docstring.
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        path = os.path.join(self.directory, HEADER)
        if not os.path.isfile(path):
            raise ValueError(f"No {HEADER} in {self.directory!r}: not a TFRecord dataset "
                             "written by `write_tfrecord` (or its writing did not finish).")
        try:
            with open(path, encoding="utf-8") as f:
                header = json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path!r} is not readable JSON ({error}).") from error
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{path!r} is not a {FORMAT} header.")
        if header.get("version") != VERSION:
            raise ValueError(f"{path!r} has format version {header.get('version')!r}; this "
                             f"reader reads version {VERSION}.")
        self.header = header
        self.name = header.get("name") or os.path.basename(os.path.normpath(self.directory))
        self.description = header.get("description", "")
        self.modalities = [Modality(m["name"], kind=m["kind"], width=m["width"],
                                    steps=m["steps"]) for m in header["modalities"]]
        self.tasks = [Task(t["name"], num_classes=t["num_classes"]) for t in header["tasks"]]
        self._masked = [m["name"] for m in header["modalities"] if m.get("has_mask")]
        self._statistics = {}  # (split, batch_size) -> StreamStatistics: one pass each
        self._check_shards()

    # -- checks ----------------------------------------------------------------------
    def _check_shards(self):
        shapes = {m.name: _shape(m) for m in self.modalities}
        classes = {t.name: t.num_classes for t in self.tasks}
        counts = {split: 0 for split in SPLITS}
        for shard in self.header["shards"]:
            file_name = shard["file"]
            where = f"Shard {file_name!r} of {self.directory!r}"
            if shard.get("split") not in SPLITS:
                raise ValueError(f"{where}: unknown split {shard.get('split')!r}.")
            for name, shape in shard.get("modalities", {}).items():
                if name in shapes and list(shape) != shapes[name]:
                    raise ValueError(
                        f"{where} has modality {name!r} of shape {list(shape)} (width "
                        f"{shape[-1] if shape else '-'}); the dataset's is {shapes[name]}. "
                        "Every shard must hold the same modalities at the same widths.")
            for name, k in shard.get("tasks", {}).items():
                if name in classes and int(k) != classes[name]:
                    raise ValueError(
                        f"{where} has task {name!r} with {k} classes; the dataset's has "
                        f"{classes[name]}. Every shard must have the same classes per task.")
            missing = sorted((set(shapes) - set(shard.get("modalities", {})))
                             | (set(classes) - set(shard.get("tasks", {}))))
            if missing:
                raise ValueError(f"{where} lacks {missing}.")
            self._check_first_record(shard, where)
            counts[shard["split"]] += int(shard["rows"])
        for split in SPLITS:
            if counts[split] != int(self.header["splits"].get(split, -1)):
                raise ValueError(
                    f"{self.directory!r}: the shards of split {split!r} hold {counts[split]} "
                    f"rows; the header says {self.header['splits'].get(split)}.")
            if counts[split] == 0:
                raise ValueError(f"{self.directory!r}: the {split!r} split is empty. Every "
                                 "split needs at least one row.")

    def _check_first_record(self, shard, where):
        import tensorflow as tf

        path = os.path.join(self.directory, shard["file"])
        if not os.path.isfile(path):
            raise ValueError(f"{where} is missing.")
        record = _first_record(path)
        if record is None:
            raise ValueError(f"{where} holds no complete record.")
        feature = tf.train.Example.FromString(record).features.feature
        for m in self.modalities:
            key = f"x_{m.name}"
            if key not in feature:
                raise ValueError(f"{where}: its records lack {key!r}.")
            if m.kind != "text":
                size = len(feature[key].float_list.value)
                if size != int(np.prod(_shape(m))):
                    raise ValueError(
                        f"{where}: its records hold {size} values of modality {m.name!r}; "
                        f"the dataset's shape {_shape(m)} needs {int(np.prod(_shape(m)))}.")
        for t in self.tasks:
            if f"y_{t.name}" not in feature:
                raise ValueError(f"{where}: its records lack 'y_{t.name}'.")

    # -- facts -----------------------------------------------------------------------
    @property
    def modality_names(self):
        return [m.name for m in self.modalities]

    @property
    def task_names(self):
        return [t.name for t in self.tasks]

    def size(self, split):
        """The number of rows of `split`."""
        return int(self.header["splits"][split])

    def files(self, split):
        """The paths of `split`'s shards, in order."""
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
        return [os.path.join(self.directory, s["file"]) for s in self.header["shards"]
                if s["split"] == split]

    # -- pipelines -------------------------------------------------------------------
    def _features(self):
        import tensorflow as tf

        spec = {}
        for m in self.modalities:
            if m.kind == "text":
                spec[f"x_{m.name}"] = tf.io.FixedLenFeature([], tf.string)
            else:
                spec[f"x_{m.name}"] = tf.io.FixedLenFeature([int(np.prod(_shape(m)))],
                                                            tf.float32)
        for name in self._masked:
            spec[f"mask_{name}"] = tf.io.FixedLenFeature([], tf.float32, default_value=1.0)
        for t in self.tasks:
            spec[f"y_{t.name}"] = tf.io.FixedLenFeature([], tf.int64)
        return spec

    def parse_batch(self, serialized):
        """`(x, y)` of a batch of serialized examples, as the model takes them."""
        import tensorflow as tf

        parsed = tf.io.parse_example(serialized, self._features())
        x, masks = {}, []
        for m in self.modalities:
            value = parsed[f"x_{m.name}"]
            if m.kind == "sequence":
                value = tf.reshape(value, [-1, m.steps, m.width])
            x[m.name] = value
            key = f"mask_{m.name}"
            masks.append(parsed[key] if key in parsed
                         else tf.ones_like(parsed[f"y_{self.tasks[0].name}"], tf.float32))
        x[MASK_KEY] = tf.stack(masks, axis=1)
        y = {t.name: tf.cast(parsed[f"y_{t.name}"], tf.int32) for t in self.tasks}
        return x, y

    def splits_ds(self, split, batch_size, seed=None, shuffle=None, labels=True,
                  shuffle_buffer=DEFAULT_SHUFFLE_BUFFER, cycle_length=4):
        """The batched `tf.data` pipeline of one split.

        Shards are read interleaved (`cycle_length` at a time), parsed a batch at a
        time and prefetched. For training (`shuffle`, the default for `"train"`),
        the shard order is shuffled every epoch and rows are shuffled within a
        buffer of `shuffle_buffer` rows, both from `seed`; memory is bounded by the
        buffer and the prefetched batches, not by the dataset's size. Without
        shuffling, rows come in the order they were written (shard by shard).

        The dataset carries `AutoShardPolicy.FILE`: under a multi-worker strategy
        each worker reads its own shards (a split needs at least as many shards as
        there are workers).

        Args:
            split: `"train"`, `"validation"` or `"test"`.
            batch_size: rows per batch (the global batch under a strategy).
            seed: seeds the shuffling of the rows (None: a different order every run;
                the shard order is always seeded, 0 by default, so that every worker
                of a multi-worker strategy draws the same one: give every worker the
                same `seed`).
            shuffle: None: shuffle the `"train"` split only.
            labels: False: batches of `x` only (e.g. for `predict`).
            shuffle_buffer: rows in the row-shuffling buffer.
            cycle_length: shards read at a time when shuffling.

        Returns:
            A `tf.data.Dataset` of `(x, y)` (or `x`) batches: `x` maps each modality
            to `[batch, ...]` and `"modality_mask"` to `[batch, M]`; `y` maps each
            task to int32 `[batch]`.
        """
        import tensorflow as tf

        files = self.files(split)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        shuffle = split == "train" if shuffle is None else shuffle
        ds = tf.data.Dataset.from_tensor_slices(files)
        if shuffle:
            # FILE auto-sharding splits the files after this shuffle: every worker must
            # draw the same order, so it is seeded even when `seed` is None.
            ds = ds.shuffle(len(files), seed=0 if seed is None else seed,
                            reshuffle_each_iteration=True)
            ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(files)),
                               block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                               deterministic=True)
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        else:
            ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=1, block_length=1)
        ds = ds.batch(batch_size).map(self.parse_batch, num_parallel_calls=tf.data.AUTOTUNE,
                                      deterministic=True)
        # A known length, so that Keras runs every epoch the same number of steps
        # (auto-sharding drops the assertion: each worker's part has its own length).
        batches = -(-self.size(split) // batch_size)
        ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
        if not labels:
            ds = ds.map(lambda x, y: x)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.FILE)
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    def labels(self, split, batch_size=4096):
        """The labels of `split`, `{task: int32 [rows]}` (for metrics; labels are small)."""
        parts = {t.name: [] for t in self.tasks}
        for _, y in self.splits_ds(split, batch_size, shuffle=False).as_numpy_iterator():
            for name, value in y.items():
                parts[name].append(value)
        return {name: np.concatenate(values) for name, values in parts.items()}

    def load_split(self, split, batch_size=4096):
        """`split` in memory as `(x, y)` numpy dicts (memory grows with its rows)."""
        xs, ys = [], []
        for x, y in self.splits_ds(split, batch_size, shuffle=False).as_numpy_iterator():
            xs.append(x)
            ys.append(y)
        x = {k: np.concatenate([b[k] for b in xs]) for k in xs[0]}
        y = {k: np.concatenate([b[k] for b in ys]) for k in ys[0]}
        return x, y

    def to_memory(self):
        """The whole dataset as a `MultimodalDataset` (for small data and tests)."""
        splits = {split: self.load_split(split) for split in SPLITS}
        for split, (x, _) in splits.items():
            for m in self.modalities:
                if m.kind == "text":
                    x[m.name] = np.asarray([v.decode("utf-8") for v in x[m.name]], object)
        return MultimodalDataset(self.name, self.modalities, self.tasks, splits,
                                 self.description)

    # -- the one streamed pass over the training split ---------------------------------
    def statistics(self, split="train", batch_size=256):
        """One streamed pass over `split`: normalisation statistics, class counts, checks.

        Reads the shards one at a time in batches of `batch_size` rows, so memory
        does not grow with the rows (small batches keep the peak low: TensorFlow's
        allocator keeps the largest batch's memory). Per vector or sequence modality, the mean and (population)
        variance of each feature over the rows where it is present (every step of
        a sequence counts), merged batch by batch in float64 (Chan et al.'s
        pairwise update); per task, the class counts. A label outside [0, K) or
        -1, or a non-finite feature, raises an error naming the shard. The result
        is kept: building the model and fitting it share the one pass.

        Returns:
            `StreamStatistics`.
        """
        key = (split, batch_size)
        if key not in self._statistics:
            self._statistics[key] = self._statistics_pass(split, batch_size)
        return self._statistics[key]

    def _statistics_pass(self, split, batch_size):
        import tensorflow as tf

        numeric = [m for m in self.modalities if m.kind != "text"]
        moments = {m.name: [0, np.zeros(m.width), np.zeros(m.width)] for m in numeric}
        class_counts = {t.name: np.zeros(t.num_classes, np.int64) for t in self.tasks}
        missing = {t.name: 0 for t in self.tasks}
        rows = 0
        index = {m.name: i for i, m in enumerate(self.modalities)}
        for path in self.files(split):
            shard = os.path.basename(path)
            ds = tf.data.TFRecordDataset(path).batch(batch_size).map(self.parse_batch)
            shard_rows = 0
            for x, y in ds.as_numpy_iterator():
                rows += len(x[MASK_KEY])
                for t in self.tasks:
                    try:
                        labels = check_label_range(y[t.name], t.num_classes, task=t.name,
                                                   first_row=shard_rows)
                    except ValueError as error:
                        raise ValueError(
                            f"Shard {shard!r} of {self.directory!r}: {error}. Its classes "
                            "disagree with the dataset's.") from None
                    missing[t.name] += int(np.sum(labels == -1))
                    class_counts[t.name] += np.bincount(labels[labels >= 0],
                                                        minlength=t.num_classes)
                for m in numeric:
                    values = x[m.name][x[MASK_KEY][:, index[m.name]] > 0]
                    values = values.reshape(-1, m.width).astype(np.float64)
                    if not values.size:
                        continue
                    if not np.all(np.isfinite(values)):
                        raise ValueError(f"Shard {shard!r} of {self.directory!r}: modality "
                                         f"{m.name!r} holds NaN or inf.")
                    _merge_moments(moments[m.name], values)
                shard_rows += len(x[MASK_KEY])
        stats = {}
        for m in numeric:
            count, mean, m2 = moments[m.name]
            variance = m2 / count if count else np.ones(m.width)
            stats[m.name] = {"mean": mean, "variance": variance, "count": int(count)}
        return StreamStatistics(num_rows=rows, modalities=stats, class_counts=class_counts,
                                missing_labels=missing)


def _merge_moments(state, values):
    """Merges a batch into `[count, mean, M2]` (Chan, Golub & LeVeque's pairwise update)."""
    count, mean, m2 = state
    n = len(values)
    batch_mean = values.mean(axis=0)
    batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
    total = count + n
    delta = batch_mean - mean
    state[1] = mean + delta * (n / total)
    state[2] = m2 + batch_m2 + delta ** 2 * (count * n / total)
    state[0] = total

