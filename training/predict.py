"""Score rows with a trained model and write the predictions as a CSV file.

    python -m training.predict --model runs/quickstart --input features.npz \\
        --output predictions.csv
    hgfn-predict --model saved_models/hgfn_clothing/1 --input reviews.csv --output p.csv

`--model` is a training output folder holding `model.keras`, a `.keras` file, or a
SavedModel version folder (`python -m training.export`). `--input` is

- an `.npz` file of the feature-file contract: `x_<modality>` per model input and
  optionally `mask_<modality>` (labels, `y_<task>`, and `split` are ignored), or
- a `.csv` manifest with a header: one column per modality, named after it. A text
  modality holds the text; a vector modality of width D holds D numbers separated by
  spaces (or columns `<modality>_0` .. `<modality>_<D-1>`). An empty cell is a missing
  modality for that row. An `id` column, when present, names the rows.

The output has one row per scored input row: `row` (the id, or the row number from 0),
then per task its probability of each class (`<task>_prob_<class>`, the class's name
where the task has class names, else its index), the predicted class (`<task>_pred`, its
name or index likewise) and the predicted class's index (`<task>_pred_index`), and, for
a model whose fusion has modality weights (HGFN, GFN), the per-sample weight of each
modality (`weight_<modality>`). A SavedModel's class names are read from
`assets.extra/tasks.json`, which `hgfn_keras.serving.export.export_saved_model` writes. An input
of 0 rows gives the header alone. Rows that cannot be scored (a value that is not a
number, the wrong count of numbers, a non-finite value, every modality missing) are left
out and listed with the reason in `<output>.skipped.csv`; a run that leaves nothing out
removes that file, so that it never describes an earlier run. A CSV may start with a
UTF-8 byte-order mark (Excel's "CSV UTF-8"). Bad input (a missing file, a missing column,
a file that is not a model, an `--output` that is the `--input`) prints one `error:` line
and exits with status 2.
"""

import argparse
import csv
import os
import sys

from training._cli import run_main

MODEL_FILE = "model.keras"
# `hgfn_keras.feature_checks.MASK_KEY`, spelled here so that `--help` and the argument
# checks run before TensorFlow is imported (tests/test_predict_cli.py checks they agree).
MASK_KEY = "modality_mask"
ID_COLUMN = "id"
DEFAULT_BATCH_SIZE = 256


class InputError(ValueError):
    """Input the program cannot use; reported as one `error:` line."""


def parse_args(argv: "list[str] | None" = None) -> argparse.Namespace:
    """The `python -m training.predict` arguments of `argv` (None: `sys.argv[1:]`)."""
    p = argparse.ArgumentParser(
        prog="python -m training.predict",
        description="Score rows with a trained model; write probabilities, predicted "
        "classes and (HGFN) modality weights as CSV.",
    )
    p.add_argument("--model", required=True,
                   help=f"A training output folder holding {MODEL_FILE}, a .keras file, or "
                   "a SavedModel version folder.")
    p.add_argument("--input", required=True,
                   help="An .npz feature file (x_<modality>, optional mask_<modality>) or "
                   "a .csv manifest (one column per modality, optional 'id').")
    p.add_argument("--output", required=True,
                   help="The predictions CSV to write (not the --input). Columns: row; "
                   "per task <task>_prob_<class>, <task>_pred (the class's name where the "
                   "task has class names, else its index) and <task>_pred_index; "
                   "weight_<modality>.")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help="Rows per batch. Default: %(default)s")
    p.add_argument("--no-modality-weights", action="store_true",
                   help="Leave out the weight_<modality> columns. Default: included when "
                   "the model has them")
    p.add_argument("--verbose", action="store_true",
                   help="Show TensorFlow's own log lines. Default: off")
    p.add_argument("--trust-handles", action="store_true",
                   help="Let the model file's hub encoders fetch the URLs their handles "
                   "name (refused otherwise: loading a model never fetches a URL unasked). "
                   "Default: off")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1. Received: {args.batch_size}")
    return args


# ---------------------------------------------------------------------------- the model


class _Scorer:
    """What the prediction needs from a model, for .keras models and SavedModels alike.

    Attributes:
        inputs: `[(name, kind, shape)]` in the model's input order; kind is "text" or
            "float"; shape excludes the batch dimension.
        tasks: `[(name, class_names)]`.
        has_weights: whether `weights` can return the modality weights.
    """

    def __init__(self, path: str, want_weights: bool):
        self.path = path
        self.want_weights = want_weights
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
            self._load_saved_model(path)
        else:
            if os.path.isdir(path):
                path = os.path.join(path, MODEL_FILE)
            if not os.path.isfile(path):
                raise InputError(
                    f"--model: no {MODEL_FILE} or saved_model.pb at {self.path}. Expected a "
                    "training output folder, a .keras file or a SavedModel version folder"
                )
            self._load_keras(path)

    def _load_keras(self, path):
        import keras

        import hgfn_keras  # noqa: F401  registers the project's classes for loading

        from hgfn_keras.serving.model_file import DamagedModelFileError, check_model_file

        try:
            check_model_file(path)  # a cut or damaged file named as such
        except (DamagedModelFileError, FileNotFoundError) as error:
            raise InputError(f"--model: {error}") from None
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # noqa: BLE001  any load failure: one error line
            raise InputError(f"--model: cannot load {path}: {error}") from error
        if not hasattr(model, "network") or not hasattr(model, "tasks"):
            raise InputError(f"--model: {path} is not a hgfn_keras MultiTaskModel")
        self.model = model
        self.inputs = [(t.name, "text" if t.dtype == "string" else "float", tuple(t.shape[1:]))
                       for t in model.network.inputs]
        self.tasks = [(t.name, list(t.class_names or range(t.num_classes))) for t in model.tasks]
        self.binary = {t.name: t.is_binary for t in model.tasks}
        from hgfn_keras.serving.export import has_modality_weights

        self.has_weights = self.want_weights and has_modality_weights(model)
        self._signature = None

    def _load_saved_model(self, path):
        import tensorflow as tf

        try:  # the text encoders' ops (CaseFoldUTF8, ...) must be registered before loading
            import tensorflow_text  # noqa: F401
        except ImportError:
            pass

        try:
            loaded = tf.saved_model.load(path)
            signature = loaded.signatures["serving_default"]
        except Exception as error:  # noqa: BLE001
            raise InputError(f"--model: cannot load the SavedModel at {path}: {error}") from error
        self._loaded = loaded
        self._signature = signature
        specs = signature.structured_input_signature[1]
        # The signature's inputs are a dict (sorted by name), but the columns of
        # `modality_mask` follow the model's modality order: the exported endpoint keeps
        # its positional input signature in that order (hgfn_keras.serving.export).
        endpoint = getattr(loaded, "serving_default", None)
        order = [s.name for s in getattr(endpoint, "input_signature", None) or ()]
        if MASK_KEY in specs and sorted(order) != sorted(specs):
            raise InputError(
                f"--model: the SavedModel at {path} does not say the order of its modalities "
                "(its serving_default endpoint has no input signature); export it with "
                "python -m training.export, or pass the model.keras")
        names = [n for n in order if n in specs] or sorted(specs)
        self.inputs = [(n, "text" if specs[n].dtype == tf.string else "float",
                        tuple(specs[n].shape[1:])) for n in names]
        outputs = signature.structured_outputs
        self.has_weights = self.want_weights and "modality_weights" in outputs
        self.tasks, self.binary = [], {}
        for name, spec in outputs.items():
            # `<task>_decision` (a stored decision threshold's 0/1) is not a task.
            if name == "modality_weights" or (
                    name.endswith("_decision") and name[:-len("_decision")] in outputs):
                continue
            width = int(spec.shape[-1])
            self.binary[name] = width == 1
            self.tasks.append((name, list(range(2 if width == 1 else width))))
        self.tasks = _with_class_names(self.tasks, path)
        self.model = None

    @property
    def modalities(self) -> "list[str]":
        return [n for n, _, _ in self.inputs if n != MASK_KEY]

    def score(self, batch):
        """Returns `({task: [n, K] probabilities}, [n, M] modality weights or None)`."""
        import numpy as np

        if self._signature is not None:
            import tensorflow as tf

            tensors = {n: tf.constant(batch[n]) for n, _, _ in self.inputs}
            out = {k: np.asarray(v) for k, v in self._signature(**tensors).items()}
            weights = out.get("modality_weights") if self.has_weights else None
        else:
            out = self.model.predict_on_batch({n: batch[n] for n, _, _ in self.inputs})
            out = {k: np.asarray(v) for k, v in out.items()}
            weights = None
            if self.has_weights:
                from hgfn_keras.evaluation.inspection import fusion_weights

                levels, _ = fusion_weights(self.model, {n: batch[n] for n, _, _ in self.inputs},
                                           batch_size=len(next(iter(batch.values()))))
                weights = levels[0]
        probs = {}
        for name, _ in self.tasks:
            p = out[name].astype("float64")
            if self.binary[name]:
                p = p.reshape(-1, 1)
                p = np.concatenate([1.0 - p, p], axis=1)
            probs[name] = p
        return probs, weights


def _with_class_names(tasks, path):
    """`tasks` in the model's order, with the class names recorded beside a SavedModel."""
    import json

    from hgfn_keras.serving.export import TASKS_FILE, TASKS_FILE_FOLDER

    recorded = os.path.join(path, TASKS_FILE_FOLDER, TASKS_FILE)
    if not os.path.isfile(recorded):  # exported before the file was written: indices
        return tasks
    try:
        with open(recorded, encoding="utf-8") as f:
            names = json.load(f)
    except (OSError, ValueError) as error:
        raise InputError(f"--model: cannot read {recorded}: {error}") from error
    if not isinstance(names, dict):
        raise InputError(f"--model: {recorded} is not a JSON object of tasks")
    # The model's task order (the file's), as a .keras model's columns are.
    order = {task: i for i, task in enumerate(names)}
    named = []
    for task, classes in sorted(tasks, key=lambda t: order.get(t[0], len(order))):
        found = (names.get(task) or {}).get("class_names")
        named.append((task, list(found) if found and len(found) == len(classes) else classes))
    return named


# ---------------------------------------------------------------------------- the input


def _parse_numbers(text: str, width: int) -> "list[float]":
    parts = text.replace(",", " ").replace(";", " ").split()
    if len(parts) != width:
        raise ValueError(f"expected {width} number(s), found {len(parts)}")
    return [float(v) for v in parts]


def read_csv(path: str, scorer: _Scorer) -> tuple:
    """Reads a CSV manifest.

    Returns:
        `(ids, x, skipped)`: the row ids of the usable rows, the model inputs as numpy
        arrays, and `[(row id, reason)]` for the rows left out.
    """
    import numpy as np

    # A long text or a wide vector in one cell: Python's csv refuses a field over 128 KB
    # ("field larger than field limit") unless told otherwise.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name.
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        columns = {}
        for name, kind, shape in scorer.inputs:
            if name == MASK_KEY:
                continue
            if len(shape) > 1:
                raise InputError(f"--input: modality {name!r} is a sequence {list(shape)}; "
                                 "a CSV cannot hold it. Use an .npz file")
            if name in header:
                columns[name] = [name]
            elif kind == "float" and all(f"{name}_{i}" in header for i in range(shape[0])):
                columns[name] = [f"{name}_{i}" for i in range(shape[0])]
            else:
                hint = "" if kind == "text" else f" (or {name}_0 .. {name}_{shape[0] - 1})"
                raise InputError(f"--input: {path} has no column {name!r}{hint}. "
                                 f"Its columns: {header}")
        ids, rows, skipped = [], [], []
        for number, record in enumerate(reader):
            row_id = record.get(ID_COLUMN) or str(number) if ID_COLUMN in header else str(number)
            values, present, reason = {}, [], None
            for name, kind, shape in scorer.inputs:
                if name == MASK_KEY:
                    continue
                cells = [(record.get(c) or "").strip() for c in columns[name]]
                if kind == "text":
                    values[name] = cells[0]
                    present.append(1.0 if cells[0] else 0.0)
                    continue
                if not any(cells):
                    values[name] = [0.0] * shape[0]
                    present.append(0.0)
                    continue
                try:
                    numbers = (_parse_numbers(cells[0], shape[0]) if len(cells) == 1
                               else [float(c) for c in cells])
                except ValueError as error:
                    reason = f"{name}: {error}" if "expected" in str(error) else \
                        f"{name}: not a number ({error})"
                    break
                if not all(np.isfinite(numbers)):
                    reason = f"{name}: a value is not finite"
                    break
                values[name] = numbers
                present.append(1.0)
            if reason is None and not any(present):
                reason = "every modality is missing"
            if reason is not None:
                skipped.append((row_id, reason))
                continue
            values[MASK_KEY] = present
            ids.append(row_id)
            rows.append(values)
    x = {}
    for name, kind, shape in scorer.inputs:
        if kind == "text" and name != MASK_KEY:
            x[name] = np.array([r[name] for r in rows], dtype=object).reshape(-1)
        else:
            x[name] = np.asarray([r[name] for r in rows], "float32").reshape((-1,) + shape)
    return ids, x, skipped


def read_npz(path: str, scorer: _Scorer) -> tuple:
    """Reads an .npz feature file; returns `(ids, x, skipped)` as `read_csv` does."""
    import numpy as np

    from hgfn_keras.data.dataset import check_mask_values

    try:
        data = np.load(path, allow_pickle=False)
    except Exception as error:  # noqa: BLE001
        raise InputError(f"--input: cannot read {path} as an .npz file: {error}") from error
    with data:
        arrays, rows = {}, None
        for name, kind, shape in scorer.inputs:
            if name == MASK_KEY:
                continue
            key = f"x_{name}"
            if key not in data.files:
                raise InputError(f"--input: {path} has no {key!r}. Its keys: {sorted(data.files)}")
            value = data[key]
            expected = tuple(-1 if d is None else d for d in shape)
            if kind == "text":
                from hgfn_keras.utils.text_arrays import as_text_array

                try:  # `<U` or UTF-8 bytes (numpy's `astype(str)` decodes bytes as ASCII)
                    value = as_text_array(value, f"--input: {key}")
                except ValueError as error:
                    raise InputError(str(error)) from error
            elif value.ndim != len(shape) + 1 or any(
                    e != -1 and e != d for e, d in zip(expected, value.shape[1:])):
                raise InputError(f"--input: {key} has shape {list(value.shape)}; the model "
                                 f"expects [N, {', '.join(map(str, shape))}]")
            else:
                value = value.astype("float32")
            if rows is not None and len(value) != rows:
                raise InputError(f"--input: {key} has {len(value)} rows, other inputs {rows}")
            rows = len(value)
            arrays[name] = value
        modalities = scorer.modalities
        mask = np.ones((rows, len(modalities)), "float32")
        for j, name in enumerate(modalities):
            if f"mask_{name}" in data.files:
                m = data[f"mask_{name}"].reshape(-1)
                if len(m) != rows:
                    raise InputError(f"--input: mask_{name} has {len(m)} rows, x_{name} {rows}")
                try:
                    check_mask_values(m, f"mask_{name}")
                except ValueError as error:
                    raise InputError(f"--input: {error}") from error
                mask[:, j] = m
    reasons = [None] * rows
    for j, name in enumerate(modalities):
        value = arrays[name]
        if value.dtype.kind == "f":
            # (rows, -1) cannot be reshaped when rows == 0: name the width.
            width = int(np.prod(value.shape[1:], dtype=np.int64))
            bad = ~np.isfinite(value.reshape(rows, width)).all(axis=1) & (mask[:, j] > 0)
            for i in np.flatnonzero(bad):
                reasons[i] = reasons[i] or f"x_{name}: a value is not finite"
    for i in np.flatnonzero(mask.max(axis=1) <= 0):
        reasons[i] = reasons[i] or "every modality is missing (mask all 0)"
    keep = np.array([r is None for r in reasons], bool)
    x = {name: value[keep] for name, value in arrays.items()}
    if any(n == MASK_KEY for n, _, _ in scorer.inputs):
        x[MASK_KEY] = mask[keep]
    ids = [str(i) for i in np.flatnonzero(keep)]
    skipped = [(str(i), r) for i, r in enumerate(reasons) if r is not None]
    return ids, x, skipped


# ---------------------------------------------------------------------------- the run


def _write_predictions(path, header, scorer, ids, x, batch_size, batches, progress):
    """Scores `x` batch by batch and writes the rows (see the module docstring) to `path`."""
    import numpy as np

    from hgfn_keras.utils.io_utils import spreadsheet_safe

    rows = len(ids)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([spreadsheet_safe(c) for c in header])
        for b in range(batches):
            sl = slice(b * batch_size, min(rows, (b + 1) * batch_size))
            probs, weights = scorer.score({k: v[sl] for k, v in x.items()})
            for i, row_id in enumerate(ids[sl]):
                line = [spreadsheet_safe(row_id)]
                for task, classes in scorer.tasks:
                    p = probs[task][i]
                    best = int(np.argmax(p))
                    line += [f"{v:.6f}" for v in p] + [spreadsheet_safe(classes[best]), best]
                if weights is not None:
                    line += [f"{v:.6f}" for v in weights[i]]
                writer.writerow(line)
            progress.update(b + 1)


def predict(args: argparse.Namespace) -> dict:
    """Scores `args.input` with `args.model` and writes `args.output`; returns a summary."""
    if not os.path.exists(args.model):
        raise InputError(f"--model: {args.model} does not exist")
    if not os.path.isfile(args.input):
        raise InputError(f"--input: {args.input} is not a file")
    if os.path.exists(args.output) and os.path.samefile(args.output, args.input) or \
            os.path.realpath(args.output) == os.path.realpath(args.input):
        raise InputError(f"--output: {args.output} is the --input file; choose another file "
                         "(the input would be overwritten)")
    extension = os.path.splitext(args.input)[1].lower()
    if extension not in (".npz", ".csv"):
        raise InputError(f"--input: expected an .npz or .csv file. Received: {args.input}")
    # After the checks above: a bad path is answered without loading TensorFlow.
    import contextlib

    from hgfn_keras.encoders import trust_handles
    from hgfn_keras.recipe.run_folder import RunFolderBusyError, RunFolderLock

    with trust_handles() if args.trust_handles else contextlib.nullcontext():
        scorer = _Scorer(args.model, want_weights=not args.no_modality_weights)
    reader = read_npz if extension == ".npz" else read_csv
    ids, x, skipped = reader(args.input, scorer)

    header = ["row"]
    for task, classes in scorer.tasks:
        header += [f"{task}_prob_{c}" for c in classes] + [f"{task}_pred", f"{task}_pred_index"]
    if scorer.has_weights:
        header += [f"weight_{m}" for m in scorer.modalities]

    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    # One run per --output at a time (a second is refused naming the first), and a
    # staging file of this process's own: two runs never share one `.partial`.
    base = os.path.basename(args.output)
    try:
        lock = RunFolderLock(out_dir, "--output", f".{base}.lock", subject=args.output).acquire()
    except RunFolderBusyError as error:
        raise InputError(str(error)) from None
    try:
        # Holding the lock, any staging file of this output is a dead run's (SIGKILL).
        skipped_base = os.path.basename(os.path.splitext(args.output)[0] + ".skipped.csv")
        for name in os.listdir(out_dir):
            if name.startswith((f".{base}.", f".{skipped_base}.")) and ".partial" in name:
                os.remove(os.path.join(out_dir, name))
        return _score_and_write(args, scorer, ids, x, skipped, header, out_dir)
    finally:
        lock.release()


def _score_and_write(args, scorer, ids, x, skipped, header, out_dir):
    import keras

    from hgfn_keras.utils.io_utils import StagedOutput, spreadsheet_safe

    rows = len(ids)
    batches = (rows + args.batch_size - 1) // args.batch_size
    # A bar on a terminal; one line at the end otherwise (no control characters in logs).
    progress = keras.utils.Progbar(batches, unit_name="batch",
                                   verbose=1 if sys.stdout.isatty() else 2) if batches else None
    # Under a staging name of this run's own (`.<output>.<pid>-<random>.partial.csv`),
    # renamed when whole: a failed or interrupted run (a full disk, a file-size limit,
    # Ctrl-C) leaves no partial file and an earlier output as it was.
    with StagedOutput(args.output, "the predictions") as staging:
        _write_predictions(staging, header, scorer, ids, x, args.batch_size, batches,
                           progress)

    skipped_path = os.path.splitext(args.output)[0] + ".skipped.csv"
    if skipped:
        with StagedOutput(skipped_path, "the list of rows left out") as staging, \
                open(staging, "x", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["row", "reason"])
            writer.writerows([spreadsheet_safe(c) for c in row] for row in skipped)
    else:
        # An earlier run's list would describe rows this run scored.
        if os.path.lexists(skipped_path):
            os.remove(skipped_path)
        skipped_path = None
    return {"scored": rows, "skipped": skipped, "skipped_path": skipped_path,
            "output": args.output}


def main(argv: "list[str] | None" = None) -> int:
    return run_main(_predict_and_report, parse_args(argv),
                    interrupted="Nothing half-written is left.")


def _predict_and_report(args):
    """`predict(args)`, then its summary on stdout."""
    summary = predict(args)
    print(f"Scored {summary['scored']} row(s); wrote {summary['output']}")
    if summary["skipped"]:
        print(f"Left out {len(summary['skipped'])} row(s) that cannot be scored; the list "
              f"with the reasons is {summary['skipped_path']}:")
        for row_id, reason in summary["skipped"][:5]:
            print(f"  row {row_id}: {reason}")
        if len(summary["skipped"]) > 5:
            print(f"  ... and {len(summary['skipped']) - 5} more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
