"""Fuzzed input files: npz feature files and `training.extract` manifests.

Hypothesis writes files a user might: wrong dtypes, shapes and key names, empty and
object arrays, 0-row splits, huge and tiny magnitudes, constant columns, stray labels,
class declarations; manifests with missing columns, odd cells, duplicate ids, wrong
delimiters and bytes that are not UTF-8. The reader either loads them or raises one
`ValueError` naming the problem; the CLIs either run or exit with code 2 and one
`error:` line, never a traceback; whatever trains gives finite metrics. Most examples
exercise the readers only (fast); a few train (slow).
"""

import json
import math
import os
import string
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hgfn_keras.data.dataset import MASK_KEY, SPLITS
from hgfn_keras.data.npz import load_npz
from tests.conftest import run_as_process

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])

MAGNITUDES = st.sampled_from([0.0, 1e-30, 1e-6, 1.0, 1e6, 1e30, 3e38, 1e300])


@st.composite
@np.errstate(over="ignore")  # huge magnitudes overflow float32 on purpose
def feature_arrays(draw, rows):
    kind = draw(st.sampled_from(["float", "int", "float64", "bool", "object", "str",
                                 "complex", "scalar", "1d", "3d", "empty_width", "nan",
                                 "constant", "wrong_rows"]))
    width = draw(st.integers(1, 3))
    scale = draw(MAGNITUDES)
    base = np.random.default_rng(draw(st.integers(0, 9))).normal(size=(rows, width)) * scale
    return _shaped(draw, kind, rows, width, scale, base)


def _shaped(draw, kind, rows, width, scale, base):
    if kind == "float":
        return base.astype(np.float32)
    if kind == "int":
        return np.round(base).clip(-1e9, 1e9).astype(np.int64)
    if kind == "float64":
        return base
    if kind == "bool":
        return base > 0
    if kind == "object":
        return np.array([object()] * rows, dtype=object)
    if kind == "str":
        return np.array([["a"] * width] * rows)
    if kind == "complex":
        return base.astype(np.complex64)
    if kind == "scalar":
        return np.float32(scale)
    if kind == "1d":
        return base[:, 0]
    if kind == "3d":
        return base.reshape(rows, width, 1)
    if kind == "empty_width":
        return np.zeros((rows, 0), np.float32)
    if kind == "nan":
        base = base.copy()
        base[draw(st.integers(0, rows - 1)) if rows else 0:][:1] = np.nan
        return base
    if kind == "constant":
        return np.full((rows, width), scale, np.float32)
    return base[: max(rows - 1, 0)]


@st.composite
def label_arrays(draw, rows):
    kind = draw(st.sampled_from(["binary", "multi", "stray", "missing", "float", "halves",
                                 "below", "2d", "str", "bool", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    if kind == "binary":
        return rng.integers(0, 2, rows)
    if kind == "multi":
        return np.arange(rows) % draw(st.integers(2, 5))
    if kind == "stray":
        y = rng.integers(0, 2, rows)
        if rows:
            y[draw(st.integers(0, rows - 1))] = draw(st.integers(2, 9))
        return y
    if kind == "missing":
        return np.full(rows, -1)
    if kind == "float":
        return (np.arange(rows) % 2).astype(np.float64)
    if kind == "halves":
        return np.arange(rows) / 2.0
    if kind == "below":
        return np.arange(rows) - 3
    if kind == "2d":
        return np.zeros((rows, 2), np.int64)
    if kind == "str":
        return np.array(["yes"] * rows)
    if kind == "bool":
        return np.arange(rows) % 2 == 0
    return np.full(rows, 2**40)


@st.composite
def npz_contents(draw):
    if draw(st.booleans()):
        return draw(mutated_valid_npz())
    rows = draw(st.sampled_from([0, 1, 3, 5, 12]))
    names = draw(st.lists(st.sampled_from(["audio", "image", "text", "bad name", "1x",
                                           MASK_KEY, "video"]),
                          min_size=0, max_size=3, unique=True))
    arrays = {f"x_{n}": draw(feature_arrays(rows)) for n in names}
    tasks = draw(st.lists(st.sampled_from(["flood", "damage", "bad-task"]), max_size=2,
                          unique=True))
    arrays.update({f"y_{t}": draw(label_arrays(rows)) for t in tasks})
    if draw(st.booleans()):
        arrays["split"] = draw(st.sampled_from([
            np.arange(rows) % 3, np.zeros(rows, np.int64), np.full(rows, 7),
            (np.arange(rows) % 3).astype(np.float64) + 0.5, np.arange(rows) % 2]))
    if names and draw(st.booleans()):
        arrays[f"mask_{draw(st.sampled_from(names + ['ghost']))}"] = draw(st.sampled_from([
            np.ones(rows), np.zeros(rows), np.full(rows, 2), np.arange(rows) % 2]))
    if tasks and draw(st.booleans()):
        arrays[f"classes_{draw(st.sampled_from(tasks + ['ghost']))}"] = draw(st.sampled_from([
            np.array(10), np.array(1), np.array(["a", "b", "c"]), np.array(2.5),
            np.array([3, 4])]))
    if draw(st.integers(0, 9)) == 0:
        arrays["extra"] = np.zeros(rows)
    return arrays


@st.composite
def mutated_valid_npz(draw):
    """A valid file (2-3 modalities, 1-2 tasks, a split), then at most one change."""
    rows = draw(st.sampled_from([6, 9, 15]))
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    arrays = {"x_a": rng.normal(size=(rows, 2)) * draw(MAGNITUDES),
              "x_b": rng.normal(size=(rows, 3, 2)).astype(np.float32),
              "y_t": np.arange(rows) % 2, "y_k": np.arange(rows) % 3}
    if draw(st.booleans()):
        arrays["x_c"] = np.full((rows, 1), draw(MAGNITUDES))  # a constant column
    if draw(st.booleans()):
        arrays["split"] = np.arange(rows) % 3
    change = draw(st.sampled_from(["none", "x", "y", "mask", "classes", "drop"]))
    if change == "x":
        arrays["x_a"] = draw(feature_arrays(rows))
    elif change == "y":
        arrays["y_k"] = draw(label_arrays(rows))
    elif change == "mask":
        arrays["mask_b"] = draw(st.sampled_from([
            np.arange(rows) % 2, np.zeros(rows), np.full(rows, 0.5), np.ones(rows + 1)]))
    elif change == "classes":
        arrays["classes_k"] = draw(st.sampled_from([
            np.array(3), np.array(5), np.array(2), np.array(["x", "y", "z"])]))
    elif change == "drop":
        del arrays[draw(st.sampled_from(sorted(arrays)))]
    return arrays


def _save(path, arrays):
    # `np.savez` pickles object arrays; the loader must refuse them without unpickling.
    np.savez(path, **arrays)
    return path


@settings(FAST, max_examples=150)
@given(arrays=npz_contents())
def test_fuzzed_npz_loads_or_names_the_problem(tmp_path_factory, arrays):
    path = _save(tmp_path_factory.mktemp("fz") / "f.npz", arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", UserWarning)  # degenerate tasks warn: allowed here
        try:
            dataset = load_npz(path)
        except ValueError as error:
            event("refused")
            message = str(error)
            assert message and "\n" not in message.strip()
            return
    event("loaded")
    # What loads keeps the contract.
    assert len(dataset.modalities) >= 2 and dataset.tasks
    for split in SPLITS:
        x, y = dataset.splits[split]
        assert dataset.size(split) >= 1
        for m in dataset.modality_names:
            assert x[m].dtype == np.float32 and np.all(np.isfinite(x[m]))
        for t in dataset.tasks:
            assert y[t.name].dtype == np.int32
            assert np.all((y[t.name] >= -1) & (y[t.name] < t.num_classes))


@settings(FAST, max_examples=10)
@given(data=st.binary(max_size=64))
def test_fuzzed_bytes_are_not_an_npz(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fzb") / "f.npz"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="feature file"):
        load_npz(path)


# ---------------------------------------------------------------------- manifests

CELLS = st.one_of(
    st.sampled_from(["", "0", "1", "2", "-1", "-2", "1.0", "1.5", "nan", "inf", "yes",
                     "train", "test", "val", "7", " 1 ", "1e3"]),
    st.text(alphabet=string.printable + "éß😀\x00", max_size=6),
)


@st.composite
def manifests(draw):
    if draw(st.booleans()):  # a well-formed header and rows, with odd values
        columns = ["id", "caption", "flood"] + draw(st.sampled_from([[], ["split"]]))
        count = draw(st.integers(1, 6))
        rows = [[f"i{i}"] + [draw(CELLS) for _ in columns[1:]] for i in range(count)]
        if draw(st.booleans()):
            for row in rows:
                row[2] = draw(st.sampled_from(["0", "1", "", "-1", "2"]))
                if len(row) > 3:
                    row[3] = draw(st.sampled_from(["train", "0", "1", "2", "test"]))
    else:
        columns = draw(st.lists(st.sampled_from(["id", "caption", "flood", "split", "other"]),
                                min_size=1, max_size=5))  # repeats: a broken header
        rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(columns) + 1),
                             max_size=5))
    suffix = draw(st.sampled_from([".csv", ".tsv"]))
    right = "," if suffix == ".csv" else "\t"
    delimiter = draw(st.sampled_from([right, right, right, ",", "\t", ";"]))
    text = "\n".join(delimiter.join(r) for r in [columns] + rows) + "\n"
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        raw = b"\xff\xfe" + raw  # not UTF-8
    return raw, suffix


@pytest.fixture(scope="module")
def text_handle(hub_handles):
    return hub_handles["text"]


@settings(FAST, max_examples=50)
@given(manifest=manifests())
def test_fuzzed_manifest_runs_or_gives_one_error_line(tmp_path_factory, text_handle, capsys,
                                                      manifest):
    from training import extract

    raw, suffix = manifest
    base = tmp_path_factory.mktemp("fzm")
    path = base / f"items{suffix}"
    path.write_bytes(raw)
    output = base / "out.npz"
    code = extract.main(["--manifest", os.fspath(path), "--text", "caption", "--labels",
                         "flood", "--text-encoder", text_handle, "--output",
                         os.fspath(output), "--quiet", "--batch-size", "4"])
    err = capsys.readouterr().err
    event(f"exit code {code}")
    assert "Traceback" not in err
    if code == 0:
        arrays = dict(np.load(output))
        assert np.all(np.isfinite(arrays["x_caption"]))
        assert arrays["y_flood"].dtype == np.int32
    else:
        assert code == 2
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, err
        assert not os.path.exists(output)


# ---------------------------------------------------------------------- training


def _strict(text):
    def refuse(constant):
        raise ValueError(constant)

    return json.loads(text, parse_constant=refuse)


@st.composite
def trainable_npz(draw):
    rows = 30
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    scale = draw(st.sampled_from([1e-30, 1e30, 1.0]))
    a = rng.normal(size=(rows, 3)) * scale
    if draw(st.booleans()):
        a[:, 1] = scale  # a constant column
    b = np.full((rows, 2), draw(st.sampled_from([0.0, 5.0, -1e20])))  # all constant
    y = rng.integers(0, 2, rows)
    y[draw(st.sampled_from([slice(0, 0), slice(24, 30)]))] = 0  # maybe no test positive
    return {"x_a": a, "x_b": b, "y_t": y, "y_k": np.arange(rows) % 3,
            "split": np.array([0] * 18 + [1] * 6 + [2] * 6)}


@pytest.mark.slow
@settings(FAST, max_examples=2)
@given(arrays=trainable_npz())
def test_fuzzed_npz_that_trains_gives_finite_metrics(tmp_path_factory, arrays):
    base = tmp_path_factory.mktemp("fzt")
    path = _save(base / "f.npz", arrays)
    out = base / "run"
    # `main(argv)` in this process: an exception it lets through (a traceback in a
    # process of its own) fails the test.
    from training import train

    result = run_as_process(train.main, "--dataset", f"npz:{path}", "--epochs", "1",
                            "--no-export", "--head-units", "4", "--batch-size", "8",
                            "--output-dir", out)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    event(f"exit code {result.returncode}")
    if result.returncode != 0:
        assert result.returncode == 2
        assert len([ln for ln in result.stderr.splitlines() if ln.startswith("error:")]) == 1
        return
    metrics = _strict((out / "metrics.json").read_text())
    for values in [*metrics["tasks"].values(), metrics["mean"]]:
        for key in ("f1", "hamming_loss", "map", "accuracy"):
            value = values[key]
            assert (value is None and f"{key}_undefined" in values) or math.isfinite(value)
