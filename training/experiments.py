"""Run the paper's comparison: fusions × task weightings × seeds, and print its tables.

    python -m training.experiments --dataset clothing --fusions cfc,tensor,gfn,hgfn \\
        --mtls lsew,moo,mtinet,dmtl --seeds 3 --epochs 12 --output-dir runs/experiments

Every pair runs on the same split for each seed (seeds 0..K-1), through the same
training path as `python -m training.train` (`hgfn_keras.recipe.train_and_evaluate`
with a `TrainConfig`: early stopping on validation loss, test-split metrics). `--pairs cfc+lsew,hgfn+dmtl` runs a subset instead of the
grid; `--paper-rows` runs the eight rows of the paper's Tables I–IV. Writes:

- `DIR/results.csv`: one row per run (fusion, mtl, seed, every metric per task
  and their means, epochs, wall time; an undefined metric is empty), appended as
  each run ends, so a stopped grid keeps what it finished and a rerun skips the
  runs already there (a half line left by a kill is dropped; a run killed while
  training resumes from its last epoch);
- `DIR/results.md`: the paper's Tables I–IV shape (per task, then the means:
  F1 / HL / MAP as mean ± std over seeds) and the Table V shape (per-task
  accuracy);
- `DIR/runs/<fusion>+<mtl>/seed<k>/`: each run's metrics.json, task_weights.csv
  and model.keras, and for graph fusions (hgfn, gfn) PNGs of the task weights and
  of the mean fusion weights per task class (`--plots`).
"""

import argparse
import csv
import io
import math
import os
import sys
import time

from hgfn_keras.recipe.train_config import CHOICES
from training._cli import error_message, run_main, user_errors

FUSION_CHOICES, MTL_CHOICES = list(CHOICES["fusion"]), list(CHOICES["mtl"])

PAPER_ROWS = ["cfc+lsew", "tensor+lsew", "gfn+lsew", "hgfn+lsew", "cfc+moo", "cfc+mtinet",
              "cfc+dmtl", "hgfn+dmtl"]
METRICS = ("f1", "hamming_loss", "map", "accuracy")
DISPLAY = {"cfc": "CFC", "tensor": "Tensor (MATF)", "gfn": "GFN", "hgfn": "HGFN",
           "lsew": "LSEW", "moo": "MOO", "mtinet": "MTI-NET", "dmtl": "DMTL",
           "gradnorm": "GradNorm", "uncertainty": "Uncertainty", "dwa": "DWA",
           "famo": "FAMO"}


def _split(text, allowed, what):
    items = [s.strip().lower() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise ValueError(f"--{what}: unknown {bad or text!r}. Choose from {allowed}.")
    return items


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.experiments",
                                description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="clothing", help="'clothing' or 'npz:PATH'")
    p.add_argument("--fusions", default="cfc,tensor,gfn,hgfn",
                   help=f"Comma-separated, from {FUSION_CHOICES}. Default: %(default)s")
    p.add_argument("--mtls", default="lsew,moo,mtinet,dmtl",
                   help=f"Comma-separated, from {MTL_CHOICES}. Default: %(default)s")
    p.add_argument("--pairs", default=None,
                   help="Comma-separated fusion+mtl pairs, instead of the grid.")
    p.add_argument("--paper-rows", action="store_true",
                   help="Run the paper's eight rows: " + ", ".join(PAPER_ROWS))
    p.add_argument("--seeds", type=int, default=3, help="Seeds 0..K-1. Default: %(default)s")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--limit", type=int, default=None, help="Rows of clothing to use.")
    p.add_argument("--output-dir", default="runs/experiments")
    p.add_argument("--plots", action="store_true",
                   help="Draw task-weight and fusion-weight PNGs for graph-fusion runs.")
    p.add_argument("--train-args", default="",
                   help="Extra training.train arguments for every run, e.g. '--batch-size 64'.")
    args = p.parse_args(argv)
    try:
        if args.pairs or args.paper_rows:
            pairs = PAPER_ROWS if args.paper_rows else [
                s.strip().lower() for s in args.pairs.split(",") if s.strip()]
            for pair in pairs:
                fusion, _, mtl = pair.partition("+")
                if fusion not in FUSION_CHOICES or mtl not in MTL_CHOICES:
                    raise ValueError(f"--pairs: {pair!r} is not <fusion>+<mtl> with a fusion "
                                     f"from {FUSION_CHOICES} and an mtl from {MTL_CHOICES}.")
            args.pair_list = [tuple(p.split("+")) for p in pairs]
        else:
            args.pair_list = [(f, m) for f in _split(args.fusions, FUSION_CHOICES, "fusions")
                              for m in _split(args.mtls, MTL_CHOICES, "mtls")]
    except ValueError as error:
        p.error(str(error))
    if args.seeds < 1 or args.epochs < 1:
        p.error(f"--seeds and --epochs must be positive. Received: {args.seeds}, {args.epochs}")
    return args


def _columns(task_names):
    columns = ["fusion", "mtl", "seed"]
    columns += [f"{t}_{m}" for t in task_names for m in METRICS]
    columns += [f"mean_{m}" for m in METRICS]
    return columns + ["epochs_run", "wall_seconds"]


def _read_rows(path):
    """The complete rows of results.csv, one per run.

    A kill while a row was being appended leaves half a line; a rerun must neither read
    it nor append after it. The half line, a row with too few or too many cells and a
    second row of the same run are dropped, and the file is rewritten without them
    (atomically) before the grid goes on.
    """
    from hgfn_keras.utils.io_utils import atomic_write_text

    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    complete = text[: text.rfind("\n") + 1]  # "" when not even the header is whole
    reader = csv.DictReader(io.StringIO(complete))
    rows, seen = [], set()
    for row in reader:
        key = (row.get("fusion"), row.get("mtl"), row.get("seed"))
        if None in row or None in row.values() or key in seen:
            continue
        seen.add(key)
        rows.append(row)
    if complete != text or len(rows) != reader.line_num - 1:
        out = io.StringIO()
        if reader.fieldnames:
            writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        atomic_write_text(path, out.getvalue())
    return rows


def _append_row(path, columns, row):
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def _number(value):
    """A results.csv cell: 6 decimals, or empty when the metric is undefined (NaN)."""
    return "" if value is None or math.isnan(value) else f"{value:.6f}"


def _cell(values):
    """Mean ± std over seeds of results.csv cells, skipping undefined (empty) ones.

    "n/a" when every seed's value is undefined; "(k of n seeds)" when some are.
    """
    from hgfn_keras.evaluation.report import mean_std_text, seed_statistics

    numbers = [None if v in ("", None) else float(v) for v in values]
    return mean_std_text(seed_statistics(numbers), total=len(values))


def results_markdown(rows, task_names, pairs):
    """The paper's table shapes from the result rows (mean ± std over seeds)."""
    from hgfn_keras.evaluation.report import markdown_table

    def label(fusion, mtl):
        return f"{DISPLAY.get(fusion, fusion)} + {DISPLAY.get(mtl, mtl)}"

    groups = {}
    for row in rows:
        groups.setdefault((row["fusion"], row["mtl"]), []).append(row)
    ordered = [p for p in pairs if p in groups] + [p for p in groups if p not in pairs]
    seeds = sorted({int(r["seed"]) for r in rows})
    lines = [f"Mean ± standard deviation over seeds {seeds} (test split). "
             "F1 and MAP: higher is better; HL (Hamming loss): lower is better. "
             "n/a: undefined (e.g. MAP of a task with no positive test label); a mean ± std "
             "leaves out the seeds where the value is undefined and says over how many.", ""]
    tables = [(f"Task `{t}`", t) for t in task_names] + [("Mean over tasks", "mean")]
    for title, prefix in tables:
        body = [[label(*pair)] + [_cell([r[f"{prefix}_{m}"] for r in groups[pair]])
                                  for m in ("f1", "hamming_loss", "map")] for pair in ordered]
        lines += [f"### {title} (Tables I–IV shape)", "",
                  markdown_table(["Method", "F1", "HL", "MAP"], body), ""]
    body = [[label(*pair)] + [_cell([r[f"{t}_accuracy"] for r in groups[pair]])
                              for t in task_names] for pair in ordered]
    lines += ["### Per-task accuracy (Table V shape)", "",
              markdown_table(["Approach", *task_names], body), ""]
    body = [[label(*pair)] + [_cell([r[key] for r in groups[pair]])
                              for key in ("wall_seconds", "epochs_run")] for pair in ordered]
    lines += ["### Wall time per run (s)", "",
              markdown_table(["Method", "seconds", "epochs"], body)]
    return "\n".join(lines) + "\n"


def _plots(run_dir, args, seed):
    import keras

    from hgfn_keras.data import load_dataset
    from hgfn_keras.evaluation.inspection import fusion_weights
    from training.plot_task_weights import plot_task_weights
    from training.plots import plot_fusion_weights_by_class

    plot_task_weights(os.path.join(run_dir, "task_weights.csv"),
                      os.path.join(run_dir, "task_weights.png"))
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    dataset = load_dataset(args.dataset, seed=seed, limit=args.limit)
    x_test, y_test = dataset.splits["test"]
    weights, labels = fusion_weights(model, x_test)
    for task in dataset.tasks:
        plot_fusion_weights_by_class(weights, labels, y_test[task.name], task,
                                     os.path.join(run_dir, f"fusion_weights_{task.name}.png"))


def run_config(args, fusion, mtl, seed):
    """The `TrainConfig` of one run of the grid (`--train-args` read as
    `training.train` flags, `train.parse_config`: a flag that does not apply is refused)."""
    from training.train import parse_config

    # The paper's MTI-NET row: MTI-Net's heads trained with equal weights.
    weighting = ["--heads", "mtinet", "--mtl", "lsew"] if mtl == "mtinet" else ["--mtl", mtl]
    train_argv = ["--dataset", args.dataset, "--fusion", fusion, *weighting,
                  "--seed", str(seed), "--epochs", str(args.epochs), *args.train_args.split()]
    if args.limit:
        train_argv += ["--limit", str(args.limit)]
    try:
        return parse_config(train_argv)
    except ValueError as error:
        raise ValueError(f"--train-args {args.train_args!r} for {fusion}+{mtl}: {error}") \
            from None


def main(argv=None):
    return run_main(run, parse_args(argv),
                    interrupted="The runs in results.csv are kept: the same command again "
                    "goes on from there.")


def run(args):
    """Trains the grid's missing runs and writes results.csv and results.md."""
    import keras

    from hgfn_keras import recipe
    from hgfn_keras.data import load_dataset
    from hgfn_keras.utils.io_utils import atomic_write_text

    os.makedirs(args.output_dir, exist_ok=True)
    csv_path = os.path.join(args.output_dir, "results.csv")
    rows = _read_rows(csv_path)
    done = {(r["fusion"], r["mtl"], int(r["seed"])) for r in rows}
    runs = [(f, m, s) for s in range(args.seeds) for f, m in args.pair_list]
    started = time.time()
    task_names = None
    for index, (fusion, mtl, seed) in enumerate(runs, start=1):
        tag = f"[{index}/{len(runs)}] {fusion}+{mtl} seed {seed}"
        if (fusion, mtl, seed) in done:
            print(f"{tag}: in results.csv already, skipped", flush=True)
            continue
        run_dir = os.path.join(args.output_dir, "runs", f"{fusion}+{mtl}", f"seed{seed}")
        print(f"{tag}: training (elapsed {time.time() - started:.0f} s)", flush=True)
        run_started = time.time()
        keras.backend.clear_session()
        try:
            config = run_config(args, fusion, mtl, seed)
            keras.utils.set_random_seed(config.seed)
            dataset = load_dataset(config.dataset, seed=config.seed, limit=config.limit,
                                   num_classes=config.num_classes)
            metrics = recipe.train_and_evaluate(config, dataset, run_dir, verbose=0).metrics
        except user_errors() as error:  # one line, naming the run
            raise ValueError(f"{tag}: {error_message(error)}") from error
        wall = time.time() - run_started
        task_names = list(metrics["tasks"])
        row = {"fusion": fusion, "mtl": mtl, "seed": seed,
               "epochs_run": metrics["run"]["epochs_run"], "wall_seconds": round(wall, 1)}
        for t, values in metrics["tasks"].items():
            row.update({f"{t}_{m}": _number(values[m]) for m in METRICS})
        row.update({f"mean_{m}": _number(metrics["mean"][m]) for m in METRICS})
        _append_row(csv_path, _columns(task_names), row)
        rows.append({k: str(v) for k, v in row.items()})
        print(f"{tag}: done in {wall:.0f} s, mean F1 {metrics['mean']['f1']:.3f}", flush=True)
        if args.plots and fusion in ("hgfn", "gfn"):
            _plots(run_dir, args, seed)
    if not rows:
        print("No results.")
        return
    if task_names is None:
        task_names = [c[: -len("_f1")] for c in rows[0] if c.endswith("_f1") and
                      not c.startswith("mean")]
    markdown = results_markdown(rows, task_names, args.pair_list)
    atomic_write_text(os.path.join(args.output_dir, "results.md"), markdown)
    print("\n" + markdown)
    print(f"Wrote {csv_path} and {os.path.join(args.output_dir, 'results.md')} "
          f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
