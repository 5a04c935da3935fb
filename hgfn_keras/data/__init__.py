"""Data sources: each returns a `MultimodalDataset`.

- `load_clothing`: the embedded Women's E-Commerce Clothing Reviews (the default).
- `load_npz`: any user's pre-extracted features in one `.npz` file.
- `load_dataset`: picks one of them from a short spec string (for CLIs and configs).
"""

from hgfn_keras.data.clothing import clothing_path, load_clothing
from hgfn_keras.data.dataset import MASK_KEY, SPLITS, MultimodalDataset
from hgfn_keras.data.npz import load_npz

__all__ = [
    "MultimodalDataset",
    "MASK_KEY",
    "SPLITS",
    "load_clothing",
    "clothing_path",
    "load_npz",
    "load_dataset",
]

NPZ_PREFIX = "npz:"


def load_dataset(spec, seed=0, limit=None, num_classes=None):
    """Load a dataset from a spec string.

    Args:
        spec: `"clothing"` (the embedded reviews) or `"npz:PATH"` (a feature file).
        seed: seeds the random 60/20/20 split (and the `limit` subset).
        limit: for `"clothing"` only, keep a random subset of this many rows (>= 10).
        num_classes: for `"npz:PATH"` only, `{task: K}` declaring tasks' numbers of
            classes (`--num-classes TASK=K`; see `hgfn_keras.labels`).

    Returns:
        A `MultimodalDataset`.

    Raises:
        ValueError: for any other spec, or a `limit` given with an `npz:` spec.
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
    raise ValueError(
        "`spec` must be 'clothing' or 'npz:PATH' (a path to an .npz feature file). "
        f"Received: spec={spec!r}"
    )
