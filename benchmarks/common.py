"""Shared pieces of the benchmarks: synthetic batches, interleaved timing, reports.

Every benchmark times its variants in interleaved rounds (A, B, C, A, B, C, ...)
after a warm-up, so that the noise of a shared machine hits them alike, and
reports medians and their ratios to a baseline: the ratios are the result,
absolute times depend on the machine and its load.
"""

import json
import statistics
import time

import numpy as np  # noqa: E402

from hgfn_keras import Modality, Task  # noqa: E402
from hgfn_keras.evaluation.report import text_table  # noqa: E402

#: The embedded dataset's fusion widths: two text encoders of 64 and the metadata.
CLOTHING_MODALITIES = [Modality("review", width=64), Modality("title", width=64),
                       Modality("metadata", width=2)]
CLOTHING_TASKS = [Task("recommended", 2), Task("rating", 5), Task("department", 6)]
#: The paper's feature widths: InceptionV3 image features (2,048) and ELMo text (1,024).
PAPER_MODALITIES = [Modality("image", width=2048), Modality("text", width=1024)]
WIDTHS = {"clothing": CLOTHING_MODALITIES, "paper": PAPER_MODALITIES}


def setting_value(text):
    """A `--set` value: JSON when it parses (numbers, true/false/null), else the string.

    >>> setting_value("0.3"), setting_value("true"), setting_value("paper")
    (0.3, True, 'paper')
    """
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_settings(parser, items):
    """The `--set FIELD=VALUE` options `items` as `{field: value}`; a malformed one is
    refused through `parser.error`."""
    settings = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep or not field.strip():
            parser.error(f"--set expects FIELD=VALUE. Received: {item!r}")
        settings[field.strip()] = setting_value(value.strip())
    return settings


def thread_options(parser):
    """Adds `--intra-op-threads` / `--inter-op-threads` to a benchmark's parser."""
    parser.add_argument("--intra-op-threads", type=int, default=None,
                        help="TensorFlow's intra-op threads (default: TensorFlow's choice)")
    parser.add_argument("--inter-op-threads", type=int, default=None,
                        help="TensorFlow's inter-op threads (default: TensorFlow's choice)")


def apply_threads(args):
    """Sets TensorFlow's thread pools from `thread_options`' arguments (before any op)."""
    import tensorflow as tf

    if args.intra_op_threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads is not None:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads() or "default",
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "default"}


def synthetic_batch(modalities, tasks, batch_size, seed=0):
    """Random float32 inputs (all modalities present) and labels for `batch_size` rows."""
    rng = np.random.default_rng(seed)
    x = {m.name: rng.normal(size=(batch_size, m.width)).astype("float32") for m in modalities}
    x["modality_mask"] = np.ones((batch_size, len(modalities)), "float32")
    y = {t.name: rng.integers(0, t.num_classes, batch_size).astype("int32") for t in tasks}
    return x, y


def interleaved_medians(functions, repeats, warmup=3):
    """Median seconds per call of each `{name: fn}`, timed in interleaved rounds.

    `fn()` runs one timed sample and returns how many units it did (steps,
    requests); the sample's time is divided by that.
    """
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            units = fn()
            samples[name].append((time.perf_counter() - start) / units)
    return {name: statistics.median(times) for name, times in samples.items()}, samples


def report(result, columns, rows):
    """Prints `result` as JSON, then `rows` (lists of cells) as a table under `columns`."""
    print(json.dumps(result, indent=2))
    print()
    print(text_table(columns, [[_cell(v) for v in row] for row in rows]))
    return result


def _cell(value):
    return f"{value:.3f}" if isinstance(value, float) else str(value)
