"""Training from sharded TFRecord data of growing size: time per 100k rows and peak RSS.

    python -m benchmarks.data_scale [--sizes 10000 100000] [--fusions cfc hgfn]
        [--steps 100] [--warmup 10] [--batch-size 256] [--shard-rows 10000] [--root DIR]
        [--text]

For each size N, writes N synthetic rows at the paper's widths (image 2,048, text
1,024, metadata 128; the embedded dataset's three tasks; 60/20/20 splits) as
TFRecord shards with `hgfn_keras.data.tfrecord.ShardWriter`, a chunk at a time.
Then, for each fusion, a fresh Python process (so that its peak RSS is its own)
opens the dataset, makes the one streamed pass over the training split
(`StreamedDataset.statistics`: normalisation statistics, N and n_f), builds a
model (the fusion + LSEW), gives it those statistics, and trains it with `fit`
from the shuffled, interleaved, prefetched training pipeline for `--warmup` +
`--steps` steps; the steps after the warm-up are timed. Reported per size and
fusion: the statistics pass and training, each as seconds per 100k rows, and
the process's peak RSS, with ratios to the smallest size (RSS) and to 100k rows
(time, when 100k is among the sizes). The data of a size is deleted before the
next size is written unless `--keep`. 1M rows take about 13 GB of disk.

With `--text`, every row also has a raw-text modality `review`: 20–60 words drawn
from a Zipf law (exponent 1.1) over a vocabulary of 200,000 words. The statistics
pass then also counts its tokens (`TokenCounts`, budget `--token-budget`), the
model gets a `TextEncoder` built from those counts, and the report adds the
token table's entries (it never holds more than the budget), whether the counts
stayed exact, and their error bound.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks.common import CLOTHING_TASKS, report

WIDTHS = {"image": 2048, "text": 1024, "metadata": 128}
CHUNK_ROWS = 2_000
#: The synthetic raw text of `--text`: words, Zipf exponent, tokens per row.
TEXT_WORDS = 200_000
TEXT_EXPONENT = 1.1
TEXT_TOKENS = (20, 60)


def _modalities(text=False):
    from hgfn_keras import Modality

    vectors = [Modality(name, width=width) for name, width in WIDTHS.items()]
    return vectors + ([Modality("review", kind="text")] if text else [])


class ZipfTexts:
    """Rows of `TEXT_TOKENS` words drawn from a Zipf law over `TEXT_WORDS` words.

    Each word is letters only (its rank in base 26), so it is one token.

    >>> import numpy as np
    >>> texts = ZipfTexts()(np.random.default_rng(0), 3)
    >>> len(texts), all(20 <= len(t.split()) <= 60 for t in texts)
    (3, True)
    """

    def __init__(self, words=TEXT_WORDS, exponent=TEXT_EXPONENT):
        import numpy as np

        p = np.arange(1, words + 1, dtype=np.float64) ** -exponent
        self.cumulative = np.cumsum(p / p.sum())
        self.words = np.array([self._word(i) for i in range(words)], object)

    @staticmethod
    def _word(i):
        letters = ""
        while True:
            i, r = divmod(i, 26)
            letters = chr(ord("a") + r) + letters
            if i == 0:
                return "w" + letters

    def __call__(self, rng, rows):
        import numpy as np

        lengths = rng.integers(TEXT_TOKENS[0], TEXT_TOKENS[1] + 1, rows)
        ranks = np.searchsorted(self.cumulative, rng.random(int(lengths.sum())))
        ranks = np.minimum(ranks, len(self.words) - 1)
        words = self.words[ranks]
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return np.array([" ".join(words[a:b]) for a, b in zip(bounds[:-1], bounds[1:])],
                        object)


def generate(folder, rows, shard_rows, seed=0, text=False):
    """Writes `rows` synthetic rows as shards in `folder`; returns (seconds, bytes)."""
    import numpy as np

    from hgfn_keras.data.tfrecord import ShardWriter

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    modalities = _modalities(text)
    texts = ZipfTexts() if text else None
    counts = {"train": int(rows * 0.6), "validation": int(rows * 0.2)}
    counts["test"] = rows - counts["train"] - counts["validation"]
    with ShardWriter(folder, modalities, CLOTHING_TASKS, shard_rows=shard_rows,
                     name=f"synthetic_{rows}") as writer:
        for split, total in counts.items():
            for start in range(0, total, CHUNK_ROWS):
                n = min(CHUNK_ROWS, total - start)
                x = {m.name: rng.standard_normal((n, m.width), dtype=np.float32)
                     for m in modalities if m.kind != "text"}
                if texts is not None:
                    x["review"] = texts(rng, n)
                y = {t.name: rng.integers(0, t.num_classes, n) for t in CLOTHING_TASKS}
                writer.write(split, x, y)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    return time.perf_counter() - started, size


def _peak_rss_mb():
    """This process's peak resident set size (VmHWM), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(folder, fusion, steps, warmup, batch_size, seed=0, token_budget=None):
    """Runs in a fresh process: one statistics pass, then timed training steps."""
    import keras

    from hgfn_keras import build_model
    from hgfn_keras.data.tfrecord import StreamedDataset
    from hgfn_keras.data.token_counts import DEFAULT_TOKEN_BUDGET
    from hgfn_keras.encoders import TextEncoder

    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    data = StreamedDataset(folder, token_budget=token_budget or DEFAULT_TOKEN_BUDGET)
    stats = data.statistics()
    stats_seconds = time.perf_counter() - started
    rss_after_stats = _peak_rss_mb()

    encoders = {name: TextEncoder.from_token_counts(counts, name=f"{name}_encoder")
                for name, counts in stats.token_counts.items()}
    model = build_model(data.modalities, data.tasks, fusion=fusion, mtl="lsew",
                        encoders=encoders)
    for name, layer in getattr(model, "normalization_layers", {}).items():
        moments = stats.modalities[name]
        layer.set_statistics(moments["mean"], moments["variance"], moments["count"])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.set_task_counts(stats.sorted_labels())

    class Clock(keras.callbacks.Callback):
        times = []

        def on_train_batch_end(self, batch, logs=None):
            Clock.times.append(time.perf_counter())

    total = warmup + steps
    train = data.splits_ds("train", batch_size, seed=seed)
    if total * batch_size > data.size("train"):
        train = train.repeat()
    model.fit(train, epochs=1, steps_per_epoch=total, verbose=0, callbacks=[Clock()])
    train_seconds = Clock.times[-1] - Clock.times[warmup - 1]
    return {
        "rows": data.header["rows"], "train_rows": data.size("train"), "fusion": fusion,
        "parameters": model.count_params(),
        "stats_seconds": stats_seconds,
        "stats_s_per_100k_rows": stats_seconds / data.size("train") * 1e5,
        "train_s_per_100k_rows": train_seconds / (steps * batch_size) * 1e5,
        "peak_rss_after_stats_mb": rss_after_stats,
        "peak_rss_mb": _peak_rss_mb(),
        "tokens": {name: {"counted": c.total, "entries": len(c.counts), "budget": c.budget,
                          "exact": c.exact, "error_bound": c.error_bound,
                          "vocabulary": len(encoders[name].vocabulary)}
                   for name, c in stats.token_counts.items()},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--fusions", nargs="+", default=["cfc", "hgfn"])
    parser.add_argument("--steps", type=int, default=100, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--shard-rows", type=int, default=10_000)
    parser.add_argument("--root", default=None, help="where to write the data (default: a "
                        "temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the data")
    parser.add_argument("--text", action="store_true",
                        help="add a raw-text modality (Zipf words, see the module docstring)")
    parser.add_argument("--token-budget", type=int, default=None,
                        help="distinct tokens the statistics pass counts exactly (default: "
                        "hgfn_keras.data.token_counts.DEFAULT_TOKEN_BUDGET)")
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "FUSION"),
                        help=argparse.SUPPRESS)  # the fresh process's entry point
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    if args.measure:
        print(json.dumps(measure(*args.measure, args.steps, args.warmup, args.batch_size,
                                 token_budget=args.token_budget)))
        return None

    root = args.root or tempfile.mkdtemp(prefix="data_scale-")
    results = []
    for size in sorted(args.sizes):
        folder = os.path.join(root, f"rows_{size}" + ("_text" if args.text else ""))
        if os.path.exists(os.path.join(folder, "dataset.json")):
            write_seconds, nbytes = None, sum(os.path.getsize(os.path.join(folder, f))
                                              for f in os.listdir(folder))
        else:
            write_seconds, nbytes = generate(folder, size, args.shard_rows, text=args.text)
        for fusion in args.fusions:
            command = [sys.executable, "-m", "benchmarks.data_scale", "--measure", folder,
                       fusion, "--steps", str(args.steps), "--warmup", str(args.warmup),
                       "--batch-size", str(args.batch_size)]
            if args.token_budget is not None:
                command += ["--token-budget", str(args.token_budget)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"error: the measurement of {size} rows / {fusion} failed:\n"
                                 f"{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result.update({"write_seconds": write_seconds, "disk_gb": nbytes / 1e9})
            results.append(result)
            print(json.dumps(result), flush=True)
        if not args.keep and not args.root:
            shutil.rmtree(folder)
    if not args.keep and not args.root:
        shutil.rmtree(root, ignore_errors=True)

    smallest = min(args.sizes)
    rows = []
    for r in results:
        base = next(b for b in results if b["rows"] == smallest and b["fusion"] == r["fusion"])
        mid = next((b for b in results if b["rows"] == 100_000 and b["fusion"] == r["fusion"]),
                   None)
        r["rss_over_smallest"] = r["peak_rss_mb"] / base["peak_rss_mb"]
        r["train_time_over_100k"] = (None if mid is None else
                                     r["train_s_per_100k_rows"] / mid["train_s_per_100k_rows"])
        r["stats_time_over_100k"] = (None if mid is None else
                                     r["stats_s_per_100k_rows"] / mid["stats_s_per_100k_rows"])
        rows.append([r["rows"], r["fusion"], r["disk_gb"], r["stats_s_per_100k_rows"],
                     r["train_s_per_100k_rows"], r["peak_rss_mb"], r["rss_over_smallest"],
                     "-" if r["train_time_over_100k"] is None else r["train_time_over_100k"]])
    if args.text:
        for r in results:
            for name, t in r["tokens"].items():
                print(f"{r['rows']} rows, {r['fusion']}: {name}: {t['counted']} tokens counted, "
                      f"{t['entries']} held (budget {t['budget']}), "
                      f"{'exact' if t['exact'] else 'error bound ' + str(t['error_bound'])}, "
                      f"vocabulary {t['vocabulary']}")
    return report({"batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup,
                   "widths": WIDTHS, "text": args.text, "results": results},
                  ["rows", "fusion", "disk (GB)", "stats s/100k rows", "train s/100k rows",
                   "peak RSS (MB)", f"RSS / {smallest} rows", "train time / 100k rows"],
                  rows)


if __name__ == "__main__":
    main()
