"""DMTL's parts, one at a time: which part earns (or costs) what.

    python -m benchmarks.dmtl_ablation --dataset npz:PATH --seeds 3 --output-dir DIR
    python -m benchmarks.dmtl_ablation --dataset clothing --one-vs-rest --output-dir DIR

Trains HGFN with the package's defaults under each variant, the same seeds and
the same split, and reports the mean ± std over seeds of mean F1, Hamming loss
and MAP on the validation split (where choices are made) and the test split
(what is reported):

- `lsew`: equal weights, cross-entropy (the baseline);
- `focal`: equal weights, focal loss β = 2 (the sample level alone);
- `tdb`: TDB (eq. 11) without the epoch-end re-balancing;
- `tdb_no_ratio`: TDB without N / n_f, no re-balancing;
- `rebalance`: the epoch-end re-balancing alone (no TDB step);
- `dmtl`: full DMTL with the package's defaults (TDB + re-balancing, β = 0);
- `dmtl_raw_losses`: full DMTL re-balancing on the raw mean losses, not on each
  divided by its chance loss (the same as `dmtl` when all tasks are binary);
- `dmtl_focal`: full DMTL with focal loss β = 2.

With `--one-vs-rest`, every variant trains each task with K > 2 classes as K
binary concept tasks (`TrainConfig.one_vs_rest`): the weights are then per
concept, and the means are over the K-class tasks (the concepts recombined).

Writes `DIR/ablation.json` (every run, with its task weights at each epoch's
end) and `DIR/ablation.md`.
"""

import argparse
import os
import statistics
import sys
import time

#: variant -> TrainConfig fields (beside fusion="hgfn").
VARIANTS = {
    "lsew": {"mtl": "lsew"},
    "focal": {"mtl": "lsew", "beta": 2.0},
    "tdb": {"mtl": "dmtl", "rebalance": False},
    "tdb_no_ratio": {"mtl": "dmtl", "rebalance": False, "sample_ratios": False},
    "rebalance": {"mtl": "dmtl", "tdb": False},
    "dmtl": {"mtl": "dmtl"},
    "dmtl_raw_losses": {"mtl": "dmtl", "normalize_losses": False},
    "dmtl_focal": {"mtl": "dmtl", "beta": 2.0},
}
METRICS = (("f1", "F1"), ("hamming_loss", "HL"), ("map", "MAP"))


def variant_config(spec, variant, seed, one_vs_rest=False):
    """The `TrainConfig` of one variant (HGFN, the package's defaults otherwise)."""
    from hgfn_keras import TrainConfig

    return TrainConfig(dataset=spec, fusion="hgfn", seed=seed, one_vs_rest=one_vs_rest,
                       **VARIANTS[variant])


def run_variant(spec, variant, seed, output_dir, one_vs_rest=False):
    """One training run; its validation and test means and its task weights."""
    import keras

    from hgfn_keras import recipe
    from hgfn_keras.data import load_dataset

    config = variant_config(spec, variant, seed, one_vs_rest)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    dataset = load_dataset(spec, seed=seed)
    started = time.time()
    result = recipe.train_and_evaluate(config, dataset, output_dir, verbose=0)
    validation = recipe.evaluate(result.fit.model, dataset, "validation")
    return {
        "variant": variant, "seed": seed, "one_vs_rest": one_vs_rest,
        "seconds": round(time.time() - started, 1),
        "epochs": len(result.fit.history.history["loss"]),
        "validation": {k: validation["mean"][k] for k, _ in METRICS},
        "test": {k: result.metrics["mean"][k] for k, _ in METRICS},
        "task_names": result.fit.model.loss_names,  # the weights' names (concepts)
        "task_weights": [w for _, w in result.fit.rebalancing.history],
    }


def summarise(runs, split):
    """`{variant: {metric: (mean, std)}}` over seeds (std 0 for one seed)."""
    table = {}
    for variant in VARIANTS:
        rows = [r[split] for r in runs if r["variant"] == variant]
        if not rows:
            continue
        table[variant] = {}
        for key, _ in METRICS:
            values = [row[key] for row in rows if row[key] is not None]
            mean = statistics.fmean(values) if values else None
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            table[variant][key] = (mean, std)
    return table


def markdown(spec, runs, seeds, one_vs_rest=False):
    concepts = ", one-vs-rest concepts" if one_vs_rest else ""
    lines = [f"### {spec} — HGFN{concepts}, {seeds} seed(s)", ""]
    header = "| variant | " + " | ".join(
        f"{split} {label}" for split in ("val", "test") for _, label in METRICS) + " | s/run |"
    lines += [header, "|" + "---|" * (2 + 2 * len(METRICS))]
    tables = {split: summarise(runs, split) for split in ("validation", "test")}
    for variant in tables["test"]:
        cells = []
        for split in ("validation", "test"):
            for key, _ in METRICS:
                mean, std = tables[split][variant][key]
                digits = 4 if key == "hamming_loss" else 3
                cells.append("n/a" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}")
        seconds = statistics.fmean(r["seconds"] for r in runs if r["variant"] == variant)
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.dmtl_ablation",
                                description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="'clothing' or 'npz:PATH'.")
    p.add_argument("--seeds", type=int, default=3, help="Seeds 0..K-1. Default: %(default)s")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"Comma-separated, from {list(VARIANTS)}. Default: all")
    p.add_argument("--one-vs-rest", action="store_true",
                   help="Train every task with K > 2 classes as K binary concept tasks "
                   "(training.train --one-vs-rest). Default: off")
    p.add_argument("--output-dir", required=True, help="Where ablation.json/.md go.")
    args = p.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or args.seeds < 1:
        p.error(f"unknown variant(s) {unknown} (known: {list(VARIANTS)}) or --seeds < 1")

    from hgfn_keras.utils.io_utils import atomic_write_json, atomic_write_text

    runs = []
    for seed in range(args.seeds):
        for variant in variants:
            run = run_variant(args.dataset, variant, seed,
                              os.path.join(args.output_dir, "runs", f"{variant}_seed{seed}"),
                              one_vs_rest=args.one_vs_rest)
            runs.append(run)
            v, t = run["validation"], run["test"]
            print(f"{variant:13s} seed {seed}: val F1 {v['f1']:.3f} MAP {v['map']:.3f} | "
                  f"test F1 {t['f1']:.3f} HL {t['hamming_loss']:.4f} MAP {t['map']:.3f} "
                  f"({run['seconds']:.0f} s, {run['epochs']} epochs)", flush=True)
    atomic_write_json(os.path.join(args.output_dir, "ablation.json"),
                      {"dataset": args.dataset, "seeds": args.seeds,
                       "one_vs_rest": args.one_vs_rest, "runs": runs})
    text = markdown(args.dataset, runs, args.seeds, args.one_vs_rest)
    atomic_write_text(os.path.join(args.output_dir, "ablation.md"), text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
