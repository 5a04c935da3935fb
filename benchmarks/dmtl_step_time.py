"""Training-step time of HGFN+DMTL against HGFN+LSEW, measured side by side.

    python -m benchmarks.dmtl_step_time [--batch-size 128] [--repeats 30]

Builds the same HGFN network three times (LSEW; DMTL with the gradient norms on
each task's last layer, the default; DMTL with GradNorm's last shared layer) on
the embedded dataset's fusion widths (review 64, title 64, metadata 2; tasks of 2,
5 and 6 classes), warms each up, then times `train_on_batch` in interleaved
rounds so that machine noise hits all of them alike. Prints the median step times
and their ratios to LSEW, as JSON and as a table. Absolute times depend on the
machine; the ratios are the result.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hgfn_keras import Modality, Task, build_model  # noqa: E402

MODALITIES = [Modality("review", width=64), Modality("title", width=64),
              Modality("metadata", width=2)]
TASKS = [Task("recommended", 2), Task("rating", 5), Task("department", 6)]
VARIANTS = {
    "hgfn+lsew": {"mtl": "lsew"},
    "hgfn+dmtl": {"mtl": "dmtl"},
    "hgfn+dmtl(shared)": {"mtl": "dmtl", "mtl_kwargs": {"grad_norm_layer": "shared"},
                          "shared_units": 64},
}


def make_model(variant):
    keras.utils.set_random_seed(0)
    kwargs = dict(VARIANTS[variant])
    if variant == "hgfn+lsew":
        kwargs["shared_units"] = None
    model = build_model(MODALITIES, TASKS, fusion="hgfn", **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed sample")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    n = args.batch_size
    x = {m.name: rng.normal(size=(n, m.width)).astype("float32") for m in MODALITIES}
    x["modality_mask"] = np.ones((n, len(MODALITIES)), "float32")
    y = {t.name: rng.integers(0, t.num_classes, n).astype("int32") for t in TASKS}
    models = {name: make_model(name) for name in VARIANTS}
    for model in models.values():
        model.set_task_counts(y)
        for _ in range(5):  # warm-up: tracing and the first allocations
            model.train_on_batch(x, y)
    samples = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():  # interleaved rounds
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            samples[name].append((time.perf_counter() - start) / args.steps)
    medians = {name: statistics.median(times) for name, times in samples.items()}
    base = medians["hgfn+lsew"]
    result = {
        "batch_size": n,
        "repeats": args.repeats,
        "median_step_ms": {k: round(v * 1e3, 3) for k, v in medians.items()},
        "ratio_to_hgfn+lsew": {k: round(v / base, 3) for k, v in medians.items()},
    }
    print(json.dumps(result, indent=2))
    print(f"\n{'variant':<20} {'median step (ms)':>17} {'ratio to LSEW':>14}")
    for name in models:
        print(f"{name:<20} {medians[name] * 1e3:>17.3f} {medians[name] / base:>14.3f}")
    return result


if __name__ == "__main__":
    main()
