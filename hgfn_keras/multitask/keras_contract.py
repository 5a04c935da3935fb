"""What `MultiTaskModel` does with the Keras arguments it cannot honour: it says so.

The model computes its own per-task losses (`MultiTaskLoss`, weighted by its task
weighting) and logs each task's loss and weight; a `loss` or `metrics` given to
`compile` would be ignored, and Keras' `Model.export` writes a SavedModel without
the package's serving signature. Each is refused with what to use instead.
"""


def check_compile_arguments(loss=None, loss_weights=None, metrics=None,
                            weighted_metrics=None):
    """Raises for a `compile` argument that a `MultiTaskModel` would ignore.

    >>> check_compile_arguments(metrics=["accuracy"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: MultiTaskModel logs each task's loss and weight; ... Received: metrics=['accuracy'], weighted_metrics=None
    """
    if loss is not None or loss_weights is not None:
        raise ValueError("MultiTaskModel computes its own loss (each task's focal loss, β "
                         "from `beta=`, weighted by its task weighting): `compile` takes no "
                         f"`loss` or `loss_weights`. Received: loss={loss!r}, "
                         f"loss_weights={loss_weights!r}")
    if metrics is not None or weighted_metrics is not None:
        raise ValueError(
            "MultiTaskModel logs each task's loss and weight; for per-task F1, MAP and "
            "accuracy pass `hgfn_keras.ValidationMetrics` to `fit`, or after training call "
            "`hgfn_keras.recipe.evaluate(model, (x, y))`. Received: "
            f"metrics={metrics!r}, "
            f"weighted_metrics={weighted_metrics!r}")


def refuse_export(filepath):
    """Raises: a `MultiTaskModel` is exported with `hgfn_keras.export_saved_model`."""
    raise ValueError("Export a MultiTaskModel for TF Serving with `hgfn_keras."
                     "export_saved_model(model, export_dir)` (a version folder whose "
                     "signature takes each modality by name and `modality_mask`). "
                     f"Received: filepath={filepath!r}")
