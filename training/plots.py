"""Pictures of a run: task weights over epochs and fusion weights per task class."""

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend, or an ImportError that says what to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("Plotting needs matplotlib: pip install matplotlib") from error
    return plt


def save_png(figure, path, right=1.0):
    """Writes `figure` to `path` through a temporary file and a rename, then closes it."""
    from hgfn_keras.utils.io_utils import StagedOutput

    plt = pyplot()
    figure.tight_layout(rect=(0, 0, right, 1))
    try:
        with StagedOutput(path, "the picture") as staging:
            figure.savefig(staging, dpi=100, format="png")
    finally:
        plt.close(figure)
    return path


def plot_fusion_weights_by_class(weights, labels, y, task, path):
    """Mean vertex weights of each level, per class of one task, as grouped bars.

    Args:
        weights: per level, `[N, V_k]` (see `hgfn_keras.evaluation.inspection.fusion_weights`).
        labels: per level, the vertex names.
        y: the task's labels `[N]` (-1 rows are left out).
        task: the `Task` (its class names label the bars).
        path: the PNG to write.
    """
    plt = pyplot()
    y = np.asarray(y).reshape(-1)
    classes = [c for c in range(task.num_classes) if np.any(y == c)]
    names = task.class_names or tuple(str(c) for c in range(task.num_classes))
    figure, axes = plt.subplots(1, len(weights), figsize=(4.5 * len(weights), 3.8),
                                squeeze=False)
    for level, (w, vertex_names) in enumerate(zip(weights, labels)):
        ax = axes[0, level]
        width = 0.8 / max(len(classes), 1)
        positions = np.arange(len(vertex_names))
        for k, c in enumerate(classes):
            ax.bar(positions + k * width, w[y == c].mean(axis=0), width, label=names[c])
        ax.set_xticks(positions + 0.4 - width / 2)
        ax.set_xticklabels(vertex_names, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"level {level + 1}")
        ax.set_ylabel("mean vertex weight")
    handles, names = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, names, title=task.name, fontsize=7, loc="center right")
    figure.suptitle(f"Fusion vertex weights by {task.name} class (test split)")
    return save_png(figure, path, right=0.9)
