"""What `MultiTaskModel.fit` does to numpy arguments before Keras' `fit` sees them.

The same helpers as `hgfn_keras.recipe.fit` (which trains from `tf.data` pipelines):
the checks of `feature_checks`, `labels` and `class_weights`, DMTL's N / n_f
(`MultiTaskModel.set_task_counts`) and the normalisation's statistics
(`feature_normalization.adapt_normalization`).
"""

import warnings

from hgfn_keras.multitask.class_weights import (
    check_sample_weight,
    class_weight_to_sample_weight,
)
from hgfn_keras.feature_checks import MASK_KEY, warn_zero_rows


def checked_sample_weight(model, sample_weight, y):
    """Row weights checked against numpy labels (`class_weights.check_sample_weight`:
    finite, >= 0, one per row, for tasks the model has); as given otherwise."""
    if sample_weight is None or not isinstance(y, dict):
        return sample_weight
    num_rows = len(next(iter(y.values()))) if y else 0
    return check_sample_weight(sample_weight, model.task_names, num_rows)


def prepare_numpy_fit(model, x, y, sample_weight=None, class_weight=None,
                      validation_data=None):
    """Checks `fit`'s arguments and readies the model for them.

    Numpy inputs, labels and row weights are checked (a `tf.data.Dataset` passes
    as it is); `class_weight` becomes the row weights it stands for, multiplied
    into `sample_weight`; numpy labels give DMTL's N / n_f (a row counts as its
    weight); numpy inputs give the normalisation its statistics when it has none.

    Returns:
        `(x, y, sample_weight, validation_data)`, checked.
    """
    x, y = model.prepare_inputs(x), model.check_labels(y)
    if isinstance(x, dict):  # zeros that look like missing rows, once per `fit`
        warn_zero_rows(x, [n for n in model.input_names if n != MASK_KEY], stacklevel=4)
    sample_weight = checked_sample_weight(model, sample_weight, y)
    if class_weight is not None:
        sample_weight = class_weight_to_sample_weight(y, class_weight, sample_weight,
                                                      tasks=model.tasks)
    if isinstance(y, dict):
        model.set_task_counts(y, sample_weight)
    unadapted = [n for n, layer in model.normalization_layers.items() if not layer.adapted]
    if unadapted and isinstance(x, dict):
        model.adapt(x)
    elif unadapted:
        warnings.warn(
            f"The normalisation of modality(ies) {unadapted} has no statistics: call "
            "`model.adapt(x_train)` before fitting on a dataset, or the raw features "
            "go in unscaled.", stacklevel=3)
    if isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
        y_val = model.check_labels(validation_data[1])
        validation_data = (model.prepare_inputs(validation_data[0]), y_val,
                           *[checked_sample_weight(model, w, y_val)
                             for w in validation_data[2:3]])
    return x, y, sample_weight, validation_data
