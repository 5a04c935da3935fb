"""Row and class weights: `sample_weight` in fit/evaluate, `class_weight` per task.

One batch holds every row (so that the batches do not change with the rows), no dropout and
no feature statistics (so that nothing else depends on which rows are there): then a row of
weight 0 must change nothing, and a row of weight 2 must count as that row twice.
"""

import keras
import numpy as np
import pytest

from hgfn_keras import Modality, Task
from hgfn_keras.multitask.class_weights import class_weight_to_sample_weight
from tests.conftest import FLOOD_DAMAGE, make_inputs, make_model

MODALITIES = (Modality("image", width=4), Modality("audio", width=3))
TASKS = FLOOD_DAMAGE
NUM_ROWS = 10


def _data(num_rows=NUM_ROWS, seed=0):
    x = make_inputs(MODALITIES, num_rows, np.random.default_rng(seed), mask=True)
    y = {"flood": (np.arange(num_rows) % 2).astype("int32"),
         "damage": (np.arange(num_rows) % 3).astype("int32")}
    return x, y


def _rows(data, index):
    return {k: v[index] for k, v in data.items()}


def _concat(a, b):
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _model(mtl):
    return make_model(MODALITIES, TASKS, keras.optimizers.Adam(1e-2), fusion="hgfn",
                      fusion_kwargs={"theta": 0.5}, head_units=4, dropout=0.0,
                      normalize=False, mtl=mtl, modality_dropout=0.0)


def _trained_weights(x, y, mtl="dmtl", **fit_kwargs):
    model = _model(mtl)
    rows = len(next(iter(x.values())))
    model.fit(x, y, batch_size=rows, epochs=3, shuffle=False, verbose=0, **fit_kwargs)
    return model.get_weights()


def _assert_same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mtl", ["lsew", "dmtl"])
@pytest.mark.slow
def test_rows_of_weight_zero_change_nothing(mtl):
    x, y = _data()
    x_extra, y_extra = _data(4, seed=1)
    reference = _trained_weights(x, y, mtl)
    weights = np.concatenate([np.ones(NUM_ROWS), np.zeros(4)]).astype("float32")
    padded = _trained_weights(_concat(x, x_extra), _concat(y, y_extra), mtl,
                              sample_weight=weights)
    _assert_same(reference, padded)


@pytest.mark.slow
def test_weight_two_equals_the_row_twice():
    x, y = _data()
    weights = np.ones(NUM_ROWS, "float32")
    weights[3] = 2.0
    weighted = _trained_weights(x, y, sample_weight=weights)
    duplicated = _trained_weights(_concat(x, _rows(x, [3])), _concat(y, _rows(y, [3])))
    _assert_same(weighted, duplicated)


@pytest.mark.slow
def test_sample_weight_per_task():
    x, y = _data()
    flood = np.ones(NUM_ROWS, "float32")
    flood[[0, 1]] = 0.0
    per_task = _trained_weights(x, y, sample_weight={"flood": flood,
                                                     "damage": np.ones(NUM_ROWS, "float32")})
    uniform = _trained_weights(x, y)
    assert not all(np.allclose(a, b) for a, b in zip(per_task, uniform))


def test_evaluate_weighs_rows():
    x, y = _data()
    model = _model("lsew")
    weights = np.ones(NUM_ROWS, "float32")
    weights[:4] = 0.0
    weighted = model.evaluate(x, y, sample_weight=weights, batch_size=NUM_ROWS, verbose=0,
                              return_dict=True)
    subset = model.evaluate(_rows(x, slice(4, None)), _rows(y, slice(4, None)),
                            batch_size=NUM_ROWS, verbose=0, return_dict=True)
    for key in ("loss", "flood_loss", "damage_loss"):
        np.testing.assert_allclose(weighted[key], subset[key], rtol=1e-5)
    zeros = model.evaluate(x, y, sample_weight=np.zeros(NUM_ROWS, "float32"),
                           batch_size=NUM_ROWS, verbose=0, return_dict=True)
    ones = model.evaluate(x, y, sample_weight=np.ones(NUM_ROWS, "float32"),
                          batch_size=NUM_ROWS, verbose=0, return_dict=True)
    assert zeros["loss"] != ones["loss"]


@pytest.mark.slow
def test_class_weight_per_task_equals_the_sample_weights_it_means():
    x, y = _data()
    class_weight = {"damage": {0: 3.0, 1: 1.0, 2: 0.5}}
    by_class = _trained_weights(x, y, class_weight=class_weight)
    damage = np.array([3.0, 1.0, 0.5], "float32")[y["damage"]]
    by_row = _trained_weights(x, y, sample_weight={"flood": np.ones(NUM_ROWS, "float32"),
                                                   "damage": damage})
    _assert_same(by_class, by_row)


# ----------------------------------------------------------------- bad weights, named

def _with(values, at, bad):
    weights = np.ones(NUM_ROWS, "float32") if values is None else values
    weights[at] = bad
    return weights


@pytest.mark.parametrize("sample_weight, message", [
    (_with(None, 3, np.nan), r"`sample_weight` \(every task's row weights\) must be finite. "
                             r"Received: \[nan\] at row\(s\) \[3\]"),
    (_with(None, [2, 7], np.inf), r"`sample_weight` \(every task's row weights\) must be "
                                  r"finite. Received: \[inf, inf\] at row\(s\) \[2, 7\]"),
    (_with(None, 4, -1.0), r"`sample_weight` \(every task's row weights\) must be >= 0 \(0 "
                           r"leaves a row out\). Received: \[-1.0\] at row\(s\) \[4\]"),
    (np.ones(NUM_ROWS - 1), r"`sample_weight` \(every task's row weights\) must have shape "
                            rf"\[N\] with N={NUM_ROWS}, one weight per row of the labels. "
                            rf"Received: shape=\({NUM_ROWS - 1},\)"),
    ({"damage": _with(None, 5, -0.5)}, r"`sample_weight\['damage'\]` \(task 'damage'\) must "
                                       r"be >= 0 .* Received: \[-0.5\] at row\(s\) \[5\]"),
    ({"damage": _with(None, 0, np.nan)}, r"`sample_weight\['damage'\]` \(task 'damage'\) "
                                         r"must be finite"),
    ({"flood": np.ones(NUM_ROWS + 2)}, r"`sample_weight\['flood'\]` \(task 'flood'\) must "
                                       rf"have shape \[N\] with N={NUM_ROWS}.*shape=\({NUM_ROWS + 2},\)"),
    ({"flod": np.ones(NUM_ROWS)}, r"`sample_weight` names task\(s\) \['flod'\] the model does "
                                  r"not have. Tasks: \['flood', 'damage'\]"),
    (np.array(["a"] * NUM_ROWS), r"`sample_weight` \(every task's row weights\) must hold "
                                 r"numbers"),
], ids=["nan", "inf", "negative", "short", "task-negative", "task-nan", "task-long",
        "unknown-task", "strings"])
def test_bad_sample_weights_are_named(sample_weight, message):
    """Was: one NaN made every weight NaN, a negative weight trained on a negative loss,
    a wrong length gave a raw IndexError."""
    x, y = _data()
    model = _model("dmtl")
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, sample_weight=sample_weight, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.evaluate(x, y, sample_weight=sample_weight, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, validation_data=(x, y, sample_weight), epochs=1, verbose=0)
    assert not model.built or all(np.all(np.isfinite(w)) for w in model.get_weights())


@pytest.mark.parametrize("class_weight, message", [
    ({"damage": {3: 2.0}}, r"`class_weight\['damage'\]` names class 3, which task 'damage' "
                           r"does not have \(classes 0..2\)"),
    ({"flood": {-1: 2.0}}, r"`class_weight\['flood'\]` names class -1, which task 'flood'"),
    ({"damage": {"high": 2.0}}, r"names class 'high', which task 'damage' does not have"),
    ({"damage": {0: float("nan")}}, r"`class_weight\['damage'\]\[0\]` must be a finite number "
                                    r">= 0. Received: nan"),
    ({"damage": {0: float("inf")}}, r"must be a finite number >= 0. Received: inf"),
], ids=["class-3-of-3", "class-minus-1", "unknown-name", "nan-weight", "inf-weight"])
def test_class_weight_for_a_class_the_task_does_not_have_is_named(class_weight, message):
    """Was: ignored silently (no row has label 3)."""
    x, y = _data()
    with pytest.raises(ValueError, match=message):
        _model("dmtl").fit(x, y, class_weight=class_weight, epochs=1, verbose=0)


def test_class_weight_by_class_name():
    tasks = [Task("flood", 2), Task("damage", 3, class_names=("none", "some", "severe"))]
    _, y = _data()
    by_name = class_weight_to_sample_weight(y, {"damage": {"severe": 2.0}}, tasks=tasks)
    by_index = class_weight_to_sample_weight(y, {"damage": {2: 2.0}}, tasks=tasks)
    np.testing.assert_array_equal(by_name["damage"], by_index["damage"])
    assert by_name["damage"].sum() == NUM_ROWS + 3  # 3 rows of class 2
    with pytest.raises(ValueError, match=r"names class 'high', which task 'damage' does not "
                                         r"have \(classes 0..2 or \['none', 'some', 'severe'\]\)"):
        class_weight_to_sample_weight(y, {"damage": {"high": 1.0}}, tasks=tasks)
