"""Load pre-extracted features from one `.npz` file (the feature-file contract).

The contract (see docs/DESIGN.md, "The feature-file contract (npz)"):

- `x_<modality>`: float `[N, D]` (a `"vector"` modality of width D) or `[N, T, D]` (a
  `"sequence"` modality of T steps of width D). Integer arrays are accepted and cast to
  float32. A unicode (`<U`, what `np.array(list_of_str)` gives) or bytes (`S`, UTF-8)
  array `[N]` is a `"text"` modality: one raw string per row, tokenised inside the model
  ("" for a missing text; `np.load(allow_pickle=False)` reads both, an object array
  it cannot). At least two modalities are required.
- `y_<task>`: integer `[N]`: 0/1 for a binary task, 0..K-1 for a K-class task, -1 for a
  missing label. A float array is accepted if every value is integral. The number of
  classes is inferred as `K = max label + 1` only when every class in [0, K) occurs; a task
  whose labels are only 0/1 (or only 0, or only -1) is binary (K = 2). Labels with a gap
  (0/1 and a stray 7) are refused, naming the value and its rows (`hgfn_keras.labels`).
- `classes_<task>` (optional): the task's number of classes K as an integer scalar, or its
  class names as a 1-D string array; declared classes need not all occur (a warning names
  the ones that do not), and a label >= K is refused.
- `split` (optional): integer `[N]`, 0 = train, 1 = validation, 2 = test. Without it, the
  rows are split 60/20/20 by `numpy.random.default_rng(seed).permutation(N)`: the first 60%
  of the permutation is train, the next 20% validation, the rest test.
- `mask_<modality>` (optional, a project extension): `[N]` of 0/1, 1 where the modality is
  present for that row; a modality without one is present in every row. The masks form the
  dataset's `"modality_mask"`. The feature values of an absent modality are kept as given
  (the model ignores them through the mask). A row with every modality absent is refused
  (naming the rows), as `fit` and the SavedModel refuse it; a modality without a mask
  whose rows are all 0 in some rows only is warned about (missing data filled with 0?).

Names (the text after the prefix) must be Python identifiers, because they become model
input and output names. Modalities and tasks are ordered by name. The dataset is named after
the file stem (`features/cmu.npz` -> `"cmu"`). Anything that breaks the contract raises a
`ValueError` that names the offending key and what was received; a task with no label in
the training split warns here (the file may be read for evaluation only), and the recipe
refuses to train it (`hgfn_keras.recipe.check_training_labels`).

Writing such a file takes three lines of numpy:

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
>>> np.savez(path, x_audio=np.zeros((10, 4)), x_video=np.zeros((10, 3, 2)),
...          y_happy=np.arange(10) % 2)
>>> load_npz(path).modality_names
['audio', 'video']
"""

import os
import warnings
import zipfile
import zlib

import numpy as np

from hgfn_keras.feature_checks import check_finite, check_present_rows, warn_zero_rows
from hgfn_keras.data.dataset import MASK_KEY, SPLITS, MultimodalDataset
from hgfn_keras.utils.text_arrays import TEXT_KINDS, as_text_array
from hgfn_keras.labels import (
    as_label_array,
    check_declared_num_classes,
    infer_num_classes,
    is_integral,
)
from hgfn_keras.specs import Modality, Task

SPLIT_KEY = "split"
CLASSES_PREFIX = "classes_"
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)


def permutation_split(num_rows, rng):
    """Split `num_rows` row indices 60/20/20 by a random permutation.

    Args:
        num_rows: the number of rows N.
        rng: a `numpy.random.Generator`; `rng.permutation(N)` orders the rows.

    Returns:
        `{"train": idx, "validation": idx, "test": idx}`: the first 60% of the
        permutation, the next 20% and the rest (sizes rounded down, the remainder goes
        to test).
    """
    order = rng.permutation(num_rows)
    num_train = int(num_rows * SPLIT_FRACTIONS[0])
    num_validation = int(num_rows * SPLIT_FRACTIONS[1])
    return {
        "train": order[:num_train],
        "validation": order[num_train : num_train + num_validation],
        "test": order[num_train + num_validation :],
    }


def _open_npz(path):
    """Read every array of an `.npz` file into a dict, or raise a clear ValueError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"The feature file does not exist. Received: path={path!r}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(
            "The feature file must be an `.npz` archive written by `numpy.savez`. "
            f"Received: path={path!r} ({error})"
        ) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            "The feature file must be an `.npz` archive written by `numpy.savez`, not a "
            f"single `.npy` array. Received: path={path!r}"
        )
    with archive:
        arrays = {}
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError as error:  # e.g. an object array, which needs pickle
                raise ValueError(
                    f"`{key}` cannot be read without pickle; store plain numeric arrays. "
                    f"Received: path={path!r} ({error})"
                ) from error
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
                # A damaged member (its CRC no longer matches, cut short).
                raise ValueError(
                    f"`{key}` of the feature file is damaged and cannot be read ({error}); "
                    f"write the file again. Received: path={path!r}") from error
        return arrays


def _name_after_prefix(key, prefix):
    name = key[len(prefix) :]
    if not name.isidentifier():
        raise ValueError(
            f"`{key}`: the name after `{prefix}` must be a Python identifier (it becomes "
            f"a model input or output name). Received: name={name!r}"
        )
    return name


def _check_features(key, x):
    """Check one `x_<modality>` array and return it as float32 (text: `str` objects)."""
    if x.dtype.kind in TEXT_KINDS:
        if x.ndim != 1:
            raise ValueError(f"`{key}` holds text, which must be 1-D [N] (one string per "
                             f"row). Received: shape={x.shape}")
        return as_text_array(x, f"`{key}`")
    if x.dtype == bool or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(
            f"`{key}` must hold floating (or integer) numbers, or text (a unicode or "
            f"bytes array [N]). Received: dtype={x.dtype}"
        )
    if x.ndim not in (2, 3):
        raise ValueError(
            f"`{key}` must be 2-D [N, D] or 3-D [N, T, D]. Received: shape={x.shape}"
        )
    if 0 in x.shape[1:]:
        raise ValueError(
            f"`{key}` must have at least one step and one feature. Received: shape={x.shape}"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported next
        x = x.astype(np.float32)
    check_finite(x, f"`{key}` (as float32)")
    return x


def _check_binary_vector(key, values, what):
    """Check a `[N]` array of 0/1 (`mask_<modality>`) and return it as float32."""
    if values.ndim != 1:
        raise ValueError(f"`{key}` must be 1-D [N]. Received: shape={values.shape}")
    if not (values.dtype == bool or np.issubdtype(values.dtype, np.number)) or not np.all(
        np.isin(values, (0, 1))
    ):
        found = np.unique(values)[:10] if values.size else values
        raise ValueError(
            f"`{key}` must hold only 0 and 1 ({what}). Received values: {found.tolist()}"
        )
    return values.astype(np.float32)


def _check_split(values):
    """Turn the `split` array (or its absence) into row indices per split."""
    if values is None:
        return None
    if values.ndim != 1:
        raise ValueError(f"`{SPLIT_KEY}` must be 1-D [N]. Received: shape={values.shape}")
    if not (np.issubdtype(values.dtype, np.number) and is_integral(values)) or not np.all(
        np.isin(values, (0, 1, 2))
    ):
        found = np.unique(values)[:10].tolist() if values.size else []
        raise ValueError(
            f"`{SPLIT_KEY}` must hold only 0 (train), 1 (validation) and 2 (test). "
            f"Received values: {found}"
        )
    return {name: np.flatnonzero(values == code) for code, name in enumerate(SPLITS)}


def _declared_classes(arrays, labels, num_classes):
    """`{task: (K, class names or None, source)}` from `classes_<task>` and `num_classes`."""
    declared = {}
    for key in sorted(k for k in arrays if k.startswith(CLASSES_PREFIX)):
        task = key[len(CLASSES_PREFIX) :]
        if task not in labels:
            raise ValueError(
                f"`{key}` declares the classes of an unknown task {task!r}. "
                f"Known tasks: {sorted(labels)}"
            )
        source = f"`{key}` in the npz"
        k, names = check_declared_num_classes(task, arrays[key], source)
        declared[task] = (k, names, source)
    for task, value in (num_classes or {}).items():
        if task not in labels:
            raise ValueError(
                f"--num-classes names an unknown task {task!r}. Known tasks: {sorted(labels)}"
            )
        source = f"--num-classes {task}={value}"
        k, names = check_declared_num_classes(task, value, source)
        if task in declared and declared[task][0] != k:
            raise ValueError(
                f"Task {task!r}: {source} disagrees with {declared[task][2]} "
                f"(K={declared[task][0]})."
            )
        declared[task] = (k, names or declared.get(task, (k, None))[1], source)
    return declared


def load_npz(path, seed=0, num_classes=None):
    """Load a `MultimodalDataset` from one `.npz` feature file.

    See the module docstring for the file's contract.

    Args:
        path: the `.npz` file.
        seed: seeds the 60/20/20 permutation split when the file has no `split` array.
        num_classes: optional `{task: K}` declaring tasks' numbers of classes (what
            `--num-classes TASK=K` gives); it must agree with a `classes_<task>` entry.

    Returns:
        A `MultimodalDataset` named after the file stem, with one `"vector"`,
        `"sequence"` or `"text"` modality per `x_` key (its kind from the array's
        dtype and shape) and one task per `y_` key, both ordered by name.

    Raises:
        ValueError: if the file is missing, is not an npz archive, or breaks the contract;
            the message names the offending key.
    """
    arrays = _open_npz(path)
    name = os.path.splitext(os.path.basename(os.fspath(path)))[0]

    unknown = sorted(
        key
        for key in arrays
        if key != SPLIT_KEY and not key.startswith(("x_", "y_", "mask_", CLASSES_PREFIX))
    )
    if unknown:
        raise ValueError(
            f"Unknown key(s) in the feature file: {unknown}. Expected only `x_<modality>`, "
            f"`y_<task>`, `mask_<modality>`, `{CLASSES_PREFIX}<task>` and `split`. Received keys: {sorted(arrays)}"
        )

    x_keys = sorted(key for key in arrays if key.startswith("x_"))
    y_keys = sorted(key for key in arrays if key.startswith("y_"))
    mask_keys = sorted(key for key in arrays if key.startswith("mask_"))
    if len(x_keys) < 2:
        raise ValueError(
            "The feature file must hold at least two modalities (`x_<modality>` keys). "
            f"Received keys: {sorted(arrays)}"
        )
    if not y_keys:
        raise ValueError(
            "The feature file must hold at least one task (a `y_<task>` key). "
            f"Received keys: {sorted(arrays)}"
        )

    features = {}
    for key in x_keys:
        modality = _name_after_prefix(key, "x_")
        if modality == MASK_KEY:
            raise ValueError(
                f"`{key}`: the modality name {MASK_KEY!r} is reserved for the modality mask."
            )
        features[modality] = _check_features(key, arrays[key])
    labels = {
        _name_after_prefix(key, "y_"): as_label_array(arrays[key], f"`{key}`") for key in y_keys
    }
    declared = _declared_classes(arrays, labels, num_classes)
    masks = {}
    for key in mask_keys:
        modality = _name_after_prefix(key, "mask_")
        if modality not in features:
            raise ValueError(
                f"`{key}` is a mask for an unknown modality {modality!r}. "
                f"Known modalities: {sorted(features)}"
            )
        masks[modality] = _check_binary_vector(key, arrays[key], "1 = present, 0 = absent")

    split_rows = _check_split(arrays.get(SPLIT_KEY))
    counted = x_keys + y_keys + mask_keys + ([SPLIT_KEY] if SPLIT_KEY in arrays else [])
    row_counts = {key: int(arrays[key].shape[0]) for key in counted}
    if len(set(row_counts.values())) != 1:
        listing = ", ".join(f"`{key}`: N={n}" for key, n in row_counts.items())
        raise ValueError(f"All arrays must have the same number of rows N. Received: {listing}")
    num_rows = row_counts[x_keys[0]]

    if split_rows is None:
        split_rows = permutation_split(num_rows, np.random.default_rng(seed))
        how = f"60/20/20 permutation (seed={seed})"
    else:
        how = f"`{SPLIT_KEY}` array"
    for split in SPLITS:
        if split_rows[split].size == 0:
            raise ValueError(
                f"The {split!r} split is empty ({num_rows} rows, split by the {how}). "
                "Every split needs at least one row."
            )

    modality_names = sorted(features)
    modalities = []
    for modality in modality_names:
        x = features[modality]
        if x.dtype == object:  # text (`_check_features`)
            modalities.append(Modality(modality, kind="text"))
        elif x.ndim == 2:
            modalities.append(Modality(modality, kind="vector", width=int(x.shape[1])))
        else:
            modalities.append(
                Modality(modality, kind="sequence", width=int(x.shape[2]), steps=int(x.shape[1]))
            )
    mask = np.stack(
        [masks.get(m, np.ones(num_rows, dtype=np.float32)) for m in modality_names], axis=1
    ).astype(np.float32)
    # Rows with no modality are refused, as `fit` and the SavedModel refuse them; zeros
    # in a modality without a mask that look like missing rows are warned about.
    check_present_rows(mask, name=" + ".join(f"mask_{m}" for m in modality_names))
    warn_zero_rows({**features, MASK_KEY: mask}, modality_names, stacklevel=2)

    tasks = []
    for task in sorted(labels):
        y = labels[task]
        k, class_names, source = declared.get(task, (None, None, None))
        k = infer_num_classes(task, y, declared=k, source=source, stacklevel=3)
        tasks.append(Task(task, num_classes=k, class_names=class_names))
        if np.all(y[split_rows["train"]] == -1):
            warnings.warn(
                f"Task {task!r} (`y_{task}`) has no label in the training split (all -1); "
                "it will add no loss during training.",
                stacklevel=2,
            )

    splits = {}
    for split in SPLITS:
        rows = split_rows[split]
        x = {m: features[m][rows] for m in modality_names}
        x[MASK_KEY] = mask[rows]
        y = {t.name: labels[t.name][rows] for t in tasks}
        splits[split] = (x, y)

    description = (
        f"{name}: {num_rows} rows from {os.fspath(path)!r}; modalities "
        f"{modality_names}; tasks {[f'{t.name} (K={t.num_classes})' for t in tasks]}; "
        f"split by the {how}."
    )
    return MultimodalDataset(
        name=name, modalities=modalities, tasks=tasks, splits=splits, description=description
    )
