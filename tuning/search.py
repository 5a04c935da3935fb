"""Search θ, β, α (and the learning rate and widths) with KerasTuner.

    python -m tuning.search --dataset clothing --tuner bayesian --max-trials 20 \\
        --objective val_mean_f1 --output-dir runs/search

Every trial trains through the project's own path (`MultiTaskModel`'s custom train
step, DMTL's re-balancing callback, early stopping). KerasTuner keeps its state in
`DIR/search/`: running the same command again resumes an interrupted search (a
trial that was running is run again) and a larger `--max-trials` extends a finished
one. At the end it writes `DIR/best_hyperparameters.json`, a JSON object of
`training.train` argument names that `python -m training.train --config FILE`
accepts, and `DIR/search_summary.json` (the best score and every trial).

Distributed search (KerasTuner's chief/worker mode) is driven by the environment:
start one chief with `KERASTUNER_TUNER_ID=chief`, `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT` set, and any number of workers with the same IP and port
and `KERASTUNER_TUNER_ID=worker0`, `worker1`, ...; all run this same command. The
chief runs no trial: it hands them out, and writes the result files when the
workers are done.
"""

import argparse
import json
import os
import sys
import time

from training._cli import run_main

TUNERS = ("random", "bayesian", "hyperband")
PROJECT = "search"
# The arguments that must not change when a search is resumed from its folder.
RESUME_KEYS = ("dataset", "tuner", "objective", "fusion", "mtl", "seed", "limit", "one_vs_rest",
               # A trial's score depends on them: trials scored after 1 and after 2 epochs
               # must not be ranked together (issue 30).
               "epochs", "batch_size", "patience")
#: What a key missing from an older search folder's record meant then.
RESUME_DEFAULTS = {"one_vs_rest": False}


def parse_args(argv=None):
    """The `python -m tuning.search` arguments of `argv` (None: `sys.argv[1:]`)."""
    from hgfn_keras.recipe.size_aware_defaults import FIXED_SETTINGS  # Hyperband's fixed numbers
    from hgfn_keras.recipe.train_config import DEFAULTS

    p = argparse.ArgumentParser(
        prog="python -m tuning.search",
        description="KerasTuner search over HGFN's θ, the focal β, DMTL's α, the learning "
        "rate and widths; writes DIR/best_hyperparameters.json for "
        "`python -m training.train --config`.",
    )
    p.add_argument("--dataset", default=DEFAULTS["dataset"],
                   help="'clothing' or 'npz:PATH'. Default: %(default)s")
    p.add_argument("--tuner", default="bayesian", choices=TUNERS,
                   help="Search algorithm. Default: %(default)s")
    p.add_argument("--max-trials", type=int, default=10,
                   help="Most trials in all (Hyperband: a cap on its own schedule). "
                   "Default: %(default)s")
    p.add_argument("--objective", default="val_mean_f1", choices=["val_mean_f1", "val_loss"],
                   help="val_mean_f1 (max, the mean validation F1 over the tasks) or "
                   "val_loss (min; the focal loss, which shrinks as β grows whatever the "
                   "model, so it favours the largest β). Default: %(default)s")
    p.add_argument("--output-dir", required=True,
                   help="The search's folder: its state (for resuming) and results.")
    p.add_argument("--overwrite", action="store_true",
                   help="Start afresh, discarding a search already in --output-dir. "
                   "Default: resume it")
    p.add_argument("--fusion", default=DEFAULTS["fusion"],
                   help="Fusion, held fixed (θ is searched for 'hgfn'). Default: %(default)s")
    p.add_argument("--mtl", default=DEFAULTS["mtl"],
                   help="Task weighting, held fixed (α is searched for 'dmtl'). "
                   "Default: %(default)s")
    p.add_argument("--one-vs-rest", action="store_true",
                   help="Train every task with K > 2 classes as K binary concept tasks "
                   "(training.train --one-vs-rest), held fixed. Default: off")
    p.add_argument("--epochs", type=int, default=FIXED_SETTINGS["epochs"],
                   help="Most epochs per trial (Hyperband's max_epochs). Default: %(default)s")
    p.add_argument("--patience", type=int, default=FIXED_SETTINGS["patience"],
                   help="Early-stopping patience on the objective. Default: %(default)s")
    p.add_argument("--batch-size", type=int, default=FIXED_SETTINGS["batch_size"],
                   help="Rows per training batch. Default: %(default)s")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help="Seeds the split, the weights and the search. Default: %(default)s")
    p.add_argument("--limit", type=int, default=None,
                   help="Use a random subset of this many rows (clothing only). "
                   "Default: every row")
    p.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2], nargs="?",
                   help="0: quiet; 1: a summary per trial and a progress bar per epoch; "
                   "2: a summary per trial and a line per epoch. A bare --verbose also "
                   "shows TensorFlow's own log lines. Default: 1 on a terminal, 2 otherwise")
    args = p.parse_args(argv)
    for name in ("max_trials", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive. "
                    f"Received: {getattr(args, name)}")
    if args.patience < 0:
        p.error(f"--patience must be >= 0. Received: {args.patience}")
    return args


def fixed_arguments(args):
    """The `TrainConfig` fields (`training.train` arguments) that the search holds fixed.

    Args:
        args: the parsed `tuning.search` arguments.

    Returns:
        A dict `{training argument name: value}`.
    """
    fixed = {name: getattr(args, name) for name in
             ("dataset", "fusion", "mtl", "epochs", "patience", "batch_size", "seed")}
    if args.limit is not None:
        fixed["limit"] = args.limit
    if args.one_vs_rest:
        fixed["one_vs_rest"] = True
    return fixed


def is_worker():
    """True in a KerasTuner worker process (chief/worker mode, not the chief)."""
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle() and not utils.is_chief_oracle()


def _check_resume(args, path):
    """Refuses to resume a search made with other arguments; records them otherwise."""
    from hgfn_keras.utils.io_utils import atomic_write_json

    current = {k: getattr(args, k) for k in RESUME_KEYS}
    if os.path.isfile(path) and not args.overwrite:
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        # A key an older record lacks and that has no recorded meaning is not compared.
        keys = [k for k in RESUME_KEYS if k in previous or k in RESUME_DEFAULTS]
        then = {k: previous.get(k, RESUME_DEFAULTS.get(k)) for k in keys}
        changed = {k: (then[k], current[k]) for k in keys if then[k] != current[k]}
        if changed:
            raise ValueError(
                f"{os.path.dirname(path)} holds a search made with other arguments "
                f"(name: (then, now)): {changed}; its trials would be ranked with ones "
                "scored otherwise. Resume it with the same arguments, or pass "
                "--overwrite or another --output-dir."
            )
    elif not is_worker():
        atomic_write_json(path, current)


class _TensorBoardOnlyWhenUsed:
    """Skips keras-tuner's `import tensorboard` when no TensorBoard callback is given.

    keras-tuner 1.4.8 imports `tensorboard.plugins.hparams` before every trial on
    the TensorFlow backend, even without a TensorBoard callback, and tensorflow
    2.21 no longer installs tensorboard: every trial then fails with
    "No module named 'tensorboard'". With a TensorBoard callback (which needs
    tensorboard anyway) keras-tuner's own code runs.
    """

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        if any(c.__class__.__name__ == "TensorBoard" for c in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)


def _atomic_save_json(path, obj):
    """keras-tuner's `utils.save_json`, through a temporary file and a rename.

    keras-tuner 1.4.8 writes its state files (`tuner0.json`, `oracle.json`,
    `trial.json`) in place, so a search killed during a write leaves a truncated
    file that the resumed search cannot parse (seen: a truncated `tuner0.json`).
    Written like this, a reader sees the old file or the new one.
    """
    from hgfn_keras.utils.io_utils import atomic_write_text

    text = json.dumps(obj)
    atomic_write_text(path, text)
    return text


def _tuner_class(base):
    from keras_tuner.src import utils

    utils.save_json = _atomic_save_json  # every Stateful.save goes through it
    return type(base.__name__, (_TensorBoardOnlyWhenUsed, base), {})


def make_tuner(args, hypermodel):
    """The KerasTuner tuner that `args.tuner` names, keeping its state in `args.output_dir`.

    Args:
        args: the parsed arguments.
        hypermodel: the `HGFNHyperModel`.

    Returns:
        A `keras_tuner.Tuner`.
    """
    import keras_tuner

    common = dict(
        objective=hypermodel.keras_tuner_objective, seed=args.seed,
        directory=args.output_dir, project_name=PROJECT, overwrite=args.overwrite,
    )
    if args.tuner == "random":
        return _tuner_class(keras_tuner.RandomSearch)(
            hypermodel, max_trials=args.max_trials, **common)
    if args.tuner == "bayesian":
        return _tuner_class(keras_tuner.BayesianOptimization)(
            hypermodel, max_trials=args.max_trials, **common)
    tuner = _tuner_class(keras_tuner.Hyperband)(
        hypermodel, max_epochs=args.epochs, factor=3, **common)
    tuner.oracle.max_trials = args.max_trials  # Hyperband has no cap of its own
    return tuner


#: The fixed arguments that `best_hyperparameters.json` keeps: the architecture choices
#: needed to rebuild the model the values were found for. The others (epochs, limit,
#: batch size, patience, seed, the dataset) describe how the search ran, not the result.
ARCHITECTURE_KEYS = ("fusion", "mtl", "one_vs_rest")


def trial_number(trial):
    """The 1-based number KerasTuner's log shows ("Running Trial #N") for a trial."""
    return int(trial.trial_id) + 1


def best_hyperparameters(tuner, hypermodel):
    """The best trial's values as `training.train` arguments, and the trial.

    Args:
        tuner: a tuner that has run at least one trial.
        hypermodel: its `HGFNHyperModel`.

    Returns:
        `(config, trial)`: the architecture choices held fixed
        (`ARCHITECTURE_KEYS`) plus the best trial's searched values (KerasTuner's
        own `tuner/...` entries left out), and the trial. Never `epochs`, `limit`
        or paths: `training.train --config` then trains a full run.
    """
    trials = [t for t in tuner.oracle.get_best_trials(len(tuner.oracle.trials))
              if t.status == "COMPLETED" and t.score is not None][:1]
    if not trials:
        raise ValueError(
            "No trial completed, so there is no best value: see the trial errors above."
        )
    trial = trials[0]
    values = {k: v for k, v in trial.hyperparameters.values.items()
              if not k.startswith("tuner/")}
    fixed = {k: hypermodel.fixed[k] for k in ARCHITECTURE_KEYS if k in hypermodel.fixed}
    return dict(fixed, **values), trial


def run(args):
    """Runs (or resumes) the search and writes the result files.

    Args:
        args: the parsed arguments.

    Returns:
        The best hyperparameters as `training.train` arguments (None in a worker).
    """
    import keras

    from hgfn_keras.data import load_dataset
    from hgfn_keras.utils.io_utils import atomic_write_json
    from tuning.hyper_model import HGFNHyperModel

    started = time.time()
    os.makedirs(args.output_dir, exist_ok=True)
    _check_resume(args, os.path.join(args.output_dir, "search_config.json"))
    keras.utils.set_random_seed(args.seed)
    dataset = load_dataset(args.dataset, seed=args.seed, limit=args.limit)
    hypermodel = HGFNHyperModel(dataset, objective=args.objective,
                                fixed=fixed_arguments(args), name="hgfn",
                                backup_dir=os.path.join(args.output_dir, "backups"))
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    role = os.environ.get("KERASTUNER_TUNER_ID", "")
    print(f"Search ({args.tuner}, objective {args.objective}, at most {args.max_trials} "
          f"trials{', as ' + role if role else ''}) on {dataset.name!r}: "
          f"{dataset.size('train')} training rows, state in "
          f"{os.path.join(args.output_dir, PROJECT)}", flush=True)
    tuner = make_tuner(args, hypermodel)
    done = 0 if is_worker() else sum(t.status == "COMPLETED"
                                      for t in tuner.oracle.trials.values())
    if done:
        print(f"Resuming: {done} trial(s) already completed.", flush=True)
    tuner.search(verbose=verbose)
    if is_worker():
        print(f"Worker {role}: no trial left; done in {time.time() - started:.1f} s.")
        return None

    config, trial = best_hyperparameters(tuner, hypermodel)
    path = os.path.join(args.output_dir, "best_hyperparameters.json")
    atomic_write_json(path, config)
    trials = [
        {"trial": trial_number(t), "trial_id": t.trial_id, "status": t.status,
         "score": t.score, "hyperparameters": t.hyperparameters.values}
        for t in sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    ]
    atomic_write_json(os.path.join(args.output_dir, "search_summary.json"), {
        "objective": args.objective, "best_score": trial.score,
        "best_trial": trial_number(trial), "best_trial_id": trial.trial_id,
        "searched_with": fixed_arguments(args), "trials": trials,
        "wall_seconds": round(time.time() - started, 1),
    })
    print(f"\nBest {args.objective}: {trial.score:.4f} (trial #{trial_number(trial)}): "
          + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in config.items() if k not in ARCHITECTURE_KEYS))
    print(f"Wrote {path}; train with it: python -m training.train --dataset {args.dataset} "
          f"--config {path}")
    print(f"Total wall time: {time.time() - started:.1f} s")
    return config


def main(argv=None):
    # RuntimeError: KerasTuner's "Number of consecutive failures exceeded the limit" (its
    # message goes on with the last trial's traceback) and "Error reloading `Oracle`".
    return run_main(run, parse_args(argv), extra_errors=(RuntimeError,),
                    interrupted="Started again with the same command, the search resumes "
                    "from its finished trials.")


if __name__ == "__main__":
    sys.exit(main())
