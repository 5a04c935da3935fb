"""`training.predict`: a UTF-8 byte-order mark, `--output` equal to `--input`, a stale
skipped-rows file, class names in the output of a SavedModel, and an input of 0 rows."""

import csv
import json
import os

import numpy as np
import pytest

from hgfn_keras.serving.export import TASKS_FILE, TASKS_FILE_FOLDER
from tests.conftest import PREDICT_ROWS, predict_npz, read_csv_rows
from training import predict


def _write_csv(path, x, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(["id", "image", "audio"])
        for i in rows:
            w.writerow([f"r{i}", " ".join(str(v) for v in x["image"][i]),
                        " ".join(str(v) for v in x["audio"][i])])
    return path


def test_a_csv_with_a_byte_order_mark_is_read(predict_model_dir, tmp_path):
    folder, _, x, expected = predict_model_dir
    # Excel writes "UTF-8 CSV" with a byte-order mark: the first column is then
    # "\ufeffid", not "id", and the ids were lost.
    path = _write_csv(tmp_path / "bom.csv", x, range(3), encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    out = tmp_path / "p.csv"
    assert predict.main(["--model", str(folder), "--input", str(path), "--output", str(out)]) == 0
    rows = read_csv_rows(out)
    assert [r["row"] for r in rows] == ["r0", "r1", "r2"]
    np.testing.assert_allclose([float(r["flood_prob_1"]) for r in rows],
                               expected["flood"].reshape(-1)[:3], atol=1e-5)


@pytest.mark.parametrize("how", ["same", "relative", "symlink"])
def test_output_equal_to_input_is_refused(predict_model_dir, tmp_path, how, capsys, monkeypatch):
    folder, _, x, _ = predict_model_dir
    data = _write_csv(tmp_path / "in.csv", x, range(3))
    before = data.read_bytes()
    output = str(data)
    if how == "relative":
        monkeypatch.chdir(tmp_path)
        output = os.path.join(".", "sub", "..", "in.csv")
        (tmp_path / "sub").mkdir()
    elif how == "symlink":
        output = str(tmp_path / "link.csv")
        os.symlink(data, output)
    assert predict.main(["--model", str(folder), "--input", str(data), "--output", output]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --output: ") and "--input" in err[0], err
    assert data.read_bytes() == before


def test_a_stale_skipped_file_is_removed(predict_model_dir, tmp_path, capsys):
    folder, _, x, _ = predict_model_dir
    out = tmp_path / "p.csv"
    skipped = tmp_path / "p.skipped.csv"
    bad = {k: v.copy() for k, v in x.items()}
    bad["image"][2, 1] = np.nan
    assert predict.main(["--model", str(folder), "--input", str(predict_npz(tmp_path, bad)),
                         "--output", str(out)]) == 0
    assert [r["row"] for r in read_csv_rows(skipped)] == ["2"]
    # The same output again, now with nothing to skip: the old list would describe
    # rows of another run.
    assert predict.main(["--model", str(folder), "--input", str(predict_npz(tmp_path, x)),
                         "--output", str(out)]) == 0
    assert len(read_csv_rows(out)) == PREDICT_ROWS
    assert not skipped.exists()


def test_a_saved_model_writes_the_class_names(predict_model_dir, tmp_path):
    folder, version, x, expected = predict_model_dir
    with open(os.path.join(version, TASKS_FILE_FOLDER, TASKS_FILE), encoding="utf-8") as f:
        assert json.load(f)["damage"]["class_names"] == ["none", "some", "severe"]
    outputs = {}
    for source, model in (("keras", str(folder)), ("savedmodel", version)):
        out = tmp_path / f"{source}.csv"
        assert predict.main(["--model", model, "--input", str(predict_npz(tmp_path, x)),
                             "--output", str(out)]) == 0
        outputs[source] = read_csv_rows(out)
    keras_rows, saved_rows = outputs["keras"], outputs["savedmodel"]
    assert list(saved_rows[0]) == list(keras_rows[0])
    index = expected["damage"].argmax(1)
    names = np.array(["none", "some", "severe"])
    assert [r["damage_pred"] for r in saved_rows] == list(names[index])
    assert [r["damage_pred_index"] for r in saved_rows] == [str(i) for i in index]
    assert [r["damage_pred"] for r in keras_rows] == list(names[index])
    np.testing.assert_allclose([float(r["damage_prob_severe"]) for r in saved_rows],
                               expected["damage"][:, 2], atol=1e-5)


@pytest.mark.parametrize("source, kind", [("keras", "csv"), ("keras", "npz"),
                                          ("savedmodel", "csv"), ("savedmodel", "npz")])
def test_zero_rows_give_the_header_and_no_rows(predict_model_dir, tmp_path, source, kind, capsys):
    folder, version, x, _ = predict_model_dir
    model = str(folder) if source == "keras" else version
    if kind == "csv":
        data = _write_csv(tmp_path / "empty.csv", x, [])
    else:
        data = predict_npz(tmp_path, {k: v[:0] for k, v in x.items()})
    out = tmp_path / "p.csv"
    assert predict.main(["--model", model, "--input", str(data), "--output", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))
    assert len(lines) == 1 and lines[0][0] == "row" and "damage_pred" in lines[0]
    assert "Scored 0 row(s)" in capsys.readouterr().out
    assert not (tmp_path / "p.skipped.csv").exists()


def test_a_run_failing_midway_leaves_no_partial_file(predict_model_dir, tmp_path, monkeypatch):
    folder, _, x, _ = predict_model_dir
    score = predict._Scorer.score
    calls = []

    def failing(self, batch):
        calls.append(len(next(iter(batch.values()))))
        if len(calls) == 2:
            raise RuntimeError("the disk went away")
        return score(self, batch)

    monkeypatch.setattr(predict._Scorer, "score", failing)
    out = tmp_path / "p.csv"
    with pytest.raises(RuntimeError, match="the disk went away"):
        predict.main(["--model", str(folder), "--input", str(predict_npz(tmp_path, x)),
                      "--output", str(out), "--batch-size", "5"])
    assert calls == [5, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz"]
