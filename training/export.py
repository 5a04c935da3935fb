"""Export a trained model as a SavedModel version that TF Serving can load.

    python -m training.export --model runs/hgfn_clothing --name hgfn_clothing [--version 3]
    python -m training.export --model runs/hgfn_clothing --export-dir saved_models/hgfn_clothing

`--model` is the `model.keras` file that `python -m training.train` saves in its
output folder, or that folder. The version goes to `<export-dir>/<version>/` (default
`saved_models/<name>`, the folder `python -m training.train --export-dir` names), written
to a temporary folder and renamed into place.
"""

import argparse
import os
import sys

from training._cli import run_main

MODEL_FILE = "model.keras"


def parse_args(argv=None):
    """The `python -m training.export` arguments of `argv` (None: `sys.argv[1:]`)."""
    p = argparse.ArgumentParser(
        prog="python -m training.export",
        description="Export a trained model (.keras) as a SavedModel for TF Serving.",
    )
    p.add_argument("--model", required=True,
                   help=f"A .keras file, or a training output folder holding {MODEL_FILE}.")
    p.add_argument("--name", default=None,
                   help="Model name: the folder under saved_models/ (needed without "
                   "--export-dir). Default: none")
    p.add_argument("--version", type=int, default=None,
                   help="SavedModel version. Default: the next free integer")
    p.add_argument("--export-dir", default=None,
                   help="The SavedModel's model folder; the version goes below it (the same "
                   "flag as `training.train --export-dir`). Default: saved_models/<name>")
    # The old name (a base folder; the model folder was <base-dir>/<name>), kept working.
    p.add_argument("--base-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--trust-handles", action="store_true",
                   help="Let the model file's hub encoders fetch the URLs their handles "
                   "name (refused otherwise: loading a model never fetches a URL unasked). "
                   "Default: off")
    p.add_argument("--no-modality-weights", action="store_true",
                   help="Leave out the `modality_weights` output (it is added when the "
                   "fusion has modality weights, e.g. HGFN). Default: included when the "
                   "fusion has them")
    args = p.parse_args(argv)
    if args.version is not None and args.version < 1:
        p.error(f"--version must be a positive integer. Received: {args.version}")
    if args.export_dir is None and (
            not args.name or os.sep in args.name or args.name in (".", "..")):
        p.error(f"give --export-dir, or --name as a plain folder name. Received: "
                f"--name {args.name!r}")
    if args.export_dir is not None and args.base_dir is not None:
        p.error("--base-dir is the old name of --export-dir's parent; give --export-dir only.")
    if args.export_dir is None:
        args.export_dir = os.path.join(args.base_dir or "saved_models", args.name)
    return args


def model_path(path):
    """The `.keras` file that `path` names: itself, or `path/model.keras`.

    Args:
        path: a `.keras` file or a folder holding `model.keras`.

    Returns:
        The file's path.

    Raises:
        FileNotFoundError: if there is no such file.
    """
    candidate = os.path.join(path, MODEL_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(candidate) or not candidate.endswith(".keras"):
        raise FileNotFoundError(
            f"--model must be a .keras file or a folder holding {MODEL_FILE} (as "
            f"`python -m training.train` writes). Received: {path!r}"
        )
    return candidate


def run(args):
    """Loads the model and exports it.

    Args:
        args: the parsed arguments.

    Returns:
        The path of the version folder.
    """
    import contextlib

    import hgfn_keras  # noqa: F401  registers the project's classes for loading
    from hgfn_keras.encoders import trust_handles
    from hgfn_keras.serving.export import export_saved_model, has_modality_weights
    from hgfn_keras.serving.model_file import load_model_file

    path = model_path(args.model)

    with trust_handles() if args.trust_handles else contextlib.nullcontext():
        model = load_model_file(path)  # a cut or damaged file named as such
    weights = not args.no_modality_weights
    if weights and not has_modality_weights(model):
        weights = False
        print("The fusion has no modality weights; exporting the task outputs only.")
    target = export_saved_model(model, args.export_dir,
                                version=args.version, return_modality_weights=weights)
    print(f"Exported {path} to {target}")
    return target


def main(argv=None):
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
