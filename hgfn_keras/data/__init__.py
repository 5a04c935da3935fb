"""Data sources: each returns a `Dataset` (`MultimodalDataset` or `StreamedDataset`).

- `Dataset`: what training asks of any dataset (`hgfn_keras.data.dataset`).
- `load_clothing`: the embedded Women's E-Commerce Clothing Reviews (the default).
- `load_npz`: any user's pre-extracted features in one `.npz` file.
- `StreamedDataset`: the same contract as sharded TFRecord files, read with `tf.data`
  (`hgfn_keras.data.tfrecord`; for data larger than memory).
- `load_dataset`: picks one of them from a short spec string (for CLIs and configs).
"""

from hgfn_keras.data.clothing import clothing_path, load_clothing
from hgfn_keras.data.dataset import MASK_KEY, SPLITS, Dataset, MultimodalDataset
from hgfn_keras.data.npz import load_npz
from hgfn_keras.data.tfrecord import StreamedDataset

__all__ = [
    "Dataset",
    "MultimodalDataset",
    "MASK_KEY",
    "SPLITS",
    "load_clothing",
    "clothing_path",
    "load_npz",
    "load_dataset",
    "StreamedDataset",
]

NPZ_PREFIX = "npz:"
TFRECORD_PREFIX = "tfrecord:"


def load_dataset(spec, seed=0, limit=None, num_classes=None):
    """Load a dataset from a spec string.

    Args:
        spec: `"clothing"` (the embedded reviews), `"npz:PATH"` (a feature file) or
            `"tfrecord:DIR"` (its sharded form, written by `python -m training.convert`).
        seed: seeds the random 60/20/20 split (and the `limit` subset).
        limit: for `"clothing"` only, keep a random subset of this many rows (>= 10).
        num_classes: for `"npz:PATH"` only, `{task: K}` declaring tasks' numbers of
            classes (`--num-classes TASK=K`; see `hgfn_keras.labels`).

    Returns:
        A `MultimodalDataset`, or for `"tfrecord:DIR"` a `StreamedDataset` (its
        shards checked against its header; nothing else read).

    Raises:
        ValueError: for any other spec, a `limit` given with an `npz:` or
            `tfrecord:` spec, `num_classes` with a `tfrecord:` spec (its header
            declares the classes), or shards that disagree with their header.
    """
    if spec == "clothing":
        if num_classes:
            raise ValueError(
                "`num_classes` applies only to npz feature files; the 'clothing' tasks are "
                f"fixed. Received: num_classes={num_classes!r}"
            )
        return load_clothing(seed=seed, limit=limit)
    if isinstance(spec, str) and spec.startswith(NPZ_PREFIX) and len(spec) > len(NPZ_PREFIX):
        if limit is not None:
            raise ValueError(
                f"`limit` applies only to the 'clothing' dataset. Received: spec={spec!r}, "
                f"limit={limit!r}"
            )
        return load_npz(spec[len(NPZ_PREFIX) :], seed=seed, num_classes=num_classes)
    if (isinstance(spec, str) and spec.startswith(TFRECORD_PREFIX)
            and len(spec) > len(TFRECORD_PREFIX)):
        if limit is not None or num_classes:
            what = "limit" if limit is not None else "num_classes"
            raise ValueError(
                f"`{what}` does not apply to a TFRecord dataset (its splits and classes are "
                f"in its dataset.json). Received: spec={spec!r}, "
                f"{what}={limit if limit is not None else num_classes!r}"
            )
        return StreamedDataset(spec[len(TFRECORD_PREFIX) :])
    raise ValueError(
        "`spec` must be 'clothing', 'npz:PATH' (a path to an .npz feature file) or "
        f"'tfrecord:DIR' (a folder of TFRecord shards). Received: spec={spec!r}"
    )
