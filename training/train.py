"""Train a multimodal multi-task model, report the test metrics, export a SavedModel.

    python -m training.train --dataset clothing --fusion hgfn --epochs 8 --seed 0 \\
        --output-dir runs/clothing

Writes `DIR/metrics.json` (per task F1, Hamming loss, MAP, accuracy on the test
split, and their means; with `--one-vs-rest` also each concept's under
"concepts"), `DIR/config.json` (the arguments), `DIR/history.json`
(the per-epoch losses), `DIR/task_weights.csv` (the task weights at each epoch's
end, one column per task or concept), `DIR/model.keras` (the trained model, for `python -m training.export`), and a
SavedModel version under `saved_models/<name>/`.

`--decision-thresholds` also chooses each binary task's decision threshold on the
validation F1, stores it in the model (the SavedModel then returns
`<task>_decision`, 0/1) and adds `"decision"` to metrics.json: the thresholds and
the test metrics at them.

`--config FILE` reads argument values from a JSON object `{argument name: value}`
(names as in `DIR/config.json`, e.g. `"learning_rate": 0.001`, or the
`best_hyperparameters.json` of `python -m tuning.search`); flags on the command line
win over the file.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Copies of the registries' names and of `hgfn_keras.TrainConfig`'s defaults, kept
# here so that --help answers without importing TensorFlow; tests/test_train_cli.py
# checks that they are equal.
FUSION_CHOICES = ["hgfn", "cfc", "tensor", "gfn"]
MTL_CHOICES = ["dmtl", "lsew", "moo", "mtinet", "gradnorm", "uncertainty", "dwa"]

DEFAULTS = {
    "dataset": "clothing",
    "fusion": "hgfn",
    "mtl": "dmtl",
    "epochs": 12,
    "seed": 0,
    "batch_size": 128,
    "learning_rate": 5e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "patience": 3,
    "min_epochs": 0,
    "reduce_lr_patience": 0,
    "theta": 0.5,
    "max_order": None,
    "alignment": None,
    "units": None,
    "similarity": None,
    "keep_modalities": None,
    "projection_activation": None,
    "modality_dropout": None,
    "cfc_units": 128,
    "embedding_dim": 64,
    "token_dropout": 0.3,
    "max_vocabulary": 20000,
    "sequence_encoder": "temporal",
    "head_units": 64,
    "dropout": 0.1,
    "beta": 0.0,
    "alpha": None,
    "tdb_learning_rate": None,
    "grad_norm_layer": None,
    "rebalance": None,
    "tdb": None,
    "sample_ratios": None,
    "normalize_losses": None,
    "rebalance_on": None,
    "max_weight_ratio": None,
    "limit": None,
    "class_weight": None,
    "num_classes": None,
    "one_vs_rest": False,
    "decision_thresholds": False,
    "preset": "package",
}
#: The arguments of a run that are not part of its `TrainConfig` (where the files
#: go, how much it prints, the distribution strategy).
RUN_ARGUMENTS = ("output_dir", "export_dir", "name", "version", "no_export", "verbose",
                 "strategy", "config", "no_rebalance", "no_tdb", "no_sample_ratios",
                 "no_normalize_losses",
                 "tensorboard", "restart")


def config_argv(parser, argv):
    """`argv` with the values of its `--config FILE` put in front as flags.

    The file is a JSON object `{argument name: value}` (the names of
    `DIR/config.json`); flags already in `argv` come later and so win. A `null`
    keeps the default; a `true`/`false` turns a switch (`no_export`) on or off;
    the keys `config` and `restart` are ignored (a run's own config.json records
    them; a restart is asked for on the command line, not repeated by a file).

    Args:
        parser: the `argparse.ArgumentParser` of this CLI.
        argv: the command-line arguments.

    Returns:
        The new argument list; exits through `parser.error` for a file that
        cannot be read or holds an unknown key or a value of the wrong kind.
    """
    import json

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    path = pre.parse_known_args(argv)[0].config
    if path is None:
        return argv
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        parser.error(f"--config: cannot read {path!r} as JSON ({error})")
    if not isinstance(config, dict):
        parser.error(f"--config {path}: must hold a JSON object {{name: value}}. "
                     f"Received: {type(config).__name__}")
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    unknown = sorted(k for k in config if k not in actions)
    if unknown:
        parser.error(f"--config {path}: unknown key(s) {unknown}. Known keys: "
                     f"{sorted(k for k in actions if k != 'config')}")
    tokens = []
    for key, value in config.items():
        action, flag = actions[key], actions[key].option_strings[-1]
        if key in ("config", "restart") or (value is None and action.default is None):
            continue
        if action.nargs == 0:  # a switch such as --no-export
            if not isinstance(value, bool):
                parser.error(f"--config {path}: {key!r} must be true or false. "
                             f"Received: {value!r}")
            tokens += [flag] if value else []
        elif key == "keep_modalities" and isinstance(value, bool):  # a config.json's
            tokens += [flag, "yes" if value else "no"]
        elif key == "num_classes" and isinstance(value, dict):  # {task: K}
            for task, classes in value.items():
                tokens += [flag, f"{task}={classes}"]
        elif value is None or isinstance(value, (bool, list, dict)):
            parser.error(f"--config {path}: {key!r} must be a number or a string "
                         f"(the value of {flag}). Received: {json.dumps(value)}")
        else:
            tokens += [flag, str(value)]
    return tokens + argv


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train HGFN (or a baseline fusion) on a multimodal multi-task dataset, "
        "print the per-task test metrics, write metrics.json and export a SavedModel.",
    )
    p.add_argument("--dataset", default=DEFAULTS["dataset"],
                   help="'clothing' (the embedded reviews), 'npz:PATH' (a feature file; "
                   "see docs/DESIGN.md, 'The feature-file contract') or 'tfrecord:DIR' "
                   "(its sharded form, "
                   "from python -m training.convert; streamed, for data larger than "
                   "memory). Default: %(default)s")
    p.add_argument("--fusion", default=DEFAULTS["fusion"], choices=FUSION_CHOICES,
                   help="Fusion layer: HGFN (the paper's), or a baseline: CFC (concatenate), "
                   "tensor fusion (TFN/LMF, for MATF), GFN. Default: %(default)s")
    p.add_argument("--mtl", default=DEFAULTS["mtl"], choices=MTL_CHOICES,
                   help="Multi-task strategy: DMTL (dynamic task balancing, the paper's), "
                   "LSEW (equal weights), MOO (MGDA-UB), MTI-Net heads, or beyond the paper "
                   "GradNorm, uncertainty weighting, DWA. Default: %(default)s")
    p.add_argument("--beta", type=float, default=DEFAULTS["beta"],
                   help="Focal loss β >= 0 (eq. 10; 0 = cross-entropy). Default: %(default)s")
    p.add_argument("--alpha", type=float, default=DEFAULTS["alpha"],
                   help="α of eq. 11 (dmtl, gradnorm only). Default: the strategy's "
                   "(DMTL 1.0, GradNorm 1.5)")
    p.add_argument("--tdb-learning-rate", type=float, default=DEFAULTS["tdb_learning_rate"],
                   help="Learning rate of the task weights' optimizer (dmtl, gradnorm only). "
                   "Default: the strategy's (DMTL SGD 0.02, its step divided by the mean N / n_f; "
                   "GradNorm Adam 0.025)")
    p.add_argument("--no-rebalance", action="store_true",
                   help="Turn off the epoch-end re-balancing (dmtl, gradnorm only; TDB "
                   "alone). Default: the preset's (package: off for dmtl; paper: on)")
    p.add_argument("--rebalance", action="store_true",
                   help="Turn the epoch-end re-balancing on (dmtl, gradnorm only), as the "
                   "paper does (--preset paper has it on). Default: the preset's")
    p.add_argument("--no-tdb", action="store_true",
                   help="Turn off DMTL's dynamic task balancing step (dmtl only). "
                   "Default: on")
    p.add_argument("--no-sample-ratios", action="store_true",
                   help="Leave DMTL's N / n_f out of the balancing (dmtl only). Default: on")
    p.add_argument("--no-normalize-losses", action="store_true",
                   help="Re-balance on the tasks' raw mean losses, not on each divided by "
                   "its chance loss log K (dmtl only; no effect when all tasks have the "
                   "same number of classes). Default: divided")
    p.add_argument("--rebalance-on", default=DEFAULTS["rebalance_on"],
                   choices=["train", "validation"],
                   help="Which losses DMTL's epoch-end re-balancing reads: the epoch's "
                   "training losses (the paper) or each task's validation loss (dmtl "
                   "only). Default: the strategy's (train)")
    p.add_argument("--max-weight-ratio", type=float, default=DEFAULTS["max_weight_ratio"],
                   help="Cap on how far DMTL's re-balancing sets two tasks' weights apart "
                   "(a factor >= 1; dmtl only). Default: the strategy's (none)")
    p.add_argument("--grad-norm-layer", default=DEFAULTS["grad_norm_layer"],
                   choices=["task", "shared"],
                   help="Where the gradient norms are taken (dmtl, gradnorm only): each "
                   "task's last layer (the paper) or a last shared layer (adds a shared "
                   "Dense). Default: the strategy's (DMTL task, GradNorm shared)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"],
                   help="Most epochs (early stopping on validation loss may stop sooner). "
                   "Default: %(default)s")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help="Seeds the split, the weights and the shuffling. Default: %(default)s")
    p.add_argument("--output-dir", default=None,
                   help="Where metrics.json and friends go. Default: runs/<name>")
    p.add_argument("--export-dir", default=None,
                   help="The SavedModel's model folder; the version goes below it. "
                   "Default: saved_models/<name>")
    p.add_argument("--name", default=None, help="Model name. Default: <fusion>_<dataset>")
    p.add_argument("--version", type=int, default=None,
                   help="SavedModel version. Default: the next free integer")
    p.add_argument("--no-export", action="store_true",
                   help="Skip the SavedModel export. Default: export")
    p.add_argument("--restart", action="store_true",
                   help="Move an interrupted run's backup in the output folder aside "
                   "(DIR/backup.old-<timestamp>) and start afresh. Without it, the backup is "
                   "resumed when its settings are this run's and refused otherwise. "
                   "Default: off")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                   help="Rows per training batch. Default: %(default)s")
    p.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"],
                   help="The main optimizer's learning rate. Default: %(default)s")
    p.add_argument("--optimizer", default=DEFAULTS["optimizer"], choices=["adam", "adamw"],
                   help="The main optimizer. Default: %(default)s")
    p.add_argument("--weight-decay", type=float, default=DEFAULTS["weight_decay"],
                   help="AdamW's decoupled weight decay (--optimizer adamw only). "
                   "Default: %(default)s")
    p.add_argument("--patience", type=int, default=DEFAULTS["patience"],
                   help="Early-stopping patience in epochs on val_loss, best weights "
                   "restored (0: no early stopping). Default: %(default)s")
    p.add_argument("--min-epochs", type=int, default=DEFAULTS["min_epochs"],
                   help="Epochs before early stopping may stop the run. Default: %(default)s")
    p.add_argument("--reduce-lr-patience", type=int, default=DEFAULTS["reduce_lr_patience"],
                   help="Halve the learning rate after this many epochs without a better "
                   "val_loss (ReduceLROnPlateau; 0: off). Default: %(default)s")
    p.add_argument("--theta", type=float, default=DEFAULTS["theta"],
                   help="HGFN's θ in (0, 1] (eq. 5). Default: %(default)s")
    p.add_argument("--max-order", type=int, default=DEFAULTS["max_order"],
                   help="HGFN's deepest level. Default: min(M, 3)")
    p.add_argument("--alignment", default=DEFAULTS["alignment"],
                   choices=["auto", "pad", "project"],
                   help="How HGFN brings the modalities to one width: auto (pad up to width "
                   "256, project wider ones to 256), pad (the paper) or project. "
                   "Default: the preset's (package project to 128, paper auto)")
    p.add_argument("--units", type=int, default=DEFAULTS["units"],
                   help="HGFN's aligned width D. Default: the preset's (package 128, paper "
                   "the widest modality)")
    p.add_argument("--similarity", default=DEFAULTS["similarity"], choices=["cosine", "dot"],
                   help="Edge similarity of the graph fusions. Default: the fusion's "
                   "(HGFN cosine, GFN dot)")
    p.add_argument("--keep-modalities", default=DEFAULTS["keep_modalities"],
                   type=_keep_modalities, metavar="{yes,no,weighted}",
                   help="HGFN also outputs the aligned modality vectors beside its levels: "
                   "yes, no (the paper's eq. 7, levels only) or weighted (each scaled by "
                   "M times its DAU weight). Default: the preset's (package weighted, "
                   "paper no)")
    p.add_argument("--projection-activation", default=DEFAULTS["projection_activation"],
                   help="Activation of HGFN's learned projections when it projects (a Keras "
                   "activation name). Default: the preset's (package relu, paper linear)")
    p.add_argument("--modality-dropout", type=float, default=DEFAULTS["modality_dropout"],
                   metavar="P",
                   help="During training only, mask each present modality of a row with "
                   "probability P (never all of a row's modalities), so the model learns "
                   "to answer when a modality is missing. Default: the preset's (paper 0)")
    p.add_argument("--preset", default=DEFAULTS["preset"], choices=["package", "paper"],
                   help="package: the package's recommended settings for what is not given "
                   "(HGFN projected to 128 by Dense+ReLU with its modality vectors kept, "
                   "weighted; DMTL without the epoch-end re-balancing; modality dropout); "
                   "paper: the paper's exact reading. Default: %(default)s")
    p.add_argument("--cfc-units", type=int, default=DEFAULTS["cfc_units"],
                   help="Fused width of CFC and tensor fusion. Default: %(default)s")
    p.add_argument("--embedding-dim", type=int, default=DEFAULTS["embedding_dim"],
                   help="Width of each text encoder's output. Default: %(default)s")
    p.add_argument("--token-dropout", type=float, default=DEFAULTS["token_dropout"],
                   help="Word dropout in the text encoders during training. Default: %(default)s")
    p.add_argument("--sequence-encoder", default=DEFAULTS["sequence_encoder"],
                   choices=["temporal", "mean"],
                   help="Encoder of sequence modalities ([N, T, D] in an npz): 2 Bi-GRU layers "
                   "with attention (the paper's, for video) or the mean over steps. "
                   "Default: %(default)s")
    p.add_argument("--max-vocabulary", type=int, default=DEFAULTS["max_vocabulary"],
                   help="Most words in a text encoder's vocabulary (from the training "
                   "split). Default: %(default)s")
    p.add_argument("--head-units", type=int, default=DEFAULTS["head_units"],
                   help="Width of each task head's hidden Dense layer. Default: %(default)s")
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"],
                   help="Dropout in each task head. Default: %(default)s")
    p.add_argument("--limit", type=int, default=DEFAULTS["limit"],
                   help="Use a random subset of this many rows (clothing only; for quick "
                   "runs). Default: every row")
    p.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2], nargs="?",
                   help="Keras' fit verbosity (0, 1, 2). A bare --verbose also shows "
                   "TensorFlow's own log lines. Default: a progress bar on a terminal, "
                   "a line per epoch otherwise")
    p.add_argument("--class-weight", default=DEFAULTS["class_weight"], choices=["balanced"],
                   help="'balanced': weigh each task's training rows by N / (K n_c) of "
                   "their class (N labelled rows, K classes, n_c rows of the class), in "
                   "the losses and in DMTL's N / n_f. Default: none (every row weighs 1)")
    p.add_argument("--num-classes", action="append", default=DEFAULTS["num_classes"],
                   metavar="TASK=K",
                   help="Declare an npz task's number of classes (repeat per task), for a "
                   "task whose labels do not show every class. Default: max label + 1, "
                   "which must leave no class unseen")
    p.add_argument("--one-vs-rest", action="store_true",
                   help="Train every task with K > 2 classes as K binary concept tasks "
                   "(one sigmoid, focal loss and strategy weight per concept, as the "
                   "paper's tables; concepts named <task>.<k>); the task's output stays "
                   "its K-class probabilities (the sigmoids normalised), and metrics.json "
                   "adds each concept under 'concepts'. Default: off")
    p.add_argument("--decision-thresholds", action="store_true",
                   help="After training, choose each binary task's decision threshold on "
                   "the validation F1 (not 0.5), store it in the model (model.keras, and "
                   "the SavedModel's extra output <task>_decision) and report the test "
                   "metrics at it under \"decision\" in metrics.json. Default: off")
    p.add_argument("--tensorboard", action="store_true",
                   help="Write TensorBoard logs to DIR/tensorboard/: per-step task losses "
                   "and weights, per-epoch validation metrics, histograms of the fusion's "
                   "modality and vertex weights (needs the tensorboard package: "
                   "pip install 'hgfn-keras[tensorboard]'). Default: off")
    p.add_argument("--strategy", default=None, choices=["mirrored", "multi-worker"],
                   help="tf.distribute strategy: every local GPU (mirrored), or workers "
                   "named by TF_CONFIG (multi-worker; run the same command on each). "
                   "Default: none")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="A JSON object {argument name: value} (e.g. a tuning search's "
                   "best_hyperparameters.json); flags given on the command line win. "
                   "Default: none")
    args = p.parse_args(config_argv(p, sys.argv[1:] if argv is None else list(argv)))
    if args.num_classes is not None:
        declared = {}
        for item in args.num_classes:
            task, _, classes = item.partition("=")
            if not task or not classes.isdigit() or int(classes) < 2:
                p.error(f"--num-classes must be TASK=K with an integer K >= 2. "
                        f"Received: {item!r}")
            declared[task] = int(classes)
        args.num_classes = declared
    for name in ("epochs", "batch_size", "patience", "embedding_dim", "max_vocabulary",
                 "head_units", "cfc_units", "min_epochs", "reduce_lr_patience"):
        value = getattr(args, name)
        if value < (0 if name in ("patience", "min_epochs", "reduce_lr_patience") else 1):
            p.error(f"--{name.replace('_', '-')} must be positive. Received: {value}")
    if not 0 < args.theta <= 1:
        p.error(f"--theta must be in (0, 1]. Received: {args.theta}")
    if not 0 <= args.dropout < 1:
        p.error(f"--dropout must be in [0, 1). Received: {args.dropout}")
    if args.modality_dropout is not None and not 0 <= args.modality_dropout < 1:
        p.error(f"--modality-dropout must be in [0, 1). Received: {args.modality_dropout}")
    if args.beta < 0:
        p.error(f"--beta must be >= 0. Received: {args.beta}")
    if args.alpha is not None and args.alpha < 0:
        p.error(f"--alpha must be >= 0. Received: {args.alpha}")
    if args.tdb_learning_rate is not None and args.tdb_learning_rate <= 0:
        p.error(f"--tdb-learning-rate must be positive. Received: {args.tdb_learning_rate}")
    if args.version is not None and args.version < 1:
        p.error(f"--version must be a positive integer. Received: {args.version}")
    if args.learning_rate <= 0:
        p.error(f"--learning-rate must be positive. Received: {args.learning_rate}")
    if args.weight_decay < 0:
        p.error(f"--weight-decay must be >= 0. Received: {args.weight_decay}")
    try:
        train_config(args)  # a flag that does not apply to the fusion or strategy
    except ValueError as error:
        p.error(str(error))
    return args


def _keep_modalities(text):
    """`--keep-modalities`: yes / no / weighted."""
    values = {"yes": True, "no": False, "weighted": "weighted"}
    if text not in values:
        raise argparse.ArgumentTypeError(f"expected yes, no or weighted. Received: {text!r}")
    return values[text]


def train_config(args):
    """The `hgfn_keras.TrainConfig` of parsed arguments (the run arguments left out)."""
    from hgfn_keras import TrainConfig

    values = {k: v for k, v in vars(args).items() if k not in RUN_ARGUMENTS}
    if args.rebalance and args.no_rebalance:
        raise ValueError("--rebalance and --no-rebalance contradict each other: give one.")
    values["rebalance"] = True if args.rebalance else (False if args.no_rebalance else None)
    values["tdb"] = False if args.no_tdb else None
    values["sample_ratios"] = False if args.no_sample_ratios else None
    values["normalize_losses"] = False if args.no_normalize_losses else None
    return TrainConfig.from_dict(values)


def tensorboard_callbacks(dataset, output_dir):
    """`ValidationMetrics` (so the epoch logs hold the validation F1, ...) then
    `MultiTaskTensorBoard` writing to `output_dir/tensorboard/`."""
    from hgfn_keras import MultiTaskTensorBoard, ValidationMetrics
    from hgfn_keras.data.dataset import as_tf_dataset

    x_val, y_val = dataset.splits["validation"]
    return [ValidationMetrics(as_tf_dataset(x_val, None, 512), y_val, dataset.tasks),
            MultiTaskTensorBoard(os.path.join(output_dir, "tensorboard"), x=x_val)]


def run(args):
    """Trains, evaluates and exports one run of parsed arguments; returns its metrics.

    The recipe is the library's (`hgfn_keras.recipe.train_and_evaluate`); this
    adds the printing and the SavedModel export.
    """
    import keras

    from hgfn_keras import recipe
    from hgfn_keras.data import load_dataset
    from hgfn_keras.distribute import get_strategy
    from hgfn_keras.export import export_saved_model, has_modality_weights
    from hgfn_keras.io_utils import check_writable_folder
    from hgfn_keras.metrics import format_results_table

    started = time.time()
    config = train_config(args)
    strategy = get_strategy(args.strategy)  # before any other op (multi-worker)
    keras.utils.set_random_seed(config.seed)
    dataset = load_dataset(config.dataset, seed=config.seed, limit=config.limit,
                           num_classes=config.num_classes)
    name = args.name or f"{config.fusion}_{dataset.name}"
    output_dir = args.output_dir or os.path.join("runs", name)
    export_dir = args.export_dir or os.path.join("saved_models", name)
    # Before training, not when the results are written.
    check_writable_folder(output_dir, "--output-dir")
    if not args.no_export:
        check_writable_folder(export_dir, "--export-dir")
    sizes = {s: dataset.size(s) for s in ("train", "validation", "test")}
    print(f"Dataset {dataset.name!r}: modalities {dataset.modality_names}, tasks "
          f"{dataset.task_names}, rows {sizes}", flush=True)

    if not args.no_export and args.version is not None:
        target = os.path.join(export_dir, str(args.version))
        if os.path.exists(target):
            raise FileExistsError(
                f"{target} exists already: SavedModel versions are immutable. Pick another "
                "--version or leave it out to take the next free one."
            )
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    callbacks = tensorboard_callbacks(dataset, output_dir) if args.tensorboard else None
    result = recipe.train_and_evaluate(config, dataset, output_dir, strategy=strategy,
                                       verbose=verbose, record=vars(args),
                                       callbacks=callbacks, restart=args.restart,
                                       keep_backup=True)
    model, metrics = result.fit.model, result.metrics
    print(f"\nTest split ({sizes['test']} rows), {config.fusion.upper()} + "
          f"{config.mtl.upper()} on {dataset.name}, seed {config.seed}:")
    print(format_results_table(metrics))
    if "decision" in metrics:
        thresholds = metrics["decision"]["thresholds"]
        print("\nAt the decision thresholds chosen on the validation split ("
              + ", ".join(f"{n}={t:.3f}" for n, t in thresholds.items()) + "):")
        print(format_results_table(metrics["decision"]))
    print("Task weights at the end: " + ", ".join(
        f"{n}={w:.3f}" for n, w in zip(model.loss_names, model.task_weights.numpy())))
    print(f"\nWrote {os.path.join(output_dir, 'metrics.json')}")
    print(f"Wrote {os.path.join(output_dir, 'model.keras')}")
    if not args.no_export:
        path = export_saved_model(model, export_dir, version=args.version,
                                  return_modality_weights=has_modality_weights(model))
        print(f"Exported the SavedModel to {path}")
    # Kept until now: a run killed before resumes with no further epoch.
    recipe.remove_backup(output_dir)
    print(f"Total wall time: {time.time() - started:.1f} s")
    return metrics


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
