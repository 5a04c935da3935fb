"""The new-user walkthrough of issue 30, replayed: 16 numbered steps on one's own data.

    python -m benchmarks.walkthrough --output-dir /tmp/walkthrough

A new user arrives with their own data: 1,200 rows with an image vector (32 floats),
raw text (words of a small vocabulary, non-ASCII ones included, that go with the
labels), a 12-column table, and three tasks (`liked`: binary; `category`: 4 classes;
`defect`: a rare binary label, about 6 % positive); about 10 % of the rows miss their
image (zeros, mask 0) and 10 % their text (`""`, mask 0), and about 8 % of each task's
labels are missing (-1). The data is synthesised from a seeded numpy generator and
written to `own.npz` (text as a unicode array) and `own_bytes.npz` (text as UTF-8 bytes).

Then the 16 steps of issue 30's walkthrough run, each in its own `try`, so one failure
does not stop the rest: `model.fit` with the text as a numpy string array and as a list,
the CLIs (`training.train`, `tuning.search`, `training.convert`, `training.predict`,
`training.export`) as subprocesses with `--epochs 2`, `MirroredStrategy` with 2
replicas (2 logical CPU devices, in a subprocess), `sample_weight` and `class_weight`
dicts for some tasks, `compile(metrics=)` and `recipe.evaluate(model, (x, y))`,
`from hgfn_keras import fusion_weights`, mixed precision, all-missing rows, and a mask
left out. Each step is one row: what the user does, what they expect, and what
happened now (`ok`, or the one-line error). The rows go to `DIR/walkthrough.md` (a
table) and `DIR/walkthrough.json`; scratch files to `DIR/work`.

The run is small on purpose (widths 8-16, 1-2 epochs): it checks that each path works,
not how well the model learns. About 3-4 minutes on 2 CPU cores.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import traceback
import warnings

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_ROWS = 1200
IMAGE_WIDTH, TABLE_WIDTH = 32, 12
#: Words that go with a liked item, an unliked one, and each of the 4 categories
#: (non-ASCII words included, as a user's own text has them).
LIKED = ["lovely", "perfect", "schön", "great", "soft"]
DISLIKED = ["awful", "cheap", "déçu", "itchy", "torn"]
CATEGORY = [["dress", "robe", "jupe"], ["shirt", "chemise", "hemd"],
            ["shoe", "chaussure", "größe"], ["café", "naïve", "mug"]]
FILLER = ["the", "a", "very", "was", "and", "it", "über", "ok"]
TASKS = {"liked": 2, "category": 4, "defect": 2}
CLI_EPOCHS = ["--epochs", "2"]
#: What each step gave in the walkthrough that issue 30 reports (as its "Why" words it).
THEN = {
    1: "`ValueError: Invalid dtype: str1792`",
    2: "an 8,910-character error",
    3: "\"`x_text` must hold floating (or integer) numbers\"",
    4: "read vectors only",
    5: "read vectors only",
    6: "\"'ascii' codec can't decode byte 0xc3\"",
    7: "crash: \"Value for attr 'T' of string is not in the list of allowed values ... "
       "AddN\"",
    8: "a 21,489-character Keras error",
    9: "worked",
    10: "the refusal pointed to `recipe.evaluate`, which did not take `(x, y)`",
    11: "ImportError, although the package docstring says to",
    12: "float16 outputs (model and SavedModel)",
    13: "fit accepted them (learned a constant 0.50), the SavedModel refused them",
    14: "went unnoticed",
    15: "worked",
    16: "worked",
}
SMALL = ["--units", "16", "--embedding-dim", "8", "--head-units", "8", "--verbose", "0"]


# ------------------------------------------------------------------------------ the data

def make_dataset(seed=0, num_rows=NUM_ROWS):
    """The user's own data: `{npz key: array}` of the npz contract (`x_image`, `x_text`,
    `x_table`, `mask_image`, `mask_text`, `y_liked`, `y_category`, `y_defect`).

    >>> arrays = make_dataset(num_rows=20)
    >>> arrays["x_text"].dtype.kind, arrays["x_image"].shape, int(arrays["y_category"].max())
    ('U', (20, 32), 3)
    """
    rng = np.random.default_rng(seed)
    liked = rng.integers(0, 2, num_rows)
    category = rng.integers(0, 4, num_rows)
    defect = (rng.random(num_rows) < 0.06).astype("int64")
    image = rng.normal(size=(num_rows, IMAGE_WIDTH)).astype("float32")
    image[:, 0] += 1.5 * liked
    image[np.arange(num_rows), 1 + category] += 1.5
    table = rng.normal(size=(num_rows, TABLE_WIDTH)).astype("float32")
    table[:, 0] += 2.0 * defect
    table[:, 1] += 0.5 * category
    texts = []
    for row in range(num_rows):
        words = list(rng.choice(FILLER, 3))
        words += list(rng.choice(LIKED if liked[row] else DISLIKED, 2))
        words += list(rng.choice(CATEGORY[category[row]], 2))
        if defect[row]:
            words.append("broken")
        rng.shuffle(words)
        texts.append(" ".join(words))
    # Missing modalities: 10 % of the rows miss the image (zeros), 10 % the text ("");
    # the table is always there, so no row misses everything.
    mask_image = (rng.random(num_rows) >= 0.10).astype("float32")
    mask_text = (rng.random(num_rows) >= 0.10).astype("float32")
    image[mask_image == 0] = 0.0
    texts = np.array([t if m else "" for t, m in zip(texts, mask_text)])
    labels = {"liked": liked, "category": category, "defect": defect}
    for name, values in labels.items():  # 8 % of each task's labels missing
        values = values.copy()
        values[rng.random(num_rows) < 0.08] = -1
        labels[name] = values
    return {"x_image": image, "x_text": texts, "x_table": table,
            "mask_image": mask_image, "mask_text": mask_text,
            **{f"y_{name}": values for name, values in labels.items()}}


def as_model_inputs(arrays, rows=None, mask=True, order=("image", "text", "table")):
    """`(x, y)` for `model.fit` from the npz arrays: the modalities, and `modality_mask`
    with one column per modality in `order` (the model's input order: the Python
    model's is image, text, table; a model trained from the npz has its modalities
    in name order) unless `mask=False`."""
    rows = slice(None) if rows is None else rows
    x = {"image": arrays["x_image"][rows], "text": arrays["x_text"][rows],
         "table": arrays["x_table"][rows]}
    if mask:
        present = np.ones(len(x["image"]), "float32")
        x["modality_mask"] = np.stack(
            [arrays[f"mask_{name}"][rows] if f"mask_{name}" in arrays else present
             for name in order], axis=1)
    y = {name: arrays[f"y_{name}"][rows] for name in TASKS}
    return x, y


# ----------------------------------------------------------------------------- the steps

class Walkthrough:
    """The 16 steps, run in order on the data in `work`; `rows` collects their results."""

    def __init__(self, work, seed=0, timeout=300):
        self.work, self.seed, self.timeout = work, seed, timeout
        self.rows = []
        self.arrays = make_dataset(seed)
        self.npz = os.path.join(work, "own.npz")
        self.npz_bytes = os.path.join(work, "own_bytes.npz")
        np.savez(self.npz, **self.arrays)
        as_bytes = dict(self.arrays, x_text=np.array([t.encode("utf-8")
                                                      for t in self.arrays["x_text"]]))
        np.savez(self.npz_bytes, **as_bytes)
        self._model = None

    # ------------------------------------------------------------------ helpers

    def step(self, number, action, expected, fn):
        """Runs `fn()` (returns a short note, or raises) and records one row."""
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                note = fn()
            result, ok = "ok" + (f": {note}" if note else ""), True
        except Exception as error:  # noqa: BLE001 - one row per step, whatever happened
            result, ok = one_line(error), False
            traceback.print_exc(file=sys.stderr)
        row = {"step": number, "action": action, "expected": expected,
               "then": THEN.get(number, ""), "ok": ok,
               "result": result, "seconds": round(time.perf_counter() - start, 1)}
        self.rows.append(row)
        print(f"[{number:2d}] {'ok  ' if ok else 'FAIL'} {row['seconds']:6.1f}s  {result}",
              flush=True)
        return row

    def cli(self, module, *args, timeout=None):
        """Runs `python -m module args` in the repository root; raises with the last
        line of its stderr (or stdout) when it exits with another status than 0."""
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3",
                   CUDA_VISIBLE_DEVICES="")
        done = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO,
                              env=env, capture_output=True, text=True, check=False,
                              timeout=timeout or self.timeout)
        if done.returncode != 0:
            lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            raise RuntimeError(f"`python -m {module}` exited {done.returncode}: "
                               + (lines[-1].strip() if lines else "(no output)"))
        return done

    def model(self):
        """The user's model, built once from Python: HGFN + DMTL, small widths."""
        if self._model is None:
            self._model = self.build()
        return self._model

    def build(self, **kwargs):
        import keras

        from hgfn_keras import Modality, Task, TextEncoder, build_model

        keras.utils.set_random_seed(self.seed)
        texts = [t for t in self.arrays["x_text"].tolist() if t]
        encoder = TextEncoder.from_texts(texts, min_count=1, embedding_dim=8, max_tokens=16)
        model = build_model(
            [Modality("image", width=IMAGE_WIDTH), Modality("text", kind="text"),
             Modality("table", width=TABLE_WIDTH)],
            [Task(name, k) for name, k in TASKS.items()],
            fusion="hgfn", fusion_kwargs={"units": 16}, head_units=8,
            encoders={"text": encoder}, **kwargs)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model

    def fit_once(self, model, x, y, **kwargs):
        history = model.fit(x, y, epochs=1, batch_size=128, verbose=0, **kwargs)
        loss = history.history["loss"][-1]
        if not np.isfinite(loss):
            raise ValueError(f"the loss is not finite: {loss}")
        return f"loss {loss:.3f}"

    def same_training(self, x, y, one, other, rows=256):
        """Trains two fresh models from one seed, one epoch on `rows` rows in order, with
        the keyword arguments `one` and `other`; raises unless they end with the same
        weights. Returns the largest difference."""
        x = {k: v[:rows] for k, v in x.items()}
        y = {k: v[:rows] for k, v in y.items()}
        trained = []
        for kwargs in (one, other):
            kwargs = {k: ({t: w[:rows] for t, w in v.items()} if k == "sample_weight" else v)
                      for k, v in kwargs.items()}
            model = self.build(modality_dropout=0.0, dropout=0.0)
            model.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0, **kwargs)
            trained.append(model.get_weights())
        gap = max(float(np.max(np.abs(a - b))) if a.size else 0.0
                  for a, b in zip(*trained))
        if gap > 1e-5:
            raise AssertionError(f"{one} and {other} train differently (max gap {gap:.2g})")
        return gap

    # ------------------------------------------------------------------ the 16 steps

    def run(self):
        work, npz, npz_bytes = self.work, self.npz, self.npz_bytes
        run_dir = os.path.join(work, "run")

        def fit_str_array():
            x, y = as_model_inputs(self.arrays)
            assert x["text"].dtype.kind == "U"
            return self.fit_once(self.model(), x, y)

        self.step(1, "`model.fit(x, y)` with `x['text']` a numpy str array "
                  "(`np.array(list_of_str)`, as `np.load` gives)",
                  "trains (text converted inside, UTF-8)", fit_str_array)

        def fit_list():
            x, y = as_model_inputs(self.arrays)
            x["text"] = x["text"].tolist()
            return self.fit_once(self.model(), x, y)

        self.step(2, "`model.fit(x, y)` with `x['text']` a Python list of str",
                  "trains", fit_list)

        def train_cli():
            self.cli("training.train", "--dataset", f"npz:{npz}", *CLI_EPOCHS, *SMALL,
                     "--output-dir", run_dir, "--export-dir", os.path.join(work, "saved"))
            with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
                metrics = json.load(f)
            assert os.path.exists(os.path.join(run_dir, "model.keras"))
            return (f"test mean F1 {metrics['mean']['f1']:.3f} after "
                    f"{metrics['run']['epochs_run']} epochs")

        self.step(3, "`python -m training.train --dataset npz:own.npz --epochs 2` with a "
                  "string `x_text`", "trains, writes metrics.json and model.keras",
                  train_cli)

        def tune_cli():
            tune = os.path.join(work, "tune")
            self.cli("tuning.search", "--dataset", f"npz:{npz}", "--tuner", "random",
                     "--max-trials", "1", *CLI_EPOCHS, "--verbose", "0",
                     "--output-dir", tune)
            assert os.path.exists(os.path.join(tune, "best_hyperparameters.json"))
            return "best_hyperparameters.json written"

        self.step(4, "`python -m tuning.search --dataset npz:own.npz --tuner random "
                  "--max-trials 1 --epochs 2`", "searches with the text modality", tune_cli)

        def convert_cli():
            shards = os.path.join(work, "shards")
            self.cli("training.convert", "--input", npz_bytes, "--output", shards)
            with open(os.path.join(shards, "dataset.json"), encoding="utf-8") as f:
                header = f.read()
            assert '"text"' in header, "dataset.json does not name a text modality"
            return "shards with a text modality"

        self.step(5, "`python -m training.convert --input own_bytes.npz --output shards` "
                  "(text as UTF-8 bytes)", "writes shards, the text modality included",
                  convert_cli)

        def predict_text_cli():
            out = os.path.join(work, "predictions_text.csv")
            model_path = os.path.join(run_dir, "model.keras")
            self.cli("training.predict", "--model", model_path, "--input", npz_bytes,
                     "--output", out)
            import keras

            import hgfn_keras  # noqa: F401  registers the project's classes

            model = keras.models.load_model(model_path)
            order = [name for name in model.input_names if name != "modality_mask"]
            # The text as a unicode str array, in-process.
            x, _ = as_model_inputs(self.arrays, order=order)
            expected = model.predict(x, verbose=0)["liked"]
            written = _csv_column(out, "liked_prob_1")
            gap = float(np.max(np.abs(written - expected[:, -1])))
            if gap > 1e-4:
                raise AssertionError(f"CLI probabilities differ from the model's on the "
                                     f"same text by up to {gap:.2g}")
            return f"{len(written)} rows scored, as the model scores the str text"

        self.step(6, "`python -m training.predict --model run/model.keras --input "
                  "own_bytes.npz` (text as UTF-8 bytes, 'schön', 'déçu', ...)",
                  "scores every row, text decoded as UTF-8", predict_text_cli)

        def mirrored():
            np.savez(os.path.join(work, "mirrored.npz"),
                     **{k: v[:256] for k, v in self.arrays.items()})
            env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3",
                       CUDA_VISIBLE_DEVICES="")
            done = subprocess.run([sys.executable, "-c", MIRRORED, work], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
            if done.returncode != 0:
                lines = [line for line in done.stderr.splitlines() if line.strip()]
                raise RuntimeError(lines[-1].strip() if lines else f"exit {done.returncode}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            assert result["replicas"] == 2, result
            return f"{result['replicas']} replicas, loss {result['loss']:.3f}"

        self.step(7, "a text model under `tf.distribute.MirroredStrategy` with 2 replicas "
                  "(2 logical CPUs)", "trains", mirrored)

        def sample_weight_some_tasks():
            x, y = as_model_inputs(self.arrays)
            weights = np.where(y["defect"] == 1, 5.0, 1.0).astype("float32")
            ones = np.ones(len(weights), "float32")
            gap = self.same_training(x, y, {"sample_weight": {"defect": weights}},
                                     {"sample_weight": {"liked": ones, "category": ones,
                                                        "defect": weights}})
            return f"the same weights as a full dict with 1 for the others (max gap {gap:.1e})"

        self.step(8, "`model.fit(..., sample_weight={'defect': w})` (one task of three)",
                  "the other tasks weigh 1, as with `class_weight`", sample_weight_some_tasks)

        def class_weight_some_tasks():
            x, y = as_model_inputs(self.arrays)
            weights = np.where(y["defect"] == 1, 8.0, 1.0).astype("float32")
            gap = self.same_training(x, y, {"class_weight": {"defect": {1: 8.0}}},
                                     {"sample_weight": {"defect": weights}})
            return f"the same weights as the row weights it means (max gap {gap:.1e})"

        self.step(9, "`model.fit(..., class_weight={'defect': {1: 8.0}})` (a partial dict)",
                  "trains; omitted tasks and classes weigh 1", class_weight_some_tasks)

        def metrics_and_evaluate():
            import keras

            from hgfn_keras import recipe

            model = self.model()
            try:
                model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
            except ValueError as error:
                if "recipe.evaluate" not in str(error):
                    raise ValueError("the refusal does not point to recipe.evaluate: "
                                     + one_line(error)) from error
            else:
                raise AssertionError("compile(metrics=...) was accepted")
            finally:
                model.compile(optimizer=keras.optimizers.Adam(1e-3))
            x, y = as_model_inputs(self.arrays, slice(1000, None))
            tasks = recipe.evaluate(model, (x, y))["tasks"]
            return "refused, pointing to recipe.evaluate; " + ", ".join(
                f"{t} F1 {m['f1']:.2f}" for t, m in tasks.items())

        self.step(10, "`model.compile(metrics=['accuracy'])`, then what its refusal says: "
                  "`recipe.evaluate(model, (x, y))`",
                  "a refusal naming `recipe.evaluate`, which gives per-task F1/MAP",
                  metrics_and_evaluate)

        def fusion_weights_import():
            from hgfn_keras import fusion_weights

            x, _ = as_model_inputs(self.arrays, slice(0, 64))
            weights, labels = fusion_weights(self.model(), x)
            return f"level 1 {labels[0]}: shape {list(weights[0].shape)}"

        self.step(11, "`from hgfn_keras import fusion_weights`; `fusion_weights(model, x)`",
                  "per-level vertex weights", fusion_weights_import)

        def mixed_precision():
            import keras
            import tensorflow as tf

            from hgfn_keras import export_saved_model

            keras.mixed_precision.set_global_policy("mixed_float16")
            try:
                model = self.build()
                compute = model.fusion_layer.compute_dtype
                assert compute == "float16", f"the fusion computes in {compute}"
                x, y = as_model_inputs(self.arrays, slice(0, 256))
                model.fit(x, y, epochs=1, batch_size=128, verbose=0)
                dtypes = {t: str(p.dtype) for t, p in model.predict(x, verbose=0).items()}
                folder = export_saved_model(model, os.path.join(work, "saved_mixed"))
            finally:
                keras.mixed_precision.set_global_policy("float32")
            served = tf.saved_model.load(folder).signatures["serving_default"](
                **_serving_inputs(x, 8))
            dtypes.update({f"served {k}": v.dtype.name for k, v in served.items()})
            wrong = {k: v for k, v in dtypes.items() if v != "float32"}
            if wrong:
                raise AssertionError(f"outputs not float32: {wrong}")
            return "computes in float16; model and SavedModel outputs float32"

        self.step(12, "train and export under `keras.mixed_precision` `mixed_float16`",
                  "float32 outputs from the model and the SavedModel", mixed_precision)

        def all_missing_rows():
            import tensorflow as tf

            from hgfn_keras import export_saved_model

            model = self.model()
            x, y = as_model_inputs(self.arrays, slice(0, 64))
            x["modality_mask"][[3, 7]] = 0.0
            try:
                model.fit(x, y, epochs=1, batch_size=32, verbose=0)
                fit_says = "accepted"
            except ValueError as error:
                fit_says = "refused: " + one_line(error)
            folder = export_saved_model(model, os.path.join(work, "saved_user"))
            try:
                tf.saved_model.load(folder).signatures["serving_default"](
                    **_serving_inputs(x, 8))
                serving_says = "accepted"
            except tf.errors.InvalidArgumentError as error:
                serving_says = "refused: " + one_line(error)
            if fit_says.startswith("accepted") != serving_says.startswith("accepted"):
                raise AssertionError(f"fit {fit_says[:120]} / SavedModel {serving_says[:120]}")
            return (f"both {fit_says.split(':')[0]}; fit: {fit_says[9:]}; "
                    f"SavedModel: {serving_says[9:]}")

        self.step(13, "rows whose `modality_mask` is all 0 (rows 3 and 7), in `fit` and "
                  "in the SavedModel", "treated the same by both (refused, naming the rows)",
                  all_missing_rows)

        def mask_left_out():
            x, y = as_model_inputs(self.arrays, mask=False)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.model().fit(x, y, epochs=1, batch_size=128, verbose=0)
            said = [str(w.message) for w in caught if "hold only zeros" in str(w.message)]
            if not said:
                raise AssertionError("no warning: the zero rows of 'image' are read as "
                                     "present values")
            return "warned: " + said[0]

        self.step(14, "`model.fit` without `modality_mask`, the missing images left as "
                  "zero rows", "a warning that the zero rows look like missing data",
                  mask_left_out)

        def export_cli():
            saved = os.path.join(work, "exported")
            self.cli("training.export", "--model", os.path.join(run_dir, "model.keras"),
                     "--export-dir", saved)
            versions = sorted(os.listdir(saved))
            assert versions, "no version folder"
            return f"version {versions[-1]} written"

        self.step(15, "`python -m training.export --model run/model.keras`",
                  "a SavedModel version folder", export_cli)

        def predict_vectors_cli():
            import keras

            from hgfn_keras import Modality, Task, build_model

            keras.utils.set_random_seed(self.seed)
            model = build_model([Modality("image", width=IMAGE_WIDTH),
                                 Modality("table", width=TABLE_WIDTH)],
                                [Task(name, k) for name, k in TASKS.items()],
                                fusion_kwargs={"units": 16}, head_units=8)
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
            x, y = as_model_inputs(self.arrays)
            x = {"image": x["image"], "table": x["table"],
                 "modality_mask": x["modality_mask"][:, [0, 2]]}
            model.fit(x, y, epochs=1, batch_size=128, verbose=0)
            path = os.path.join(work, "vectors.keras")
            model.save(path)
            vectors = os.path.join(work, "vectors.npz")
            np.savez(vectors, x_image=self.arrays["x_image"], x_table=self.arrays["x_table"],
                     mask_image=self.arrays["mask_image"])
            out = os.path.join(work, "predictions_vectors.csv")
            self.cli("training.predict", "--model", path, "--input", vectors, "--output", out)
            return f"{_csv_rows(out)} rows scored"

        self.step(16, "`python -m training.predict` on an npz of vectors (a vector-only "
                  "model)", "scores every row", predict_vectors_cli)
        return self.rows


MIRRORED = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from hgfn_keras import Modality, Task, TextEncoder, build_model

    data = np.load(os.path.join(sys.argv[1], "mirrored.npz"))
    x = {"image": data["x_image"], "text": data["x_text"], "table": data["x_table"],
         "modality_mask": np.stack([data["mask_image"], data["mask_text"],
                                    np.ones_like(data["mask_image"])], axis=1)}
    y = {t: data["y_" + t] for t in ("liked", "category", "defect")}
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    keras.utils.set_random_seed(0)
    with strategy.scope():
        encoder = TextEncoder.from_texts([t for t in x["text"].tolist() if t], min_count=1,
                                         embedding_dim=8, max_tokens=16)
        model = build_model([Modality("image", width=32), Modality("text", kind="text"),
                             Modality("table", width=12)],
                            [Task("liked", 2), Task("category", 4), Task("defect", 2)],
                            fusion_kwargs={"units": 16}, head_units=8,
                            encoders={"text": encoder})
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    print(json.dumps({"replicas": model.distribute_strategy.num_replicas_in_sync,
                      "loss": float(history.history["loss"][-1])}))
""")


def _serving_inputs(x, rows):
    """The first `rows` rows of `x` as the SavedModel's tensors."""
    import tensorflow as tf

    return {name: tf.constant(value[:rows].tolist() if name == "text" else value[:rows])
            for name, value in x.items()}


def _csv_column(path, name):
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return np.array([float(row[name]) for row in csv.DictReader(f)])


def _csv_rows(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


def one_line(error):
    """`Type: message`, on one line, at most 300 characters (a SavedModel's refusal
    from the project's check, `Bad input ...`, without TensorFlow's graph trace and
    node names).

    >>> one_line(ValueError("Graph execution error: ... Bad input 'x': rows] [3 7] "
    ...                     "[[{{node Assert}}]] [Op:f]"))
    "ValueError: Bad input 'x': rows] [3 7]"
    """
    text = " ".join(str(error).split()).replace("\\'", "'")
    if "Bad input" in text:
        text = text[text.index("Bad input"):]
    text = text.split(" [[{{node")[0]  # TensorFlow's node and op names
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ---------------------------------------------------------------------------- the report

def markdown_table(rows):
    """The rows as a markdown table: step, what the user does, expected, what issue
    30's walkthrough saw, what happened now.

    >>> print(markdown_table([{"step": 1, "action": "a | b", "expected": "c",
    ...                        "then": "d", "ok": True, "result": "ok"}]))
    | step | what the user does | expected | in issue 30 | what happened now |
    | ---: | --- | --- | --- | --- |
    | 1 | a \\| b | c | d | ok |
    """
    def cell(value):
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| step | what the user does | expected | in issue 30 | what happened now |",
             "| ---: | --- | --- | --- | --- |"]
    for row in rows:
        result = row["result"] if row["ok"] else "**fails**: " + row["result"]
        lines.append(f"| {row['step']} | {cell(row['action'])} | {cell(row['expected'])} | "
                     f"{cell(row.get('then', ''))} | {cell(result)} |")
    return "\n".join(lines)


def write_report(rows, output_dir, seconds=None):
    """Writes `walkthrough.md` and `walkthrough.json` into `output_dir`; returns the
    markdown text."""
    from hgfn_keras.utils.io_utils import atomic_write_json, atomic_write_text

    passed = sum(row["ok"] for row in rows)
    text = (f"# The new-user walkthrough (issue 30)\n\n{passed} of {len(rows)} steps ok"
            + (f", {seconds:.0f} s" if seconds is not None else "") + ".\n\n"
            + markdown_table(rows) + "\n")
    atomic_write_text(os.path.join(output_dir, "walkthrough.md"), text)
    atomic_write_json(os.path.join(output_dir, "walkthrough.json"),
                      {"passed": passed, "steps": len(rows), "seconds": seconds,
                       "rows": rows})
    return text


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", required=True,
                   help="Folder for walkthrough.md, walkthrough.json and work/ (scratch).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the data and the models.")
    p.add_argument("--timeout", type=int, default=300,
                   help="Seconds each subprocess (CLI step, mirrored step) may take.")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    work = os.path.join(args.output_dir, "work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    start = time.perf_counter()
    rows = Walkthrough(work, seed=args.seed, timeout=args.timeout).run()
    text = write_report(rows, args.output_dir, seconds=time.perf_counter() - start)
    print()
    print(text)
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
