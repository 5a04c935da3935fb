"""Robustness: each pair scored clean, with a modality missing, and with a noisy modality.

    python -m benchmarks.robustness --dataset npz:../shared/data/multimodal/htad.npz \\
        --pairs hgfn+dmtl,cfc+lsew --seeds 3 --output-dir runs/robustness/htad

For each pair (`fusion+mtl`, every other setting the package's default, or as
`--set FIELD=VALUE` says) and seed 0..K-1, one model is trained on complete rows
(`hgfn_keras.recipe`, the training CLI's recipe), then the scored split
(`--split`, test by default; `both` scores validation and test from the same
models) is predicted under every condition:

- `clean`: as it is;
- `missing:<modality>`: that modality masked (`modality_mask` 0, its features
  zeroed, a text modality's strings emptied) in every row;
- `noise:<modality>:<sigma>`: Gaussian noise of sigma (0.5, 1, 2; `--sigmas`)
  times each feature's training standard deviation (over the training rows
  where the modality is present) added to that vector or sequence modality's
  raw features (text modalities get no noise condition).

The noise is drawn from `numpy.random.default_rng([seed, condition index])`, so
every pair of a seed sees the same noise.

`DIR/robustness.json` (strict JSON: a NaN is `null`):
`{"rows": [{"pair", "seed", "split", "condition", "mean_f1", "mean_map"}, ...],
"robustness": {...}, "settings": {...}}`; `DIR/robustness.md` and the printed
table give mean F1 / MAP per pair and condition over seeds; `DIR/robustness.png`
(with matplotlib) plots mean F1 against condition, one line per pair.

Robustness measures in the manner of MultiBench (Liang et al. 2021,
`eval_scripts/robustness.py`), on mean F1, per pair and modality, averaged over
the modalities and seeds:

- relative robustness: the area under F1 against noise level, with the levels
  (0 = clean, then `--sigmas`) scaled to [0, 1] (trapezoids);
- effective robustness: the mean over the noisy levels of
  (F1(level) - F1(clean)) - (F1_ref(level) - F1_ref(clean)), the reference being
  the last pair of `--pairs` (MultiBench uses late fusion): above 0, the pair
  loses less than the reference as the noise grows.

MultiBench also max-min normalises both across all the methods of its tables;
with only our pairs to compare that would say little, so the raw values are
reported.
"""

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np  # noqa: E402

DEFAULT_PAIRS = "hgfn+dmtl,cfc+lsew"
DEFAULT_SIGMAS = (0.5, 1.0, 2.0)
MASK_KEY = "modality_mask"


# --------------------------------------------------------------------------- conditions


def training_std(dataset):
    """`{modality: per-feature std}` over the training rows where it is present
    (vector and sequence modalities; a sequence's std is over rows and steps)."""
    x_train, _ = dataset.splits["train"]
    mask = np.asarray(x_train[MASK_KEY])
    stds = {}
    for index, m in enumerate(dataset.modalities):
        if m.kind == "text":
            continue
        values = np.asarray(x_train[m.name], "float64")[mask[:, index] > 0]
        values = values.reshape(-1, values.shape[-1])
        std = values.std(axis=0) if len(values) else np.zeros(values.shape[-1])
        stds[m.name] = np.where(np.isfinite(std), std, 0.0)
    return stds


def conditions(dataset, sigmas=DEFAULT_SIGMAS):
    """The condition names of `dataset`, in order: clean, each missing, each noisy."""
    names = ["clean"] + [f"missing:{m.name}" for m in dataset.modalities]
    names += [f"noise:{m.name}:{s:g}" for m in dataset.modalities if m.kind != "text"
              for s in sigmas]
    return names


def perturb(x, dataset, condition, stds, rng):
    """A copy of the inputs `x` (a split's numpy dict) under `condition`."""
    x = dict(x)
    if condition == "clean":
        return x
    kind, name, *rest = condition.split(":")
    index = [m.name for m in dataset.modalities].index(name)
    modality = dataset.modalities[index]
    if kind == "missing":
        mask = np.array(x[MASK_KEY], "float32", copy=True)
        mask[:, index] = 0.0
        x[MASK_KEY] = mask
        if modality.kind == "text":
            x[name] = np.full(len(mask), "", dtype=object)
        else:
            x[name] = np.zeros_like(np.asarray(x[name], "float32"))
        return x
    sigma = float(rest[0])
    values = np.asarray(x[name], "float32")
    noise = rng.normal(size=values.shape) * sigma * stds[name]
    x[name] = (values + noise).astype("float32")
    return x


# ----------------------------------------------------------------------------- training


def split_settings(spec):
    """`"name@field=value@..."` as `(name, {field: value})` (values as `_value` reads them).

    >>> split_settings("hgfn+dmtl@theta=0.3@preset=paper")
    ('hgfn+dmtl', {'theta': 0.3, 'preset': 'paper'})
    """
    name, *settings = spec.split("@")
    own = {}
    for item in settings:
        field, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"settings are FIELD=VALUE. Received: {item!r} in {spec!r}")
        own[field] = _value(value)
    return name, own


def pair_config(pair, seed, dataset_spec, overrides):
    """The `TrainConfig` of `pair` with `overrides` (`{field: value}`, the
    `--set`s) applied where they apply.

    `pair` is "fusion+mtl", or "default" for the package's own defaults,
    optionally followed by its own settings: "hgfn+lsew@alignment=pad@theta=0.3"
    (these win over `overrides`). An override that does not apply to the pair's
    fusion or strategy (e.g. `alignment` for CFC) is left out for that pair.

    Returns:
        `(config, left_out)`: the `TrainConfig` and the override fields left out.
    """
    from hgfn_keras.recipe.train_config import (
        DEFAULTS,
        FUSION_FIELDS,
        WEIGHTING_FIELDS,
        TrainConfig,
        fusion_fields,
        weighting_fields,
    )

    base, own = split_settings(pair)
    values = {"dataset": dataset_spec, "seed": seed}
    if base != "default":
        fusion, _, mtl = base.partition("+")
        values.update(fusion=fusion, mtl=mtl)
    fusion = values.get("fusion", DEFAULTS["fusion"])
    mtl = values.get("mtl", DEFAULTS["mtl"])
    applies = set(fusion_fields(fusion)) | set(weighting_fields(mtl))
    owned = set(FUSION_FIELDS) | {"cfc_units"} | set(WEIGHTING_FIELDS)
    left_out = sorted(f for f in overrides if f in owned and f not in applies)
    kept = {f: v for f, v in overrides.items() if f not in left_out}
    return TrainConfig.from_dict(dict(values, **kept, **own)), left_out


def train(config, dataset):
    """A model trained by the package's recipe on `dataset` (seeded; no files)."""
    import keras

    from hgfn_keras import recipe

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = recipe.build_and_compile(config, dataset)
    result = recipe.fit(model, config, dataset, verbose=0)
    return model, len(result.history.history["loss"])


def score(model, dataset, split, condition_names, stds, seed):
    """`{condition: (mean F1, MAP)}` of `model` on `split`."""
    from hgfn_keras.data.dataset import as_tf_dataset
    from hgfn_keras.evaluation.metrics import multitask_metrics
    from hgfn_keras.recipe import predictor

    x, y = dataset.splits[split]
    forward = None
    scores = {}
    for number, condition in enumerate(condition_names):
        rng = np.random.default_rng([seed, number])
        batches = as_tf_dataset(perturb(x, dataset, condition, stds, rng), None, 512)
        if forward is None:  # one trace for every condition
            forward = predictor(model, batches.element_spec)
        probabilities = forward(batches)
        mean = multitask_metrics(model.tasks, y, probabilities)["mean"]
        scores[condition] = (float(mean["f1"]), float(mean["map"]))
    return scores


# ------------------------------------------------------------------------------ summary


def _mean(values):
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.mean(kept) if kept else math.nan


def _std(values):
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.stdev(kept) if len(kept) > 1 else math.nan


def robustness_measures(rows, pairs, modalities, sigmas, split):
    """Relative and effective robustness (module docstring) per pair, and the
    mean F1 kept with a modality missing as a share of clean F1."""
    levels = [0.0, *sigmas]
    xs = [level / max(levels) for level in levels]

    def curve(pair, seed, modality):
        by_condition = {r["condition"]: r["mean_f1"] for r in rows
                        if r["pair"] == pair and r["seed"] == seed and r["split"] == split}
        if "clean" not in by_condition:
            return None
        return [by_condition["clean"], *(by_condition.get(f"noise:{modality}:{s:g}", math.nan)
                                         for s in sigmas)]

    seeds = sorted({r["seed"] for r in rows})
    reference = pairs[-1]
    result = {}
    for pair in pairs:
        relative, effective, kept = [], [], []
        for seed in seeds:
            pair_rows = {r["condition"]: r["mean_f1"] for r in rows
                         if r["pair"] == pair and r["seed"] == seed and r["split"] == split}
            if "clean" not in pair_rows:
                continue
            missing = [pair_rows[c] for c in pair_rows if c.startswith("missing:")]
            if pair_rows["clean"] > 0 and missing:
                kept.append(_mean(missing) / pair_rows["clean"])
            for modality in modalities:
                f = curve(pair, seed, modality)
                ref = curve(reference, seed, modality)
                if f is None or any(math.isnan(v) for v in f):
                    continue
                relative.append(sum((f[i] + f[i + 1]) * (xs[i + 1] - xs[i]) / 2
                                    for i in range(len(f) - 1)))
                if ref is not None and not any(math.isnan(v) for v in ref):
                    effective.append(_mean([(f[i] - f[0]) - (ref[i] - ref[0])
                                            for i in range(1, len(f))]))
        result[pair] = {"relative_robustness": _mean(relative),
                        "effective_robustness": _mean(effective),
                        "missing_kept_share": _mean(kept), "reference": reference}
    return result


def table(rows, pairs, condition_names, split):
    """A markdown table: mean F1 / MAP (± std over seeds) per condition and pair."""
    lines = ["| condition | " + " | ".join(pairs) + " |",
             "|---|" + "---|" * len(pairs)]
    for condition in condition_names:
        cells = []
        for pair in pairs:
            picked = [r for r in rows if r["pair"] == pair and r["condition"] == condition
                      and r["split"] == split]
            f1 = [r["mean_f1"] for r in picked]
            ap = [r["mean_map"] for r in picked]
            if not picked:
                cells.append("–")
                continue
            spread = f" ± {_std(f1):.3f}" if len(picked) > 1 else ""
            cells.append(f"{_mean(f1):.3f}{spread} / {_mean(ap):.3f}")
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, pairs, condition_names, split, path):
    """Mean F1 against condition, one line per pair (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot written", file=sys.stderr)
        return None
    fig, axis = plt.subplots(figsize=(max(6, 0.6 * len(condition_names)) + 3, 4))
    for pair in pairs:
        means = [_mean([r["mean_f1"] for r in rows if r["pair"] == pair
                        and r["condition"] == c and r["split"] == split])
                 for c in condition_names]
        axis.plot(range(len(condition_names)), means, marker="o", label=pair)
    axis.set_xticks(range(len(condition_names)))
    axis.set_xticklabels(condition_names, rotation=60, ha="right", fontsize=8)
    axis.set_ylabel(f"mean F1 ({split} split)")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------- CLI


def _value(text):
    """A `--set` value: JSON when it parses (numbers, true/false/null), else the string."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.robustness",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="clothing", help="'clothing' or 'npz:PATH'.")
    p.add_argument("--pairs", default=DEFAULT_PAIRS,
                   help="Comma-separated fusion+mtl pairs, or 'default' (the package's "
                        "defaults); the last is the effective-robustness reference. "
                        "Default: %(default)s")
    p.add_argument("--seeds", type=int, default=3, help="Seeds 0..K-1. Default: %(default)s")
    p.add_argument("--modality-dropout", type=float, default=None,
                   help="TrainConfig.modality_dropout for every pair (default: the package's).")
    p.add_argument("--one-vs-rest", action="store_true",
                   help="Train K-class tasks as K binary concepts (TrainConfig.one_vs_rest).")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="Any other TrainConfig field for every pair (repeatable).")
    p.add_argument("--sigmas", default=",".join(f"{s:g}" for s in DEFAULT_SIGMAS),
                   help="Noise levels in training standard deviations. Default: %(default)s")
    p.add_argument("--split", default="test", choices=["test", "validation", "both"],
                   help="The split scored (choose defaults on validation). Default: %(default)s")
    p.add_argument("--output-dir", required=True, help="Where robustness.json/.md/.png go.")
    args = p.parse_args(argv)
    args.pairs = [s.strip() for s in args.pairs.split(",") if s.strip()]
    try:
        args.sigmas = [float(s) for s in args.sigmas.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sigmas: expected numbers. Received: {args.sigmas!r}")
    if not args.sigmas or any(not s > 0 or not math.isfinite(s) for s in args.sigmas):
        p.error(f"--sigmas: expected positive numbers. Received: {args.sigmas}")
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1. Received: {args.seeds}")
    overrides = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set expects FIELD=VALUE. Received: {item!r}")
        overrides[field.strip()] = _value(value.strip())
    if args.modality_dropout is not None:
        overrides["modality_dropout"] = args.modality_dropout
    if args.one_vs_rest:
        overrides["one_vs_rest"] = True
    args.overrides = overrides
    for pair in args.pairs:  # every config checked before the first run
        try:
            _, left_out = pair_config(pair, 0, args.dataset, overrides)
        except (TypeError, ValueError) as error:
            p.error(f"pair {pair!r}: {error}")
        if left_out:
            print(f"pair {pair}: --set {', '.join(left_out)} does not apply; left out",
                  flush=True)
    return args


def main(argv=None):
    args = parse_args(argv)
    from hgfn_keras.data import load_dataset
    from hgfn_keras.utils.io_utils import (
        atomic_write_json,
        atomic_write_text,
        strict_json_value,
    )

    splits = ["validation", "test"] if args.split == "both" else [args.split]
    os.makedirs(args.output_dir, exist_ok=True)
    rows, runs = [], []
    for seed in range(args.seeds):
        dataset = load_dataset(args.dataset, seed=seed)
        stds = training_std(dataset)
        names = conditions(dataset, args.sigmas)
        for pair in args.pairs:
            config, _ = pair_config(pair, seed, args.dataset, args.overrides)
            started = time.time()
            model, epochs = train(config, dataset)
            seconds = time.time() - started
            runs.append({"pair": pair, "seed": seed, "epochs_run": epochs,
                         "fit_seconds": round(seconds, 1)})
            for split in splits:
                for condition, (f1, ap) in score(model, dataset, split, names, stds,
                                                 seed).items():
                    rows.append({"pair": pair, "seed": seed, "split": split,
                                 "condition": condition, "mean_f1": f1, "mean_map": ap})
            clean = [r for r in rows if r["pair"] == pair and r["seed"] == seed
                     and r["condition"] == "clean"]
            print(f"seed {seed} {pair}: {epochs} epochs, {seconds:.0f} s; clean "
                  + ", ".join(f"{r['split']} F1 {r['mean_f1']:.3f} MAP {r['mean_map']:.3f}"
                              for r in clean), flush=True)
    modalities = [m.name for m in dataset.modalities if m.kind != "text"]
    measures = {split: robustness_measures(rows, args.pairs, modalities, args.sigmas, split)
                for split in splits}
    result = {"rows": rows, "robustness": measures, "runs": runs,
              "settings": {"dataset": args.dataset, "pairs": args.pairs, "seeds": args.seeds,
                           "sigmas": args.sigmas, "overrides": args.overrides}}
    atomic_write_json(os.path.join(args.output_dir, "robustness.json"),
                      strict_json_value(result, "robustness.json"))
    report = []
    for split in splits:
        report += [f"## {args.dataset}, {split} split ({args.seeds} seeds)", "",
                   "Mean F1 ± std over seeds / MAP.", "",
                   table(rows, args.pairs, names, split), "",
                   "| pair | relative robustness | effective robustness | F1 kept, one "
                   "modality missing |", "|---|---|---|---|"]
        for pair, m in measures[split].items():
            report.append(f"| {pair} | {m['relative_robustness']:.3f} | "
                          f"{m['effective_robustness']:+.3f} | {m['missing_kept_share']:.1%} |")
        report.append("")
        plot(rows, args.pairs, names, split,
             os.path.join(args.output_dir, f"robustness_{split}.png"))
    text = "\n".join(report)
    atomic_write_text(os.path.join(args.output_dir, "robustness.md"), text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
