"""Serving throughput and latency of the exported SavedModel, HGFN vs CFC.

    python -m benchmarks.serving [--requests 200] [--batch-sizes 1 256]
        [--intra-op-threads N] [--inter-op-threads N]

Builds HGFN+DMTL and CFC+LSEW on the embedded dataset's fusion widths as vector
modalities (the text encoders' tokenisation is left out: it is the same for
both fusions), exports each with `hgfn_keras.serving.export.export_saved_model`, loads
it with `tf.saved_model.load` and calls its `serving_default` signature, in
process, in interleaved rounds of one request per model and batch size. Reports
per batch size the p50 and p99 latency of a request and the throughput
(rows / s at the median latency), with HGFN / CFC ratios. TF Serving adds its
RPC and batching on top; the model's own cost is what is compared here.
"""

import argparse
import tempfile
import time

import numpy as np
import tensorflow as tf

from benchmarks.common import (
    CLOTHING_MODALITIES,
    CLOTHING_TASKS,
    apply_threads,
    report,
    synthetic_batch,
    thread_options,
)
from benchmarks.step_time import make_model
from hgfn_keras.serving.export import export_saved_model

MODELS = {"hgfn": "hgfn+dmtl", "cfc": "cfc+lsew"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    thread_options(parser)
    args = parser.parse_args(argv)
    threads = apply_threads(args)

    signatures = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, variant in MODELS.items():
            path = export_saved_model(make_model(variant), f"{folder}/{name}", version=1)
            signatures[name] = tf.saved_model.load(path).signatures["serving_default"]
        feeds = {}
        for batch in args.batch_sizes:
            x, _ = synthetic_batch(CLOTHING_MODALITIES, CLOTHING_TASKS, batch)
            feeds[batch] = {k: tf.constant(v) for k, v in x.items()}
        cases = [(name, batch) for batch in args.batch_sizes for name in signatures]
        for name, batch in cases:  # warm-up
            for _ in range(10):
                signatures[name](**feeds[batch])
        latencies = {case: [] for case in cases}
        for _ in range(args.requests):
            for name, batch in cases:  # interleaved
                start = time.perf_counter()
                outputs = signatures[name](**feeds[batch])
                _ = [v.numpy() for v in outputs.values()]  # the answer is in host memory
                latencies[(name, batch)].append(time.perf_counter() - start)

    stats = {}
    for (name, batch), values in latencies.items():
        ms = np.asarray(values) * 1e3
        p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
        stats[f"{name}@{batch}"] = {"p50_ms": round(float(p50), 3),
                                    "p99_ms": round(float(p99), 3),
                                    "rows_per_s": round(float(batch / (p50 / 1e3)), 1)}
    result = {"requests": args.requests, "threads": threads, "cases": stats, "hgfn_over_cfc_p50": {
        str(b): round(stats[f"hgfn@{b}"]["p50_ms"] / stats[f"cfc@{b}"]["p50_ms"], 3)
        for b in args.batch_sizes}}
    rows = []
    for batch in args.batch_sizes:
        for name in MODELS:
            s = stats[f"{name}@{batch}"]
            rows.append([name, batch, s["p50_ms"], s["p99_ms"], s["rows_per_s"],
                         s["p50_ms"] / stats[f"cfc@{batch}"]["p50_ms"]])
    return report(result, ["fusion", "batch", "p50 (ms)", "p99 (ms)", "rows/s (p50)",
                           "p50 / CFC"], rows)


if __name__ == "__main__":
    main()
