"""Draw the task weights over epochs (the `task_weights.csv` a DMTL run writes) as a PNG.

    python -m training.plot_task_weights runs/quickstart/task_weights.csv \\
        --output runs/quickstart/task_weights.png

Needs matplotlib (`pip install matplotlib`; the test requirements include it).
"""

import argparse
import csv
import os
import sys

from training._cli import run_main
from training.plots import pyplot, save_png


def read_task_weights(path):
    """Returns `(epochs, {task: [weight per epoch]})` from a task_weights.csv.

    The weights are those each next epoch starts from (the `rebalanced` rows;
    a file without a `phase` column holds only those).
    """
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:1] != ["epoch"] or len(rows[0]) < 2:
        raise ValueError(
            f"{path} is not a task_weights.csv: its first line must be 'epoch,<task>,...'. "
            f"Received: {rows[0] if rows else 'an empty file'}"
        )
    header = rows[0]
    phased = header[1:2] == ["phase"]
    first = 2 if phased else 1
    tasks = [t for t in header[first:] if not t.startswith(("loss_", "chance_"))]
    epochs, weights = [], {t: [] for t in tasks}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {number}: expected {len(header)} values. "
                             f"Received: {row}")
        if phased and row[1] != "rebalanced":
            continue
        epochs.append(int(row[0]))
        for task, value in zip(tasks, row[first:]):
            weights[task].append(float(value))
    return epochs, weights


def plot_task_weights(path, output):
    """Writes a line plot of each task's weight per epoch to `output` (PNG)."""
    plt = pyplot()
    epochs, weights = read_task_weights(path)
    figure, axes = plt.subplots(figsize=(6, 3.5))
    for task, values in weights.items():
        axes.plot(epochs, values, marker="o", label=task)
    axes.set_xlabel("epoch")
    axes.set_ylabel("task weight (sum = T)")
    axes.set_title("DMTL task weights at each epoch's end")
    axes.legend()
    return save_png(figure, output)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.plot_task_weights",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("csv", help="a task_weights.csv written by training.train")
    parser.add_argument("--output", default=None, help="PNG path. Default: beside the CSV")
    args = parser.parse_args(argv)
    output = args.output or os.path.splitext(args.csv)[0] + ".png"
    return run_main(lambda: print(f"Wrote {plot_task_weights(args.csv, output)}"))


if __name__ == "__main__":
    sys.exit(main())
