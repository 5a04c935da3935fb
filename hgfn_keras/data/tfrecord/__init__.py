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

The package is split by concern: `format` (the header and the records' wire
encoding), `writer` (`ShardWriter`, `write_tfrecord`), `reader` (`StreamedDataset`,
its pipelines and its one statistics pass); `StreamedDataset` implements
`hgfn_keras.data.dataset.Dataset`, as the in-memory `MultimodalDataset` does.

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

from hgfn_keras.data.statistics import SplitStatistics
from hgfn_keras.data.tfrecord.format import (
    DEFAULT_SHARD_ROWS, DEFAULT_SHUFFLE_BUFFER, FORMAT, HEADER, SPLIT_KEY, VERSION, read_header)
from hgfn_keras.data.tfrecord.reader import StreamedDataset
from hgfn_keras.data.tfrecord.writer import ShardWriter, write_tfrecord

#: The former name of `SplitStatistics` (what the statistics pass returns).
StreamStatistics = SplitStatistics

__all__ = ["DEFAULT_SHARD_ROWS", "DEFAULT_SHUFFLE_BUFFER", "FORMAT", "HEADER", "SPLIT_KEY",
           "VERSION", "ShardWriter", "SplitStatistics", "StreamStatistics", "StreamedDataset",
           "read_header", "write_tfrecord"]
