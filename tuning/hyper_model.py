"""`HGFNHyperModel`: a KerasTuner search space over θ, β, α and the training knobs."""

import hashlib
import json
import os

import keras
import keras_tuner

from hgfn_keras import TrainConfig, recipe
from hgfn_keras.data.dataset import as_tf_dataset
from hgfn_keras.evaluation.validation_metrics import ValidationMetrics
from hgfn_keras.multitask.dynamic_task_balancing import DEFAULT_TDB_LEARNING_RATE
from hgfn_keras.recipe.train_config import fusion_fields, weighting_fields

OBJECTIVES = {
    "val_loss": keras_tuner.Objective("val_loss", "min"),
    "val_mean_f1": keras_tuner.Objective("val_mean_f1", "max"),
}


def train_arguments(**overrides):
    """The `TrainConfig` of the training defaults with `overrides` applied.

    Args:
        **overrides: `TrainConfig` field names (the `training.train` argument
            names of its `config.json`) and values.

    Returns:
        A `hgfn_keras.TrainConfig`.

    Raises:
        ValueError: for a name `TrainConfig` does not have, or a bad value.
    """
    return TrainConfig.from_dict(overrides)


class HGFNHyperModel(keras_tuner.HyperModel):
    """Builds and trains the project's model for one set of hyperparameters.

    `build(hp)` draws the hyperparameters and builds the model with the
    library's recipe (`hgfn_keras.recipe.build_and_compile`), as
    `python -m training.train` does, so that the best values, written as a JSON
    of `TrainConfig` field names (the `training.train` argument names), train
    the same model with `python -m training.train --config FILE`. The space:

    - `theta` θ ∈ [0.05, 1] (HGFN's eq. 5; the paper's θ ∈ (0, 1], 0.5 used),
      only when the fusion is `"hgfn"`;
    - `beta` β ∈ [0, 5] (focal loss, eq. 10);
    - `alpha` α ∈ [0, 3] (DMTL's eq. 11; the paper uses 1), only for a task weighting
      that takes α (`"dmtl"`, `"gradnorm"`);
    - `learning_rate` ∈ [1e-4, 1e-2], log scale (the paper: 0.01);
    - `head_units` ∈ {16, 32, 64, 128}, `dropout` ∈ [0, 0.5];
    - `embedding_dim` ∈ {32, 64, 128} when a modality is text;
    - `cfc_units` ∈ {64, 128, 256} when the fusion is `"cfc"`.

    `fit(hp, model, ...)` trains through the library's one fit path,
    `hgfn_keras.recipe.fit`, as the CLI does (epoch-keyed row order, DMTL's
    re-balancing, a backup per trial when `backup_dir` is given, early
    stopping), with the early stopping on the objective and
    `ValidationMetrics` when the objective is `val_mean_f1`.

    Args:
        dataset: a `MultimodalDataset`.
        objective: `"val_loss"` or `"val_mean_f1"`.
        fixed: optional dict of `TrainConfig` fields held fixed (e.g.
            `{"fusion": "hgfn", "mtl": "dmtl", "batch_size": 64}`); a fixed
            name is not searched.
        backup_dir: optional folder for the trials' BackupAndRestore backups
            (one sub-folder per set of hyperparameter values).
        **kwargs: `keras_tuner.HyperModel` arguments (`name`, `tunable`).
    """

    def __init__(self, dataset, objective="val_mean_f1", fixed=None, backup_dir=None, **kwargs):
        super().__init__(**kwargs)
        if objective not in OBJECTIVES:
            raise ValueError(
                f"`objective` must be one of {sorted(OBJECTIVES)}. Received: "
                f"objective={objective!r}"
            )
        self.dataset = dataset
        self.objective = objective
        self.fixed = dict(fixed or {})
        self.base = train_arguments(**self.fixed)  # checks the names early
        self.backup_dir = backup_dir

    @property
    def keras_tuner_objective(self):
        """The `keras_tuner.Objective` to give the tuner."""
        return OBJECTIVES[self.objective]

    def hyperparameter_values(self, hp):
        """Draws this trial's values: `{TrainConfig field: value}`.

        Args:
            hp: a `keras_tuner.HyperParameters`.

        Returns:
            The drawn values (fixed names are left out).
        """
        base = self.base
        space = {}

        def draw(name, make):
            if name not in self.fixed:
                space[name] = make()

        if base.fusion == "hgfn":  # GFN keeps the paper's θ of its preset
            draw("theta", lambda: hp.Float("theta", 0.05, 1.0, default=0.5))
        if base.fusion == "cfc" and "cfc_units" in fusion_fields(base.fusion):
            draw("cfc_units", lambda: hp.Choice("cfc_units", [64, 128, 256], default=128))
        draw("beta", lambda: hp.Float("beta", 0.0, 5.0, default=0.0))
        if "alpha" in weighting_fields(base.mtl):
            default = 1.0 if base.mtl == "dmtl" else 1.5  # the task weighting's own
            draw("alpha", lambda: hp.Float("alpha", 0.0, 3.0, default=default))
        if base.mtl == "dmtl":  # TDB's step size (normalised by the mean N / n_f)
            draw("tdb_learning_rate", lambda: hp.Float("tdb_learning_rate", 1e-3, 1.0,
                                                       sampling="log",
                                                       default=DEFAULT_TDB_LEARNING_RATE))
        draw("learning_rate", lambda: hp.Float("learning_rate", 1e-4, 1e-2, sampling="log",
                                               default=5e-3))
        draw("head_units", lambda: hp.Choice("head_units", [16, 32, 64, 128], default=64))
        draw("dropout", lambda: hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.1))
        if any(m.kind == "text" for m in self.dataset.modalities):
            draw("embedding_dim", lambda: hp.Choice("embedding_dim", [32, 64, 128], default=64))
        return space

    def config(self, hp):
        """This trial's `TrainConfig`: the fixed values and the drawn ones."""
        return self.base.replace(**self.hyperparameter_values(hp))

    def build(self, hp):
        config = self.config(hp)
        keras.utils.set_random_seed(config.seed)
        return recipe.build_and_compile(config, self.dataset)

    def fit(self, hp, model, *args, callbacks=None, epochs=None, verbose=None, **kwargs):
        """Trains `model` through `hgfn_keras.recipe.fit`, as the CLI does.

        Args:
            hp: this trial's `keras_tuner.HyperParameters`.
            model: the model `build(hp)` returned.
            *args: ignored (the data come from the dataset).
            callbacks: the tuner's callbacks (they run after `ValidationMetrics`).
            epochs: most epochs (Hyperband sets it per round). Default: the
                `epochs` field.
            verbose: Keras' fit verbosity.
            **kwargs: other `keras.Model.fit` arguments (e.g. `initial_epoch`).

        Returns:
            The `History` of the fit.
        """
        config = self.config(hp)
        own = []
        if self.objective == "val_mean_f1":
            x_val, y_val = self.dataset.splits["validation"]
            own.append(ValidationMetrics(as_tf_dataset(x_val, None, 512), y_val,
                                         self.dataset.tasks))
        backup = None
        if self.backup_dir is not None:
            key = json.dumps(hp.values, sort_keys=True, default=str).encode()
            backup = os.path.join(self.backup_dir, hashlib.sha1(key).hexdigest()[:16])
        result = recipe.fit(
            model, config, self.dataset, backup_dir=backup,
            callbacks=own + list(callbacks or []), monitor=self.objective,
            mode=self.keras_tuner_objective.direction,
            verbose=2 if verbose is None else verbose, epochs=epochs, **kwargs)
        return result.history


__all__ = ["HGFNHyperModel", "OBJECTIVES", "train_arguments"]
