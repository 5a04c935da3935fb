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
import dataclasses
import os
import sys
import time

from training._cli import run_main

#: Fields that a switch turns off (`--no-<name>`; None: the weighting's own default).
OFF_SWITCHES = ("rebalance", "tdb", "sample_ratios", "normalize_losses")
#: The arguments of a run that are not part of its `TrainConfig` (where the files
#: go, how much it prints, the tf.distribute strategy).
RUN_ARGUMENTS = ("output_dir", "export_dir", "name", "version", "no_export", "verbose",
                 "distribution", "config", "no_rebalance", "no_tdb", "no_sample_ratios",
                 "no_normalize_losses", "tensorboard", "restart", "overwrite")


def add_config_arguments(parser):
    """Adds one flag per `TrainConfig` field to `parser`: `--<field-name>`, with the
    field's help (declared with the field, `train_config.option`), default, type and
    (`train_config.CHOICES`) choices."""
    from hgfn_keras.recipe.train_config import CHOICES, TrainConfig

    for field in dataclasses.fields(TrainConfig):
        name, default = field.name, field.default
        flag, text = "--" + name.replace("_", "-"), field.metadata["help"]
        if "Default" not in text:
            text += " Default: %(default)s"
        if name in OFF_SWITCHES:
            parser.add_argument(f"--no-{name.replace('_', '-')}", action="store_true",
                                help=text)
            if name == "rebalance":
                parser.add_argument("--rebalance", action="store_true",
                                    help="Turn the epoch-end re-balancing on (dmtl, gradnorm "
                                    "only), as the paper does (--preset paper has it on). "
                                    "Default: the preset's")
        elif field.type is bool:
            parser.add_argument(flag, action="store_true", help=text)
        elif name == "num_classes":
            parser.add_argument(flag, action="append", default=None, metavar="TASK=K",
                                help=text)
        elif name == "decision_thresholds":
            parser.add_argument(flag, type=_decision_thresholds, default=None, nargs="?",
                                const=True, metavar="{yes,no,auto}", help=text)
        elif name == "input_dropout":
            parser.add_argument(flag, type=_input_dropout, default=None,
                                metavar="P|MODALITY=P,...", help=text)
        elif name == "keep_modalities":
            parser.add_argument(flag, type=_keep_modalities, default=None,
                                metavar="{yes,no,weighted}", help=text)
        else:
            metavar = "P" if name == "modality_dropout" else None
            parser.add_argument(flag, type=field.type, default=default,
                                choices=CHOICES.get(name), metavar=metavar, help=text)


def config_argv(parser, argv):
    """`argv` with the values of its `--config FILE` put in front as flags.

    The file is a JSON object `{argument name: value}` (the names of
    `DIR/config.json`); flags already in `argv` come later and so win. A `null`
    keeps the default; a `true`/`false` turns a switch (`no_export`) on or off;
    the keys `config`, `restart` and `overwrite` are ignored (a run's own config.json
    records them; a restart or an overwrite is asked for on the command line, not
    repeated by a file).

    Args:
        parser: the `argparse.ArgumentParser` of this CLI.
        argv: the command-line arguments.

    Returns:
        The new argument list; exits through `parser.error` for a file that
        cannot be read or holds an unknown key or a value of the wrong kind.
    """
    import json

    from hgfn_keras.utils.io_utils import no_duplicate_keys

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    path = pre.parse_known_args(argv)[0].config
    if path is None:
        return argv
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f, object_pairs_hook=no_duplicate_keys)
    except (OSError, ValueError) as error:
        parser.error(f"--config: cannot read {path!r} as JSON ({error})")
    if not isinstance(config, dict):
        parser.error(f"--config {path}: must hold a JSON object {{name: value}}. "
                     f"Received: {type(config).__name__}")
    if "strategy" in config:  # a config.json written before --strategy became --distribution
        config["distribution"] = config.pop("strategy")
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    unknown = sorted(k for k in config if k not in actions)
    if unknown:
        parser.error(f"--config {path}: unknown key(s) {unknown}. Known keys: "
                     f"{sorted(k for k in actions if k != 'config')}")
    tokens = []
    for key, value in config.items():
        action, flag = actions[key], actions[key].option_strings[-1]
        if key in ("config", "restart", "overwrite") or (value is None
                                                         and action.default is None):
            continue
        if action.nargs == 0:  # a switch such as --no-export
            if not isinstance(value, bool):
                parser.error(f"--config {path}: {key!r} must be true or false. "
                             f"Received: {value!r}")
            tokens += [flag] if value else []
        elif key in ("keep_modalities", "decision_thresholds") and isinstance(value, bool):
            tokens += [flag, "yes" if value else "no"]  # a config.json's
        elif key == "input_dropout" and isinstance(value, dict):  # {modality: rate}
            tokens += [flag, ",".join(f"{k}={v}" for k, v in value.items())]
        elif key == "num_classes" and isinstance(value, dict):  # {task: K}
            for task, classes in value.items():
                tokens += [flag, f"{task}={classes}"]
        elif value is None or isinstance(value, (bool, list, dict)):
            parser.error(f"--config {path}: {key!r} must be a number or a string "
                         f"(the value of {flag}). Received: {json.dumps(value)}")
        else:
            tokens += [flag, str(value)]
    return tokens + argv


def build_parser(parser_class=argparse.ArgumentParser):
    """The `python -m training.train` parser: the `TrainConfig` flags, then the run's."""
    p = parser_class(
        prog="python -m training.train",
        description="Train HGFN (or a baseline fusion) on a multimodal multi-task dataset, "
        "print the per-task test metrics, write metrics.json and export a SavedModel.",
    )
    add_config_arguments(p)
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
    p.add_argument("--overwrite", action="store_true",
                   help="Replace the finished run in the output folder (one with "
                   "metrics.json). Without it such a folder is refused: a new run never "
                   "replaces an earlier run's results unasked. Default: off")
    p.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2], nargs="?",
                   help="Keras' fit verbosity (0, 1, 2). A bare --verbose also shows "
                   "TensorFlow's own log lines. Default: a progress bar on a terminal, "
                   "a line per epoch otherwise")
    p.add_argument("--tensorboard", action="store_true",
                   help="Write TensorBoard logs to DIR/tensorboard/: per-step task losses "
                   "and weights, per-epoch validation metrics, histograms of the fusion's "
                   "modality and vertex weights (needs the tensorboard package: "
                   "pip install 'hgfn-keras[tensorboard]'). Default: off")
    p.add_argument("--distribution", "--strategy", dest="distribution", default=None,
                   choices=["mirrored", "multi-worker"],
                   help="tf.distribute strategy: every local GPU (mirrored), or workers "
                   "named by TF_CONFIG (multi-worker; run the same command on each). "
                   "(--strategy: its old name, kept for one release.) Default: none")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="A JSON object {argument name: value} (e.g. a tuning search's "
                   "best_hyperparameters.json); flags given on the command line win. "
                   "Default: none")
    return p


def parse_args(argv=None, parser=None):
    """The parsed arguments; the `TrainConfig` they make is checked here (its own
    `validate`: one source of checks), so that a bad value stops before any work."""
    p = parser or build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--strategy" in argv or any(a.startswith("--strategy=") for a in argv):
        print("note: --strategy is now --distribution (the old name goes in the next "
              "release)", file=sys.stderr)
    args = p.parse_args(config_argv(p, argv))
    if args.num_classes is not None:
        declared = {}
        for item in args.num_classes:
            task, _, classes = item.partition("=")
            if not task or not classes.isdigit() or int(classes) < 2:
                p.error(f"--num-classes must be TASK=K with an integer K >= 2. "
                        f"Received: {item!r}")
            declared[task] = int(classes)
        args.num_classes = declared
    if args.version is not None and args.version < 1:
        p.error(f"--version must be a positive integer. Received: {args.version}")
    try:
        train_config(args)
    except ValueError as error:
        p.error(str(error))
    return args


class _RaisingParser(argparse.ArgumentParser):
    """A parser whose errors raise `ValueError` rather than exit."""

    def error(self, message):
        raise ValueError(message)


def parse_config(argv):
    """The `TrainConfig` of a `training.train` command line (without the program name);
    a bad flag or value raises `ValueError` with argparse's or `TrainConfig`'s message
    (for programs that build runs from flags, e.g. `training.experiments`).

    >>> parse_config(["--fusion", "cfc", "--mtl", "lsew", "--epochs", "2"]).epochs
    2
    """
    return train_config(parse_args(argv, build_parser(_RaisingParser)))


def _keep_modalities(text):
    """`--keep-modalities`: yes / no / weighted."""
    values = {"yes": True, "no": False, "weighted": "weighted"}
    if text not in values:
        raise argparse.ArgumentTypeError(f"expected yes, no or weighted. Received: {text!r}")
    return values[text]


def _decision_thresholds(text):
    """`--decision-thresholds`: yes / no / auto."""
    values = {"yes": True, "no": False, "auto": "auto"}
    if text not in values:
        raise argparse.ArgumentTypeError(f"expected yes, no or auto. Received: {text!r}")
    return values[text]


def _input_dropout(text):
    """`--input-dropout`: a rate, or `MODALITY=RATE,...`."""
    try:
        if "=" not in text:
            return float(text)
        return {k.strip(): float(v) for k, v in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a rate or MODALITY=RATE,... Received: {text!r}") from None


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


#: From this many tasks on, the program says before building that the start is slow.
MANY_TASKS = 50


def many_tasks_note(num_tasks):
    """The line printed before building a model of `num_tasks` tasks, or None.

    Each task adds a head, a loss and (DMTL) a gradient norm to the graph that
    TensorFlow traces before the first step; with hundreds of tasks that takes
    minutes with no Keras output, which reads like a hang.

    >>> many_tasks_note(3) is None
    True
    >>> many_tasks_note(300).startswith("Building a model of 300 tasks")
    True
    """
    if num_tasks < MANY_TASKS:
        return None
    return (f"Building a model of {num_tasks} tasks: building it and tracing its first "
            "training step take a while (minutes at a few hundred tasks) before epoch 1 "
            "prints.")


def run(args):
    """Trains, evaluates and exports one run of parsed arguments; returns its metrics.

    The recipe is the library's (`hgfn_keras.recipe.train_and_evaluate`); this
    adds the printing and the SavedModel export.
    """
    import keras

    from hgfn_keras import recipe
    from hgfn_keras.data import load_dataset
    from hgfn_keras.evaluation.metrics import format_results_table
    from hgfn_keras.serving.export import export_saved_model, has_modality_weights
    from hgfn_keras.utils.distribute import get_strategy
    from hgfn_keras.utils.io_utils import check_writable_folder
    from hgfn_keras.recipe.run_folder import (check_folder_name, claim_run_folder,
                                              worker_lock_name)

    started = time.time()
    config = train_config(args)
    strategy = get_strategy(args.distribution)  # before any other op (multi-worker)
    keras.utils.set_random_seed(config.seed)
    dataset = load_dataset(config.dataset, seed=config.seed, limit=config.limit,
                           num_classes=config.num_classes)
    # From the command line, a --config file or a dataset.json's "name": never a path.
    name = check_folder_name(args.name or f"{config.fusion}_{dataset.name}",
                             "--name" if args.name else "The run's name")
    output_dir = args.output_dir or os.path.join("runs", name)
    export_dir = args.export_dir or os.path.join("saved_models", name)
    # Before training, not when the results are written.
    check_writable_folder(output_dir, "--output-dir")
    if not args.no_export:
        check_writable_folder(export_dir, "--export-dir")
    sizes = {s: dataset.size(s) for s in ("train", "validation", "test")}
    print(f"Dataset {dataset.name!r}: modalities {dataset.modality_names}, tasks "
          f"{dataset.task_names}, rows {sizes}", flush=True)
    note = many_tasks_note(len(dataset.task_names))
    if note:
        print(note, flush=True)

    if not args.no_export and args.version is not None:
        target = os.path.join(export_dir, str(args.version))
        if os.path.exists(target):
            raise FileExistsError(
                f"{target} exists already: SavedModel versions are immutable. Pick another "
                "--version or leave it out to take the next free one."
            )
    # One run per folder at a time, and a finished run is not replaced unasked
    # (`--overwrite`): held until the export is written and the backup removed.
    with claim_run_folder(output_dir, overwrite=args.overwrite,
                          lock_name=worker_lock_name(args.distribution)):
        verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
        callbacks = tensorboard_callbacks(dataset, output_dir) if args.tensorboard else None
        result = recipe.train_and_evaluate(config, dataset, output_dir, distribution=strategy,
                                           verbose=verbose, record=vars(args),
                                           callbacks=callbacks, restart=args.restart,
                                           keep_backup=True)
        model, metrics = result.fit.model, result.metrics
        print(f"\nTest split ({sizes['test']} rows), {config.fusion.upper()} + "
              f"{config.mtl.upper()} on {dataset.name}, seed {config.seed}:")
        print(format_results_table(metrics))
        if "decision" in metrics and metrics["decision"]["thresholds"]:
            thresholds = metrics["decision"]["thresholds"]
            print("\nAt the decision thresholds chosen on the validation split ("
                  + ", ".join(f"{n}={t:.3f}" for n, t in thresholds.items()) + "):")
            print(format_results_table(metrics["decision"]))
        elif metrics.get("decision", {}).get("validation"):  # "auto" kept none of them
            print("\nDecision thresholds: none beat 0.5 on the validation split "
                  "(cross-fitted); the run decides at 0.5.")
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
    return run_main(run, parse_args(argv),
                    interrupted="Started again with the same command, the run resumes from "
                    "its last backed-up epoch.")


if __name__ == "__main__":
    sys.exit(main())
