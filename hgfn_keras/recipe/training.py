"""The training recipe: build, compile and fit a model from a `TrainConfig`.

One path for the CLI (`python -m training.train`), the experiment runner, the
KerasTuner search and the benchmarks, so that they all train the same way:
the epoch-keyed row order, DMTL's re-balancing callback, BackupAndRestore (with
the random states), early stopping on `val_loss` with the best weights restored,
and the optional learning-rate schedule.

A dataset is any `hgfn_keras.data.dataset.Dataset`: a `MultimodalDataset` (in
memory) or a `StreamedDataset` (TFRecord shards, `hgfn_keras.data.tfrecord`). The
recipe asks it, never its kind: everything that needs a pass over the training
split (the normalisation statistics, the text vocabularies, DMTL's N / n_f) comes
from its `statistics()` and `training_labels()`, and the splits from its
`pipeline()` (for shards: interleaved and shuffled from `config.seed`, so the row
order differs from the in-memory path's; under a multi-worker strategy each
worker reads its own shards).
"""

import dataclasses
import os
import re
import warnings

import keras
import numpy as np

from hgfn_keras.encoders import TemporalEncoder, TextEncoder
from hgfn_keras.evaluation.decision_thresholds import choose_thresholds, winning_thresholds
from hgfn_keras.evaluation.metrics import multitask_metrics
from hgfn_keras.evaluation.validation_metrics import ValidationMetrics
from hgfn_keras.model import build_model
from hgfn_keras.multitask.class_weights import (
    add_class_weights,
    balanced_class_weights,
    class_weight_to_sample_weight,
)
from hgfn_keras.multitask.task_rebalancing import with_task_rebalancing
from hgfn_keras.recipe.backup import AtomicBackupAndRestore
from hgfn_keras.recipe.backup_fingerprint import check_backup, claim_backup
from hgfn_keras.recipe.size_aware_defaults import (
    FIXED_SETTINGS,
    resolve_settings,
    size_aware_settings,
)
from hgfn_keras.recipe.train_config import TrainConfig
from hgfn_keras.utils.io_utils import (
    StagedOutput,
    atomic_write_json,
    atomic_write_text,
    check_writable_folder,
)


def _check_config(config):
    if not isinstance(config, TrainConfig):
        raise TypeError(f"`config` must be a TrainConfig. Received: {type(config).__name__}")


def resolve_config(config, dataset):
    """`config` with the fields left at None ("auto") filled from `dataset`'s
    training split: its rows, its modalities' widths and its rarest classes'
    frequencies (`hgfn_keras.recipe.size_aware_defaults.resolve_settings`: the size-aware
    rule under the package preset, the fixed settings under the paper's). What
    `build`, `fit` and `train_and_evaluate` train with; idempotent.
    """
    _check_config(config)
    labels = dataset.training_labels()
    frequencies = {}
    for task in dataset.tasks:
        y = np.asarray(labels[task.name]).reshape(-1)
        y = y[y >= 0]
        counts = np.bincount(y, minlength=task.num_classes) if y.size else np.zeros(1)
        frequencies[task.name] = float(counts.min() / max(y.size, 1))
    widths = {m.name: (0 if m.kind == "text" else m.width) for m in dataset.modalities}
    return resolve_settings(config, dataset.size("train"), widths, frequencies)


def build(config, dataset):
    """The model of `config` for `dataset`, text encoders built from its training split.

    The normalisation statistics and the text encoders' vocabularies come from
    the dataset's `statistics()` of its training split (for a `StreamedDataset`,
    its one streamed pass: no training inputs in memory). The caller seeds
    (`keras.utils.set_random_seed(config.seed)`) before, for repeatable weights.

    Args:
        config: a `TrainConfig`.
        dataset: a `Dataset` (`MultimodalDataset` or `StreamedDataset`).

    Returns:
        An uncompiled `MultiTaskModel`.
    """
    config = resolve_config(config, dataset)
    statistics = dataset.statistics()
    check_training_labels(dataset.tasks, statistics.class_counts, statistics.missing_labels)
    encoders = {}
    for m in dataset.modalities:
        if m.kind == "sequence" and config.sequence_encoder == "temporal":
            encoders[m.name] = TemporalEncoder(name=f"{m.name}_encoder")
        if m.kind == "text":
            encoders[m.name] = TextEncoder.from_token_counts(
                statistics.token_counts[m.name], max_vocabulary=config.max_vocabulary,
                embedding_dim=config.embedding_dim, token_dropout=config.token_dropout,
                seed=config.seed, name=f"{m.name}_encoder",
            )
    model = build_model(
        dataset.modalities, model_tasks(config, dataset.tasks), fusion=config.fusion,
        fusion_kwargs=config.fusion_kwargs(), encoders=encoders,
        head_units=config.head_units, dropout=config.dropout,
        input_dropout=config.input_dropout,
        modality_dropout=config.modality_dropout,
        missing_placeholder=config.missing_placeholder, mtl=config.mtl, heads=config.heads,
        ensemble=config.ensemble,
        mtl_kwargs=config.mtl_kwargs(), beta=config.beta, preset=config.preset,
        # The dataset's name comes from a file name ("my data.npz", "données ü.npz"),
        # and a model's name is a TensorFlow scope name: [A-Za-z0-9_.-] only.
        name=re.sub(r"[^A-Za-z0-9_.-]", "_", f"{config.fusion}_{dataset.name}"),
    )
    for name, layer in model.normalization_layers.items():  # the training split's only
        moments = statistics.modalities[name]
        if not moments["count"]:
            warnings.warn(f"Modality {name!r} is missing in every training row: its features "
                          "are left unscaled.", stacklevel=2)
        layer.set_statistics(moments["mean"], moments["variance"], moments["count"])
    return model


def check_training_labels(tasks, class_counts, missing_labels=None):
    """Refuses a task with no labelled row in the training split, naming it.

    Such a task cannot be learnt (it adds no loss), and its test scores, an untrained
    head's, would be averaged into the run's mean with the others' as if it had been
    trained: the recipe (`train_and_evaluate`, `fit`, `training.train`,
    `tuning.search`, the benchmarks) refuses it before any training. `MultiTaskModel.fit`
    itself only warns, as a model may be trained on one task's data at a time. The
    decision is in docs/DESIGN.md ("A task with no training label").

    Args:
        tasks: the dataset's `Task`s.
        class_counts: `{task: counts of each class}` of the training split.
        missing_labels: `{task: number of -1 labels}` (optional, for the message).

    Raises:
        ValueError: naming every such task and its number of missing labels.

    >>> from hgfn_keras.specs import Task
    >>> check_training_labels([Task("flood", 2), Task("mood", 3)],
    ...                       {"flood": [3, 2], "mood": [0, 0, 0]}, {"mood": 5})
    Traceback (most recent call last):
    ...
    ValueError: Task 'mood' has no labelled row in the training split (its 5 training ...
    """
    empty = [t.name for t in tasks if int(sum(int(c) for c in class_counts[t.name])) == 0]
    if not empty:
        return
    missing = missing_labels or {}
    described = "; ".join(
        f"Task {name!r} has no labelled row in the training split (its "
        f"{missing.get(name, 0)} training label(s) are all -1, missing)" for name in empty)
    removal = ", ".join(f"`y_{name}`" for name in empty)
    raise ValueError(
        f"{described}: {'it' if len(empty) == 1 else 'they'} cannot be learnt, and "
        f"{'its' if len(empty) == 1 else 'their'} test scores, an untrained head's, would be "
        "averaged into the mean with the trained tasks'. Give "
        f"{'it' if len(empty) == 1 else 'them'} training labels, or leave the task out of "
        f"the dataset (npz: remove {removal})."
    )


def model_tasks(config, tasks):
    """The dataset's `tasks` as the model trains them: with `config.one_vs_rest`,
    every task with K > 2 classes becomes one-vs-rest (K binary concepts; a
    binary task is one concept already and stays as it is).

    >>> from hgfn_keras.specs import Task
    >>> config = TrainConfig(one_vs_rest=True)
    >>> [t.concepts for t in model_tasks(config, [Task("a", 2), Task("b", 3)])]
    [['a'], ['b.0', 'b.1', 'b.2']]
    """
    _check_config(config)
    if not config.one_vs_rest:
        return list(tasks)
    return [dataclasses.replace(t, one_vs_rest=True) if t.num_classes > 2 else t
            for t in tasks]


def make_optimizer(config):
    """The main optimizer of `config`: Adam, or AdamW with `weight_decay` (a config
    not yet resolved: AdamW with the size-aware rule's decay under the package
    preset, Adam under the paper's)."""
    _check_config(config)
    if config.optimizer is None or config.weight_decay is None:
        settings = (FIXED_SETTINGS if config.preset == "paper"
                    else size_aware_settings(1, {}, {}))
        config = config.replace(optimizer=config.optimizer or settings["optimizer"])
        config = config.replace(weight_decay=settings["weight_decay"]
                                if config.optimizer == "adamw" and config.weight_decay is None
                                else config.weight_decay or 0.0)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(config.learning_rate)


def build_and_compile(config, dataset):
    """`build(config, dataset)`, compiled with `make_optimizer(config)`."""
    config = resolve_config(config, dataset)
    model = build(config, dataset)
    model.compile(optimizer=make_optimizer(config))
    return model


@dataclasses.dataclass
class FitResult:
    """What `fit` returns: the trained model, Keras' `History` and the
    `TaskRebalancing` callback (its `history`: the task weights at each epoch's end)."""

    model: object
    history: object
    rebalancing: object


def fit(model, config, dataset, backup_dir=None, callbacks=None, monitor=None,
        mode=None, verbose=2, epochs=None, restart=False, keep_backup=False, **fit_kwargs):
    """Trains `model` on the dataset's training split, validating on its validation split.

    The callbacks, in order: `TaskRebalancing` (`with_task_rebalancing`, as
    `MultiTaskModel.fit` adds it), the epoch-keyed row order (a resumed run sees
    the batches an unbroken one would have seen), `TerminateOnNaN`, the given
    `callbacks`, then `EarlyStopping` on
    `monitor` (when `config.patience` > 0, from `config.min_epochs`, best
    weights restored), `ReduceLROnPlateau` on `val_loss` (when
    `config.reduce_lr_patience` > 0), `History` and, when `backup_dir` is
    given, `AtomicBackupAndRestore` keeping the state of all of them and the
    random states: a run killed at any point and started again resumes from its
    last finished epoch and ends as the unbroken run does (the same weights,
    early stopping, history and task-weight records).

    Args:
        model: a compiled `MultiTaskModel` (from `build_and_compile`).
        config: the `TrainConfig`.
        dataset: a `MultimodalDataset` or a `StreamedDataset`.
        backup_dir: where the backup lives during the run (None: no backup). It
            records the run's settings; a backup of other settings is refused
            (`hgfn_keras.recipe.backup_fingerprint.claim_backup`), never resumed.
        callbacks: more callbacks, run before the early stopping (e.g.
            `ValidationMetrics`, which adds the keys an objective reads).
        monitor, mode: what the early stopping watches. Default: `config.monitor`
            (`val_loss`, or a `ValidationMetrics` key such as `val_mean_map`, for
            which a `ValidationMetrics` on the validation split is added before the
            given callbacks unless they hold one), min for a loss, else max.
        verbose: Keras' fit verbosity.
        epochs: most epochs (default `config.epochs`).
        restart: move an existing backup aside (`<backup_dir>.old-<timestamp>`) and
            start afresh.
        keep_backup: leave the backup when training ends (the caller removes it
            once the run's results are written: a run killed before resumes with
            no further epoch, where it would otherwise train again).
        **fit_kwargs: other `keras.Model.fit` arguments (e.g. `initial_epoch`).

    Returns:
        A `FitResult`.
    """
    config = resolve_config(config, dataset)
    if backup_dir is not None:  # before any work: a backup of another run is refused
        claim_backup(backup_dir, config, restart=restart)
    train_ds, val_ds, all_callbacks = _training_pipelines(model, config, dataset)
    all_callbacks, rebalancing = with_task_rebalancing(all_callbacks)
    all_callbacks.append(keras.callbacks.TerminateOnNaN())
    callbacks = list(callbacks or [])
    monitor = monitor or config.monitor
    mode = mode or ("min" if monitor.endswith("loss") else "max")
    if monitor.startswith("val_mean_") and config.patience > 0 and not any(
            isinstance(c, ValidationMetrics) for c in callbacks):
        inputs, _ = dataset.pipeline("validation", 512, shuffle=False, labels=False)
        callbacks.insert(0, ValidationMetrics(inputs, dataset.labels("validation"),
                                              dataset.tasks))
    all_callbacks += callbacks
    if config.patience > 0:  # patience 0: no early stopping
        all_callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=config.patience,
            start_from_epoch=config.min_epochs, restore_best_weights=True))
    if config.reduce_lr_patience > 0:
        all_callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=config.reduce_lr_patience))
    # Keras' own History, given so that the backup can keep it (a resumed run's
    # history holds every epoch); last but the backup, as Keras would put it.
    all_callbacks.append(keras.callbacks.History())
    if backup_dir is not None:
        # Last: it saves (and restores) the state of the callbacks before it, random
        # states included. The folder goes away when training ends (keep_backup: when
        # the caller has written the results).
        all_callbacks.append(AtomicBackupAndRestore(backup_dir, keep=list(all_callbacks),
                                                    delete_checkpoint=not keep_backup))
    if model.optimizer is not None and not model.optimizer.built:
        # Its slot variables made here, not in the first traced train step: creating
        # variables there makes TensorFlow trace the train function twice.
        with model.distribute_strategy.scope():
            model.optimizer.build(model.trainable_variables)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs or config.epochs,
                        callbacks=all_callbacks, verbose=verbose, shuffle=False, **fit_kwargs)
    return FitResult(model=model, history=history, rebalancing=rebalancing)


def _training_pipelines(model, config, dataset):
    """The training and validation pipelines, and the callbacks they need; gives
    the model DMTL's N / n_f from the training labels."""
    for split in ("train", "validation"):
        dataset.check(model, split)
    # Only the class counts are used (a streamed dataset gives a stand-in with them).
    y_train = dataset.training_labels()
    check_training_labels(
        dataset.tasks,
        {t.name: [int(np.sum(np.asarray(y_train[t.name]) >= 0))] for t in dataset.tasks},
        {t.name: int(np.sum(np.asarray(y_train[t.name]) == -1)) for t in dataset.tasks})
    class_weight = None
    if config.class_weight == "balanced":
        class_weight = balanced_class_weights(y_train, dataset.tasks)
    # N / n_f for DMTL (a row counts as its weight).
    model.set_task_counts(y_train, None if class_weight is None
                          else class_weight_to_sample_weight(y_train, class_weight))
    # In memory, the row order of epoch e depends only on (seed, e) (through the
    # pipeline's callback); from shards, the shard order and rows are shuffled from
    # the seed every epoch anew, so a resumed run sees other batches.
    train_ds, callbacks = dataset.pipeline("train", config.batch_size, seed=config.seed)
    val_ds, _ = dataset.pipeline("validation", config.batch_size)
    callbacks = list(callbacks)
    if class_weight is not None:
        train_ds = add_class_weights(train_ds, class_weight, dataset.tasks)
    return train_ds, val_ds, callbacks


def backup_path(output_dir):
    """The backup folder of a run writing to `output_dir`."""
    return os.path.join(output_dir, "backup")


def remove_backup(output_dir):
    """Removes the backup folder of a run writing to `output_dir`, once its results
    are written."""
    import shutil

    shutil.rmtree(backup_path(output_dir), ignore_errors=True)


def predict_split(model, dataset, split, batch_size=512):
    """`(labels, probabilities)` of a split (of a `MultimodalDataset` or a
    `StreamedDataset`): `{task: [rows]}` and `model`'s `{task: outputs}`."""
    # Unshuffled: in the order `labels` gives them.
    inputs, _ = dataset.pipeline(split, batch_size, shuffle=False, labels=False)
    return dataset.labels(split), predict(model, inputs)


def evaluate(model, dataset, split="test", batch_size=512, thresholds=None):
    """The project's metrics (per task and their means) of `model` on a split
    (of a `MultimodalDataset` or a `StreamedDataset`), or on numpy arrays given
    as `dataset=(x, y)` (`split` is then unused); with one-vs-rest tasks, every
    concept's too (`"concepts"`, see `multitask_metrics`). `thresholds`:
    `{binary task: decision threshold}` (None: 0.5).

    Returns:
        `{"tasks": {task: {"f1", "hamming_loss", "map", "accuracy"}}, "mean": {...}}`.

    >>> metrics = evaluate(model, (x_test, y_test))  # doctest: +SKIP
    >>> metrics["tasks"]["rating"]["f1"], metrics["mean"]["map"]  # doctest: +SKIP
    """
    if isinstance(dataset, (tuple, list)):  # numpy `(x, y)`, as `model.evaluate` takes
        if len(dataset) != 2:
            raise ValueError("`evaluate(model, (x, y))` takes the inputs and the labels. "
                             f"Received: a {type(dataset).__name__} of {len(dataset)} items")
        y = model.check_labels(dataset[1])
        probabilities = model.predict(dataset[0], batch_size=batch_size, verbose=0)
        return multitask_metrics(model.tasks, y, probabilities, thresholds=thresholds)
    y, probabilities = predict_split(model, dataset, split, batch_size)
    # The model's tasks: the dataset's, as trained (one-vs-rest or not).
    return multitask_metrics(model.tasks, y, probabilities, thresholds=thresholds)


def choose_decision_thresholds(model, dataset, batch_size=512, auto=False):
    """Each binary task's F1-best threshold on the **validation** split, stored in
    `model` (`set_decision_thresholds`); returns them.

    See `hgfn_keras.evaluation.decision_thresholds.best_f1_threshold` for the rule.
    With `auto=True`, only the thresholds that win the cross-fitted validation F1
    over 0.5 are kept (`decision_thresholds.winning_thresholds`), and it returns
    `(thresholds, report)`.
    """
    y, probabilities = predict_split(model, dataset, "validation", batch_size)
    if auto:
        thresholds, report = winning_thresholds(model.tasks, y, probabilities)
        model.set_decision_thresholds(thresholds)
        return thresholds, report
    thresholds = choose_thresholds(model.tasks, y, probabilities)
    model.set_decision_thresholds(thresholds)
    return thresholds


def predict(model, inputs):
    """`model.predict(inputs, verbose=0)` for a `tf.data.Dataset` of input batches,
    traced once.

    Keras' `predict` traces its function for the first batch's shape and again
    for the last, smaller one; this traces one function for any batch size (the
    dataset's `element_spec`) and gives the same numbers. Under a strategy with
    more than one replica it is `model.predict`.

    Returns:
        `{output name: numpy array [rows, ...]}`, as `model.predict` returns them.
    """
    if model.distribute_strategy.num_replicas_in_sync > 1:
        return model.predict(inputs, verbose=0)
    return predictor(model, inputs.element_spec)(inputs)


def predictor(model, element_spec):
    """`predict` as a reusable function of datasets whose batches match
    `element_spec`: traced once, for any number of datasets (e.g. one split under
    several perturbations)."""
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False),
                          input_signature=[element_spec], autograph=False)

    def run(inputs):
        batches = [tf.nest.map_structure(np.asarray, forward(x)) for x in inputs]
        return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *batches)

    return run


def write_task_weights(path, task_names, rebalancing):
    """`task_weights.csv`: per epoch, each task's mean training loss and weights.

    `task_names`: the model's `loss_names` (a one-vs-rest task's concepts
    `<task>.<k>` each have their columns). Columns `epoch, phase, <task>...,
    loss_<task>..., chance_<task>...`; two rows per epoch: phase `tdb` holds the
    weights at the epoch's end (after its TDB steps), phase `rebalanced` the
    weights the next epoch starts from (after the re-balancing). The
    `loss_<task>` columns (the epoch's mean unweighted training loss, the same on
    both rows) and `chance_<task>` (the chance loss c_f it is divided by; 1 when
    it is not) are what the re-balancing reads, so its reset
    w_f = T · s_f / Σ s_g, s_f = max_g ā_g / ā_f with ā_f = loss_f / chance_f,
    can be checked from the file.
    """
    rows = [",".join(["epoch", "phase", *task_names, *(f"loss_{n}" for n in task_names),
                      *(f"chance_{n}" for n in task_names)])]
    for record in rebalancing.records:
        losses = [f"{v:.6f}" for v in record["losses"]]
        chance = [f"{v:.6f}" for v in record.get("chance_losses", [1.0] * len(losses))]
        for phase in ("tdb", "rebalanced"):
            rows.append(",".join([str(record["epoch"] + 1), phase,
                                  *(f"{w:.6f}" for w in record[phase]), *losses, *chance]))
    atomic_write_text(path, "\n".join(rows) + "\n")


@dataclasses.dataclass
class RunResult:
    """What `train_and_evaluate` returns: the test metrics and the `FitResult`."""

    metrics: dict
    fit: FitResult


def train_and_evaluate(config, dataset, output_dir, distribution=None, verbose=2, record=None,
                       callbacks=None, restart=False, keep_backup=False, strategy=None):
    """One whole run: build and compile (in the scope of `distribution`, a
    `tf.distribute.Strategy`, or the default one), fit, evaluate on the test split,
    and write the run's files into `output_dir`. (`strategy=`: the old name of
    `distribution=`, kept for one release.)

    With `config.decision_thresholds`, each binary task's threshold is then
    chosen on the validation split and stored in the model before it is saved
    (`choose_decision_thresholds`), and `metrics.json` gets a `"decision"`
    entry: `"thresholds"` and the test metrics at them (`"tasks"`, `"mean"`,
    `"mean_over"`), `"used"` (`"thresholds"`, or `"0.5"` when none was kept: the
    run decides as its top-level numbers) and `"rule"`; with `"auto"` (the
    package default) only the thresholds that win the cross-fitted validation F1
    are kept, and `"validation"` has each binary task's F1 at 0.5 and at its
    threshold there. The config is first resolved (`resolve_config`); the
    settings it trained with are in `metrics.json`'s `run.settings`.

    The files: `model.keras` (first), `config.json` (`record`, default the
    config's fields), `history.json`, `task_weights.csv` and, last, `metrics.json`
    (the test metrics and a `run` entry): a run that has `metrics.json` has all
    of them. An `output_dir` that cannot be written is refused before training.
    A run killed and started again with the same `output_dir` and settings
    resumes from its backup; with other settings it is refused (`restart=True`
    moves the old backup aside). The caller seeds before
    (`keras.utils.set_random_seed(config.seed)`), for repeatable runs.
    `callbacks` go to `fit` (e.g. `MultiTaskTensorBoard`). The backup is removed
    once `metrics.json` is written (`keep_backup=True`: left to the caller, which
    writes more, e.g. the SavedModel): a run killed while it evaluates or writes
    its files resumes with no further epoch.

    Returns:
        A `RunResult`.
    """
    import time

    import tensorflow as tf

    config = resolve_config(config, dataset)  # the size-aware settings, recorded in "run"
    check_writable_folder(output_dir, "output_dir")  # before training, not after it
    if not restart:  # a backup of other settings is refused before the model is built
        check_backup(backup_path(output_dir), config)
    if strategy is not None:
        warnings.warn("`train_and_evaluate(strategy=...)` is now `distribution=...`; the old "
                      "name goes in the next release.", DeprecationWarning, stacklevel=2)
        distribution = distribution or strategy
    distribution = distribution or tf.distribute.get_strategy()
    with distribution.scope():
        model = build_and_compile(config, dataset)
    dataset.check(model, "test")  # before training, not after it
    started = time.time()
    result = fit(model, config, dataset, backup_dir=backup_path(output_dir), verbose=verbose,
                 callbacks=callbacks, restart=restart, keep_backup=True)
    fit_seconds = time.time() - started
    metrics = evaluate(model, dataset)
    if config.decision_thresholds:  # chosen on validation, scored on test
        auto = config.decision_thresholds == "auto"
        chosen = choose_decision_thresholds(model, dataset, auto=auto)
        thresholds, report = chosen if auto else (chosen, None)
        metrics["decision"] = {"thresholds": thresholds,
                               **evaluate(model, dataset, thresholds=thresholds)}
        # What the run decides with: its thresholds where it kept any, else 0.5 (the
        # top-level numbers); "validation": each binary task's cross-fitted F1s.
        metrics["decision"]["used"] = "thresholds" if thresholds else "0.5"
        metrics["decision"]["rule"] = "auto" if auto else "all"
        if report is not None:
            metrics["decision"]["validation"] = report
    metrics["run"] = {
        "dataset": dataset.name, "fusion": config.fusion, "mtl": config.mtl,
        "seed": config.seed, "epochs_run": len(result.history.history["loss"]),
        "fit_seconds": round(fit_seconds, 1), "test_rows": dataset.size("test"),
        "settings": {name: getattr(config, name)  # as resolved (size-aware or fixed)
                     for name in ("epochs", "batch_size", "patience", "optimizer",
                                  "weight_decay", "units", "head_units", "input_dropout",
                                  "decision_thresholds")},
    }
    # The model first, through a temporary name (a reader never sees half a model, a
    # failed save leaves no staging file): metrics.json never describes a model that
    # was not written.
    StagedOutput.remove_stale(output_dir, "model.keras")  # a killed run's staging file
    with StagedOutput(os.path.join(output_dir, "model.keras"), "the model",
                      errors=(OSError, RuntimeError)) as staging:
        model.save(staging)
    atomic_write_json(os.path.join(output_dir, "config.json"),
                      config.to_dict() if record is None else record)
    atomic_write_json(os.path.join(output_dir, "history.json"),
                      {k: [float(v) for v in vals] for k, vals in result.history.history.items()})
    write_task_weights(os.path.join(output_dir, "task_weights.csv"), model.loss_names,
                       result.rebalancing)
    atomic_write_json(os.path.join(output_dir, "metrics.json"), metrics)  # last: the run is done
    if not keep_backup:
        remove_backup(output_dir)
    return RunResult(metrics=metrics, fit=result)


__all__ = ["FitResult", "RunResult", "backup_path", "build", "build_and_compile",
           "check_training_labels", "choose_decision_thresholds", "evaluate", "fit",
           "make_optimizer", "model_tasks", "predict", "predict_split", "predictor",
           "remove_backup", "resolve_config", "train_and_evaluate", "write_task_weights"]
