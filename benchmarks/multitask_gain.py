"""What multi-task learning earns: each weighting against one model per task.

    python -m benchmarks.multitask_gain --dataset npz:../shared/data/multilabel/scene.npz \\
        --weightings lsew,dmtl,uncertainty,dwa,gradnorm,moo,famo --seeds 3 \\
        --output-dir runs/mtl_gain/scene

For each seed 0..K-1: one single-task model per task (the same fusion and recipe,
the dataset cut down to that task), and one multi-task model per task weighting
(`--weightings`, every other setting the package's default or `--set`), all
scored on `--split` (test by default; choose on validation) by
`hgfn_keras.evaluation.metrics.multitask_metrics`. With `--binary-concepts`, every K-class
task is first replaced by K binary tasks `<task>_<k>` (label 1 where the class
is k), so that the weighting balances the paper's concept tasks; the
single-task baselines are then one model per concept.

Reported, per weighting, over the tasks and the metrics F1 and MAP (both higher
is better):

- Δm % (Maninis et al. 2019; Vandenhende et al. 2021): the mean over tasks t and
  metrics m of 100 · (M_mt,t,m − M_st,t,m) / M_st,t,m, each from the seeds' mean;
  a task-metric whose single-task value is 0 is left out (and counted);
- mean rank: each task-metric ranks the weightings and the single-task models
  (1 = best), averaged over the task-metrics.

Writes `DIR/multitask_gain.json` (strict JSON: every run's per-task metrics and
the summary) and `DIR/multitask_gain.md`, and prints the table.
"""

import argparse
import dataclasses
import math
import os
import statistics
import sys
import time

import numpy as np  # noqa: E402

from benchmarks.common import parse_settings  # noqa: E402
from benchmarks.robustness import split_settings  # noqa: E402

DEFAULT_WEIGHTINGS = "lsew,dmtl,uncertainty,dwa,gradnorm,moo,famo"
METRICS = ("f1", "map")
SINGLE = "single-task"


def binary_concepts(dataset):
    """`dataset` with every K-class task replaced by K binary tasks `<task>_<k>`."""
    from hgfn_keras.specs import Task

    tasks, splits = [], {}
    for t in dataset.tasks:
        if t.num_classes == 2:
            tasks.append(t)
        else:
            tasks += [Task(f"{t.name}_{k}", 2) for k in range(t.num_classes)]
    for split, (x, y) in dataset.splits.items():
        labels = {}
        for t in dataset.tasks:
            values = np.asarray(y[t.name])
            if t.num_classes == 2:
                labels[t.name] = values
                continue
            for k in range(t.num_classes):
                labels[f"{t.name}_{k}"] = np.where(values < 0, -1, values == k).astype("int32")
        splits[split] = (x, labels)
    return dataclasses.replace(dataset, tasks=tasks, splits=splits)


def single_task(dataset, task):
    """`dataset` with only `task` (a `Task`)."""
    splits = {s: (x, {task.name: y[task.name]}) for s, (x, y) in dataset.splits.items()}
    return dataclasses.replace(dataset, tasks=[task], splits=splits)


def run(config, dataset, split):
    """Trains `config` on `dataset`; `{task: {metric: value}}` on `split`."""
    import keras

    from hgfn_keras import recipe

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = recipe.build_and_compile(config, dataset)
    recipe.fit(model, config, dataset, verbose=0)
    metrics = recipe.evaluate(model, dataset, split=split)
    return {t: {m: float(v[m]) for m in METRICS} for t, v in metrics["tasks"].items()}


def _mean(values):
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.mean(kept) if kept else math.nan


def summarise(results, methods, task_names):
    """Δm % against single-task and the mean rank, per method (module docstring).

    `results`: `{method: [ {task: {metric: value}} per seed ]}`.
    """
    means = {method: {t: {m: _mean([r[t][m] for r in results[method]]) for m in METRICS}
                      for t in task_names} for method in methods}
    base = means[SINGLE]
    summary = {}
    for method in methods:
        gains, skipped = [], 0
        for t in task_names:
            for m in METRICS:
                reference, value = base[t][m], means[method][t][m]
                if not math.isfinite(reference) or reference == 0 or not math.isfinite(value):
                    skipped += 1
                    continue
                gains.append(100.0 * (value - reference) / reference)
        summary[method] = {"delta_m_percent": _mean(gains), "skipped_task_metrics": skipped,
                           "mean_f1": _mean([means[method][t]["f1"] for t in task_names]),
                           "mean_map": _mean([means[method][t]["map"] for t in task_names])}
    ranks = {method: [] for method in methods}
    for t in task_names:
        for m in METRICS:
            values = {method: means[method][t][m] for method in methods}
            if not all(math.isfinite(v) for v in values.values()):
                continue
            ordered = sorted(values.values(), reverse=True)
            for method, value in values.items():  # ties share the best rank
                ranks[method].append(1 + ordered.index(value))
    for method in methods:
        summary[method]["mean_rank"] = _mean(ranks[method])
    return summary, means


def weighting_config(args, weighting, seed):
    """The `TrainConfig` of a `--weightings` entry: a task weighting's name, optionally
    with its own settings, e.g. "dmtl@rebalance=true" (they win over `--set`)."""
    from hgfn_keras.recipe.train_config import TrainConfig

    mtl, own = split_settings(weighting)
    return TrainConfig(**dict(args.overrides, dataset=args.dataset, fusion=args.fusion, mtl=mtl,
                              seed=seed, **own))


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.multitask_gain",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="clothing", help="'clothing' or 'npz:PATH'.")
    p.add_argument("--fusion", default="hgfn",
                   help="The fusion of every model. Default: %(default)s")
    p.add_argument("--weightings", "--strategies", dest="weightings",
                   default=DEFAULT_WEIGHTINGS,
                   help="Comma-separated task weightings (`--mtl` names), each optionally "
                   "with its own settings (dmtl@rebalance=true). (--strategies: its old "
                   "name, kept for one release.) Default: %(default)s")
    p.add_argument("--seeds", type=int, default=3, help="Seeds 0..K-1. Default: %(default)s")
    p.add_argument("--binary-concepts", action="store_true",
                   help="Replace each K-class task by K binary concept tasks first.")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="Another TrainConfig field for every model (repeatable).")
    p.add_argument("--split", default="test", choices=["test", "validation"],
                   help="The split scored. Default: %(default)s")
    p.add_argument("--output-dir", required=True)
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--strategies" or a.startswith("--strategies=") for a in argv):
        print("note: --strategies is now --weightings (the old name goes in the next "
              "release)", file=sys.stderr)
    args = p.parse_args(argv)
    args.weightings = [s.strip() for s in args.weightings.split(",") if s.strip()]
    args.overrides = parse_settings(p, args.set)
    for mtl in ["lsew", *args.weightings]:
        try:
            weighting_config(args, mtl, 0)
        except (TypeError, ValueError) as error:
            p.error(f"--weightings {mtl}: {error}")
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1. Received: {args.seeds}")
    return args


def main(argv=None):
    args = parse_args(argv)
    from hgfn_keras.data import load_dataset
    from hgfn_keras.utils.io_utils import (
        atomic_write_json,
        atomic_write_text,
        strict_json_value,
    )

    methods = [SINGLE, *args.weightings]
    results = {method: [] for method in methods}
    for seed in range(args.seeds):
        dataset = load_dataset(args.dataset, seed=seed)
        if args.binary_concepts:
            dataset = binary_concepts(dataset)
        started = time.time()
        single = {}
        for task in dataset.tasks:  # one model per task, same fusion and recipe
            config = weighting_config(args, "lsew", seed)
            single.update(run(config, single_task(dataset, task), args.split))
        results[SINGLE].append(single)
        print(f"seed {seed} {SINGLE}: {len(dataset.tasks)} models, "
              f"{time.time() - started:.0f} s", flush=True)
        for mtl in args.weightings:
            started = time.time()
            config = weighting_config(args, mtl, seed)
            results[mtl].append(run(config, dataset, args.split))
            mean_f1 = _mean([v["f1"] for v in results[mtl][-1].values()])
            print(f"seed {seed} {mtl}: mean F1 {mean_f1:.3f}, {time.time() - started:.0f} s",
                  flush=True)
    summary, means = summarise(results, methods, dataset.task_names)
    lines = [f"## {args.dataset}, {args.split} split, fusion {args.fusion} ({args.seeds} seeds)",
             "", "| method | mean F1 | mean MAP | Δm % vs single-task | mean rank |",
             "|---|---|---|---|---|"]
    for method in methods:
        s = summary[method]
        lines.append(f"| {method} | {s['mean_f1']:.3f} | {s['mean_map']:.3f} | "
                     f"{s['delta_m_percent']:+.2f} | {s['mean_rank']:.2f} |")
    text = "\n".join(lines)
    os.makedirs(args.output_dir, exist_ok=True)
    atomic_write_json(os.path.join(args.output_dir, "multitask_gain.json"), strict_json_value(
        {"results": results, "means": means, "summary": summary,
         "settings": {"dataset": args.dataset, "fusion": args.fusion, "seeds": args.seeds,
                      "split": args.split, "binary_concepts": args.binary_concepts,
                      "overrides": args.overrides}}, "multitask_gain.json"))
    atomic_write_text(os.path.join(args.output_dir, "multitask_gain.md"), text + "\n")
    print(text)
    return summary


if __name__ == "__main__":
    main()
