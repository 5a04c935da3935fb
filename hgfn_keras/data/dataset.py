"""The dataset interface the recipe trains from, and its in-memory form.

`Dataset` is what training needs of a dataset, whatever holds it: names and
sizes, a batched `tf.data` pipeline per split, a split's labels, the one
statistics pass over the training split, and the checks before training.
`MultimodalDataset` (every loader's in-memory result) and
`hgfn_keras.data.tfrecord.StreamedDataset` (TFRecord shards, streamed) implement it.
"""

import dataclasses
import typing

import keras
import numpy as np
import tensorflow as tf

from hgfn_keras.data.statistics import SplitStatistics
from hgfn_keras.data.token_counts import TokenCounts
from hgfn_keras.encoders.text_encoder import count_tokens
from hgfn_keras.feature_checks import MASK_KEY, check_mask_values  # noqa: F401 (re-exported)
from hgfn_keras.specs import Modality, Task
from hgfn_keras.utils.text_arrays import as_text_array

SPLITS = ("train", "validation", "test")


class Pipeline(typing.NamedTuple):
    """A split's batched `tf.data.Dataset` and the callbacks `fit` must be given
    for its row order (the in-memory training split's epoch-keyed order; else none)."""

    data: object
    callbacks: list


class Dataset:
    """What the recipe needs of a dataset: the interface both dataset kinds implement.

    Subclasses hold `name`, `description`, `modalities` (the `Modality` specs, in
    the model's order) and `tasks` (the `Task` specs), and implement `size`,
    `pipeline`, `labels`, `statistics`, `training_labels` and `check`.

    >>> import numpy as np
    >>> from hgfn_keras.specs import Modality, Task
    >>> x = {"a": np.ones((4, 2), "float32"), "b": np.zeros((4, 3), "float32"),
    ...      "modality_mask": np.ones((4, 2), "float32")}
    >>> data = MultimodalDataset("toy", [Modality("a", width=2), Modality("b", width=3)],
    ...                          [Task("t", 2)], {s: (x, {"t": np.array([0, 1, 1, -1])})
    ...                                           for s in SPLITS})
    >>> isinstance(data, Dataset), data.size("test"), data.labels("test")["t"].tolist()
    (True, 4, [0, 1, 1, -1])
    >>> batches, callbacks = data.pipeline("train", batch_size=3, seed=0)
    >>> [len(y["t"]) for _, y in batches], len(callbacks)
    ([3, 1], 1)
    >>> data.statistics().class_counts["t"].tolist()
    [1, 2]
    """

    @property
    def modality_names(self):
        return [m.name for m in self.modalities]

    @property
    def task_names(self):
        return [t.name for t in self.tasks]

    def size(self, split):
        """The number of rows of `split`."""
        raise NotImplementedError

    def pipeline(self, split, batch_size, seed=None, shuffle=None, labels=True):
        """The batched pipeline of `split`, a `Pipeline` `(data, callbacks)`.

        Args:
            split: `"train"`, `"validation"` or `"test"`.
            batch_size: rows per batch.
            seed: seeds the row order of a shuffled pipeline.
            shuffle: None: shuffle the `"train"` split only. Unshuffled, rows come
                in the order `labels(split)` gives them.
            labels: False: batches of `x` only (e.g. for `predict`).
        """
        raise NotImplementedError

    def labels(self, split):
        """The labels of `split`, `{task: int32 [rows]}`, in the unshuffled order."""
        raise NotImplementedError

    def statistics(self):
        """The training split's `SplitStatistics` (normalisation moments, class
        counts, token counts of the text modalities)."""
        raise NotImplementedError

    def training_labels(self):
        """The training labels wherever only their counts matter (DMTL's N / n_f,
        balanced class weights): `{task: int32 [N]}`."""
        raise NotImplementedError

    def check(self, model, split):
        """Checks `split` against `model`'s inputs and tasks before training or
        evaluating; raises `ValueError` naming what is wrong."""
        raise NotImplementedError


@dataclasses.dataclass
class MultimodalDataset(Dataset):
    """Features, labels and splits of a multimodal multi-task dataset.

    Attributes:
        name: a short name (used for export folders).
        modalities: the `Modality` specs, in the model's modality order.
        tasks: the `Task` specs.
        splits: `{"train"|"validation"|"test": (x, y)}` where `x` maps each modality
            name to a numpy array (`str` objects `[N]` for text, float32 `[N, width]`
            for vectors, float32 `[N, steps, width]` for sequences) plus
            `"modality_mask"`: float32 `[N, M]`, 1 where the modality is present, in
            the order of `modalities`; `y` maps each task name to int32 `[N]`
            (-1 = missing label).
        description: one line for reports.
    """

    name: str
    modalities: list
    tasks: list
    splits: dict
    description: str = ""

    def __post_init__(self):
        for m in self.modalities:
            if not isinstance(m, Modality):
                raise TypeError(f"`modalities` must hold Modality objects. Received: {m!r}")
        for t in self.tasks:
            if not isinstance(t, Task):
                raise TypeError(f"`tasks` must hold Task objects. Received: {t!r}")
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"Dataset {self.name!r} lacks the split(s) {missing}.")

    def size(self, split):
        x, _ = self.splits[split]
        return int(np.asarray(x[MASK_KEY]).shape[0])

    def pipeline(self, split, batch_size, seed=None, shuffle=None, labels=True):
        """The batched pipeline of `split` (see `Dataset.pipeline`).

        Shuffled (the `"train"` split by default), the row order of epoch e
        depends only on `(seed, e)` (`epoch_shuffled_dataset`; its callback is in
        the `Pipeline`); unshuffled, the rows in their order (`as_tf_dataset`).
        """
        x, y = self.splits[split]
        y = y if labels else None
        if split == "train" if shuffle is None else shuffle:
            data, epoch_order = epoch_shuffled_dataset(x, y, batch_size,
                                                       seed=0 if seed is None else seed)
            return Pipeline(data, [epoch_order])
        return Pipeline(as_tf_dataset(x, y, batch_size), [])

    def labels(self, split):
        return self.splits[split][1]

    def training_labels(self):
        return self.splits["train"][1]

    def check(self, model, split):
        """The model's numpy checks of the split's inputs and labels."""
        x, y = self.splits[split]
        model.prepare_inputs(x)
        model.check_labels(y)

    def statistics(self):
        """The training split's `SplitStatistics`, from its arrays (computed anew
        on each call): moments as `FeatureNormalization.adapt` takes them, class
        counts, and exact token counts of the text modalities (`count_tokens`)."""
        x, y = self.splits["train"]
        rows = self.size("train")
        mask = x.get(MASK_KEY)
        moments, token_counts = {}, {}
        for i, m in enumerate(self.modalities):
            if m.kind == "text":
                counts = TokenCounts(budget=2**62)  # exact: the texts are in memory already
                counts.update(count_tokens(x[m.name]))
                token_counts[m.name] = counts
                continue
            values = np.asarray(x[m.name], "float64")
            if mask is not None:
                values = values[np.asarray(mask)[:, i] > 0]
            values = values.reshape(-1, values.shape[-1])
            if not len(values):
                moments[m.name] = {"mean": np.zeros(values.shape[-1]),
                                   "variance": np.ones(values.shape[-1]), "count": 0}
                continue
            if not np.all(np.isfinite(values)):
                raise ValueError(f"Modality {m.name!r}: the training values hold NaN or inf.")
            moments[m.name] = {"mean": values.mean(axis=0), "variance": values.var(axis=0),
                               "count": len(values)}
        class_counts, missing = {}, {}
        for t in self.tasks:
            labels = np.asarray(y[t.name]).astype(np.int64)
            class_counts[t.name] = np.bincount(labels[labels >= 0], minlength=t.num_classes)
            missing[t.name] = int(np.sum(labels == -1))
        return SplitStatistics(num_rows=rows, modalities=moments, class_counts=class_counts,
                               missing_labels=missing, token_counts=token_counts)


def as_tf_dataset(x, y=None, batch_size=128, shuffle=False, seed=0):
    """A batched `tf.data.Dataset` of `(x, y)` (or `x`) from numpy dicts.

    Text arrays of Python strings become string tensors; shuffling reshuffles
    every epoch, from `seed`, so two runs with the same seed see the same order.
    """

    def tensor(value):
        value = np.asarray(value)
        if value.dtype == object or value.dtype.kind in "US":  # text, UTF-8
            return tf.constant(as_text_array(value).tolist(), dtype=tf.string)
        return tf.constant(value)

    features = {k: tensor(v) for k, v in x.items()}
    data = features if y is None else (features, {k: tensor(v) for k, v in y.items()})
    ds = tf.data.Dataset.from_tensor_slices(data)
    if shuffle:
        rows = int(np.asarray(next(iter(x.values()))).shape[0])
        ds = ds.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def epoch_shuffled_dataset(x, y, batch_size=128, seed=0):
    """A training dataset whose row order depends only on (seed, epoch), and its callback.

    `as_tf_dataset(shuffle=True)` reshuffles from the dataset's own iteration
    count, which starts again at 0 in a new process, so a run resumed by
    `keras.callbacks.BackupAndRestore` would see other batches than a run that
    was never interrupted. Here the permutation of epoch e is drawn from
    `numpy.random.default_rng([seed, e])`; the returned callback tells the
    dataset which epoch is starting (pass it to `fit`), and the resumed run sees
    exactly the batches the uninterrupted one saw.

    The dataset's cardinality is set (ceil(rows / batch_size) batches), so Keras
    knows an epoch's length from the start and never runs out of data.

    Returns:
        `(dataset, callback)`.
    """
    rows = int(np.asarray(next(iter(x.values()))).shape[0])
    table = as_tf_dataset(x, y, batch_size=rows).get_single_element()

    class EpochOrder(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            EpochOrder.epoch = epoch

    def batch_indices():
        # One batch of row indices per element: a generator crosses into Python once
        # per element, and one crossing per row cost 2.5 s an epoch on the reviews'
        # 14k rows (a third of the epoch). The batches are those `.batch` would make.
        order = np.random.default_rng([seed, EpochOrder.epoch]).permutation(rows)
        for start in range(0, rows, batch_size):
            yield order[start:start + batch_size]

    ds = tf.data.Dataset.from_generator(batch_indices,
                                        output_signature=tf.TensorSpec([None], tf.int64))
    ds = ds.map(lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), table))
    # A generator's length is unknown to tf.data, so Keras learns the epoch's length by
    # running out of data in the first epoch and says so ("Your input ran out of data;
    # interrupting training"), which reads like data loss. The length is known: say it.
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-rows // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE), EpochOrder()
