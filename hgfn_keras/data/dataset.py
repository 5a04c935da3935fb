"""The in-memory form every data source produces."""

import dataclasses

import numpy as np

from hgfn_keras.specs import Modality, Task

MASK_KEY = "modality_mask"
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class MultimodalDataset:
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

    @property
    def modality_names(self):
        return [m.name for m in self.modalities]

    @property
    def task_names(self):
        return [t.name for t in self.tasks]

    def size(self, split):
        x, _ = self.splits[split]
        return int(np.asarray(x[MASK_KEY]).shape[0])


def check_mask_values(mask, name=MASK_KEY):
    """Refuses a modality mask holding anything but 0 (missing) and 1 (present).

    A mask of -1, 0.5 or 2 is not "partly present": the fusion multiplies by it,
    so it scales the modality's vector and weight and the model answers with
    confident nonsense. The serving signature refuses such masks too.

    Args:
        mask: an array-like mask (`[N, M]` or `[N]`), bool or numeric.
        name: how the error names it (an input, an npz key).

    Returns:
        The mask as a numpy array (unchanged values).

    Raises:
        ValueError: naming `name`, the values other than 0 and 1 and their rows.
    """
    values = np.asarray(mask)
    if values.dtype == bool:
        return values
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"`{name}` must hold only 0 (modality missing) and 1 (present). "
                         f"Received: dtype={values.dtype}")
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1)) if values.ndim else []
        found = np.unique(values[bad])[:10].tolist()
        raise ValueError(
            f"`{name}` must hold only 0 (modality missing) and 1 (present). Received: "
            f"value(s) {found} in {len(rows)} row(s), the first {[int(r) for r in rows[:10]]}"
        )
    return values


def as_tf_dataset(x, y=None, batch_size=128, shuffle=False, seed=0):
    """A batched `tf.data.Dataset` of `(x, y)` (or `x`) from numpy dicts.

    Text arrays of Python strings become string tensors; shuffling reshuffles
    every epoch, from `seed`, so two runs with the same seed see the same order.
    """
    import tensorflow as tf

    def tensor(value):
        value = np.asarray(value)
        if value.dtype == object or value.dtype.kind == "U":
            return tf.constant(value.astype(str).tolist(), dtype=tf.string)
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
    import keras
    import tensorflow as tf

    rows = int(np.asarray(next(iter(x.values()))).shape[0])
    table = as_tf_dataset(x, y, batch_size=rows).get_single_element()

    class EpochOrder(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            EpochOrder.epoch = epoch

    def order():
        yield from np.random.default_rng([seed, EpochOrder.epoch]).permutation(rows)

    ds = tf.data.Dataset.from_generator(order, output_signature=tf.TensorSpec([], tf.int64))
    ds = ds.batch(batch_size).map(
        lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), table))
    # A generator's length is unknown to tf.data, so Keras learns the epoch's length by
    # running out of data in the first epoch and says so ("Your input ran out of data;
    # interrupting training"), which reads like data loss. The length is known: say it.
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-rows // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE), EpochOrder()
