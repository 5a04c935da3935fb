"""The label contract (`hgfn_keras.labels`) and the npz reader's use of it."""

import json

import numpy as np
import pytest

from hgfn_keras.data.npz import load_npz
from hgfn_keras.labels import (
    as_label_array,
    check_label_range,
    infer_num_classes,
    label_from_text,
)

ROWS = 20


def _arrays(**labels):
    rng = np.random.default_rng(0)
    arrays = {
        "x_audio": rng.normal(size=(ROWS, 3)),
        "x_video": rng.normal(size=(ROWS, 2)),
        "split": np.array([0] * 12 + [1] * 4 + [2] * 4),
    }
    arrays.update(labels)
    return arrays


def _save(tmp_path, arrays):
    path = tmp_path / "f.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "labels, k",
    [
        ([0, 1, 1, 0], 2),
        ([0, 0, -1], 2),  # only negatives: still binary
        ([1, 1], 2),  # only positives: still binary
        ([-1, -1], 2),
        ([], 2),
        ([0, 2, 1, -1, 2], 3),
        ([3, 2, 1, 0], 4),
    ],
)
def test_number_of_classes_is_inferred_when_every_class_occurs(labels, k):
    assert infer_num_classes("t", np.array(labels, dtype=np.int32)) == k


def test_a_stray_label_is_refused_naming_the_value_rows_and_the_way_out(tmp_path):
    y = (np.arange(ROWS) % 2).astype(np.int64)
    y[13] = 7  # a typo among 0/1 labels
    with pytest.raises(ValueError) as caught:
        load_npz(_save(tmp_path, _arrays(y_flood=y)))
    message = str(caught.value)
    assert "Task 'flood'" in message and "binary task" in message
    assert "value(s) [7], first at row(s) [13]" in message
    assert "classes_flood=8" in message and "--num-classes flood=8" in message


def test_a_gap_in_a_multi_class_task_is_refused():
    with pytest.raises(ValueError, match=r"3-class task.*value\(s\) \[5\].*row\(s\) \[3\]"):
        infer_num_classes("level", np.array([0, 1, 2, 5, 2, 1]))
    with pytest.raises(ValueError, match=r"value\(s\) \[2, 3\]"):
        infer_num_classes("level", np.array([0, 2, 3, 0]))


def test_declared_classes_in_the_npz_are_used_and_absent_ones_named(tmp_path):
    y = (np.arange(ROWS) % 2).astype(np.int64)
    y[13] = 7
    path = _save(tmp_path, _arrays(y_flood=y, classes_flood=np.array(8)))
    with pytest.warns(UserWarning, match=r"'flood': class\(es\) \[2, 3, 4, 5, 6\] of the 8"):
        dataset = load_npz(path)
    assert dataset.tasks[0].num_classes == 8


def test_declared_class_names_in_the_npz(tmp_path):
    y = np.array([0, 2] * (ROWS // 2))
    names = np.array(["none", "some", "total"])
    with pytest.warns(UserWarning, match=r"class\(es\) \[1\] of the 3"):
        dataset = load_npz(_save(tmp_path, _arrays(y_level=y, classes_level=names)))
    task = dataset.tasks[0]
    assert task.num_classes == 3 and task.class_names == ("none", "some", "total")


def test_declared_classes_through_the_loader_argument(tmp_path):
    y = np.array([0, 1, 4] * 7)[:ROWS]
    path = _save(tmp_path, _arrays(y_level=y))
    with pytest.warns(UserWarning, match=r"--num-classes level=5"):
        assert load_npz(path, num_classes={"level": 5}).tasks[0].num_classes == 5
    with pytest.raises(ValueError, match=r"unknown task 'levl'"):
        load_npz(path, num_classes={"levl": 5})


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"classes_flood": np.array(1)}, r"integer >= 2"),
        ({"classes_flood": np.array(2.5)}, r"integer >= 2"),
        ({"classes_flood": np.array([2, 3])}, r"integer >= 2"),
        ({"classes_flood": np.array(["a"])}, r"at least 2 distinct"),
        ({"classes_flood": np.array(2)}, r"labels must be in \[0, 2\).*\[3\] at row\(s\) \[5\]"),
        ({"classes_other": np.array(3)}, r"unknown task 'other'"),
    ],
)
def test_bad_class_declarations_are_named(tmp_path, extra, message):
    y = (np.arange(ROWS) % 2).astype(np.int64)
    y[5] = 3
    with pytest.raises(ValueError, match=message):
        load_npz(_save(tmp_path, _arrays(y_flood=y, **extra)))


def test_declarations_must_agree(tmp_path):
    path = _save(tmp_path, _arrays(y_flood=np.arange(ROWS) % 3, classes_flood=np.array(3)))
    with pytest.raises(ValueError, match=r"disagrees with `classes_flood` in the npz \(K=3\)"):
        load_npz(path, num_classes={"flood": 4})


def test_label_array_checks_name_the_key_and_rows():
    with pytest.raises(ValueError, match=r"`y_t` labels must be >= -1.*row\(s\) \[1\]"):
        as_label_array(np.array([0, -3, 1]), "`y_t`")
    with pytest.raises(ValueError, match=r"`y_t` must hold integer labels.*0.5"):
        as_label_array(np.array([0, 0.5]), "`y_t`")
    with pytest.raises(ValueError, match=r"`y_t` must hold integer labels"):
        as_label_array(np.array(["a", "b"]), "`y_t`")
    assert as_label_array(np.array([True, False]), "`y_t`").dtype == np.int32


@pytest.mark.parametrize("text, message", [
    ("1.5", r"labels must be integers \(empty or -1 = missing\). Received: '1.5'"),
    ("inf", r"labels must be integers.*Received: 'inf'"),
    ("nan", r"labels must be integers.*Received: 'nan'"),
    ("yes", r"labels must be integers.*Received: 'yes'"),
    ("3e9", r"labels must be integers.*Received: '3e9'"),
    ("-3", r"labels must be >= -1. Received: -3"),
])
def test_a_label_read_from_text_is_checked(text, message):
    with pytest.raises(ValueError, match=r"^cell: " + message):
        label_from_text(text, "cell")


def test_manifest_labels_name_the_column_and_the_row():
    from training.extract import _labels

    rows = [{"flood": "1"}, {"flood": ""}, {"flood": " -1 "}, {"flood": "2.0"}]
    np.testing.assert_array_equal(_labels(rows, "flood"), [1, -1, -1, 2])
    with pytest.raises(ValueError, match=r"Label column 'flood', row 3: labels must be >= -1. "
                                         r"Received: -2"):
        _labels([{"flood": "0"}, {"flood": "-2"}], "flood")


def test_range_check_names_the_task_values_and_rows():
    with pytest.raises(ValueError, match=r"Task 'd': labels must be in \[0, 3\).*\[5\] at row\(s\) \[2\]"):
        check_label_range([0, 1, 5], 3, task="d")
    with pytest.raises(ValueError, match=r"\[5\] at row\(s\) \[102\]"):  # a batch's offset
        check_label_range([0, 1, 5], 3, task="d", first_row=100)
    np.testing.assert_array_equal(check_label_range([[0], [-1]], 2), [0, -1])


def test_load_dataset_passes_declarations_to_the_npz_reader(tmp_path):
    from hgfn_keras.data import load_dataset

    path = _save(tmp_path, _arrays(y_level=np.array([0, 1, 3] * 7)[:ROWS]))
    with pytest.warns(UserWarning, match=r"class\(es\) \[2\]"):
        dataset = load_dataset(f"npz:{path}", num_classes={"level": 4})
    assert dataset.tasks[0].num_classes == 4
    with pytest.raises(ValueError, match="only to npz feature files"):
        load_dataset("clothing", num_classes={"level": 4})


def test_training_cli_num_classes_declares_a_task(tmp_path, capsys):
    # A 3-class task whose class 1 never occurs: refused, naming the flag; declared with
    # --num-classes it trains as a 3-class task (with a warning about class 1).
    from training import train

    rng = np.random.default_rng(0)
    rows = 60
    path = tmp_path / "gap.npz"
    np.savez(path, x_a=rng.normal(size=(rows, 3)), x_b=rng.normal(size=(rows, 2)),
             y_flood=rng.integers(0, 2, rows), y_level=np.where(np.arange(rows) % 2, 2, 0))
    common = ["--dataset", f"npz:{path}", "--mtl", "lsew", "--fusion", "cfc", "--epochs", "1",
              "--no-export", "--verbose", "0", "--output-dir", str(tmp_path / "run")]
    assert train.main(common) == 2
    assert "--num-classes" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="level"):
        assert train.main(common + ["--num-classes", "level=3"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"flood", "level"}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["num_classes"] == {"level": 3}
    with pytest.raises(SystemExit):
        train.parse_args(common + ["--num-classes", "level=one"])
