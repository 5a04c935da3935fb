"""Extract one feature vector per modality from raw media and write the npz feature file.

    python -m training.extract --manifest items.tsv --id-column id \\
        --image photo --text caption --labels informative damage \\
        --text-encoder https://tfhub.dev/google/elmo/3 --output features.npz
    python -m training.extract --crisismmd CrisisMMD_v2.0/annotations/*.tsv \\
        --output crisismmd.npz          # the paper's CrisisMMD setting in one command
    python -m training.train --dataset npz:features.npz

The manifest is a CSV (`.csv`) or TSV (`.tsv`, `.tab`, `.txt`) file with a header: an id
column, one column per modality holding a media path (relative paths are read from
`--media-root`, by default the manifest's folder; a path that resolves outside it, as
`../x.jpg`, an absolute path elsewhere or a symlink leading out, is refused unless
`--allow-outside-root` is given) or, for text, the text itself, one
column per task holding integer labels (empty or -1 = missing), and optionally a split
column (0/1/2 or train/validation/test). A modality takes its column's name, or
`NAME=COLUMN` renames it.

Modality kinds and their encoders:

- `--image`: image files, `ImageEncoder` (default Keras InceptionV3 with ImageNet
  weights, which Keras downloads; or a weights file, or a TF-Hub handle / SavedModel).
- `--text`: text, a TF-Hub handle / SavedModel via `HubEncoder` (default: ELMo).
- `--audio`: WAV files, `AudioEncoder` (a handle, or log-mel statistics by default).
- `--video`: a folder of frames, an animated GIF or a video file (OpenCV needed for
  those): `--frames` frames sampled evenly, each through the image encoder, giving a
  `[N, frames, D]` sequence modality (train it with a `TemporalEncoder`).

Items are read and batched by `tf.data`. Every item's vector is cached under
`--cache-dir` (keyed by the encoder settings, the id and the source), so a run that is
interrupted resumes where it stopped. A missing or unreadable file, or an empty text,
makes that modality absent for that row: its vector is zeros and `mask_<modality>` is 0
(the npz contract's extension); the summary lists them and
`<output>.missing.tsv` holds the full list. It never stops the run.
"""

import argparse
import csv
import hashlib
import json
import os
import sys
import time

from training._cli import run_main

KINDS = ("image", "text", "audio", "video")
DEFAULT_TEXT_ENCODER = "https://tfhub.dev/google/elmo/3"
SPLIT_NAMES = {"0": 0, "train": 0, "1": 1, "validation": 1, "val": 1, "dev": 1, "2": 2,
               "test": 2}
CACHE_VERSION = 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.extract",
        description="Encode raw media (images, text, audio, video) listed in a manifest into "
        "one .npz feature file for `python -m training.train --dataset npz:FILE`.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", help="CSV/TSV manifest: id, one column per modality, "
                        "one column per task label, optional split.")
    source.add_argument("--crisismmd", nargs="+", metavar="TSV",
                        help="CrisisMMD annotation TSV(s): builds the manifest (tasks "
                        "informative, humanitarian, damage; modalities text, image).")
    p.add_argument("--crisismmd-root", default=None,
                   help="Folder the CrisisMMD image paths are relative to. Default: the "
                   "folder above the TSVs' folder")
    p.add_argument("--label-source", default="agreed", choices=["agreed", "text", "image"],
                   help="CrisisMMD labels: where text and image annotations agree (else "
                   "missing), or one of them. Default: %(default)s")
    p.add_argument("--output", required=True,
                   help="The .npz feature file to write (with --format tfrecord: the folder "
                   "of TFRecord shards).")
    p.add_argument("--format", default="npz", choices=["npz", "tfrecord"],
                   help="npz: one feature file; tfrecord: shards written a shard at a time "
                   "from the per-item cache, never the whole feature matrix in memory "
                   "(train with --dataset tfrecord:DIR). Default: %(default)s")
    p.add_argument("--shard-rows", type=int, default=10_000,
                   help="With --format tfrecord: rows per shard. Default: %(default)s")
    p.add_argument("--seed", type=int, default=0,
                   help="With --format tfrecord and no split column: seeds the 60/20/20 "
                   "split, as `training.train --seed` splits the npz. Default: %(default)s")
    p.add_argument("--id-column", default="id", help="Default: %(default)s")
    for kind in KINDS:
        p.add_argument(f"--{kind}", nargs="+", default=[], metavar="COLUMN",
                       help=f"{kind} modality column(s) (NAME=COLUMN to rename).")
    p.add_argument("--labels", nargs="+", default=[], metavar="COLUMN",
                   help="Task label columns (integers; empty or -1 = missing).")
    p.add_argument("--split-column", default=None,
                   help="Split column (0/1/2 or train/validation/test). Default: 'split' if "
                   "the manifest has it")
    p.add_argument("--media-root", default=None,
                   help="Folder relative media paths start from. Default: the manifest's folder")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="Read media paths that resolve outside --media-root ('../x.jpg', "
                   "absolute paths elsewhere, symlinks leading out). Default: refused")
    p.add_argument("--image-encoder", default="inception_v3",
                   help="A Keras application name or a TF-Hub handle / SavedModel folder "
                   "(images and video frames). Default: %(default)s")
    p.add_argument("--image-weights", default="auto",
                   help="'imagenet', 'none' or a weights file, for a Keras application "
                   "('auto': imagenet for an application, none for a hub handle). "
                   "Default: %(default)s")
    p.add_argument("--image-size", type=int, default=299,
                   help="The image encoder's input size. Default: %(default)s")
    p.add_argument("--text-encoder", default=DEFAULT_TEXT_ENCODER,
                   help="TF-Hub handle / SavedModel folder for text. Default: %(default)s")
    p.add_argument("--text-output-key", default=None,
                   help="Output to take from a text module returning a dict. Default: its "
                   "only one, else 'default'")
    p.add_argument("--audio-encoder", default=None,
                   help="TF-Hub handle / SavedModel folder for waveforms. Default: log-mel "
                   "statistics (tf.signal)")
    p.add_argument("--sample-rate", type=int, default=16000, help="Default: %(default)s")
    p.add_argument("--clip-seconds", type=float, default=10.0,
                   help="Audio clips are cut or zero-padded to this length. Default: %(default)s")
    p.add_argument("--frames", type=int, default=40,
                   help="Frames sampled per video. Default: %(default)s")
    p.add_argument("--frame-size", type=int, default=224,
                   help="Frames are resized and centre-cropped to this size. Default: %(default)s")
    p.add_argument("--batch-size", type=int, default=32, help="Default: %(default)s")
    p.add_argument("--cache-dir", default=None,
                   help="Per-item cache (resumes an interrupted run). Default: OUTPUT.cache")
    p.add_argument("--quiet", action="store_true", help="No progress lines.")
    args = p.parse_args(argv)
    for name in ("image_size", "sample_rate", "frames", "frame_size", "batch_size",
                 "shard_rows"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive. Received: {getattr(args, name)}")
    if args.clip_seconds <= 0:
        p.error(f"--clip-seconds must be positive. Received: {args.clip_seconds}")
    return args


# ---------------------------------------------------------------------- manifest


def read_manifest(path):
    """Reads a CSV/TSV manifest: returns (column names, list of row dicts).

    `.csv` is comma-separated (with CSV quoting); `.tsv`, `.tab` and `.txt` are
    tab-separated with no quoting (as CrisisMMD's files). Raises ValueError for a
    missing or empty file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"The manifest does not exist. Received: --manifest {path!r}")
    tab = not path.lower().endswith(".csv")
    with open(path, newline="", encoding="utf-8") as f:
        if tab:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.DictReader(f)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    if not columns:
        raise ValueError(f"The manifest is empty (no header). Received: --manifest {path!r}")
    if not rows:
        raise ValueError(f"The manifest has a header but no row. Received: --manifest {path!r}")
    return columns, rows


def _modality_specs(args):
    """[(name, kind, column)] from --image/--text/--audio/--video."""
    specs = []
    for kind in KINDS:
        for item in getattr(args, kind):
            name, _, column = item.partition("=")
            column = column or name
            if not name.isidentifier():
                raise ValueError(
                    f"--{kind} {item!r}: the modality name {name!r} must be a Python "
                    f"identifier; write NAME=COLUMN to name column {column!r} otherwise."
                )
            specs.append((name, kind, column))
    names = [s[0] for s in specs]
    if not specs:
        raise ValueError("No modality given: name columns with --image, --text, --audio or "
                         "--video.")
    if len(set(names)) != len(names):
        raise ValueError(f"Modality names must be distinct. Received: {names}")
    return specs


def _check_columns(columns, wanted, path):
    for flag, column in wanted:
        if column not in columns:
            raise ValueError(
                f"The manifest has no column {column!r} (declared by {flag}). "
                f"Received columns: {columns} in {path!r}"
            )


def _labels(rows, column):
    import numpy as np

    from hgfn_keras.labels import label_from_text

    return np.array([label_from_text(row[column], f"Label column {column!r}, row {i + 2}")
                     for i, row in enumerate(rows)], np.int32)


def _splits(rows, column):
    import numpy as np

    values = np.empty(len(rows), np.int32)
    for i, row in enumerate(rows):
        text = (row[column] or "").strip().lower()
        if text not in SPLIT_NAMES:
            raise ValueError(
                f"Split column {column!r}, row {i + 2}: expected 0/1/2 or "
                f"train/validation/test. Received: {text!r}"
            )
        values[i] = SPLIT_NAMES[text]
    return values


# ---------------------------------------------------------------------- encoders


def _spec(args, kind):
    """The settings that decide a modality's vectors (the cache is keyed by them)."""
    image = {"encoder": args.image_encoder, "weights": args.image_weights,
             "size": args.image_size}
    if kind == "image":
        return image
    if kind == "video":
        return dict(image, frames=args.frames, frame_size=args.frame_size)
    if kind == "text":
        return {"encoder": args.text_encoder, "output_key": args.text_output_key}
    return {"encoder": args.audio_encoder, "sample_rate": args.sample_rate,
            "clip_seconds": args.clip_seconds}


def _build_encoder(args, kind, batch_spec):
    """A function from one batch (matching `batch_spec`) to float32 numpy vectors."""
    import tensorflow as tf

    from hgfn_keras.encoders import AudioEncoder, HubEncoder, ImageEncoder

    if kind in ("image", "video"):
        weights = None if args.image_weights.lower() == "none" else args.image_weights
        layer = ImageEncoder(args.image_encoder, weights=weights, image_size=args.image_size)
    elif kind == "text":
        layer = HubEncoder(args.text_encoder, module_dtype="string",
                           output_key=args.text_output_key)
    else:
        layer = AudioEncoder(args.audio_encoder, sample_rate=args.sample_rate)

    @tf.function(input_signature=[batch_spec])  # one trace for every batch size
    def encode(batch):
        if kind != "video":
            return layer(batch)
        shape = tf.shape(batch)
        flat = tf.reshape(batch, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))
        vectors = layer(flat)
        return tf.reshape(vectors, [shape[0], shape[1], -1])

    return lambda batch: encode(batch).numpy().astype("float32")


def _loader(args, kind):
    """A tf.data map function from a source string to the encoder's input."""
    import tensorflow as tf

    from hgfn_keras.data.media import read_image, read_wav, sample_frames

    if kind == "text":
        return lambda source: source
    if kind == "image":
        return lambda source: read_image(source, args.image_size)
    if kind == "audio":
        samples = int(round(args.clip_seconds * args.sample_rate))
        return lambda source: read_wav(source, args.sample_rate, samples)

    def frames(source):
        def sample(path):
            return sample_frames(path.numpy().decode("utf-8"), args.frames, args.frame_size)

        video = tf.py_function(sample, [source], tf.uint8)
        return tf.ensure_shape(video, [args.frames, args.frame_size, args.frame_size, 3])

    return frames


# ---------------------------------------------------------------------- cache


class _Cache:
    """One `.npy` per encoded item, one `.missing` (holding the reason) per absent item."""

    def __init__(self, root, name, spec):
        digest = hashlib.sha1(
            json.dumps([CACHE_VERSION, spec], sort_keys=True).encode()
        ).hexdigest()[:12]
        self.folder = os.path.join(root, f"{name}-{digest}")
        os.makedirs(self.folder, exist_ok=True)

    def key(self, item_id, source):
        return hashlib.sha1(f"{item_id}\0{source}".encode("utf-8")).hexdigest()[:32]

    def _path(self, key, suffix):
        return os.path.join(self.folder, key + suffix)

    def get(self, key):
        """(vector, None), (None, reason) or None when the item is not cached."""
        import numpy as np

        path = self._path(key, ".npy")
        if os.path.isfile(path):
            return np.load(path), None
        path = self._path(key, ".missing")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return None, f.read()
        return None

    def _write(self, key, suffix, write):
        from hgfn_keras.utils.io_utils import StagedOutput

        with StagedOutput(self._path(key, suffix), "the feature cache's item") as staging, \
                open(staging, "xb") as f:
            write(f)

    def put(self, key, vector):
        import numpy as np

        self._write(key, ".npy", lambda f: np.save(f, vector))

    def put_missing(self, key, reason):
        self._write(key, ".missing", lambda f: f.write(reason.encode("utf-8")))


# ---------------------------------------------------------------------- run


def _log(args, message):
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def _require_opencv(path):
    """Fails the run at once (not item by item) when video files need OpenCV."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        from hgfn_keras.data.media import OPENCV_PACKAGE

        raise ImportError(
            f"Decoding the video file {path!r} needs OpenCV, which is not installed: "
            f"`pip install {OPENCV_PACKAGE}`. Or extract each video's frames into a folder "
            "(e.g. `ffmpeg -i clip.mp4 frames/%05d.jpg`) and list the folders instead."
        ) from None


def _encode_modality(args, name, kind, ids, sources, cache, stack=True):
    """Encodes every row's source (from the cache where it can).

    Returns (features array, mask array, {row: reason}, counts dict); with
    `stack=False`, the vectors stay in the cache (read one at a time here, for
    their shape) and the first item is `(cache keys, vector shape)`.
    """
    import numpy as np
    import tensorflow as tf

    keys = [cache.key(i, s) for i, s in zip(ids, sources)]
    results = [cache.get(k) for k in keys]
    counts = {"from_cache": sum(r is not None for r in results), "encoded": 0}
    pending = []
    for row, (result, source) in enumerate(zip(results, sources)):
        if result is not None:
            continue
        if kind == "text":
            if not source.strip():
                cache.put_missing(keys[row], "empty text")
                continue
        elif not source.strip():
            cache.put_missing(keys[row], "no path given")
            continue
        elif not os.path.exists(source):
            cache.put_missing(keys[row], f"not found: {source}")
            continue
        elif kind == "video" and os.path.isfile(source) and not source.lower().endswith(".gif"):
            _require_opencv(source)
        pending.append(row)
    _log(args, f"{name} ({kind}): {len(ids)} rows, {counts['from_cache']} cached, "
               f"{len(pending)} to encode")
    if pending:
        load = _loader(args, kind)
        dataset = (
            tf.data.Dataset.from_tensor_slices(
                (np.asarray(pending, np.int64), np.asarray([sources[r] for r in pending]))
            )
            .map(lambda row, source: (row, load(source)), num_parallel_calls=tf.data.AUTOTUNE,
                 deterministic=True)
            .ignore_errors(log_warning=False)  # an unreadable file drops out; see below
            .batch(args.batch_size)
            .prefetch(1)
        )
        encode = _build_encoder(args, kind, dataset.element_spec[1])
        started, done = time.time(), 0
        for rows, batch in dataset:
            vectors = encode(batch)
            for row, vector in zip(rows.numpy(), vectors):
                cache.put(keys[row], vector)
            done += len(vectors)
            counts["encoded"] += len(vectors)
            rate = done / max(time.time() - started, 1e-9)
            _log(args, f"{name}: {done}/{len(pending)} encoded ({rate:.1f} items/s)")
        for row in pending:
            if cache.get(keys[row]) is None:
                cache.put_missing(keys[row], f"could not be read or decoded: {sources[row]}")
    if not stack:
        return _cached_rows(name, cache, keys) + (counts,)
    results = [cache.get(k) for k in keys]
    vectors = [r[0] for r in results if r[0] is not None]
    if not vectors:
        raise ValueError(
            f"Modality {name!r}: no row could be encoded (every item is missing or "
            f"unreadable; first: {results[0][1]!r}), so its width is unknown."
        )
    shapes = {v.shape for v in vectors}
    if len(shapes) != 1:
        raise ValueError(f"Modality {name!r}: the cached vectors differ in shape {shapes}; "
                         f"delete {cache.folder!r} and run again.")
    shape = vectors[0].shape
    features = np.zeros((len(ids), *shape), np.float32)
    mask = np.zeros(len(ids), np.float32)
    missing = {}
    for row, (vector, reason) in enumerate(results):
        if vector is None:
            missing[row] = reason
        else:
            features[row], mask[row] = vector, 1.0
    return features, mask, missing, counts


def _cached_rows(name, cache, keys):
    """`((keys, shape), mask, {row: reason})` of a modality's cached items, reading
    one vector at a time (for its shape), never all of them at once."""
    import numpy as np

    mask = np.zeros(len(keys), np.float32)
    missing, shapes = {}, set()
    for row, key in enumerate(keys):
        vector, reason = cache.get(key)
        if vector is None:
            missing[row] = reason
        else:
            mask[row] = 1.0
            shapes.add(vector.shape)
    if not shapes:
        raise ValueError(
            f"Modality {name!r}: no row could be encoded (every item is missing or "
            f"unreadable; first: {missing.get(0)!r}), so its width is unknown.")
    if len(shapes) != 1:
        raise ValueError(f"Modality {name!r}: the cached vectors differ in shape {shapes}; "
                         f"delete {cache.folder!r} and run again.")
    return (keys, shapes.pop()), mask, missing


def _write_shards(args, output, modalities, arrays):
    """Writes the extracted rows as TFRecord shards, a shard's rows at a time.

    `modalities`: `[(name, cache, (keys, shape), mask)]`; `arrays`: the labels
    (`y_<task>`) and, if any, `split`. The rows, splits and order are those that
    `load_npz` gives the npz that `--format npz` would write (`split` array, or
    the 60/20/20 permutation of `--seed`), so both formats train on the same data.
    Only one shard's vectors are in memory at a time, read from the per-item
    cache; an interrupted write leaves no `dataset.json`, and running the command
    again rewrites every shard from the cache (no row twice).
    """
    import numpy as np

    from hgfn_keras.data.dataset import MASK_KEY, SPLITS
    from hgfn_keras.data.npz import permutation_split
    from hgfn_keras.data.tfrecord import HEADER, ShardWriter
    from hgfn_keras.labels import infer_num_classes
    from hgfn_keras.specs import Modality, Task

    if os.path.exists(os.path.join(output, HEADER)):
        raise ValueError(f"--output: {output!r} holds a dataset already ({HEADER}); write to "
                         "a new folder.")
    rows = len(modalities[0][3])
    if "split" in arrays:
        split_rows = {name: np.flatnonzero(arrays["split"] == code)
                      for code, name in enumerate(SPLITS)}
    else:
        split_rows = permutation_split(rows, np.random.default_rng(args.seed))
    specs, order = [], sorted(range(len(modalities)), key=lambda i: modalities[i][0])
    for i in order:  # in load_npz's order: sorted by name
        name, _, (_, shape), _ = modalities[i]
        specs.append(Modality(name, width=int(shape[-1])) if len(shape) == 1 else
                     Modality(name, kind="sequence", width=int(shape[1]), steps=int(shape[0])))
    tasks = [Task(key[2:], num_classes=infer_num_classes(key[2:], arrays[key]))
             for key in sorted(k for k in arrays if k.startswith("y_"))]
    masked = [modalities[i][0] for i in order if not modalities[i][3].all()]
    # A shard's folder left by an interrupted write (no header): its shards are rewritten.
    with ShardWriter(output, specs, tasks, shard_rows=args.shard_rows, masked=masked,
                     name=os.path.basename(os.path.normpath(output))) as writer:
        for split in SPLITS:
            indices = split_rows[split]
            for start in range(0, len(indices), args.shard_rows):
                chunk = indices[start:start + args.shard_rows]
                x = {}
                for i in order:
                    name, cache, (keys, shape), mask = modalities[i]
                    values = np.zeros((len(chunk), *shape), np.float32)
                    for j, row in enumerate(chunk):
                        if mask[row]:
                            values[j] = cache.get(keys[row])[0]
                    x[name] = values
                x[MASK_KEY] = np.stack([modalities[i][3][chunk] for i in order], axis=1)
                writer.write(split, x, {t.name: arrays[f"y_{t.name}"][chunk] for t in tasks})
    return writer.close()


def _crisismmd_manifest(args):
    from hgfn_keras.data.crisismmd import CRISISMMD_TASKS, write_crisismmd_manifest

    path = os.path.splitext(args.output)[0] + ".manifest.tsv"
    count = write_crisismmd_manifest(args.crisismmd, path, image_root=args.crisismmd_root,
                                     label_source=args.label_source)
    print(f"Wrote the CrisisMMD manifest {path} ({count} rows)", flush=True)
    args.manifest = path
    args.text = args.text or ["text"]
    args.image = args.image or ["image"]
    args.labels = args.labels or list(CRISISMMD_TASKS)
    return path


def _check_inside_root(specs, rows, ids, media_root):
    """Refuses a media path that resolves outside `media_root` (`..`, an absolute
    path elsewhere, a symlink leading out): a manifest from elsewhere must not make
    the program read any file the user can read.

    Raises:
        ValueError: naming the first such path (its id, column and where it leads) and
            how many more there are.
    """
    root = os.path.realpath(media_root)
    outside = []
    for _, kind, column in specs:
        if kind == "text":
            continue
        for i, row in enumerate(rows):
            source = (row[column] or "").strip()
            if not source:
                continue
            resolved = os.path.realpath(os.path.join(root, source))
            if os.path.commonpath([root, resolved]) != root:
                outside.append((kind, column, ids[i], source, resolved))
    if outside:
        kind, column, item_id, source, resolved = outside[0]
        more = f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
        raise ValueError(
            f"--{kind}: the path {source!r} of id {item_id!r} (column {column!r}) resolves "
            f"to {resolved}, outside --media-root {root}{more}. Move the media under the "
            "root, or pass --allow-outside-root to read them.")


def _check_writable(folder, flag):
    """Creates `folder` if needed and writes (then removes) a probe file in it.

    Raises:
        ValueError: naming the flag and the folder, when it cannot be created or written.
    """
    import tempfile

    try:
        os.makedirs(folder, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"{flag}: cannot write into the folder {folder!r} ({error.strerror or error}). "
            "Choose a writable folder."
        ) from error


def _atomic_write_npz(path, arrays):
    """`numpy.savez` through a staging file and a rename: no partial npz, ever."""
    import numpy as np

    from hgfn_keras.utils.io_utils import StagedOutput

    with StagedOutput(path, "the feature file") as staging, open(staging, "xb") as f:
        np.savez(f, **arrays)


def run(args):
    """Runs the extraction for parsed `args`; returns a summary dict."""
    from hgfn_keras.utils.io_utils import atomic_write_text

    started = time.time()
    if args.crisismmd:
        _crisismmd_manifest(args)
    columns, rows = read_manifest(args.manifest)
    specs = _modality_specs(args)
    if not args.labels:
        raise ValueError("No task given: name the label columns with --labels.")
    split_column = args.split_column
    if split_column is None and "split" in columns:
        split_column = "split"
    wanted = [("--id-column", args.id_column)]
    wanted += [(f"--{kind}", column) for _, kind, column in specs]
    wanted += [("--labels", column) for column in args.labels]
    if split_column is not None:
        wanted.append(("--split-column", split_column))
    _check_columns(columns, wanted, args.manifest)
    for column in args.labels:
        if not column.isidentifier():
            raise ValueError(f"--labels: the task name {column!r} must be a Python identifier.")

    ids = [(row[args.id_column] or "").strip() for row in rows]
    seen = {}
    for i, item_id in enumerate(ids):
        if not item_id:
            raise ValueError(f"Row {i + 2}: the id column {args.id_column!r} is empty.")
        if item_id in seen:
            raise ValueError(f"Row {i + 2}: id {item_id!r} repeats row {seen[item_id] + 2} "
                             f"(column {args.id_column!r}); ids must be unique.")
        seen[item_id] = i
    arrays = {f"y_{column}": _labels(rows, column) for column in args.labels}
    if split_column is not None:
        arrays["split"] = _splits(rows, split_column)

    media_root = args.media_root or os.path.dirname(os.path.abspath(args.manifest))
    # --crisismmd's manifest is the program's own: its paths are under --crisismmd-root.
    if not args.allow_outside_root and not args.crisismmd:
        _check_inside_root(specs, rows, ids, media_root)
    cache_root = args.cache_dir or os.path.normpath(os.fspath(args.output)) + ".cache"
    shards = args.format == "tfrecord"
    # Before any encoding (which can take hours): a folder that cannot be written is
    # found now, not at the end.
    _check_writable(os.path.dirname(os.path.abspath(os.fspath(args.output))), "--output")
    _check_writable(cache_root, "--cache-dir")
    summary = {"rows": len(rows), "modalities": {}, "output": args.output}
    missing_lines = []
    streamed = []  # --format tfrecord: (name, cache, (keys, shape), mask) per modality
    for name, kind, column in specs:
        sources = [(row[column] or "") for row in rows]
        if kind != "text":
            sources = [os.path.join(media_root, s.strip()) if s.strip() else "" for s in sources]
        cache = _Cache(cache_root, name, dict(_spec(args, kind), kind=kind))
        features, mask, missing, counts = _encode_modality(args, name, kind, ids, sources, cache,
                                                           stack=not shards)
        if shards:
            streamed.append((name, cache, features, mask))
            shape = [len(ids), *features[1]]
        else:
            arrays[f"x_{name}"] = features
            arrays[f"mask_{name}"] = mask
            shape = list(features.shape)
        summary["modalities"][name] = dict(
            counts, kind=kind, shape=shape, present=int(mask.sum()),
            missing=len(missing),
        )
        for row, reason in missing.items():
            missing_lines.append(f"{name}\t{ids[row]}\t{reason}")

    output = os.fspath(args.output)
    if shards:
        data = _write_shards(args, output, streamed, arrays)
        output = os.path.normpath(output)
        summary["splits"] = {split: data.size(split) for split in ("train", "validation", "test")}
    else:
        _atomic_write_npz(output, arrays)
    missing_path = output + ".missing.tsv"
    if missing_lines:
        atomic_write_text(missing_path,
                          "modality\tid\treason\n" + "\n".join(missing_lines) + "\n")
    elif os.path.exists(missing_path):
        os.remove(missing_path)

    print(f"\nWrote {output}: {len(rows)} rows, tasks {list(args.labels)}"
          + (f", split from column {split_column!r}" if split_column else ""))
    for name, info in summary["modalities"].items():
        print(f"  x_{name} {tuple(info['shape'])}: {info['present']} present, "
              f"{info['missing']} missing (masked); {info['encoded']} encoded now, "
              f"{info['from_cache']} from the cache")
    if missing_lines:
        print(f"Missing or unreadable media ({len(missing_lines)}, full list in {missing_path}):")
        for line in missing_lines[:20]:
            modality, item_id, reason = line.split("\t", 2)
            print(f"  {modality} of id {item_id}: {reason}")
        if len(missing_lines) > 20:
            print(f"  ... and {len(missing_lines) - 20} more")
    summary["missing_file"] = missing_path if missing_lines else None
    print(f"Total wall time: {time.time() - started:.1f} s")
    return summary


def main(argv=None):
    return run_main(run, parse_args(argv),
                    interrupted="The items encoded so far are cached; run the same command "
                    "again to resume.")


if __name__ == "__main__":
    sys.exit(main())
