"""Shared tiny fixtures: two modalities, two tasks (binary and 3-class), a dozen rows,
and a tiny npz file. Test files may still define their own when they need other sizes."""

import contextlib
import io
import re
import subprocess

import numpy as np
import pytest

from hgfn_keras import Modality, Task

TINY_MODALITIES = (Modality("a", width=4), Modality("b", width=3))
TINY_TASKS = (Task("t1", 2), Task("t2", 3))


def tiny_xy(n=12, seed=0, with_mask=False):
    """Inputs `{a, b}` and labels `{t1, t2}` (every class present) of `n` rows."""
    rng = np.random.default_rng(seed)
    x = {"a": rng.normal(size=(n, 4)).astype("float32"),
         "b": rng.normal(size=(n, 3)).astype("float32")}
    if with_mask:
        x["modality_mask"] = np.ones((n, 2), "float32")
        x["modality_mask"][0, 1] = 0.0
    y = {"t1": np.arange(n) % 2, "t2": np.arange(n) % 3}
    return x, y


@pytest.fixture
def tiny_modalities():
    return list(TINY_MODALITIES)


@pytest.fixture
def tiny_tasks():
    return list(TINY_TASKS)


@pytest.fixture
def tiny_data():
    return tiny_xy()


@pytest.fixture(scope="module")
def tiny_npz_file(tmp_path_factory):
    """A 40-row npz (audio [40, 3], video [40, 4]; happy binary, mood 3-class)."""
    rng = np.random.default_rng(0)
    n = 40
    path = tmp_path_factory.mktemp("tiny") / "tiny.npz"
    np.savez(path, x_audio=rng.normal(size=(n, 3)).astype("float32"),
             x_video=rng.normal(size=(n, 4)).astype("float32"),
             y_happy=np.arange(n) % 2, y_mood=np.arange(n) % 3)
    return path


def make_inputs(modalities, rows, rng, mask=False, missing=()):
    """Random inputs `{modality name: float32 [rows, width]}` drawn from `rng` (a numpy
    Generator, which the caller may go on drawing labels from); with `mask` (or any
    `missing`), a `modality_mask` of ones with 0 at each `(row, modality index)` in
    `missing`."""
    x = {m.name: rng.normal(size=(rows, m.width)).astype("float32") for m in modalities}
    if mask or missing:
        x["modality_mask"] = np.ones((rows, len(modalities)), "float32")
        for row, column in missing:
            x["modality_mask"][row, column] = 0.0
    return x


def make_model(modalities, tasks, optimizer=None, seed=0, **build_kwargs):
    """`build_model(modalities, tasks, **build_kwargs)` after seeding, compiled with
    `optimizer` (default SGD 0.05): the tests' tiny model."""
    import keras

    from hgfn_keras import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(list(modalities), list(tasks), **build_kwargs)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.05))
    return model


def run_in_process(main, *args):
    """A CLI's `main(argv)` run in this process, as `subprocess.run` would report it:
    `returncode` (argparse's `SystemExit` included), `stdout`, `stderr`. For refusals
    and help, which need no process (and so no TensorFlow start-up) of their own; an
    exception that `main` lets through fails the test as a traceback would."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) or exit.code is None else 1
    return subprocess.CompletedProcess(list(args), code or 0, out.getvalue(), err.getvalue())


def run_as_process(main, *args):
    """`run_in_process(main, *args)` for an end-to-end run that a test once started as a
    process of its own (where the process is not the point): warnings print as they
    would there, instead of being the errors pytest's configuration makes of the
    library's, and an exception `main` lets through still fails the test."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return run_in_process(main, *args)


def error_lines(stderr):
    """The lines of stderr that carry an error message (TF's start-up noise left out)."""
    return [line for line in stderr.splitlines()
            if line.startswith("error:") or re.match(r"^\S.*: error: ", line)]


# ---------------------------------------------------------------------- shared, once a session
# Fixtures that several test files use, made once per session (each was made once per file
# that imported it). Each is read-only: a test that changes what it returns copies first.


@pytest.fixture(scope="session")
def hub_handles(tmp_path_factory):
    """Tiny SavedModels loaded as TF-Hub handles (`tests/hub_modules.py`): `{"text",
    "image", "audio", "elmo", "sequence": path}`."""
    from tests.hub_modules import save_hub_modules

    return save_hub_modules(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="session")
def crisismmd(tmp_path_factory):
    """`(root, tsv)`: a CrisisMMD-shaped folder of 12 tweets and their JPEGs, one image
    missing (`tests/media_files.py`)."""
    from tests.media_files import write_crisismmd

    root = tmp_path_factory.mktemp("CrisisMMD_v2.0")
    return root, write_crisismmd(root)


#: The model `training.predict`'s tests score with (`predict_model_dir`).
PREDICT_MODALITIES = (Modality("image", width=4), Modality("audio", width=2))
PREDICT_TASKS = (Task("flood", 2), Task("damage", 3, class_names=("none", "some", "severe")))
PREDICT_ROWS = 12


def predict_data(num_rows=PREDICT_ROWS):
    """Inputs (rows 3 and 7 miss a modality) and labels for `PREDICT_MODALITIES/TASKS`."""
    rng = np.random.default_rng(0)
    # Masked rows: the mask's columns follow the model's modality order (image, audio),
    # not the SavedModel signature's alphabetical one.
    x = make_inputs(PREDICT_MODALITIES, num_rows, rng, missing=[(3, 0), (7, 1)])
    y = {"flood": rng.integers(0, 2, num_rows).astype("int32"),
         "damage": rng.integers(0, 3, num_rows).astype("int32")}
    return x, y


@pytest.fixture(scope="session")
def predict_model_dir(tmp_path_factory):
    """`(folder, version, x, expected)`: a trained HGFN + DMTL model saved as
    `folder/model.keras` and exported as the SavedModel `version`, its inputs `x`
    (`predict_data`) and its predictions on them."""
    import keras

    from hgfn_keras import build_model
    from hgfn_keras.serving.export import export_saved_model

    keras.utils.set_random_seed(0)
    model = build_model(list(PREDICT_MODALITIES), list(PREDICT_TASKS), fusion="hgfn",
                        fusion_kwargs={"theta": 0.5}, head_units=4, mtl="dmtl")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = predict_data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    folder = tmp_path_factory.mktemp("run")
    model.save(str(folder / "model.keras"))
    version = export_saved_model(model, str(folder / "saved"), return_modality_weights=True)
    expected = model.predict(x, verbose=0)
    return folder, version, x, expected


def predict_npz(tmp_path, x, **extra):
    """Writes `x` as `training.predict`'s npz input (`x_<name>`, `mask_<name>`) and `extra`."""
    from hgfn_keras.feature_checks import MASK_KEY

    path = tmp_path / "in.npz"
    arrays = {f"x_{m.name}": x[m.name] for m in PREDICT_MODALITIES}
    arrays.update({f"mask_{m.name}": x[MASK_KEY][:, j] for j, m in enumerate(PREDICT_MODALITIES)})
    arrays.update(extra)
    np.savez(path, **arrays)
    return path


def read_csv_rows(path):
    """The rows of a CSV file as dicts (`training.predict`'s output)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


#: Three modalities and two tasks (binary, 3-class), which several test files share.
IMAGE_AUDIO_SENSOR = (Modality("image", width=4), Modality("audio", width=2),
                      Modality("sensor", width=3))
FLOOD_DAMAGE = (Task("flood", 2), Task("damage", 3))
#: The rows of `masked_inputs`, the inputs of `masked_model`.
MASKED_ROWS = 6


def masked_inputs(rows=MASKED_ROWS):
    """Inputs for `IMAGE_AUDIO_SENSOR` with a `modality_mask` of ones."""
    from hgfn_keras.feature_checks import MASK_KEY

    rng = np.random.default_rng(0)
    x = {m.name: rng.normal(size=(rows, m.width)).astype("float32") for m in IMAGE_AUDIO_SENSOR}
    x[MASK_KEY] = np.ones((rows, len(IMAGE_AUDIO_SENSOR)), "float32")
    return x


@pytest.fixture(scope="session")
def masked_model():
    """A compiled HGFN model over `IMAGE_AUDIO_SENSOR` (untrained; its tests compare it with
    itself, served or not)."""
    import keras

    from hgfn_keras import build_model

    keras.utils.set_random_seed(0)
    model = build_model(list(IMAGE_AUDIO_SENSOR), list(FLOOD_DAMAGE), fusion="hgfn",
                        fusion_kwargs={"theta": 0.5}, head_units=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.predict(masked_inputs(), verbose=0)
    return model
