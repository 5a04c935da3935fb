"""Statistics over seeds and report tables (`hgfn_keras/evaluation/report.py`)."""

import json
import math
import statistics

import pytest

from hgfn_keras.evaluation.report import (
    NO_VALUE,
    ONE_VALUE,
    markdown_table,
    mean_std_text,
    seed_statistics,
    text_table,
)
from hgfn_keras.utils.io_utils import strict_json_value


def test_seed_statistics_leave_out_undefined_values_and_say_why():
    stats = seed_statistics([0.5, math.nan, None, 0.8, math.inf])
    assert stats == {"mean": pytest.approx(0.65), "n": 2,
                     "std": pytest.approx(statistics.stdev([0.5, 0.8]))}
    one = seed_statistics([0.5])
    assert one["mean"] == 0.5 and math.isnan(one["std"]) and one["std_undefined"] == ONE_VALUE
    none = seed_statistics([math.nan])
    assert none["n"] == 0 and none["mean_undefined"] == NO_VALUE
    # The reasons make them strict JSON: null beside the reason.
    nulls = {}
    clean = strict_json_value({"a": one, "b": none}, "s", nulls)
    assert json.loads(json.dumps(clean, allow_nan=False))["a"]["std"] is None
    assert nulls == {"s.a.std": ONE_VALUE, "s.b.mean": NO_VALUE, "s.b.std": NO_VALUE}


def test_cells_and_tables():
    assert mean_std_text(seed_statistics([0.5, 0.7])) == "0.600 ± 0.141"
    assert mean_std_text(seed_statistics([0.5, None]), digits=4, total=2) == "0.5000 (1 of 2 seeds)"
    assert mean_std_text(seed_statistics([None]), undefined="–", total=1) == "–"
    assert markdown_table(["a", "b", "c"], [["x", "1", "2"]]).split("\n") == [
        "| a | b | c |", "|---|---|---|", "| x | 1 | 2 |"]
    assert text_table(["name", "s"], [["a", "10.5"], ["long one", "2"]]).split("\n") == [
        "name      s   ", "--------  ----", "a         10.5", "long one  2   "]
