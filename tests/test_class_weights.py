"""Per-task class weights and the row weights they stand for (numbers by hand)."""

import numpy as np
import pytest

from hgfn_keras.multitask.class_weights import (
    balanced_class_weights,
    class_weight_to_sample_weight,
)
from hgfn_keras.specs import Task


def test_balanced_is_n_over_k_times_the_class_count():
    y = {"rating": np.array([0, 0, 0, 0, 1, 1, 2, -1]), "flag": np.array([1, 1, 1, 1, 1, 1, 1, 0])}
    weights = balanced_class_weights(y, [Task("rating", 3), Task("flag", 2)])
    # rating: 7 labelled rows, 3 classes, counts 4/2/1; flag: 8 rows, counts 1/7.
    assert weights["rating"] == pytest.approx({0: 7 / 12, 1: 7 / 6, 2: 7 / 3})
    assert weights["flag"] == pytest.approx({0: 4.0, 1: 8 / 14})
    # Balanced weights make every class weigh the same in total.
    for name, labels in y.items():
        rows = class_weight_to_sample_weight(y, weights)[name]
        totals = [rows[labels == c].sum() for c in np.unique(labels[labels >= 0])]
        np.testing.assert_allclose(totals, totals[0], rtol=1e-6)


def test_a_class_without_rows_weighs_one():
    assert balanced_class_weights({"t": np.array([0, 0])}, [Task("t", 3)])["t"][2] == 1.0


def test_sample_weights_multiply_and_missing_tasks_weigh_one():
    y = {"a": np.array([0, 1, 1]), "b": np.array([2, 0, -1])}
    rows = class_weight_to_sample_weight(y, {"b": {2: 5.0}},
                                         sample_weight={"a": [1.0, 0.0, 2.0]})
    np.testing.assert_array_equal(rows["a"], [1.0, 0.0, 2.0])
    np.testing.assert_array_equal(rows["b"], [5.0, 1.0, 1.0])
    shared = class_weight_to_sample_weight(y, {"a": {1: 2.0}}, sample_weight=np.array([3, 1, 1]))
    np.testing.assert_array_equal(shared["a"], [3.0, 2.0, 2.0])
    np.testing.assert_array_equal(shared["b"], [3.0, 1.0, 1.0])


@pytest.mark.parametrize("class_weight, message", [
    ({0: 1.0, 1: 2.0}, "dict per task"),
    ({"nope": {0: 1.0}}, "nope"),
    ({"a": {0: -1.0}}, ">= 0"),
])
def test_bad_class_weights_say_what_is_wrong(class_weight, message):
    with pytest.raises(ValueError, match=message):
        class_weight_to_sample_weight({"a": np.array([0, 1])}, class_weight)
