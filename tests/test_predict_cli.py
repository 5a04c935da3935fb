"""`python -m training.predict`: .keras and SavedModel, npz and CSV input, skipped rows.
The model is conftest's `predict_model_dir`, trained once a session."""

import csv
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from hgfn_keras.feature_checks import MASK_KEY
from tests.conftest import PREDICT_ROWS, predict_npz, read_csv_rows
from training import predict

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("source", ["keras", "savedmodel"])
@pytest.mark.slow
def test_npz_probabilities_match_the_model(predict_model_dir, tmp_path, source, capsys):
    folder, version, x, expected = predict_model_dir
    model = str(folder) if source == "keras" else version
    out = tmp_path / "p.csv"
    code = predict.main(["--model", model, "--input", str(predict_npz(tmp_path, x)),
                         "--output", str(out), "--batch-size", "5"])
    assert code == 0
    rows = read_csv_rows(out)
    assert len(rows) == PREDICT_ROWS
    flood = np.array([float(r["flood_prob_1"]) for r in rows])
    np.testing.assert_allclose(flood, expected["flood"].reshape(-1), atol=1e-5)
    # A SavedModel's class names come from assets.extra/tasks.json (hgfn_keras.serving.export).
    damage_names = ["none", "some", "severe"]
    damage = np.array([[float(r[f"damage_prob_{c}"]) for c in damage_names] for r in rows])
    np.testing.assert_allclose(damage, expected["damage"], atol=1e-5)
    assert [r["damage_pred"] for r in rows] == [damage_names[i] for i in damage.argmax(1)]
    weights = np.array([[float(r["weight_image"]), float(r["weight_audio"])] for r in rows])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert "Scored 12 row(s)" in capsys.readouterr().out


def test_rows_that_cannot_be_scored_are_listed(predict_model_dir, tmp_path, capsys):
    folder, _, x, _ = predict_model_dir
    x = {k: v.copy() for k, v in x.items()}
    x["image"][2, 1] = np.nan
    x[MASK_KEY][5] = 0.0
    out = tmp_path / "p.csv"
    assert predict.main(["--model", str(folder), "--input", str(predict_npz(tmp_path, x)),
                         "--output", str(out)]) == 0
    assert [r["row"] for r in read_csv_rows(out)] == [
        str(i) for i in range(PREDICT_ROWS) if i not in (2, 5)]
    skipped = read_csv_rows(tmp_path / "p.skipped.csv")
    assert [(r["row"], r["reason"]) for r in skipped] == [
        ("2", "x_image: a value is not finite"), ("5", "every modality is missing (mask all 0)")]
    assert "Left out 2 row(s)" in capsys.readouterr().out


def test_csv_manifest(predict_model_dir, tmp_path):
    folder, _, x, expected = predict_model_dir
    path = tmp_path / "in.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "image", "audio_0", "audio_1"])
        for i in range(3):
            w.writerow([f"r{i}", " ".join(str(v) for v in x["image"][i])] + list(x["audio"][i]))
        w.writerow(["bad", "1 2 3", "0", "0"])   # three numbers for a width of four
        w.writerow(["empty", "", "", ""])         # every modality missing
    out = tmp_path / "p.csv"
    assert predict.main(["--model", str(folder), "--input", str(path), "--output", str(out)]) == 0
    rows = read_csv_rows(out)
    assert [r["row"] for r in rows] == ["r0", "r1", "r2"]
    np.testing.assert_allclose([float(r["flood_prob_1"]) for r in rows],
                               expected["flood"].reshape(-1)[:3], atol=1e-5)
    reasons = {r["row"]: r["reason"] for r in read_csv_rows(tmp_path / "p.skipped.csv")}
    assert reasons == {"bad": "image: expected 4 number(s), found 3",
                       "empty": "every modality is missing"}


@pytest.mark.parametrize("case, message", [
    ("no_model", "--model:"),
    ("no_input", "--input:"),
    ("missing_key", "has no 'x_audio'"),
    ("bad_extension", "expected an .npz or .csv file"),
    ("bad_mask", "`mask_audio` must hold only 0 (modality missing) and 1 (present). "
                 "Received: value(s) [-1.0, 0.5] in 2 row(s), the first [2, 5]"),
])
@pytest.mark.slow
def test_bad_input_is_one_error_line(predict_model_dir, tmp_path, case, message):
    folder, _, x, _ = predict_model_dir
    model, data = str(folder), str(predict_npz(tmp_path, x))
    if case == "no_model":
        model = str(tmp_path / "nothing")
    elif case == "no_input":
        data = str(tmp_path / "nothing.npz")
    elif case == "missing_key":
        data = tmp_path / "partial.npz"
        np.savez(data, x_image=x["image"])
    elif case == "bad_extension":
        data = tmp_path / "in.txt"
        data.write_text("x")
    elif case == "bad_mask":  # not "partly present": refused, never scored
        mask = x[MASK_KEY][:, 1].copy()
        mask[[2, 5]] = [-1.0, 0.5]
        data = predict_npz(tmp_path, x, mask_audio=mask)
    result = subprocess.run(
        [sys.executable, "-m", "training.predict", "--model", model, "--input", str(data),
         "--output", str(tmp_path / "p.csv")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_the_cli_spells_the_mask_key_as_the_library():
    from training import predict

    assert predict.MASK_KEY == MASK_KEY
