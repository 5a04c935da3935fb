"""CrisisMMD's annotation TSVs to an extraction manifest (the paper's first dataset).

CrisisMMD v2.0 (Alam et al., 2018) ships one annotation TSV per disaster event
(`annotations/<event>_final_data.tsv`), one row per (tweet, image) pair, with the columns
`tweet_id`, `image_id`, `text_info`, `image_info`, `text_human`, `image_human`,
`image_damage` (each label with a `_conf` column), `tweet_text`, `image_url` and
`image_path` (relative to the dataset folder, e.g. `data_image/<event>/<date>/<id>.jpg`).

`read_crisismmd` turns them into manifest rows with the paper's three tasks, and
`write_crisismmd_manifest` writes the TSV that `python -m training.extract` reads
(`--crisismmd` does both in one command). Labels are class indices (-1 = missing) in
the fixed class orders of `CRISISMMD_TASKS`.

The paper does not say which of a pair's two annotations (text, image) it uses; the
project's default `label_source="agreed"` keeps a label where the text and image
annotations agree and marks it missing otherwise (CrisisMMD's own multimodal setting).
The damage level is annotated on images only.
"""

import csv
import os

from hgfn_keras.utils.io_utils import atomic_write_text

CRISISMMD_TASKS = {
    "informative": ("not_informative", "informative"),
    "humanitarian": (
        "affected_individuals",
        "infrastructure_and_utility_damage",
        "injured_or_dead_people",
        "missing_or_found_people",
        "not_humanitarian",
        "other_relevant_information",
        "rescue_volunteering_or_donation_effort",
        "vehicle_damage",
    ),
    "damage": ("little_or_no_damage", "mild_damage", "severe_damage"),
}
# Annotation values that mean "no label".
MISSING_LABELS = ("", "nan", "none", "dont_know_or_cant_judge", "cant_judge")
CRISISMMD_COLUMNS = ("tweet_id", "image_id", "tweet_text", "image_path", "text_info",
                     "image_info", "text_human", "image_human", "image_damage")
LABEL_SOURCES = ("agreed", "text", "image")
MANIFEST_COLUMNS = ("id", "event", "text", "image", *CRISISMMD_TASKS)
_TASK_COLUMNS = {"informative": "info", "humanitarian": "human"}


def _label(value, task, path, row_number, column):
    value = (value or "").strip()
    if value.lower() in MISSING_LABELS:
        return -1
    classes = CRISISMMD_TASKS[task]
    if value not in classes:
        raise ValueError(
            f"{path!r}, row {row_number}: unknown {task} label in column `{column}`. "
            f"Received: {value!r}. Known labels: {list(classes)}"
        )
    return classes.index(value)


def read_crisismmd(paths, image_root=None, label_source="agreed"):
    """Reads CrisisMMD annotation TSVs into manifest rows.

    Args:
        paths: one TSV path or a list of them (e.g. every event's file).
        image_root: the folder that the TSVs' `image_path` values are relative to.
            None: the folder above each TSV's folder (CrisisMMD's layout:
            `CrisisMMD_v2.0/annotations/*.tsv`, `CrisisMMD_v2.0/data_image/...`).
        label_source: `"agreed"` (text and image annotations agree, else missing),
            `"text"` or `"image"`, for the informative and humanitarian tasks.

    Returns:
        A list of dicts with the keys of `MANIFEST_COLUMNS`: `id` (the image id),
        `event` (the TSV's name), `text` (the tweet), `image` (the image's path) and one
        integer label per task of `CRISISMMD_TASKS` (-1 = missing).

    Raises:
        ValueError: for a missing file or column, an unknown label or a repeated image
            id; the message names the file, row and column.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "quake.tsv")
    >>> header = "\\t".join(CRISISMMD_COLUMNS)
    >>> row = "\\t".join(["1", "1_0", "Help!", "a.jpg", "informative", "informative",
    ...                  "affected_individuals", "not_humanitarian", "severe_damage"])
    >>> _ = open(path, "w").write(header + "\\n" + row + "\\n")
    >>> rows = read_crisismmd(path, image_root="/data")
    >>> [rows[0][k] for k in ("image", "informative", "humanitarian", "damage")]
    ['/data/a.jpg', 1, -1, 2]
    """
    if label_source not in LABEL_SOURCES:
        raise ValueError(
            f"`label_source` must be one of {LABEL_SOURCES}. Received: label_source={label_source!r}"
        )
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("`paths` is empty: give at least one CrisisMMD annotation TSV.")
    rows, seen = [], {}
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"The CrisisMMD annotation file does not exist. Received: {path!r}")
        root = image_root
        if root is None:
            root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        event = os.path.splitext(os.path.basename(path))[0].removesuffix("_final_data")
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = [c for c in CRISISMMD_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(
                    f"{path!r} lacks the CrisisMMD column(s) {missing}. "
                    f"Received columns: {reader.fieldnames}"
                )
            for row_number, record in enumerate(reader, start=2):
                image_id = (record["image_id"] or "").strip()
                if not image_id:
                    raise ValueError(f"{path!r}, row {row_number}: `image_id` is empty.")
                if image_id in seen:
                    raise ValueError(
                        f"{path!r}, row {row_number}: image id {image_id!r} repeats row "
                        f"{seen[image_id]}."
                    )
                seen[image_id] = f"{row_number} of {path!r}"
                image = (record["image_path"] or "").strip()
                row = {
                    "id": image_id,
                    "event": event,
                    "text": " ".join((record["tweet_text"] or "").split()),
                    "image": os.path.join(root, image) if image else "",
                }
                for task, suffix in _TASK_COLUMNS.items():
                    text_col, image_col = f"text_{suffix}", f"image_{suffix}"
                    text_label = _label(record[text_col], task, path, row_number, text_col)
                    image_label = _label(record[image_col], task, path, row_number, image_col)
                    if label_source == "text":
                        row[task] = text_label
                    elif label_source == "image":
                        row[task] = image_label
                    else:
                        row[task] = text_label if text_label == image_label else -1
                row["damage"] = _label(record["image_damage"], "damage", path, row_number,
                                       "image_damage")
                rows.append(row)
    return rows


def write_crisismmd_manifest(paths, output, image_root=None, label_source="agreed"):
    """Writes the manifest TSV of `read_crisismmd(paths, ...)` to `output`.

    Args:
        paths, image_root, label_source: as for `read_crisismmd`.
        output: the manifest file to write (TSV, columns `MANIFEST_COLUMNS`).

    Returns:
        The number of rows written.
    """
    rows = read_crisismmd(paths, image_root=image_root, label_source=label_source)
    lines = ["\t".join(MANIFEST_COLUMNS)]
    for row in rows:
        lines.append("\t".join(str(row[c]).replace("\t", " ") for c in MANIFEST_COLUMNS))
    atomic_write_text(os.fspath(output), "\n".join(lines) + "\n")
    return len(rows)
