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
  raw features (text modalities get no noise condition);
- `missing_rate:<r>` (`--missing-rates 0,0.3,0.6,0.9`): each present modality of
  each row masked independently with probability r (mask 0, features zeroed,
  text emptied, as for `missing:`); a row whose draw would mask every modality
  it has keeps the one whose uniform draw was highest (so one of them, chosen
  at random), and a row with one modality keeps it. The draws depend on the rate
  and a fixed seed only (`missing_rate_mask`): every pair and seed sees the
  same draws. With M modalities a modality is therefore masked with probability
  slightly below r (r - r**M / M on complete rows);
- `subset:<a>+<b>` (`--subsets`): for every non-empty proper subset of the
  modalities (M <= 6), the named modalities kept and the others masked in
  every row (as `missing:`; a row that had none of the kept ones is scored
  with nothing left, as `missing:` scores a row that had only that modality).

With `--train-dropouts 0,0.3,0.5,0.7` each pair is trained once per value of
`TrainConfig.modality_dropout` (the rate of whole modalities masked per row in
training): pair `p` becomes `p@modality_dropout=0`, `p@modality_dropout=0.3`,
... (the `pair@field=value` syntax of `--pairs`, so the rows and the summary
name them so), and the report gains the train x test grid: per pair, one row
per train dropout and one column per `--missing-rates` rate, mean F1 ± the t
95 % half-width over seeds, and the `missing_rate_auc`. With
`--expected-missing-rate R` (and the validation split scored) the report also
names, per pair, the train dropout of highest validation mean F1 over the
rates up to R (the trapezoid mean over the rates <= R, as `missing_rate_auc`
over the whole sweep): the one to train with when up to R of the modalities
may be missing per row.

The noise is drawn from `numpy.random.default_rng([seed, condition index])`, so
every pair of a seed sees the same noise. The conditions come in that order
(`missing_rate:` and `subset:` last, so the noise draws are those of a run
without them).

`DIR/robustness.json` (strict JSON: a NaN is `null`):
`{"rows": [{"pair", "seed", "split", "condition", "mean_f1", "mean_map"}, ...],
"robustness": {...}, "summary": [...], "settings": {...}}`, with
`--train-dropouts` also `"grid": [{"split", "pair", "train_dropout",
"missing_rate", "mean", "ci95", "seeds"}, ...]` (`pair` the pair as given,
without the suffix) and, with `--expected-missing-rate`, `"dropout_choice"`
(`dropout_choice`'s dicts); `DIR/robustness.md`
and the printed table give mean F1 / MAP per pair and condition over seeds, and
the summary; `DIR/robustness_<split>.png` (with matplotlib) plots mean F1
against condition, one line per pair, and `DIR/robustness_missing_rate_<split>.png`
mean F1 against missing rate with a band of the 95 % interval over seeds.

`summary` is a list of `{"split", "pair", "measure", "mean", "ci95", "seeds"}`:
per seed the measure is computed from that seed's rows, then `mean` is its mean
over the seeds and `ci95` the half-width of the Student t 95 % interval of that
mean (t quantile * sample std / sqrt(seeds), the quantile from a table for 1..30
degrees of freedom, 1.96 beyond; null with one seed). The measures:

- `missing_rate_auc`: the area under mean F1 against missing rate (trapezoids
  over `--missing-rates`) divided by the rates' range: the mean F1 over the
  sweep (needs two rates or more);
- `relative_robustness`, `effective_robustness`: below, per seed the mean over
  the vector modalities;
- `missing_mean_f1`: mean F1 over the `missing:<modality>` conditions.

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

from benchmarks.common import parse_settings, setting_value  # noqa: E402
from hgfn_keras.feature_checks import MASK_KEY  # noqa: E402

DEFAULT_PAIRS = "hgfn+dmtl,cfc+lsew"
DEFAULT_SIGMAS = (0.5, 1.0, 2.0)


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


def conditions(dataset, sigmas=DEFAULT_SIGMAS, missing_rates=(), subsets=False):
    """The condition names of `dataset`, in order: clean, each missing, each noisy,
    each missing rate, each kept subset (`subsets=True`)."""
    names = ["clean"] + [f"missing:{m.name}" for m in dataset.modalities]
    names += [f"noise:{m.name}:{s:g}" for m in dataset.modalities if m.kind != "text"
              for s in sigmas]
    names += [f"missing_rate:{r:g}" for r in missing_rates]
    if subsets:
        names += ["subset:" + "+".join(kept)
                  for kept in modality_subsets([m.name for m in dataset.modalities])]
    return names


MAX_SUBSET_MODALITIES = 6
MISSING_RATE_SEED = 31  # the fixed seed of the `missing_rate:` draws


def modality_subsets(names):
    """Every non-empty proper subset of `names` (in their order), smallest first.

    >>> modality_subsets(["a", "b", "c"])
    [('a',), ('b',), ('c',), ('a', 'b'), ('a', 'c'), ('b', 'c')]
    """
    import itertools

    names = list(names)
    if not 2 <= len(names) <= MAX_SUBSET_MODALITIES:
        raise ValueError(
            f"--subsets needs 2 to {MAX_SUBSET_MODALITIES} modalities (2**M - 2 subsets). "
            f"Received: {len(names)} modalities {names}")
    return [kept for size in range(1, len(names))
            for kept in itertools.combinations(names, size)]


def missing_rate_mask(mask, rate):
    """`mask` (`[rows, M]`, 1 = present) with each present modality of each row set
    to 0 with probability `rate`, independently; a row whose draw would leave it
    with nothing keeps its present modality of highest draw (one at random).

    The draws come from `numpy.random.default_rng([MISSING_RATE_SEED, rate in
    thousandths])`: the same for every pair, seed and call.

    >>> m = missing_rate_mask(np.ones((1000, 2), "float32"), 0.9)
    >>> int(m.sum(axis=1).min())  # never a row with nothing
    1
    """
    mask = np.asarray(mask, "float32")
    draws = np.random.default_rng([MISSING_RATE_SEED, round(rate * 1000)]).random(mask.shape)
    present = mask > 0
    kept = present & (draws >= rate)
    emptied = ~kept.any(axis=1) & present.any(axis=1)
    best = np.argmax(np.where(present, draws, -1.0), axis=1)
    kept[emptied, best[emptied]] = True
    return kept.astype("float32")


def _masked(x, dataset, mask):
    """`x` with `mask` as its modality mask and the features of each modality
    newly masked in a row zeroed (a text modality's string emptied)."""
    before = np.asarray(x[MASK_KEY], "float32")
    x[MASK_KEY] = np.asarray(mask, "float32")
    for index, modality in enumerate(dataset.modalities):
        newly = (before[:, index] > 0) & (x[MASK_KEY][:, index] == 0)
        if not newly.any():
            continue
        if modality.kind == "text":
            values = np.array(x[modality.name], dtype=object, copy=True)
            values[newly] = ""
        else:
            values = np.array(x[modality.name], "float32", copy=True)
            values[newly] = 0.0
        x[modality.name] = values
    return x


def perturb(x, dataset, condition, stds, rng):
    """A copy of the inputs `x` (a split's numpy dict) under `condition`."""
    x = dict(x)
    if condition == "clean":
        return x
    kind, name, *rest = condition.split(":")
    if kind == "missing_rate":
        return _masked(x, dataset, missing_rate_mask(x[MASK_KEY], float(name)))
    if kind == "subset":
        kept = name.split("+")
        keep = np.array([m.name in kept for m in dataset.modalities], "float32")
        return _masked(x, dataset, np.asarray(x[MASK_KEY], "float32") * keep)
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
    """`"name@field=value@..."` as `(name, {field: value})` (values as `setting_value` reads them).

    >>> split_settings("hgfn+dmtl@theta=0.3@preset=paper")
    ('hgfn+dmtl', {'theta': 0.3, 'preset': 'paper'})
    """
    name, *settings = spec.split("@")
    own = {}
    for item in settings:
        field, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"settings are FIELD=VALUE. Received: {item!r} in {spec!r}")
        own[field] = setting_value(value)
    return name, own


DROPOUT_FIELD = "modality_dropout"


def dropout_pair(pair, dropout):
    """The name of `pair` trained with `modality_dropout=dropout`.

    >>> dropout_pair("default", 0.3), dropout_pair("cfc+lsew@theta=0.3", 0)
    ('default@modality_dropout=0.3', 'cfc+lsew@theta=0.3@modality_dropout=0')
    """
    return f"{pair}@{DROPOUT_FIELD}={dropout:g}"


def expand_train_dropouts(pairs, dropouts):
    """Each of `pairs` once per train dropout, in that order (`dropout_pair`).

    Raises a `ValueError` naming the pair when it already sets `modality_dropout`.

    >>> expand_train_dropouts(["default", "cfc+lsew"], [0, 0.5])[1:3]
    ['default@modality_dropout=0.5', 'cfc+lsew@modality_dropout=0']
    """
    expanded = []
    for pair in pairs:
        if DROPOUT_FIELD in split_settings(pair)[1]:
            raise ValueError(f"--train-dropouts sets {DROPOUT_FIELD} of every pair; pair "
                             f"{pair!r} sets it too. Received: --pairs ... {pair} ...")
        expanded += [dropout_pair(pair, d) for d in dropouts]
    return expanded


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


# The 0.975 quantile of Student's t for 1..30 degrees of freedom (scipy is not a
# dependency); beyond 30 the normal's 1.96, which makes the interval at most 4 % narrow.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def ci95(values):
    """The half-width of the Student t 95 % interval of the mean of `values`
    (t quantile * sample std / sqrt(n); NaN below two finite values).

    >>> round(ci95([0.70, 0.72, 0.74]), 4)  # 4.303 * 0.02 / sqrt(3)
    0.0497
    """
    kept = [v for v in values if v is not None and math.isfinite(v)]
    if len(kept) < 2:
        return math.nan
    t = T_975[len(kept) - 2] if len(kept) - 1 <= len(T_975) else 1.96
    return t * statistics.stdev(kept) / math.sqrt(len(kept))


def trapezoid_mean(xs, ys):
    """The area under `ys` against `xs` (trapezoids) divided by the range of `xs`.

    >>> trapezoid_mean([0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    0.5
    """
    if len(xs) < 2 or xs[-1] == xs[0]:
        return math.nan
    area = sum((ys[i] + ys[i + 1]) * (xs[i + 1] - xs[i]) / 2 for i in range(len(xs) - 1))
    return area / (xs[-1] - xs[0])


def seed_measures(rows, pair, reference, seed, modalities, sigmas, split, missing_rates=()):
    """The measures of one pair and seed (module docstring), or None without its
    clean row: `relative_robustness`, `effective_robustness` (means over
    `modalities`), `missing_kept_share`, `missing_mean_f1`, `missing_rate_auc`."""
    def by_condition(name):
        return {r["condition"]: r["mean_f1"] for r in rows
                if r["pair"] == name and r["seed"] == seed and r["split"] == split}

    own, ref = by_condition(pair), by_condition(reference)
    if "clean" not in own:
        return None
    levels = [0.0, *sigmas]
    xs = [level / max(levels) for level in levels]

    def curve(f1s, modality):
        if "clean" not in f1s:
            return None
        f = [f1s["clean"], *(f1s.get(f"noise:{modality}:{s:g}", math.nan) for s in sigmas)]
        return None if any(v is None or math.isnan(v) for v in f) else f

    relative, effective = [], []
    for modality in modalities:
        f, r = curve(own, modality), curve(ref, modality)
        if f is None:
            continue
        relative.append(trapezoid_mean(xs, f))
        if r is not None:
            effective.append(_mean([(f[i] - f[0]) - (r[i] - r[0]) for i in range(1, len(f))]))
    missing = [own[c] for c in own if c.startswith("missing:")]
    rates = sorted(missing_rates)
    rate_f1 = [own.get(f"missing_rate:{r:g}", math.nan) for r in rates]
    return {"relative_robustness": _mean(relative),
            "effective_robustness": _mean(effective),
            "missing_kept_share": (_mean(missing) / own["clean"]
                                   if missing and own["clean"] > 0 else math.nan),
            "missing_mean_f1": _mean(missing),
            "missing_rate_auc": (trapezoid_mean(rates, rate_f1)
                                 if not any(v is None for v in rate_f1) else math.nan)}


def _per_seed(rows, pairs, modalities, sigmas, split, missing_rates=()):
    seeds = sorted({r["seed"] for r in rows})
    return {pair: [m for seed in seeds
                   if (m := seed_measures(rows, pair, pairs[-1], seed, modalities, sigmas,
                                          split, missing_rates)) is not None]
            for pair in pairs}


def robustness_measures(rows, pairs, modalities, sigmas, split):
    """Relative and effective robustness (module docstring) per pair, and the
    mean F1 kept with a modality missing as a share of clean F1 (means over seeds)."""
    result = {}
    for pair, measures in _per_seed(rows, pairs, modalities, sigmas, split).items():
        result[pair] = {key: _mean([m[key] for m in measures]) for key in
                        ("relative_robustness", "effective_robustness", "missing_kept_share")}
        result[pair]["reference"] = pairs[-1]
    return result


UNDEFINED_REASONS = {
    "missing_rate_auc": "needs two --missing-rates or more",
    "relative_robustness": "needs a vector modality with its noise conditions",
    "effective_robustness": "needs noise conditions of this pair and the reference",
    "missing_mean_f1": "needs missing:<modality> conditions"}
SUMMARY_MEASURES = ("missing_rate_auc", "relative_robustness", "effective_robustness",
                    "missing_mean_f1")


def summary(rows, pairs, modalities, sigmas, split, missing_rates=()):
    """`[{"split", "pair", "measure", "mean", "ci95", "seeds"}]`: each measure's mean
    over seeds and the t-interval half-width (module docstring)."""
    lines = []
    for pair, measures in _per_seed(rows, pairs, modalities, sigmas, split,
                                    missing_rates).items():
        for measure in SUMMARY_MEASURES:
            values = [m[measure] for m in measures]
            line = {"split": split, "pair": pair, "measure": measure,
                    "mean": _mean(values), "ci95": ci95(values),
                    "seeds": sum(1 for v in values if math.isfinite(v))}
            if math.isnan(line["mean"]):  # written as null, with the reason
                line["mean_undefined"] = UNDEFINED_REASONS[measure]
            if math.isnan(line["ci95"]):
                line["ci95_undefined"] = "needs two seeds or more with a value"
            lines.append(line)
    return lines


def summary_table(lines, pairs):
    """A markdown table of `summary` lines: mean ± ci95 per pair and measure."""
    out = ["| pair | " + " | ".join(m.replace("_", " ") for m in SUMMARY_MEASURES) + " |",
           "|---|" + "---|" * len(SUMMARY_MEASURES)]
    for pair in pairs:
        cells = []
        for measure in SUMMARY_MEASURES:
            line = next(x for x in lines if x["pair"] == pair and x["measure"] == measure)
            if math.isnan(line["mean"]):
                cells.append("–")
            else:
                cells.append(f"{line['mean']:.3f}" + ("" if math.isnan(line["ci95"])
                                                       else f" ± {line['ci95']:.3f}"))
        out.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def dropout_grid(rows, pairs, dropouts, missing_rates, split):
    """The train x test grid: `[{"split", "pair", "train_dropout", "missing_rate",
    "mean", "ci95", "seeds"}]`, the mean F1 over seeds of `pair` (as given, without
    the `@modality_dropout=` suffix) trained with each of `dropouts` and scored at
    each missing rate, and the t 95 % half-width (`ci95`)."""
    lines = []
    for pair in pairs:
        for dropout in dropouts:
            trained = dropout_pair(pair, dropout)
            for rate in sorted(missing_rates):
                values = [r["mean_f1"] for r in rows if r["pair"] == trained
                          and r["split"] == split
                          and r["condition"] == f"missing_rate:{rate:g}"]
                lines.append({"split": split, "pair": pair, "train_dropout": dropout,
                              "missing_rate": rate, "mean": _mean(values),
                              "ci95": ci95(values),
                              "seeds": sum(1 for v in values
                                           if v is not None and math.isfinite(v))})
    return lines


def _mean_ci(mean, half):
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean:.3f}" + ("" if half is None or math.isnan(half) else f" ± {half:.3f}")


def grid_table(grid, summary_lines, pair, dropouts, missing_rates, split):
    """A markdown table of `dropout_grid` lines for `pair`: one row per train
    dropout, one column per missing rate, and the `missing_rate_auc` of `summary`."""
    rates = sorted(missing_rates)
    out = ["| train modality_dropout | " + " | ".join(f"missing rate {r:g}" for r in rates)
           + " | missing rate auc |", "|---|" + "---|" * (len(rates) + 1)]
    for dropout in dropouts:
        cells = []
        for rate in rates:
            line = next(x for x in grid if x["pair"] == pair and x["split"] == split
                        and x["train_dropout"] == dropout and x["missing_rate"] == rate)
            cells.append(_mean_ci(line["mean"], line["ci95"]))
        auc = next((x for x in summary_lines if x["pair"] == dropout_pair(pair, dropout)
                    and x["measure"] == "missing_rate_auc" and x["split"] == split), None)
        cells.append("–" if auc is None else _mean_ci(auc["mean"], auc["ci95"]))
        out.append(f"| {dropout:g} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def dropout_choice(rows, pair, dropouts, missing_rates, expected_rate, split="validation"):
    """The train dropout of `pair` with the highest mean F1 over the missing rates
    up to `expected_rate` on `split`, and its margin over the runner-up.

    Per seed and train dropout the score is the trapezoid mean of mean F1 over the
    rates <= `expected_rate` (the one rate's F1 when only one is); `scores` holds
    its mean over seeds, `ci95` the t 95 % half-width, and `margin` the mean over
    seeds of the chosen dropout's score minus the runner-up's (paired: the same
    seed, so the same split and initialisation seed) with `margin_ci95`.

    Returns `{"split", "pair", "expected_missing_rate", "rates", "chosen",
    "runner_up", "margin", "margin_ci95", "scores": {dropout: mean},
    "ci95": {dropout: half-width}}`, or None when no rate is <= `expected_rate`.

    >>> rows = [{"pair": dropout_pair("p", d), "seed": s, "split": "validation",
    ...          "condition": f"missing_rate:{r:g}", "mean_f1": f + s / 100}
    ...         for s in (0, 1) for d, r, f in [(0, 0, 0.9), (0, 0.5, 0.5),
    ...                                          (0.5, 0, 0.85), (0.5, 0.5, 0.7)]]
    >>> choice = dropout_choice(rows, "p", [0, 0.5], [0, 0.5], 0.5)
    >>> choice["chosen"], round(choice["margin"], 3), choice["margin_ci95"]
    (0.5, 0.075, 0.0)
    >>> dropout_choice(rows, "p", [0, 0.5], [0, 0.5], 0)["chosen"]
    0
    """
    rates = [r for r in sorted(missing_rates) if r <= expected_rate]
    if not rates:
        return None
    seeds = sorted({r["seed"] for r in rows})
    per_seed = {}
    for dropout in dropouts:
        trained = dropout_pair(pair, dropout)
        per_seed[dropout] = []
        for seed in seeds:
            f1 = {r["condition"]: r["mean_f1"] for r in rows if r["pair"] == trained
                  and r["seed"] == seed and r["split"] == split}
            values = [f1.get(f"missing_rate:{rate:g}", math.nan) for rate in rates]
            values = [math.nan if v is None else v for v in values]
            per_seed[dropout].append(values[0] if len(rates) == 1
                                     else trapezoid_mean(rates, values))
    scores = {d: _mean(v) for d, v in per_seed.items()}
    ranked = sorted((d for d in dropouts if math.isfinite(scores[d])),
                    key=scores.get, reverse=True)
    chosen = ranked[0] if ranked else None
    runner_up = ranked[1] if len(ranked) > 1 else None
    margin = margin_ci = math.nan
    if runner_up is not None:
        differences = [a - b for a, b in zip(per_seed[chosen], per_seed[runner_up])]
        margin, margin_ci = _mean(differences), ci95(differences)
    return {"split": split, "pair": pair, "expected_missing_rate": expected_rate,
            "rates": rates, "chosen": chosen, "runner_up": runner_up, "margin": margin,
            "margin_ci95": margin_ci, "scores": scores,
            "ci95": {d: ci95(v) for d, v in per_seed.items()}}


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


def plot_missing_rates(rows, pairs, missing_rates, split, path):
    """Mean F1 against missing rate, one line per pair, with a band of the t 95 %
    interval over seeds (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot written", file=sys.stderr)
        return None
    rates = sorted(missing_rates)
    fig, axis = plt.subplots(figsize=(6.5, 4))
    for pair in pairs:
        values = [[r["mean_f1"] for r in rows if r["pair"] == pair and r["split"] == split
                   and r["condition"] == f"missing_rate:{rate:g}"] for rate in rates]
        means = np.array([_mean(v) for v in values])
        half = np.nan_to_num(np.array([ci95(v) for v in values]))
        line, = axis.plot(rates, means, marker="o", label=pair)
        axis.fill_between(rates, means - half, means + half, color=line.get_color(),
                          alpha=0.2, linewidth=0)
    axis.set_xlabel("missing rate (each modality of each row masked with this probability)")
    axis.set_ylabel(f"mean F1 ({split} split)")
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------- CLI


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
    p.add_argument("--missing-rates", default="",
                   help="Missing rates r in [0, 1] (comma-separated): rows 'missing_rate:<r>', "
                        "each modality of each row masked with probability r (module "
                        "docstring). Default: none")
    p.add_argument("--subsets", action="store_true",
                   help="Rows 'subset:<a>+<b>': every non-empty proper subset of the "
                        "modalities kept, the others masked (M <= 6).")
    p.add_argument("--train-dropouts", default="",
                   help="TrainConfig.modality_dropout values in [0, 1) (comma-separated): "
                        "each pair trained once per value, named "
                        "'PAIR@modality_dropout=VALUE', and the train x test grid against "
                        "--missing-rates reported. Default: none")
    p.add_argument("--expected-missing-rate", type=float, default=None,
                   help="With --train-dropouts: name the train dropout of highest "
                        "validation mean F1 over the missing rates up to this one.")
    p.add_argument("--limit", type=int, default=None,
                   help="For 'clothing' only: a random subset of this many rows.")
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
    try:
        args.missing_rates = sorted({float(r) for r in args.missing_rates.split(",")
                                     if r.strip()})
    except ValueError:
        p.error(f"--missing-rates: expected numbers. Received: {args.missing_rates!r}")
    if any(not 0 <= r <= 1 for r in args.missing_rates):
        p.error(f"--missing-rates: expected numbers in [0, 1]. Received: {args.missing_rates}")
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1. Received: {args.seeds}")
    try:
        args.train_dropouts = sorted({float(d) for d in args.train_dropouts.split(",")
                                      if d.strip()})
    except ValueError:
        p.error(f"--train-dropouts: expected numbers. Received: {args.train_dropouts!r}")
    if any(not 0 <= d < 1 for d in args.train_dropouts):
        p.error(f"--train-dropouts: expected numbers in [0, 1). "
                f"Received: {args.train_dropouts}")
    if args.train_dropouts and len(args.missing_rates) < 1:
        p.error("--train-dropouts: the grid's columns are --missing-rates; give them "
                "(e.g. --missing-rates 0,0.3,0.6,0.9). Received: none")
    if args.expected_missing_rate is not None:
        if not args.train_dropouts:
            p.error("--expected-missing-rate chooses among --train-dropouts; give them. "
                    f"Received: --expected-missing-rate {args.expected_missing_rate:g} alone")
        if not 0 <= args.expected_missing_rate <= 1:
            p.error("--expected-missing-rate: expected a number in [0, 1]. "
                    f"Received: {args.expected_missing_rate}")
        if args.split == "test":
            p.error("--expected-missing-rate chooses on the validation split: give "
                    "--split validation or --split both. Received: --split test")
    overrides = parse_settings(p, args.set)
    if args.modality_dropout is not None:
        overrides["modality_dropout"] = args.modality_dropout
    if args.one_vs_rest:
        overrides["one_vs_rest"] = True
    args.overrides = overrides
    args.base_pairs = list(args.pairs)
    if args.train_dropouts:
        if DROPOUT_FIELD in overrides:
            p.error(f"--train-dropouts sets {DROPOUT_FIELD} per run; leave out "
                    f"--modality-dropout and --set {DROPOUT_FIELD}. "
                    f"Received: {DROPOUT_FIELD}={overrides[DROPOUT_FIELD]!r}")
        try:
            args.pairs = expand_train_dropouts(args.pairs, args.train_dropouts)
        except ValueError as error:
            p.error(str(error))
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
        dataset = load_dataset(args.dataset, seed=seed, limit=args.limit)
        stds = training_std(dataset)
        try:
            names = conditions(dataset, args.sigmas, args.missing_rates, args.subsets)
        except ValueError as error:
            raise SystemExit(f"python -m benchmarks.robustness: error: {error}") from None
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
    summaries = {split: summary(rows, args.pairs, modalities, args.sigmas, split,
                                args.missing_rates) for split in splits}
    result = {"rows": rows, "robustness": measures,
              "summary": [line for split in splits for line in summaries[split]],
              "runs": runs,
              "settings": {"dataset": args.dataset, "pairs": args.pairs, "seeds": args.seeds,
                           "sigmas": args.sigmas, "overrides": args.overrides,
                           "missing_rates": args.missing_rates, "subsets": args.subsets,
                           "train_dropouts": args.train_dropouts,
                           "expected_missing_rate": args.expected_missing_rate,
                           "limit": args.limit}}
    grids = {}
    if args.train_dropouts:
        grids = {split: dropout_grid(rows, args.base_pairs, args.train_dropouts,
                                     args.missing_rates, split) for split in splits}
        result["grid"] = [line for split in splits for line in grids[split]]
    choices = []
    if args.expected_missing_rate is not None:
        choices = [c for pair in args.base_pairs
                   if (c := dropout_choice(rows, pair, args.train_dropouts,
                                           args.missing_rates,
                                           args.expected_missing_rate)) is not None]
        result["dropout_choice"] = choices
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
        report += ["", f"Summary (mean ± t 95 % half-width over {args.seeds} seeds; "
                   f"effective robustness against {args.pairs[-1]}):", "",
                   summary_table(summaries[split], args.pairs), ""]
        for pair in (args.base_pairs if args.train_dropouts else []):
            report += [(f"Train x test grid of {pair}, {split} split: mean F1 ± t 95 % "
                        f"half-width over {args.seeds} seeds, per train modality_dropout "
                        "(rows) and test missing rate (columns):"), "",
                       grid_table(grids[split], summaries[split], pair, args.train_dropouts,
                                  args.missing_rates, split), ""]
        plot(rows, args.pairs, names, split,
             os.path.join(args.output_dir, f"robustness_{split}.png"))
        if len(args.missing_rates) > 1:
            plot_missing_rates(rows, args.pairs, args.missing_rates, split,
                               os.path.join(args.output_dir,
                                            f"robustness_missing_rate_{split}.png"))
    for choice in choices:
        scores = ", ".join(f"{d:g}: {_mean_ci(v, choice['ci95'][d])}"
                           for d, v in choice["scores"].items())
        chosen = "none" if choice["chosen"] is None else f"{choice['chosen']:g}"
        rates = ", ".join(f"{r:g}" for r in choice["rates"])
        margin = ("" if choice["runner_up"] is None else
                  f"; ahead of {choice['runner_up']:g} by {choice['margin']:+.3f}"
                  + ("" if math.isnan(choice["margin_ci95"])
                     else f" ± {choice['margin_ci95']:.3f}") + " paired over seeds")
        report += [(f"Chosen on validation for up to {args.expected_missing_rate:g} of "
                    f"the modalities missing per row, {choice['pair']}: train "
                    f"modality_dropout={chosen}{margin} (validation mean F1 over missing "
                    f"rates {rates}, trapezoid mean ± t 95 %, per train dropout: "
                    f"{scores})."), ""]
    text = "\n".join(report)
    atomic_write_text(os.path.join(args.output_dir, "robustness.md"), text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
