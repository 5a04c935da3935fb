"""Learning curves: quality against the number of training rows, pairs and peers alike.

    python -m benchmarks.learning_curve --dataset npz:../shared/data/multilabel/scene.npz \\
        --sizes 100,300,1000,all --seeds 3 --pairs default,cfc+lsew \\
        --peers lr,rf,gb,knn,mlp --output-dir runs/learning_curve/scene

For each seed 0..K-1 the dataset is loaded with that seed (as `benchmarks.quality`
loads it: a file's own `split`, or the seeded 60/20/20 split), and for each size
its **training split only** is subsampled to that many rows (`subsample_training`):
stratified on one task's labels (the task whose least frequent class is rarest in
the training split, a missing label counting as a class of its own), drawn from
`default_rng([seed, size])`. The validation and test splits stay as loaded, the
same rows for every size of a seed. `all` is the whole training split; a size of
at least the training split's rows is left out (it would be `all` again).

Every pair and peer is then trained once on the subsample and scored on both the
validation and the test split:

- a pair is `fusion+mtl` or `default` (the package's `TrainConfig` defaults), with
  optional `@FIELD=VALUE` settings (`hgfn+dmtl@preset=paper`,
  `default@epochs=30`), read by `benchmarks.robustness.pair_config`; it is trained
  and scored by `benchmarks.quality.train_and_score` (the recipe,
  `hgfn_keras.recipe.train_and_evaluate`, then the reloaded `model.keras`);
- a peer (`benchmarks/peers.py`: lr, rf, gb, knn, mlp, tfidf) is fit on the same
  subsample's features, standardised on its rows (`numeric_features`), by
  `benchmarks.peers.run_peer_splits`; `tfidf` runs only on data with text
  modalities (the embedded `clothing` reviews), as in `benchmarks.quality`.

Writes, after every size (a run cut short keeps what it finished):

- `DIR/learning_curve.json` (strict JSON): `{"rows": [{"row", "kind" (pair or
  peer), "size" (training rows), "size_label" ("100" or "all"), "seed", "split",
  "mean_f1", "mean_map", "mean_f1_at_val_thr"}, ...], "subsamples": [...], the run
  info (the package version and git commit, `benchmarks.quality.package_info`)}`;
- `DIR/learning_curve.md`: per split, mean ± std over seeds of mean F1 and of MAP
  per row and size, and the best peer per size;
- `DIR/learning_curve.png` (with matplotlib): F1 and MAP against training rows
  (log scale), one line per pair and peer, validation and test.
"""

import argparse
import dataclasses
import datetime
import math
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.peers import PEER_NAMES, has_text, numeric_features, run_peer_splits  # noqa: E402
from benchmarks.quality import _list, package_info, train_and_score  # noqa: E402
from benchmarks.robustness import pair_config  # noqa: E402

DEFAULT_PAIRS = "default,cfc+lsew"
DEFAULT_PEERS = "lr,rf,gb,knn,mlp"
DEFAULT_SIZES = "100,300,1000,all"
SPLITS = ("validation", "test")
#: The smallest subsample: every class of a rare task needs a chance to appear.
MIN_SIZE = 10
ALL = "all"


# ---------------------------------------------------------------------------- subsample


def stratification_task(tasks, y_train):
    """The task to stratify on: the one whose least frequent label value (a missing
    label, -1, counting as a value) is rarest in `y_train`; None without tasks."""
    best, best_count = None, None
    for task in tasks:
        _, counts = np.unique(np.asarray(y_train[task.name]), return_counts=True)
        if len(counts) < 2:
            continue  # one value only: nothing to stratify
        if best_count is None or counts.min() < best_count:
            best, best_count = task.name, int(counts.min())
    return best


def subsample_indices(labels, size, seed):
    """`size` row indices of `labels`' rows, stratified on `labels` where possible.

    Values seen fewer than twice are pooled (stratification needs two rows of
    each); if the split still cannot be stratified (more values than rows to
    draw), the rows are drawn at random. The draw follows `default_rng(seed)`.

    Returns:
        `(sorted indices, stratified: bool)`.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    random_state = int(np.random.default_rng(seed).integers(2**31 - 1))
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    key = np.where(counts[inverse] < 2, -1, inverse)
    try:
        kept, _ = train_test_split(rows, train_size=size, stratify=key,
                                   random_state=random_state)
        return np.sort(kept), True
    except ValueError:  # e.g. more label values than rows to draw
        kept, _ = train_test_split(rows, train_size=size, random_state=random_state)
        return np.sort(kept), False


def subsample_training(dataset, size, seed):
    """`dataset` with its training split cut to `size` rows (validation, test kept).

    Stratified on `stratification_task`'s labels (`subsample_indices`), drawn
    from `default_rng([seed, size])`; `size` None keeps every row.

    Returns:
        `(dataset, info)`: a `MultimodalDataset` sharing the validation and test
        arrays, and `{"size", "stratified_on", "stratified"}`.
    """
    x, y = dataset.splits["train"]
    rows = dataset.size("train")
    if size is None or size >= rows:
        return dataset, {"size": rows, "stratified_on": None, "stratified": None}
    task = stratification_task(dataset.tasks, y)
    labels = y[task] if task is not None else np.zeros(rows, int)
    keep, stratified = subsample_indices(labels, size, [seed, size])
    train = ({k: np.asarray(v)[keep] for k, v in x.items()},
             {k: np.asarray(v)[keep] for k, v in y.items()})
    subset = dataclasses.replace(
        dataset, splits=dict(dataset.splits, train=train),
        description=f"{dataset.description} (training split: {size} of {rows} rows)")
    return subset, {"size": int(size), "stratified_on": task,
                    "stratified": bool(stratified and task is not None)}


# ------------------------------------------------------------------------------ summary


def _finite(values):
    return [v for v in values if v is not None and math.isfinite(v)]


def _mean(values):
    kept = _finite(values)
    return statistics.mean(kept) if kept else math.nan


def _std(values):
    kept = _finite(values)
    return statistics.stdev(kept) if len(kept) > 1 else math.nan


def curve(rows, name, split, metric):
    """`[(size, mean, std, n)]` of row `name` on `split`, by size."""
    sizes = sorted({r["size"] for r in rows if r["row"] == name and r["split"] == split})
    points = []
    for size in sizes:
        values = [r[metric] for r in rows
                  if r["row"] == name and r["split"] == split and r["size"] == size]
        points.append((size, _mean(values), _std(values), len(values)))
    return points


def size_labels(rows):
    """`{size: its label}` ("100", or "all (2,404)")."""
    labels = {}
    for r in rows:
        labels[r["size"]] = (f"{ALL} ({r['size']:,})" if r["size_label"] == ALL
                             else r["size_label"])
    return labels


def table(rows, names, peers, split):
    """A markdown table of `split`: mean F1 ± std / MAP ± std per row and size,
    then the best peer per size (on each metric)."""
    labels = size_labels(rows)
    sizes = sorted(labels)

    def cell(points, size):
        found = [p for p in points if p[0] == size]
        if not found:
            return None
        _, mean, std, n = found[0]
        return mean, (f"{mean:.3f}" + (f" ± {std:.3f}" if n > 1 and math.isfinite(std) else ""))

    lines = ["| row | " + " | ".join(labels[s] for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    means = {}
    for name in names:
        f1 = curve(rows, name, split, "mean_f1")
        ap = curve(rows, name, split, "mean_map")
        cells = []
        for size in sizes:
            a, b = cell(f1, size), cell(ap, size)
            if a is None:
                cells.append("–")
                continue
            means[name, size] = (a[0], b[0])
            cells.append(f"{a[1]} / {b[1]}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if peers:
        cells = []
        for size in sizes:
            scored = [(p, means[p, size]) for p in peers if (p, size) in means]
            if not scored:
                cells.append("–")
                continue
            f1_peer = max(scored, key=lambda s: _key(s[1][0]))
            map_peer = max(scored, key=lambda s: _key(s[1][1]))
            cells.append(f"{f1_peer[1][0]:.3f} ({f1_peer[0]}) / "
                         f"{map_peer[1][1]:.3f} ({map_peer[0]})")
        lines.append("| best peer | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _key(value):
    return value if math.isfinite(value) else -math.inf


def plot(rows, names, path):
    """F1 and MAP against training rows (log x), per split, one line per row."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot written", file=sys.stderr)
        return None
    ticks = sorted({r["size"] for r in rows})
    fig, axes = plt.subplots(len(SPLITS), 2, figsize=(11, 4 * len(SPLITS)), squeeze=False)
    for i, split in enumerate(SPLITS):
        for j, (metric, title) in enumerate((("mean_f1", "mean F1"), ("mean_map", "MAP"))):
            axis = axes[i][j]
            for name in names:
                points = curve(rows, name, split, metric)
                if not points:
                    continue
                sizes, means, stds, _ = zip(*points)
                stds = [s if math.isfinite(s) else 0.0 for s in stds]
                axis.errorbar(sizes, means, yerr=stds, marker="o", capsize=3, label=name,
                              linestyle="--" if name in PEER_NAMES else "-")
            axis.set_xscale("log")
            axis.set_xticks(ticks, [str(t) for t in ticks])
            axis.minorticks_off()
            axis.set_xlabel("training rows")
            axis.set_ylabel(f"{title} ({split})")
            axis.grid(alpha=0.3)
    axes[0][1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result, output_dir):
    """Writes learning_curve.json, .md and .png; returns the markdown text."""
    from hgfn_keras.utils.io_utils import atomic_write_json, atomic_write_text, strict_json_value

    atomic_write_json(os.path.join(output_dir, "learning_curve.json"),
                      strict_json_value(result, "learning_curve.json"))
    rows, names = result["rows"], result["pairs"] + result["peers"]
    seeds = sorted({r["seed"] for r in rows})
    text = [f"# Learning curve: {result['dataset']}", "",
            f"{result['description']}", "",
            f"`{result['command']}`", "",
            (f"Seeds {seeds}; package {result['package']['version']} at "
             f"{result['package']['git_commit']}. Each cell: mean F1 ± std over seeds / "
             "MAP ± std; columns: training rows (the validation and test splits are whole)."),
            ""]
    for split in SPLITS:
        text += [f"## {split} split ({result['split_rows'][split]} rows)", "",
                 table(rows, names, result["peers"], split), ""]
    text = "\n".join(text)
    atomic_write_text(os.path.join(output_dir, "learning_curve.md"), text + "\n")
    plot(rows, names, os.path.join(output_dir, "learning_curve.png"))
    return text


# ---------------------------------------------------------------------------------- CLI


def parse_sizes(text):
    """`--sizes` as a list of ints and/or `"all"`, in ascending order ("all" last).

    >>> parse_sizes("1000,100,all")
    [100, 1000, 'all']
    """
    items = [s.strip().lower() for s in str(text).split(",") if s.strip()]
    sizes = []
    for item in items:
        if item == ALL:
            sizes.append(ALL)
            continue
        try:
            value = int(item)
        except ValueError:
            value = None
        if value is None or value < MIN_SIZE:
            raise ValueError(f"--sizes: expected integers >= {MIN_SIZE} or '{ALL}', "
                             f"comma-separated. Received: {text!r} ({item!r})")
        sizes.append(value)
    if not sizes:
        raise ValueError(f"--sizes: expected at least one size. Received: {text!r}")
    sizes = list(dict.fromkeys(sizes))
    return sorted(s for s in sizes if s != ALL) + ([ALL] if ALL in sizes else [])


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning_curve",
                                description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="clothing", help="'clothing' or 'npz:PATH'. "
                   "Default: %(default)s")
    p.add_argument("--sizes", default=DEFAULT_SIZES,
                   help=f"Comma-separated training rows (integers >= {MIN_SIZE}) and/or "
                   f"'{ALL}'. Default: %(default)s")
    p.add_argument("--seeds", type=int, default=3, help="Seeds 0..K-1. Default: %(default)s")
    p.add_argument("--pairs", default=DEFAULT_PAIRS,
                   help="Comma-separated <fusion>+<mtl> pairs or 'default', each optionally "
                   "with @FIELD=VALUE settings ('' for none). Default: %(default)s")
    p.add_argument("--peers", default=DEFAULT_PEERS,
                   help=f"Comma-separated, from {list(PEER_NAMES)} ('' for none); tfidf only "
                   "runs on data with text modalities. Default: %(default)s")
    p.add_argument("--peer-threads", type=int, default=1,
                   help="OpenMP threads of the scikit-learn peers. Default: %(default)s")
    p.add_argument("--output-dir", required=True,
                   help="Where learning_curve.json/.md/.png and the runs go.")
    args = p.parse_args(argv)
    try:
        args.sizes = parse_sizes(args.sizes)
        args.peer_list = _list(args.peers, PEER_NAMES, "peers")
    except ValueError as error:
        p.error(str(error))
    if args.dataset.startswith("tfrecord:"):
        p.error("--dataset: a learning curve subsamples an in-memory training split; use "
                f"'clothing' or 'npz:PATH'. Received: {args.dataset!r}")
    args.pair_list = list(dict.fromkeys(s.strip() for s in args.pairs.split(",") if s.strip()))
    for pair in args.pair_list:  # every config checked before the first run
        try:
            pair_config(pair, 0, args.dataset, {})
        except KeyError as error:  # an unknown fusion or strategy
            from hgfn_keras import FUSIONS, MTL_CHOICES

            p.error(f"--pairs: {pair!r}: unknown fusion or strategy {error}. Fusions: "
                    f"{sorted(FUSIONS)}; task weightings: {sorted(MTL_CHOICES)}.")
        except (TypeError, ValueError) as error:
            p.error(f"--pairs: {pair!r}: {error}")
    if not args.pair_list and not args.peer_list:
        p.error("--pairs and --peers are both empty: nothing to run.")
    if args.seeds < 1:
        p.error(f"--seeds must be positive. Received: {args.seeds}")
    if args.peer_threads < 1:
        p.error(f"--peer-threads must be positive. Received: {args.peer_threads}")
    return args


def _rows(name, kind, info, label, seed, scored, extra=None):
    for split in SPLITS:
        mean = scored[split]["mean"]
        decision = scored[split].get("decision", {}).get("mean", {})
        yield {"row": name, "kind": kind, "size": info["size"], "size_label": label,
               "seed": seed, "split": split, "mean_f1": float(mean["f1"]),
               "mean_map": float(mean["map"]),
               "mean_f1_at_val_thr": float(decision.get("f1", math.nan)), **(extra or {})}


def main(argv=None):
    args = parse_args(argv)
    import sklearn

    from hgfn_keras.data import load_dataset

    os.makedirs(args.output_dir, exist_ok=True)
    started = time.time()
    result = {"benchmark": "learning_curve", "dataset": args.dataset,
              "sizes": [str(s) for s in args.sizes], "seeds": list(range(args.seeds)),
              "pairs": args.pair_list, "peers": [], "skipped": {},
              "package": package_info(), "sklearn_version": sklearn.__version__,
              "python": sys.version.split()[0],
              "command": "python -m benchmarks.learning_curve " + " ".join(
                  sys.argv[1:] if argv is None else list(argv)),
              "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
              "rows": [], "subsamples": [], "runs": []}
    for seed in result["seeds"]:
        dataset = load_dataset(args.dataset, seed=seed)
        peers = [p for p in args.peer_list if p != "tfidf" or has_text(dataset)]
        if "tfidf" in args.peer_list and "tfidf" not in peers:
            result["skipped"]["tfidf"] = "the dataset has no text modality"
        result.update(peers=peers, dataset_name=dataset.name,
                      description=dataset.description,
                      split_rows={s: dataset.size(s) for s in ("train", *SPLITS)})
        rows = dataset.size("train")
        for size in args.sizes:
            if size != ALL and size >= rows:
                note = f"at least the training split's {rows} rows (seed {seed}): see '{ALL}'"
                result["skipped"][f"size {size}"] = note
                print(f"size {size}: {note}; left out", flush=True)
                continue
            label = str(size)
            subset, info = subsample_training(dataset, None if size == ALL else size, seed)
            result["subsamples"].append(dict(info, seed=seed, size_label=label))
            numeric = numeric_features(subset, ("train", *SPLITS))
            for peer in peers:
                tick = time.time()
                scored = run_peer_splits(peer, subset, numeric, SPLITS, seed)
                _record(result, peer, "peer", info, label, seed, scored, time.time() - tick)
            for pair in args.pair_list:
                config, _ = pair_config(pair, seed, args.dataset, {})
                tick = time.time()
                scored = train_and_score(
                    config, subset,
                    os.path.join(args.output_dir, "runs", pair, f"size{label}", f"seed{seed}"),
                    splits=SPLITS)
                _record(result, pair, "pair", info, label, seed, scored, time.time() - tick,
                        epochs=scored["run"].get("epochs_run"))
            result["wall_seconds"] = time.time() - started
            write_outputs(result, args.output_dir)
    result["wall_seconds"] = time.time() - started
    text = write_outputs(result, args.output_dir)
    print()
    print(text)
    print(f"\nWrote {args.output_dir}/learning_curve.json, .md and .png; total wall time "
          f"{result['wall_seconds']:.0f} s", flush=True)
    return result


def _record(result, name, kind, info, label, seed, scored, seconds, epochs=None):
    result["rows"].extend(_rows(name, kind, info, label, seed, scored))
    result["runs"].append({"row": name, "kind": kind, "size": info["size"], "seed": seed,
                           "wall_seconds": round(seconds, 1), "epochs_run": epochs})
    f1 = {s: scored[s]["mean"] for s in SPLITS}
    print(f"seed {seed} size {label:>5s} {name:12s} "
          + "  ".join(f"{s} F1 {f1[s]['f1']:.3f} MAP {f1[s]['map']:.3f}" for s in SPLITS)
          + f"  ({seconds:.1f} s" + (f", {epochs} epochs)" if epochs else ")"), flush=True)


if __name__ == "__main__":
    main()
