"""What a run's data was, so that a backup is never resumed on other data.

A run killed, its npz rewritten, then started again resumed silently: epoch 1 had
trained on the old file and the rest on the new (issue 30), because the backup's
fingerprint covered the settings (the `--dataset` string), not the data. The backup's
`fingerprint.json` now also holds `data_fingerprint(config.dataset)`:

- `npz:PATH`: the file's size, its modification time and the SHA-256 of its bytes;
- `tfrecord:DIR`: the SHA-256 of its `dataset.json` (which lists every shard with
  its rows) and each shard's size;
- the built-in datasets: None (they are part of the installed package).

Two fingerprints are the same data when the sizes and the hashes agree: a copy or a
`touch` that changes only the modification time is the same data (the time is kept
for the message).
"""

import hashlib
import os

from hgfn_keras.data import NPZ_PREFIX, TFRECORD_PREFIX

_CHUNK = 1 << 20
#: `{(path, size, mtime_ns): sha256}`: a file hashed once per process.
_HASHES = {}


def file_sha256(path):
    """The SHA-256 (hex) of the file at `path`, read in 1 MiB chunks; cached by the
    file's path, size and modification time for the process."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def data_fingerprint(spec):
    """A JSON-able description of the data `spec` (a `--dataset` string) names, or None
    for a built-in dataset or a path that does not exist (loading it fails anyway)."""
    if not isinstance(spec, str):
        return None
    if spec.startswith(NPZ_PREFIX):
        path = spec[len(NPZ_PREFIX):]
        if not os.path.isfile(path):
            return None
        stat = os.stat(path)
        return {"kind": "npz", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "sha256": file_sha256(path)}
    if spec.startswith(TFRECORD_PREFIX):
        folder = spec[len(TFRECORD_PREFIX):]
        header = os.path.join(folder, "dataset.json")
        if not os.path.isfile(header):
            return None
        shards = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".tfrecord") or ".tfrecord" in name:
                shards[name] = os.path.getsize(os.path.join(folder, name))
        return {"kind": "tfrecord", "header_sha256": file_sha256(header),
                "mtime_ns": os.stat(header).st_mtime_ns, "shard_sizes": shards}
    return None


def data_differences(old, new):
    """`[reason]` why the data fingerprints `old` and `new` name other data (empty: the
    same data, or nothing recorded to compare)."""
    if not old or not new or old.get("kind") != new.get("kind"):
        return [] if not old or not new else [f"the data kind was {old.get('kind')}"]
    reasons = []
    if old["kind"] == "npz":
        if old.get("size") != new.get("size"):
            reasons.append(f"the npz file was {old.get('size')} bytes, now {new.get('size')}")
        elif old.get("sha256") != new.get("sha256"):
            reasons.append("the npz file's content changed (SHA-256 differs)")
    else:
        if old.get("header_sha256") != new.get("header_sha256"):
            reasons.append("the shards' dataset.json changed")
        if old.get("shard_sizes") != new.get("shard_sizes"):
            reasons.append("the shard files changed (their sizes differ)")
    return reasons


__all__ = ["data_differences", "data_fingerprint", "file_sha256"]
