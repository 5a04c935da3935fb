"""Quality against scikit-learn: the package's models and simple peers on the same split.

    python -m benchmarks.quality --dataset npz:../shared/data/multilabel/scene.npz \\
        --seeds 3 --split validation --output-dir runs/quality/scene

For each seed 0..K-1 the dataset is loaded with that seed (the split, and for
`--limit` the subset, follow the seed), the scikit-learn peers
(`benchmarks/peers.py`) are fit on its training split and each fusion+strategy
pair is trained with the package's defaults (`train_pair`:
`hgfn_keras.recipe.train_and_evaluate` of a `TrainConfig`); all of them are
scored on the same split (`--split`, test by default) by the same code
(`benchmarks/scoring.py`, `hgfn_keras.evaluation.metrics.multitask_metrics`). Choose
defaults on `--split validation`; the test split is for reporting.

Decision thresholds (issue 11, part 4): beside the 0.5 numbers, every row (pair
and peer alike) also predicts the validation split, each binary task's threshold
is chosen there on F1 (`hgfn_keras.evaluation.decision_thresholds.choose_thresholds`) and
F1 and Hamming loss are scored at it on the scored split: the columns "F1 @ val
thr" and "HL @ val thr" (a run's `metrics.decision` in quality.json). Nothing is
chosen on the test split; with `--split validation` the thresholds are chosen and
scored on the same rows, an optimistic number.

Writes (`benchmarks/quality_report.py`) `DIR/quality.json` (every run's per-task
and mean metrics, wall times, seeds, the package version and git commit; strict
JSON: an undefined number is `null` with its reason beside it under
`<key>_undefined`), `DIR/quality.md` (mean ± std over seeds of mean F1 / Hamming
loss / MAP per row with the best peer per column in bold, each pair's standing
against the best peer, and per-task tables) and, for the pairs, each run's files
under `DIR/runs/<pair>/seed<k>/` (the recipe's `metrics.json`, `model.keras`, ...).
Prints a line per finished run and the table at the end.
"""

import argparse
import datetime
import math
import os
import subprocess
import sys
import time

import numpy as np  # noqa: E402

from benchmarks.common import parse_settings  # noqa: E402
from benchmarks.peers import (DEFAULT_PEERS, PEER_NAMES, has_text,  # noqa: E402
                              numeric_features, run_peer)
from benchmarks.quality_report import (main_table, standing_lines, summarise,  # noqa: E402
                                       write_outputs)
from benchmarks.scoring import score_splits  # noqa: E402

DEFAULT_PAIRS = "hgfn+dmtl,hgfn+lsew,cfc+lsew"


def train_pair(dataset_spec, fusion, mtl, seed, output_dir, split="test", limit=None,
               overrides=None):
    """Trains one fusion+strategy pair with the package's defaults; its metrics on `split`.

    The recipe is the library's (`hgfn_keras.recipe.train_and_evaluate` of a
    `TrainConfig` with only the dataset, the fusion, the strategy, the seed and
    the limit set, and the `overrides` (`{field: value}`, `--set`): every other
    setting is the config's default), seeded as
    `python -m training.train` seeds it. The model the recipe saved
    (`model.keras`) is reloaded and scored on `split` of the same dataset by
    `score`, the code that scores the peers; on the test split the recipe's own
    numbers are kept beside them as a check of that reload.

    Returns:
        `score`'s dict on `split` with its `"decision"` (`decision_score`:
        thresholds from the validation split), plus `"run"`: the recipe's notes
        (epochs run, fit seconds).
    """
    from hgfn_keras import TrainConfig
    from hgfn_keras.data import load_dataset

    config = TrainConfig(dataset=dataset_spec, fusion=fusion, mtl=mtl, seed=seed, limit=limit,
                         **(overrides or {}))
    dataset = load_dataset(config.dataset, seed=config.seed, limit=config.limit,
                           num_classes=config.num_classes)
    scored = train_and_score(config, dataset, output_dir, splits=(split,))
    return dict(scored[split], run=scored["run"])


def train_and_score(config, dataset, output_dir, splits=("test",)):
    """Trains `config` on `dataset` (`recipe.train_and_evaluate`, seeded as the
    training CLI seeds it) and scores the reloaded `model.keras` on each of `splits`.

    `train_pair`'s training and scoring, for a config and a dataset the caller
    built (e.g. `benchmarks.learning_curve`'s subsampled training splits): one
    training, one scoring per split, every one with its `"decision"` entry
    (thresholds chosen on the validation split).

    Returns:
        `{split: score's dict with "decision"}` plus `"run"`: the recipe's notes
        (epochs run, fit seconds; `recipe_test_mean` when the test split is scored).
    """
    import keras

    from hgfn_keras import recipe
    from hgfn_keras.data.dataset import as_tf_dataset

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    own = recipe.train_and_evaluate(config, dataset, output_dir, verbose=0).metrics

    model = keras.saving.load_model(os.path.join(output_dir, "model.keras"))
    predicted = {name: model.predict(as_tf_dataset(dataset.splits[name][0], None, 512),
                                     verbose=0)
                 for name in dict.fromkeys(("validation", *splits))}
    labels = {name: dataset.splits[name][1] for name in predicted}
    result = dict(score_splits(dataset.tasks, labels, predicted, splits),
                  run=dict(own["run"]))
    if "test" in splits:
        result["run"]["recipe_test_mean"] = own["mean"]
    return result


# --------------------------------------------------------------------------------- CLI


def _list(text, allowed, what):
    items = [s.strip().lower() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        raise ValueError(f"--{what}: unknown {bad}. Choose from {list(allowed)}.")
    return list(dict.fromkeys(items))


def parse_args(argv=None):
    from hgfn_keras import FUSIONS, MTL_CHOICES

    p = argparse.ArgumentParser(prog="python -m benchmarks.quality",
                                description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="clothing", help="'clothing' or 'npz:PATH'. "
                   "Default: %(default)s")
    p.add_argument("--seeds", type=int, default=3, help="Seeds 0..K-1. Default: %(default)s")
    p.add_argument("--pairs", default=DEFAULT_PAIRS,
                   help="Comma-separated <fusion>+<mtl> pairs ('' for none). "
                   "Default: %(default)s")
    p.add_argument("--peers", default=DEFAULT_PEERS,
                   help=f"Comma-separated, from {list(PEER_NAMES)} ('' for none); tfidf only "
                   "runs on data with text modalities. Default: all")
    p.add_argument("--limit", type=int, default=None,
                   help="Use a random subset of this many rows (drawn per seed; for an npz "
                   "file a subset file is written under DIR/data/).")
    p.add_argument("--split", default="test", choices=["test", "validation"],
                   help="The split every row is scored on. Choose defaults on validation; "
                   "report test. Default: %(default)s")
    p.add_argument("--peer-threads", type=int, default=1,
                   help="OpenMP threads of the scikit-learn peers (gradient boosting, kNN); "
                   "1 keeps them fast on a machine shared with other jobs. "
                   "Default: %(default)s")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="A TrainConfig setting for every pair (repeatable), e.g. --set "
                   "epochs=30; a value is read as JSON where it parses (numbers, true/false).")
    p.add_argument("--output-dir", required=True, help="Where quality.json/.md go.")
    args = p.parse_args(argv)
    args.overrides = parse_settings(p, args.set)
    owned = sorted({"dataset", "fusion", "mtl", "seed", "limit"} & set(args.overrides))
    if owned:
        p.error(f"--set: {owned} come from --dataset, --pairs, --seeds and --limit.")
    try:
        from hgfn_keras import TrainConfig

        TrainConfig(**args.overrides)  # a bad field or value is refused before any run
    except (TypeError, ValueError) as error:
        p.error(f"--set: {error}")
    try:
        pairs = _list(args.pairs, [f"{f}+{m}" for f in FUSIONS for m in MTL_CHOICES],
                      "pairs")
        args.peer_list = _list(args.peers, PEER_NAMES, "peers")
    except ValueError as error:
        p.error(str(error))
    args.pair_list = [tuple(pair.split("+")) for pair in pairs]
    if not args.pair_list and not args.peer_list:
        p.error("--pairs and --peers are both empty: nothing to run.")
    if args.peer_threads < 1:
        p.error(f"--peer-threads must be positive. Received: {args.peer_threads}")
    if args.seeds < 1:
        p.error(f"--seeds must be positive. Received: {args.seeds}")
    if args.limit is not None and args.limit < 10:
        p.error(f"--limit must be at least 10. Received: {args.limit}")
    return args


def limited_spec(spec, limit, seed, directory):
    """The dataset spec to train on: `spec`, or for an npz file with `limit`, a subset file.

    `load_dataset` takes `limit` for the embedded dataset only; for `npz:PATH` a
    random subset of `limit` rows (drawn from `default_rng(seed)`, `split` kept)
    is written to `directory/seed<k>/<same name>.npz` so the dataset's name stays.

    Returns:
        `(spec, limit)` to hand to `load_dataset` and to the recipe.
    """
    if limit is None or not spec.startswith("npz:"):
        return spec, limit
    path = spec[len("npz:"):]
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    rows = len(next(iter(arrays.values())))
    keep = np.sort(np.random.default_rng(seed).permutation(rows)[:limit])
    target = os.path.join(directory, f"seed{seed}", os.path.basename(path))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    np.savez(target, **{k: v[keep] for k, v in arrays.items()})
    return f"npz:{target}", None


def _git(*args):
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=20,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def package_info():
    import hgfn_keras

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"version": hgfn_keras.__version__, "git_commit": commit,
            "git_dirty": bool(status) if status is not None else None}


def _progress(index, total, row, seed, metrics, seconds, extra=""):
    mean = metrics["mean"]
    decision = metrics.get("decision", {}).get("mean", {})
    at_threshold = (f"  F1 @ val thr {decision['f1']:.3f}  HL @ val thr "
                    f"{decision['hamming_loss']:.4f}" if decision else "")
    print(f"[{index}/{total}] seed {seed} {row:10s} F1 {mean['f1']:.3f}  "
          f"HL {mean['hamming_loss']:.4f}  MAP {mean['map']:.3f}{at_threshold}  "
          f"({seconds:.1f} s){extra}", flush=True)


def main(argv=None):
    args = parse_args(argv)
    import sklearn

    from hgfn_keras.data import load_dataset

    os.makedirs(args.output_dir, exist_ok=True)
    started = time.time()
    seeds = list(range(args.seeds))
    pair_rows = [f"{f}+{m}" for f, m in args.pair_list]
    runs, dataset, skipped = [], None, {}
    total = None
    index = 0
    for seed in seeds:
        spec, limit = limited_spec(args.dataset, args.limit, seed,
                                   os.path.join(args.output_dir, "data"))
        dataset = load_dataset(spec, seed=seed, limit=limit)
        peers = [p for p in args.peer_list if p != "tfidf" or has_text(dataset)]
        if "tfidf" in args.peer_list and "tfidf" not in peers:
            skipped["tfidf"] = "the dataset has no text modality"
        if total is None:
            total = len(seeds) * (len(peers) + len(pair_rows))
            print(f"{dataset.description}\nScoring the {args.split} split "
                  f"({dataset.size(args.split)} rows); {total} runs.", flush=True)
        numeric = numeric_features(dataset, tuple(dict.fromkeys(("train", "validation",
                                                                 args.split))))
        for peer in peers:
            index += 1
            tick = time.time()
            metrics = run_peer(peer, dataset, numeric, args.split, seed, args.peer_threads)
            seconds = time.time() - tick
            runs.append({"row": peer, "kind": "peer", "seed": seed, "wall_seconds": seconds,
                         "metrics": metrics})
            _progress(index, total, peer, seed, metrics, seconds)
        for fusion, mtl in args.pair_list:
            index += 1
            row = f"{fusion}+{mtl}"
            tick = time.time()
            metrics = train_pair(spec, fusion, mtl, seed,
                                 os.path.join(args.output_dir, "runs", row, f"seed{seed}"),
                                 split=args.split, limit=limit, overrides=args.overrides)
            seconds = time.time() - tick
            recipe = metrics.pop("run", {})
            runs.append({"row": row, "kind": "pair", "seed": seed, "wall_seconds": seconds,
                         "epochs_run": recipe.get("epochs_run"), "recipe": recipe,
                         "metrics": metrics})
            extra = f", {recipe['epochs_run']} epochs" if "epochs_run" in recipe else ""
            own = recipe.get("recipe_test_mean") or {}
            if any(abs(own[m] - metrics["mean"][m]) > 1e-6 for m in own
                   if m in metrics["mean"] and math.isfinite(own[m])):
                extra += " (the reloaded model.keras scores unlike the recipe: see quality.json)"
            _progress(index, total, row, seed, metrics, seconds, extra)

    peer_rows = [p for p in args.peer_list if p not in skipped]
    task_names = dataset.task_names
    summary = summarise(runs, pair_rows + peer_rows, peer_rows, task_names)
    result = {
        "benchmark": "quality",
        "dataset": args.dataset,
        "dataset_name": dataset.name,
        "description": dataset.description,
        "split": args.split,
        "limit": args.limit,
        "settings": args.overrides,
        "seeds": seeds,
        "rows": {s: dataset.size(s) for s in ("train", "validation", "test")},
        "tasks": [{"name": t.name, "num_classes": t.num_classes} for t in dataset.tasks],
        "pairs": pair_rows,
        "peers": peer_rows,
        "skipped": skipped,
        "package": package_info(),
        "sklearn_version": sklearn.__version__,
        "python": sys.version.split()[0],
        "command": "python -m benchmarks.quality " + " ".join(
            sys.argv[1:] if argv is None else list(argv)),
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "wall_seconds": time.time() - started,
        "runs": runs,
        "summary": summary,
    }
    json_path, md_path = write_outputs(result, args.output_dir)
    print()
    print(main_table(summary, markdown=False))
    print("(* best peer in the column)")
    for line in standing_lines(summary):
        print(line)
    print(f"\nWrote {json_path} and {md_path}; total wall time {result['wall_seconds']:.0f} s",
          flush=True)
    return result


if __name__ == "__main__":
    main()
