"""Reading the streamed form: `StreamedDataset`, its pipelines and its one statistics pass."""

import os

import numpy as np

from hgfn_keras.data.dataset import MASK_KEY, SPLITS, Dataset, MultimodalDataset, Pipeline
from hgfn_keras.data.statistics import SplitStatistics, merge_moments
from hgfn_keras.data.tfrecord.format import (
    DEFAULT_SHUFFLE_BUFFER, HEADER, _first_record, _shape, read_header)
from hgfn_keras.data.token_counts import DEFAULT_TOKEN_BUDGET, TokenCounts
from hgfn_keras.labels import check_label_range
from hgfn_keras.specs import Modality, Task


class StreamedDataset(Dataset):
    """A dataset written by `ShardWriter` / `write_tfrecord`, read with `tf.data`.

    Opening it reads `dataset.json` (checked field by field), checks every shard
    against it (its recorded widths and classes, and the shapes in its first
    record) and refuses one that disagrees, naming the shard. Nothing else is read
    until a pipeline or a check runs. Every split is read whole, shard by shard,
    once before training (`check`: the training split by `statistics()`, the
    others by `labels()`): a shard holding other than its header's rows, or a
    damaged one (cut mid-record, flipped bytes), is refused then, naming the
    shard, and the training pipeline itself carries no check.

    Args:
        directory: the dataset's folder.
        token_budget: the most distinct tokens the statistics pass counts per text
            modality (`TokenCounts`: exact counts while they fit, then a
            Misra–Gries summary with a stated error bound).

    Attributes:
        name, description: from the header.
        modalities, tasks: the `Modality` and `Task` specs, in the model's order.
        header: the parsed `dataset.json`.

    Example: see the module docstring.
    """

    def __init__(self, directory, token_budget=DEFAULT_TOKEN_BUDGET):
        self.directory = os.fspath(directory)
        path = os.path.join(self.directory, HEADER)
        if not os.path.isfile(path):
            raise ValueError(f"No {HEADER} in {self.directory!r}: not a TFRecord dataset "
                             "written by `write_tfrecord` (or its writing did not finish).")
        header = read_header(path)
        TokenCounts(token_budget)  # checks it
        self.token_budget = token_budget
        self.header = header
        self.name = header.get("name") or os.path.basename(os.path.normpath(self.directory))
        self.description = header.get("description", "")
        self.modalities = [Modality(m["name"], kind=m["kind"], width=m["width"],
                                    steps=m["steps"]) for m in header["modalities"]]
        self.tasks = [Task(t["name"], num_classes=t["num_classes"]) for t in header["tasks"]]
        self._masked = [m["name"] for m in header["modalities"] if m.get("has_mask")]
        self._statistics = {}  # (split, batch_size) -> SplitStatistics: one pass each
        self._labels = {}  # split -> its labels, read (and its shards checked) once
        self._check_shards()

    # -- checks ----------------------------------------------------------------------
    def _check_shards(self):
        shapes = {m.name: _shape(m) for m in self.modalities}
        classes = {t.name: t.num_classes for t in self.tasks}
        counts = {split: 0 for split in SPLITS}
        for shard in self.header["shards"]:
            file_name = shard["file"]
            where = f"Shard {file_name!r} of {self.directory!r}"
            if (not isinstance(file_name, str) or file_name in ("", ".", "..")
                    or os.path.basename(file_name) != file_name or "\\" in file_name):
                raise ValueError(  # a header must not send the reader out of its folder
                    f"{where}: a shard's `file` must be a file name in the dataset's folder "
                    f"(no folder part, no '..'). Received: file={file_name!r}")
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
        try:
            feature = tf.train.Example.FromString(record).features.feature
        except Exception as error:  # google.protobuf's DecodeError: damaged bytes
            raise ValueError(f"{where} is damaged: its first record is not a "
                             f"tf.train.Example ({error}).") from None
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
    def size(self, split):
        """The number of rows of `split`."""
        return int(self.header["splits"][split])

    def files(self, split):
        """The paths of `split`'s shards, in order."""
        return [os.path.join(self.directory, s["file"]) for s in self._shards(split)]

    def _shards(self, split):
        """The header's entries of `split`'s shards, in order."""
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
        return [s for s in self.header["shards"] if s["split"] == split]

    def _read_shard(self, shard, batches):
        """Yields what `batches` (a `tf.data.Dataset` of the shard) yields, as numpy;
        at its end checks the shard held its header's rows (`rows_of(batch)` counts
        them). A damaged shard (`DataLossError`: cut mid-record, flipped bytes) or a
        short or long one raises a `ValueError` naming the shard."""
        import tensorflow as tf

        where = f"Shard {shard['file']!r} of {self.directory!r}"
        rows = 0
        iterator = batches.as_numpy_iterator()
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                break
            except tf.errors.DataLossError as error:
                raise ValueError(f"{where} is damaged (cut mid-record or corrupted bytes) "
                                 f"after {rows} good rows: {error.message}") from None
            labels = batch[1] if isinstance(batch, tuple) else batch  # (x, y, ...) or y
            rows += len(next(iter(labels.values())))
            yield batch
        if rows != int(shard["rows"]):
            raise ValueError(f"{where} holds {rows} rows; the header says {shard['rows']}. "
                             "The shard was cut or replaced: write the dataset again.")

    # -- the dataset interface ---------------------------------------------------------
    def pipeline(self, split, batch_size, seed=None, shuffle=None, labels=True):
        """`splits_ds(split, batch_size, seed, shuffle, labels)`, no callbacks."""
        return Pipeline(self.splits_ds(split, batch_size, seed=seed, shuffle=shuffle,
                                       labels=labels), [])

    def training_labels(self):
        """Stand-in labels with the training split's class counts
        (`statistics().sorted_labels()`): no second pass."""
        return self.statistics().sorted_labels()

    def check(self, model, split):
        """Reads `split` whole once, shard by shard (the training split by
        `statistics()`, the others by `labels()`): its records' labels and, for
        the training split, features are checked, and every shard's row count
        against the header. `model` is not needed: the shards were checked
        against the dataset's specs when opened."""
        if split == "train":
            self.statistics()
        else:
            self.labels(split)

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

        A shuffled pipeline carries `AutoShardPolicy.FILE`: under a multi-worker
        strategy each worker reads its own shards (a split needs at least as many
        shards as there are workers). An unshuffled one (validation, evaluation,
        prediction) carries `AutoShardPolicy.DATA`, as the in-memory path's does:
        every worker reads every shard and keeps its part of the batches, so that
        predictions gathered over the workers come in the written order (with
        FILE, a worker's predictions covered only its own shards' rows and the
        test metrics failed on the row counts).

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
            tf.data.experimental.AutoShardPolicy.FILE if shuffle
            else tf.data.experimental.AutoShardPolicy.DATA)
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    def labels(self, split, batch_size=4096):
        """The labels of `split`, `{task: int32 [rows]}` (for metrics; labels are small).

        Read once, shard by shard, parsing the labels only; each shard's rows are
        checked against the header and a damaged shard is named (a `ValueError`).
        Kept: evaluating reads them again for free.
        """
        import tensorflow as tf

        if split not in self._labels:
            spec = {f"y_{t.name}": tf.io.FixedLenFeature([], tf.int64) for t in self.tasks}
            parts = {t.name: [] for t in self.tasks}
            for shard in self._shards(split):
                path = os.path.join(self.directory, shard["file"])
                batches = tf.data.TFRecordDataset(path).batch(batch_size).map(
                    lambda s: tf.io.parse_example(s, spec))
                for y in self._read_shard(shard, batches):
                    for t in self.tasks:
                        parts[t.name].append(y[f"y_{t.name}"].astype(np.int32))
            self._labels[split] = {name: np.concatenate(values) if values
                                   else np.zeros(0, np.int32) for name, values in parts.items()}
        return self._labels[split]

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
        allocator keeps the largest batch's memory). Per vector or sequence
        modality, the mean and (population) variance of each feature over the rows
        where it is present (every step of
        a sequence counts), merged batch by batch in float64 (Chan et al.'s
        pairwise update); per task, the class counts. A label outside [0, K) or
        -1, or a non-finite feature, raises an error naming the shard. The result
        is kept: building the model and fitting it share the one pass.

        Per text modality, the tokens of its texts are counted (tokenised as
        `TextEncoder` tokenises) in a `TokenCounts` of `token_budget` distinct
        tokens. Each shard's rows are checked against the header, and a damaged
        shard is named.

        Returns:
            `SplitStatistics`.
        """
        key = (split, batch_size)
        if key not in self._statistics:
            self._statistics[key] = self._statistics_pass(split, batch_size)
        return self._statistics[key]

    def _statistics_pass(self, split, batch_size):
        import tensorflow as tf

        from hgfn_keras.encoders.text_encoder import tokenize

        numeric = [m for m in self.modalities if m.kind != "text"]
        text = [m for m in self.modalities if m.kind == "text"]
        token_counts = {m.name: TokenCounts(self.token_budget) for m in text}
        moments = {m.name: [0, np.zeros(m.width), np.zeros(m.width)] for m in numeric}
        class_counts = {t.name: np.zeros(t.num_classes, np.int64) for t in self.tasks}
        missing = {t.name: 0 for t in self.tasks}
        rows = 0
        index = {m.name: i for i, m in enumerate(self.modalities)}

        @tf.autograph.experimental.do_not_convert
        def parse(serialized):
            # Texts are tokenised and counted per batch inside the pipeline (as
            # `TextEncoder` tokenises them): only each batch's distinct tokens and
            # their counts come back to Python, never the texts.
            x, y = self.parse_batch(serialized)
            tokens = {}
            for m in text:
                unique, _, counts = tf.unique_with_counts(tokenize(x.pop(m.name)).flat_values)
                tokens[m.name] = (unique, counts)
            return x, y, tokens

        for entry in self._shards(split):
            shard = entry["file"]
            path = os.path.join(self.directory, shard)
            ds = tf.data.TFRecordDataset(path).batch(batch_size).map(
                parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            shard_rows = 0
            for x, y, tokens in self._read_shard(entry, ds):
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
                    merge_moments(moments[m.name], values)
                for m in text:
                    unique, counts = tokens[m.name]
                    token_counts[m.name].update(
                        {t.decode("utf-8"): int(c) for t, c in zip(unique, counts)})
                shard_rows += len(x[MASK_KEY])
        stats = {}
        for m in numeric:
            count, mean, m2 = moments[m.name]
            variance = m2 / count if count else np.ones(m.width)
            stats[m.name] = {"mean": mean, "variance": variance, "count": int(count)}
        return SplitStatistics(num_rows=rows, modalities=stats, class_counts=class_counts,
                               missing_labels=missing, token_counts=token_counts)


