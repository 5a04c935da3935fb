"""The on-disk format: the header (`dataset.json`) and the records' wire encoding.

The header lists the modalities (name, kind, width, steps, whether they have a
mask), the tasks (name, number of classes), the row count of every split and
every shard, and, per shard, the widths and class counts it was written with.
`read_header` checks it field by field, so that a hand-edited or truncated
header is refused with the field it lacks, not a `KeyError`.

The records are standard `tf.train.Example`s, encoded by hand (see the note above
`_varint`).
"""

import json
import os
import struct

import numpy as np

from hgfn_keras.data.dataset import SPLITS

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


# What every header must hold: field -> its JSON type(s); and, for the lists, what
# every entry must hold.
_FIELDS = {"format": str, "version": int, "modalities": list, "tasks": list, "splits": dict,
           "shards": list}
_ENTRY_FIELDS = {
    "modalities": {"name": str, "kind": str, "width": int, "steps": (int, type(None))},
    "tasks": {"name": str, "num_classes": int},
    "shards": {"file": str, "split": str, "rows": int},
}


def _type_names(kind):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def _check_type(value, kind):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:  # JSON true is not an integer here
        return False
    return isinstance(value, kinds)


def _field_problems(entry, fields, prefix):
    """What `entry` (a JSON object) lacks of `fields` ({name: type}), or holds of
    another type, each as "`<prefix><name>` is missing" or "... must be ..."."""
    problems = []
    for key, kind in fields.items():
        if key not in entry:
            problems.append(f"`{prefix}{key}` is missing")
        elif not _check_type(entry[key], kind):
            problems.append(f"`{prefix}{key}` must be {_type_names(kind)}, not {entry[key]!r}")
    return problems


def read_header(path):
    """The parsed `dataset.json` at `path`, checked field by field.

    Raises:
        ValueError: naming the file and every field that is missing or of the wrong
            type (`modalities`, `tasks[1].num_classes`, `shards[3].rows`, ...), an
            unreadable file, another format or another version.
    """
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
    problems = _field_problems(header, _FIELDS, "")
    for field, entry_fields in _ENTRY_FIELDS.items():
        entries = header.get(field)
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                problems.append(f"`{field}[{i}]` must be an object")
            else:
                problems += _field_problems(entry, entry_fields, f"{field}[{i}].")
    if isinstance(header.get("splits"), dict):
        problems += _field_problems(header["splits"], dict.fromkeys(SPLITS, int), "splits.")
    if problems:
        raise ValueError(f"{path!r} is not a complete {FORMAT} header: "
                         + "; ".join(problems) + ".")
    return header


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


def shard_path(directory, shard):
    """The path of a header's shard entry."""
    return os.path.join(directory, shard["file"])
