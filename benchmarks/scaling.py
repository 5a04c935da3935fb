"""Training-step time of HGFN in the number of modalities M, per vertex.

    python -m benchmarks.scaling [--batch-size 128] [--repeats 15] [--width 32]

For M = 2, 3, 4, 6 at max_order 3 (min(M, 3)): 3, 12, 34 and 141 vertices. Each
model has M modalities of `--width` features and the embedded dataset's three
tasks, trained with DMTL; `train_on_batch` is timed in interleaved rounds. Every
level runs its vertices as one batch (one vertex network call, one similarity
call per level), so the cost per vertex must not grow with M: the table gives
the step time, the step time per vertex, its ratio to M = 3's, and the marginal
cost of a vertex (the step time's slope between consecutive M).
"""

import argparse

from benchmarks.common import CLOTHING_TASKS, interleaved_medians, report, synthetic_batch
from benchmarks.step_time import make_model
from hgfn_keras import Modality
from hgfn_keras.fusion.graph import count_vertices

MODALITY_COUNTS = (2, 3, 4, 6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed sample")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--mtl", default="dmtl")
    parser.add_argument("--xla", action="store_true", help="compile with jit_compile=True")
    args = parser.parse_args(argv)

    models, batches, vertices = {}, {}, {}
    for m in MODALITY_COUNTS:
        modalities = [Modality(f"m{i}", width=args.width) for i in range(m)]
        name = f"M={m}"
        vertices[name] = sum(count_vertices(m, min(m, 3)))
        variant = {name: {"fusion": "hgfn", "mtl": args.mtl,
                          "fusion_kwargs": {"max_order": min(m, 3)}}}
        models[name] = make_model(name, jit_compile=args.xla, modalities=modalities,
                                  variants=variant)
        batches[name] = synthetic_batch(modalities, CLOTHING_TASKS, args.batch_size)

    def runner(name):
        model, (x, y) = models[name], batches[name]

        def run():
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            return args.steps
        return run

    for name, model in models.items():
        model.set_task_counts(batches[name][1])
    medians = interleaved_medians({n: runner(n) for n in models}, args.repeats)[0]
    per_vertex = {n: medians[n] / vertices[n] for n in models}
    names = list(models)
    marginal = {names[0]: None}
    for a, b in zip(names, names[1:]):
        marginal[b] = (medians[b] - medians[a]) / (vertices[b] - vertices[a])
    result = {
        "batch_size": args.batch_size, "repeats": args.repeats, "width": args.width,
        "mtl": args.mtl, "xla": args.xla, "vertices": vertices,
        "median_step_ms": {n: round(v * 1e3, 3) for n, v in medians.items()},
        "per_vertex_ms": {n: round(v * 1e3, 4) for n, v in per_vertex.items()},
        "per_vertex_ratio_to_M=3": {n: round(v / per_vertex["M=3"], 3)
                                    for n, v in per_vertex.items()},
        "marginal_ms_per_vertex": {n: None if v is None else round(v * 1e3, 4)
                                   for n, v in marginal.items()},
    }
    rows = [[n, vertices[n], medians[n] * 1e3, per_vertex[n] * 1e3,
             per_vertex[n] / per_vertex["M=3"],
             "-" if marginal[n] is None else f"{marginal[n] * 1e3:.4f}"] for n in names]
    return report(result, ["M", "vertices", "step (ms)", "per vertex (ms)",
                           "per vertex / M=3", "marginal ms/vertex"], rows)


if __name__ == "__main__":
    main()
