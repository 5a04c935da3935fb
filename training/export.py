"""Export a trained model as a SavedModel version that TF Serving can load.

    python -m training.export --model runs/hgfn_clothing --name hgfn_clothing [--version 3]

`--model` is the `model.keras` file that `python -m training.train` saves in its
output folder, or that folder. The version goes to `<base-dir>/<name>/<version>/`
(default base `saved_models`), written to a temporary folder and renamed into place.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODEL_FILE = "model.keras"


def parse_args(argv=None):
    """Parses the command line.

    Args:
        argv: the arguments (None: `sys.argv[1:]`).

    Returns:
        An `argparse.Namespace`.
    """
    p = argparse.ArgumentParser(
        prog="python -m training.export",
        description="Export a trained model (.keras) as a SavedModel for TF Serving.",
    )
    p.add_argument("--model", required=True,
                   help=f"A .keras file, or a training output folder holding {MODEL_FILE}.")
    p.add_argument("--name", required=True, help="Model name: the folder under --base-dir.")
    p.add_argument("--version", type=int, default=None,
                   help="SavedModel version. Default: the next free integer")
    p.add_argument("--base-dir", default="saved_models",
                   help="Where the model folders are. Default: %(default)s")
    p.add_argument("--no-modality-weights", action="store_true",
                   help="Leave out the `modality_weights` output (it is added when the "
                   "fusion has modality weights, e.g. HGFN).")
    args = p.parse_args(argv)
    if args.version is not None and args.version < 1:
        p.error(f"--version must be a positive integer. Received: {args.version}")
    if not args.name or os.sep in args.name or args.name in (".", ".."):
        p.error(f"--name must be a plain folder name. Received: {args.name!r}")
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
    import keras

    import hgfn_keras  # noqa: F401  registers the project's classes for loading
    from hgfn_keras.export import export_saved_model, has_modality_weights

    path = model_path(args.model)
    model = keras.saving.load_model(path)
    weights = not args.no_modality_weights
    if weights and not has_modality_weights(model):
        weights = False
        print("The fusion has no modality weights; exporting the task outputs only.")
    target = export_saved_model(model, os.path.join(args.base_dir, args.name),
                                version=args.version, return_modality_weights=weights)
    print(f"Exported {path} to {target}")
    return target


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
