"""Recipe settings against training-set size, scored on the validation split only.

    python -m benchmarks.recipe_sweep --datasets human,scene,htad --sizes 100,300,1000 \\
        --seeds 2 --variant base='{}' --variant adamw='{"optimizer": "adamw"}' \\
        --output runs/sweep/adamw.jsonl

How the size-aware defaults (`hgfn_keras.recipe.size_aware_defaults`) were chosen (issue 28):
each variant is a set of `TrainConfig` changes; for every development set
(`human`, `scene`, `htad` name the npz files under `/work/shared/data`, or give
`npz:PATH`), every training size (`all` for the whole training split) and seed,
the training split (the rows with `split == 0`) is subsampled to that many rows
(one draw per size, the same for every seed and variant, so the seeds' spread is
the recipe's, not the draw's; validation and test rows are kept), the variant is
trained with `hgfn_keras.recipe` (`fit`, the package's recipe) and scored on the
**validation** split: mean F1 at 0.5, mean F1 at per-task thresholds
cross-fitted on validation (chosen on one half, scored on the other, both
ways, averaged: an honest estimate of what thresholds chosen on validation give
on new rows), and MAP. Appends one JSON line per run to `--output` and prints a
table (mean ± std over seeds) per dataset and size.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

DATA = {"human": "/work/shared/data/multilabel/human.npz",
        "scene": "/work/shared/data/multilabel/scene.npz",
        "htad": "/work/shared/data/multimodal/htad.npz"}


#: The package's recipe before issue 28 (a variant changes some of it; `"_new": true`:
#: the TrainConfig defaults as they are now, size-aware).
BEFORE = {"epochs": 12, "batch_size": 128, "patience": 3, "optimizer": "adam",
          "weight_decay": 0.0, "units": 128, "head_units": 64, "input_dropout": 0.0,
          "decision_thresholds": False}


def subsample(path, size, directory, draw=1234):
    """An npz file with `size` of the training rows of `path` (the others kept)."""
    if size == "all":
        return path
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    train = np.nonzero(arrays["split"] == 0)[0]
    keep_train = np.random.default_rng(draw).permutation(train)[:int(size)]
    keep = np.sort(np.concatenate([keep_train, np.nonzero(arrays["split"] != 0)[0]]))
    target = os.path.join(directory, f"{size}", os.path.basename(path))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target):
        np.savez(target, **{k: v[keep] for k, v in arrays.items()})
    return target


def _subset(y, probabilities, rows):
    return ({k: np.asarray(v)[rows] for k, v in y.items()},
            {k: np.asarray(v)[rows] for k, v in probabilities.items()})


def cross_fitted_f1(tasks, y, probabilities, seed=0):
    """Mean F1 at thresholds chosen on one half of the rows and scored on the other
    (both ways, averaged) and the thresholds chosen on all rows."""
    import warnings

    from hgfn_keras.evaluation.decision_thresholds import choose_thresholds
    from hgfn_keras.evaluation.metrics import multitask_metrics

    rows = len(next(iter(y.values())))
    order = np.random.default_rng(seed).permutation(rows)
    halves = (order[: rows // 2], order[rows // 2:])
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fit_rows, score_rows in (halves, halves[::-1]):
            thresholds = choose_thresholds(tasks, *_subset(y, probabilities, fit_rows))
            scored = multitask_metrics(tasks, *_subset(y, probabilities, score_rows),
                                       thresholds=thresholds)
            scores.append(scored["mean"]["f1"])
    return float(np.mean(scores))


def run_one(job):
    """One training run; its validation numbers (a dict)."""
    import warnings

    import keras

    from hgfn_keras import TrainConfig, recipe
    from hgfn_keras.data import load_dataset
    from hgfn_keras.evaluation.metrics import multitask_metrics

    import tensorflow as tf

    try:  # one thread each: the workers share a busy machine
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    spec, size, seed, name, changes = job
    changes = dict(changes)
    components = changes.pop("_auto", [])
    knobs = changes.pop("_knobs", {})
    monitor = changes.pop("_monitor", "val_loss")  # or a ValidationMetrics key, e.g. val_mean_map
    dataset = load_dataset(f"npz:{spec}", seed=seed)
    if components:  # parts of the size-aware rule, as explicit settings
        from hgfn_keras.recipe.size_aware_defaults import size_aware_settings

        settings = size_aware_settings(
            dataset.size("train"), {m.name: m.width for m in dataset.modalities}, {}, **knobs)
        fields = {"length": ("epochs", "batch_size", "patience"),
                  "adamw": ("optimizer", "weight_decay"), "width": ("units", "head_units"),
                  "input_dropout": ("input_dropout",)}
        for component in components:
            for field in fields[component]:
                changes.setdefault(field, settings[field])
    if not changes.pop("_new", False):  # else: the package's settings before issue 28
        for field, value in BEFORE.items():
            changes.setdefault(field, value)
    config = TrainConfig(dataset=f"npz:{spec}", seed=seed, **changes)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    config = recipe.resolve_config(config, dataset)
    model = recipe.build_and_compile(config, dataset)
    tick = time.time()
    callbacks, mode = [], "min"
    if monitor != "val_loss":
        from hgfn_keras.data.dataset import as_tf_dataset
        from hgfn_keras.evaluation.validation_metrics import ValidationMetrics

        x_val, y_val = dataset.splits["validation"]
        callbacks = [ValidationMetrics(as_tf_dataset(x_val, None, 512), y_val, dataset.tasks)]
        mode = "max"
    with tempfile.TemporaryDirectory():
        result = recipe.fit(model, config, dataset, verbose=0, callbacks=callbacks,
                            monitor=monitor, mode=mode)
    seconds = time.time() - tick
    y, probabilities = recipe.predict_split(model, dataset, "validation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = multitask_metrics(model.tasks, y, probabilities)
    history = result.history.history
    return {"dataset": os.path.basename(spec).split(".")[0], "size": size, "seed": seed,
            "variant": name, "f1": metrics["mean"]["f1"],
            "f1_thr": cross_fitted_f1(model.tasks, y, probabilities, seed),
            "map": metrics["mean"]["map"], "epochs_run": len(history["loss"]),
            "best_epoch": (int(np.argmin(history["val_loss"])) if mode == "min"
                           else int(np.nanargmax(history[monitor]))) + 1,
            "train_rows": dataset.size("train"),
            "settings": {k: getattr(config, k) for k in BEFORE},
            "fit_seconds": round(seconds, 1)}


def table(rows):
    """Mean ± std over seeds per (dataset, size, variant)."""
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], str(r["size"]), r["variant"]), []).append(r)
    lines = ["| data | size | variant | F1 @0.5 | F1 @thr (cross-fitted) | MAP | epochs | s |",
             "|---|---|---|---|---|---|---|---|"]
    for (data, size, variant), runs in sorted(groups.items()):
        def cell(key):
            values = np.array([r[key] for r in runs], dtype=float)
            return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"
        lines.append(f"| {data} | {size} | {variant} | {cell('f1')} | {cell('f1_thr')} | "
                     f"{cell('map')} | {np.mean([r['epochs_run'] for r in runs]):.0f} | "
                     f"{np.mean([r['fit_seconds'] for r in runs]):.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipe_sweep",
                                description=__doc__.split("\n")[0])
    p.add_argument("--datasets", default="human,scene,htad")
    p.add_argument("--sizes", default="100,300,1000")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                   help="A variant: a name and its TrainConfig changes as JSON (repeat).")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data-dir", default="runs/sweep/data")
    p.add_argument("--output", required=True, help="JSON lines file (appended).")
    args = p.parse_args(argv)
    variants = {}
    for text in args.variant or ["base={}"]:
        name, _, changes = text.partition("=")
        variants[name] = json.loads(changes or "{}")
    jobs = []
    for data in args.datasets.split(","):
        path = DATA.get(data, data[len("npz:"):] if data.startswith("npz:") else data)
        for size in args.sizes.split(","):
            spec = subsample(path, size, args.data_dir)
            for seed in range(args.seeds):
                for name, changes in variants.items():
                    jobs.append((spec, size, seed, name, changes))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    rows = []
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        for row in pool.map(run_one, jobs):
            rows.append(row)
            with open(args.output, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    print(table(rows))
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
