"""The embedded default dataset: Women's E-Commerce Clothing Reviews.

23,486 real customer reviews (CC0; provenance in `DATA_LICENSE.md` beside this file),
shipped as a gzip CSV inside the package so that the default run works offline. The 14
rows without a department are dropped, which leaves 23,472.

Three modalities, in this order:

- `review` (text): `Review Text`, the raw string (tokenised inside the model).
- `title` (text): `Title`, the raw string. Missing in about 16% of the rows: a real
  missing-modality case.
- `metadata` (vector, width 2): `[Age, Positive Feedback Count]`, raw: the model
  standardises it (`FeatureNormalization`, statistics of the training split), so a
  served request sends the raw numbers too.

Three tasks, in this order:

- `recommended`: binary, from `Recommended IND` (0 = no, 1 = yes).
- `rating`: 5 classes, `Rating - 1` (class `"1"` .. `"5"` stars).
- `department`: 6 classes, `Department Name`, classes in sorted order.

No input may leak a label: `Clothing ID`, `Class Name`, `Division Name`, `Department Name`,
`Rating` and `Recommended IND` are never inputs (`Class Name` determines the department and
`Clothing ID` nearly does).
"""

import csv
import gzip
import os

import numpy as np

from hgfn_keras.data.dataset import MASK_KEY, SPLITS, MultimodalDataset
from hgfn_keras.data.npz import permutation_split
from hgfn_keras.specs import Modality, Task

CLOTHING_FILE = "womens_clothing_reviews.csv.gz"

REVIEW_COLUMN = "Review Text"
TITLE_COLUMN = "Title"
AGE_COLUMN = "Age"
FEEDBACK_COLUMN = "Positive Feedback Count"
RECOMMENDED_COLUMN = "Recommended IND"
RATING_COLUMN = "Rating"
DEPARTMENT_COLUMN = "Department Name"
REQUIRED_COLUMNS = (
    REVIEW_COLUMN,
    TITLE_COLUMN,
    AGE_COLUMN,
    FEEDBACK_COLUMN,
    RECOMMENDED_COLUMN,
    RATING_COLUMN,
    DEPARTMENT_COLUMN,
)

# How pandas may write a missing value into a CSV. The packaged file writes empty fields,
# but a user's own export of the same data might hold the literal strings.
MISSING_TEXT = ("", "nan", "NaN")

MIN_LIMIT = 10


def clothing_path():
    """Return the path of the packaged `womens_clothing_reviews.csv.gz`."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), CLOTHING_FILE)


def _read_rows(path):
    """Read the CSV (gzip if the name ends in `.gz`) into a list of dicts."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"The clothing reviews file does not exist. Received: path={path!r}")
    opener = gzip.open if path.endswith(".gz") else open
    # newline="" lets the csv module handle the line breaks inside quoted reviews.
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        absent = [c for c in REQUIRED_COLUMNS if c not in columns]
        if absent:
            raise ValueError(
                f"The clothing reviews file lacks the column(s) {absent}. "
                f"Received columns: {columns} (path={path!r})"
            )
        return list(reader)


def _text(value):
    """Return `(text, present)`: missing text becomes `""` with present = 0."""
    value = value or ""
    if value.strip() in MISSING_TEXT:
        return "", 0.0
    return value, 1.0


def _number(value):
    """Parse a number; return NaN if it is missing or unparseable."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number if np.isfinite(number) else float("nan")


def _label(value, offset, num_classes):
    """Parse an integer label minus `offset`; -1 (missing) if absent or out of range."""
    number = _number(value)
    if np.isnan(number) or number != int(number):
        return -1
    label = int(number) - offset
    return label if 0 <= label < num_classes else -1


def load_clothing(seed=0, limit=None, path=None):
    """Load the Women's E-Commerce Clothing Reviews as a `MultimodalDataset`.

    See the module docstring for the modalities and tasks. Missing text becomes `""`
    with modality mask 0; present text has mask 1. The metadata mask is 1 unless a number
    is missing or unparseable (then mask 0 and values 0). A missing or
    out-of-range label becomes -1 (the packaged file has none).

    Args:
        seed: seeds `numpy.random.default_rng`, whose `permutation(N)` splits the rows
            60/20/20 into train, validation and test.
        limit: if given, keep only a random subset of `limit` rows (drawn with the same
            seeded generator before the split), for fast tests. Must be >= 10; a limit of
            N or more keeps every row.
        path: the CSV (`.csv` or `.csv.gz`) to read; defaults to the packaged file.

    Returns:
        A `MultimodalDataset` named `"clothing"`.

    Raises:
        ValueError: if `limit` < 10, or the file or one of its needed columns is missing.
    """
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < MIN_LIMIT
    ):
        raise ValueError(
            f"`limit` must be None or an integer >= {MIN_LIMIT} (every split needs rows). "
            f"Received: limit={limit!r}"
        )
    path = clothing_path() if path is None else path
    rows = [
        r for r in _read_rows(path) if (r[DEPARTMENT_COLUMN] or "").strip() not in MISSING_TEXT
    ]
    if len(rows) < MIN_LIMIT:
        raise ValueError(
            f"The clothing reviews file has only {len(rows)} rows with a department; "
            f"at least {MIN_LIMIT} are needed. Received: path={os.fspath(path)!r}"
        )

    # The classes come from every row, so that `limit` never changes the task.
    departments = sorted({r[DEPARTMENT_COLUMN].strip() for r in rows})
    department_index = {name: i for i, name in enumerate(departments)}
    if len(departments) < 2:
        raise ValueError(
            "The department task needs at least 2 departments. Received: "
            f"departments={departments} (path={os.fspath(path)!r})"
        )

    rng = np.random.default_rng(seed)
    if limit is not None and limit < len(rows):
        keep = np.sort(rng.permutation(len(rows))[:limit])
        rows = [rows[i] for i in keep]
    num_rows = len(rows)

    reviews, review_present = zip(*(_text(r[REVIEW_COLUMN]) for r in rows))
    titles, title_present = zip(*(_text(r[TITLE_COLUMN]) for r in rows))
    raw_metadata = np.array(
        [[_number(r[AGE_COLUMN]), _number(r[FEEDBACK_COLUMN])] for r in rows], dtype=np.float64
    )
    metadata_present = np.all(np.isfinite(raw_metadata), axis=1)

    labels = {
        "recommended": np.array([_label(r[RECOMMENDED_COLUMN], 0, 2) for r in rows], np.int32),
        "rating": np.array([_label(r[RATING_COLUMN], 1, 5) for r in rows], np.int32),
        "department": np.array(
            [department_index[r[DEPARTMENT_COLUMN].strip()] for r in rows], np.int32
        ),
    }

    split_rows = permutation_split(num_rows, rng)

    metadata = np.where(metadata_present[:, None], raw_metadata, 0.0).astype(np.float32)

    text = {
        "review": np.array(reviews, dtype=object),
        "title": np.array(titles, dtype=object),
    }
    mask = np.stack(
        [np.array(review_present), np.array(title_present), metadata_present], axis=1
    ).astype(np.float32)

    splits = {}
    for split in SPLITS:
        idx = split_rows[split]
        x = {
            "review": text["review"][idx],
            "title": text["title"][idx],
            "metadata": metadata[idx],
            MASK_KEY: mask[idx],
        }
        y = {task: values[idx] for task, values in labels.items()}
        splits[split] = (x, y)

    dataset = MultimodalDataset(
        name="clothing",
        modalities=[
            Modality("review", kind="text"),
            Modality("title", kind="text"),
            Modality("metadata", kind="vector", width=2),
        ],
        tasks=[
            Task("recommended", 2, class_names=("no", "yes")),
            Task("rating", 5, class_names=("1", "2", "3", "4", "5")),
            Task("department", len(departments), class_names=tuple(departments)),
        ],
        splits=splits,
        description=(
            f"Women's E-Commerce Clothing Reviews (CC0): {num_rows} reviews with a "
            f"department; review + title text and raw [age, feedback count]; tasks "
            f"recommended, rating, department; 60/20/20 permutation split (seed={seed})."
        ),
    )
    return dataset
