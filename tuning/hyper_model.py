"""`HGFNHyperModel`: a KerasTuner search space over θ, β, α and the training knobs."""

import argparse

import keras
import keras_tuner

from hgfn_keras.callbacks import ValidationMetrics
from hgfn_keras.data.dataset import as_tf_dataset

OBJECTIVES = {
    "val_loss": keras_tuner.Objective("val_loss", "min"),
    "val_mean_f1": keras_tuner.Objective("val_mean_f1", "max"),
}


def train_arguments(**overrides):
    """The `training.train` arguments (its defaults), with `overrides` applied.

    Args:
        **overrides: argument names (as in `training.train`'s `config.json`) and values.

    Returns:
        An `argparse.Namespace` that `training.train.build` accepts.

    Raises:
        ValueError: for a name `training.train` does not have.
    """
    from training import train

    args = train.parse_args([])
    unknown = sorted(k for k in overrides if not hasattr(args, k))
    if unknown:
        raise ValueError(
            f"Unknown training argument(s) {unknown}. Known: {sorted(vars(args))}"
        )
    return argparse.Namespace(**dict(vars(args), **overrides))


class HGFNHyperModel(keras_tuner.HyperModel):
    """Builds and trains the project's model for one set of hyperparameters.

    `build(hp)` draws the hyperparameters and builds the model exactly as
    `python -m training.train` does (`training.train.build`), so that the
    best values, written as a JSON of `training.train` argument names, train
    the same model with `python -m training.train --config FILE`. The space:

    - `theta` θ ∈ [0.05, 1] (HGFN's eq. 5; the paper's θ ∈ (0, 1], 0.5 used),
      only when the fusion is `"hgfn"`;
    - `beta` β ∈ [0, 5] (focal loss, eq. 10);
    - `alpha` α ∈ [0, 3] (DMTL's eq. 11; the paper uses 1), only with `"dmtl"`;
    - `learning_rate` ∈ [1e-4, 1e-2], log scale (the paper: 0.01);
    - `head_units` ∈ {16, 32, 64, 128}, `dropout` ∈ [0, 0.5];
    - `embedding_dim` ∈ {32, 64, 128} when a modality is text;
    - `cfc_units` ∈ {64, 128, 256} when the fusion is `"cfc"`.

    `fit(hp, model, ...)` trains through the project's own path: the
    `MultiTaskModel`'s custom `train_step` and `fit` (which adds DMTL's
    `TaskRebalancing` callback itself and takes N / n_f from the labels),
    `EarlyStopping` on the objective, and `ValidationMetrics` when the
    objective is `val_mean_f1`.

    Args:
        dataset: a `MultimodalDataset`.
        objective: `"val_loss"` or `"val_mean_f1"`.
        fixed: optional dict of `training.train` arguments held fixed (e.g.
            `{"fusion": "hgfn", "mtl": "dmtl", "batch_size": 64}`); a fixed
            name is not searched.
        **kwargs: `keras_tuner.HyperModel` arguments (`name`, `tunable`).
    """

    def __init__(self, dataset, objective="val_loss", fixed=None, **kwargs):
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

    @property
    def keras_tuner_objective(self):
        """The `keras_tuner.Objective` to give the tuner."""
        return OBJECTIVES[self.objective]

    def hyperparameter_values(self, hp):
        """Draws this trial's values: `{training argument name: value}`.

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

        if base.fusion == "hgfn":
            draw("theta", lambda: hp.Float("theta", 0.05, 1.0, default=0.5))
        if base.fusion == "cfc":
            draw("cfc_units", lambda: hp.Choice("cfc_units", [64, 128, 256], default=128))
        draw("beta", lambda: hp.Float("beta", 0.0, 5.0, default=0.0))
        if base.mtl == "dmtl":
            draw("alpha", lambda: hp.Float("alpha", 0.0, 3.0, default=1.0))
        draw("learning_rate", lambda: hp.Float("learning_rate", 1e-4, 1e-2, sampling="log",
                                               default=5e-3))
        draw("head_units", lambda: hp.Choice("head_units", [16, 32, 64, 128], default=64))
        draw("dropout", lambda: hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.1))
        if any(m.kind == "text" for m in self.dataset.modalities):
            draw("embedding_dim", lambda: hp.Choice("embedding_dim", [32, 64, 128], default=64))
        return space

    def build(self, hp):
        from training.train import build

        args = argparse.Namespace(**dict(vars(self.base), **self.hyperparameter_values(hp)))
        keras.utils.set_random_seed(args.seed)
        model = build(args, self.dataset)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        return model

    def fit(self, hp, model, *args, callbacks=None, epochs=None, verbose=None, **kwargs):
        """Trains `model` on the dataset's training split, validating on its validation split.

        Args:
            hp: this trial's `keras_tuner.HyperParameters`.
            model: the model `build(hp)` returned.
            *args: ignored (the data come from the dataset).
            callbacks: the tuner's callbacks (they run after this model's own).
            epochs: most epochs (Hyperband sets it per round). Default: the
                `epochs` argument.
            verbose: Keras' fit verbosity.
            **kwargs: other `keras.Model.fit` arguments (e.g. `initial_epoch`).

        Returns:
            The `History` of `model.fit`.
        """
        base = self.base
        (x_train, y_train), (x_val, y_val) = (self.dataset.splits[s]
                                              for s in ("train", "validation"))
        model.set_task_counts(y_train)  # N / n_f for DMTL
        train_ds = as_tf_dataset(x_train, y_train, base.batch_size, shuffle=True,
                                 seed=base.seed)
        val_ds = as_tf_dataset(x_val, y_val, base.batch_size)
        own = []
        if self.objective == "val_mean_f1":
            own.append(ValidationMetrics(as_tf_dataset(x_val, None, 512), y_val,
                                         self.dataset.tasks))
        mode = self.keras_tuner_objective.direction
        own.append(keras.callbacks.EarlyStopping(monitor=self.objective, mode=mode,
                                                 patience=base.patience))
        own.append(keras.callbacks.TerminateOnNaN())
        return model.fit(
            train_ds, validation_data=val_ds, epochs=epochs or base.epochs,
            callbacks=own + list(callbacks or []),
            verbose=2 if verbose is None else verbose, shuffle=False, **kwargs,
        )


__all__ = ["HGFNHyperModel", "OBJECTIVES", "train_arguments"]
