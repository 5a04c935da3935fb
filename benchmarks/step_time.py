"""Training-step time of HGFN+DMTL and the baselines, as ratios to HGFN+LSEW.

    python -m benchmarks.step_time [--batch-size 128] [--repeats 30] [--xla]
        [--widths clothing|paper] [--intra-op-threads N] [--inter-op-threads N]

Builds each variant on the embedded dataset's fusion widths (review 64, title
64, metadata 2; tasks of 2, 5 and 6 classes), or with `--widths paper` on the
paper's (image 2,048, text 1,024), warms it up, then times `train_on_batch` in
interleaved rounds. Variants: HGFN+LSEW (the baseline), HGFN+DMTL (gradient
norms on each task's last layer, the default), HGFN+DMTL with GradNorm's last
shared layer, HGFN+GradNorm (shared layer), HGFN with uncertainty weighting, DWA,
MGDA-UB (`moo`) and FAMO, CFC+LSEW; on request
HGFN(pad)+LSEW (zero-padding at any width) and HGFN+DMTL(paper) (`preset="paper"`,
the paper's exact reading, which was the default before issue 21: padded to the
widest modality, no kept modality vectors, DMTL re-balanced, no modality
dropout). Every other variant takes the package's preset. With `--xla` every variant is timed twice,
compiled with `jit_compile=False` and `True`, and the table adds the XLA/off
ratio. Prints JSON and a table.
"""

import argparse

import keras

from benchmarks.common import (
    CLOTHING_MODALITIES,
    CLOTHING_TASKS,
    WIDTHS,
    apply_threads,
    interleaved_medians,
    report,
    synthetic_batch,
    thread_options,
)
from hgfn_keras import build_model

BASELINE = "hgfn+lsew"
VARIANTS = {
    "hgfn+lsew": {"fusion": "hgfn", "mtl": "lsew"},
    "hgfn+dmtl": {"fusion": "hgfn", "mtl": "dmtl"},
    "hgfn+dmtl(shared)": {"fusion": "hgfn", "mtl": "dmtl", "shared_units": 64,
                          "mtl_kwargs": {"grad_norm_layer": "shared"}},
    "hgfn+gradnorm(shared)": {"fusion": "hgfn", "mtl": "gradnorm", "shared_units": 64},
    "hgfn+uncertainty": {"fusion": "hgfn", "mtl": "uncertainty"},
    "hgfn+dwa": {"fusion": "hgfn", "mtl": "dwa"},
    "hgfn+moo": {"fusion": "hgfn", "mtl": "moo"},
    "hgfn+famo": {"fusion": "hgfn", "mtl": "famo"},
    "cfc+lsew": {"fusion": "cfc", "mtl": "lsew"},
    "hgfn(pad)+lsew": {"fusion": "hgfn", "mtl": "lsew", "fusion_kwargs": {"alignment": "pad"}},
    # The paper's exact reading (the package's default before issue 21).
    "hgfn+dmtl(paper)": {"fusion": "hgfn", "mtl": "dmtl", "preset": "paper"},
    # Ensembles of the heads (build_model(ensemble=k)); what each k costs.
    **{f"hgfn+dmtl(ensemble={k})": {"fusion": "hgfn", "mtl": "dmtl", "ensemble": k}
       for k in (4, 8, 16, 32)},
}
DEFAULT_VARIANTS = [v for v in VARIANTS
                    if v not in ("hgfn(pad)+lsew", "hgfn+dmtl(paper)") and "ensemble" not in v]


def make_model(variant, jit_compile=False, modalities=CLOTHING_MODALITIES,
               tasks=CLOTHING_TASKS, variants=VARIANTS, **extra):
    """A compiled model of `variant` (a key of `variants`), seeded."""
    keras.utils.set_random_seed(0)
    model = build_model(modalities, tasks, **dict(variants[variant], **extra))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    return model


def time_steps(models, x, y, steps, repeats):
    """Median seconds per `train_on_batch` of each `{name: model}`, interleaved."""
    def runner(model):
        def run():
            for _ in range(steps):
                model.train_on_batch(x, y)
            return steps
        return run

    for model in models.values():
        model.set_task_counts(y)
    return interleaved_medians({n: runner(m) for n, m in models.items()}, repeats)[0]


def main(argv=None, variants=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed sample")
    parser.add_argument("--xla", action="store_true",
                        help="also time every variant with jit_compile=True")
    parser.add_argument("--variants", nargs="*", default=variants or DEFAULT_VARIANTS,
                        choices=list(VARIANTS))
    parser.add_argument("--widths", default="clothing", choices=list(WIDTHS),
                        help="the modalities' widths: the embedded dataset's or the paper's")
    thread_options(parser)
    args = parser.parse_args(argv)
    threads = apply_threads(args)
    names = args.variants if BASELINE in args.variants else [BASELINE, *args.variants]

    modalities = WIDTHS[args.widths]
    x, y = synthetic_batch(modalities, CLOTHING_TASKS, args.batch_size)
    models = {name: make_model(name, modalities=modalities) for name in names}
    if args.xla:
        models.update({f"{name}+xla": make_model(name, jit_compile=True, modalities=modalities)
                       for name in names})
    medians = time_steps(models, x, y, args.steps, args.repeats)
    base = medians[BASELINE]
    result = {
        "widths": {m.name: m.width for m in modalities}, "threads": threads,
        "parameters": {n: models[n].count_params() for n in names},
        "batch_size": args.batch_size, "repeats": args.repeats, "steps": args.steps,
        "median_step_ms": {k: round(v * 1e3, 3) for k, v in medians.items()},
        f"ratio_to_{BASELINE}": {k: round(v / base, 3) for k, v in medians.items()},
    }
    columns = ["variant", "parameters", "median step (ms)", "ratio to HGFN+LSEW"]
    rows = [[n, models[n].count_params(), medians[n] * 1e3, medians[n] / base] for n in names]
    if args.xla:
        result["xla_over_off"] = {n: round(medians[f"{n}+xla"] / medians[n], 3) for n in names}
        columns += ["XLA step (ms)", "XLA / off"]
        rows = [r + [medians[f"{r[0]}+xla"] * 1e3, medians[f"{r[0]}+xla"] / medians[r[0]]]
                for r in rows]
    if "cfc+lsew" in names:  # the issue's figure: HGFN's step over CFC's
        cfc = medians["cfc+lsew"]
        result["ratio_to_cfc+lsew"] = {k: round(v / cfc, 3) for k, v in medians.items()}
        columns.insert(4, "ratio to CFC+LSEW")
        rows = [r[:4] + [medians[r[0]] / cfc] + r[4:] for r in rows]
    return report(result, columns, rows)


if __name__ == "__main__":
    main()
