"""benchmarks.walkthrough (issue 30's new-user walkthrough): its data, its step runner
and its report. The 16 steps themselves run from the command line (about 3 minutes;
docs/RELIABILITY.md, "The new-user walkthrough")."""

import json

import numpy as np

from benchmarks import walkthrough


def test_the_users_data_has_text_missing_modalities_and_missing_labels():
    arrays = walkthrough.make_dataset(seed=0)
    assert arrays["x_text"].dtype.kind == "U" and arrays["x_text"].shape == (1200,)
    assert arrays["x_table"].shape == (1200, 12)
    words = set(" ".join(arrays["x_text"]).split())
    assert {"schön", "déçu", "größe"} & words  # non-ASCII words are in the text
    # Missing modalities: zeros / "" exactly where the mask is 0; the table is always there.
    assert not arrays["x_image"][arrays["mask_image"] == 0].any()
    assert (arrays["x_text"][arrays["mask_text"] == 0] == "").all()
    assert 0.05 < 1 - arrays["mask_image"].mean() < 0.15
    for task in ("liked", "category", "defect"):
        assert 0.04 < (arrays[f"y_{task}"] == -1).mean() < 0.12
    assert sorted(set(arrays["y_category"].tolist())) == [-1, 0, 1, 2, 3]
    assert 0.02 < (arrays["y_defect"] == 1).mean() < 0.10  # the rare label
    # The text goes with the labels: "lovely" is a liked row's word only.
    lovely = np.array(["lovely" in t.split() for t in arrays["x_text"]])
    assert set(arrays["y_liked"][lovely].tolist()) <= {-1, 1} and lovely.sum() > 50
    np.testing.assert_array_equal(walkthrough.make_dataset(seed=0)["x_table"],
                                  arrays["x_table"])


def test_a_failing_step_is_one_row_and_the_next_step_still_runs(tmp_path):
    run = walkthrough.Walkthrough(str(tmp_path))
    assert np.load(tmp_path / "own_bytes.npz")["x_text"].dtype.kind == "S"

    def fails():
        raise ValueError("the input 'text'\nmust be\ttext")

    run.step(1, "does a | thing", "works", fails)
    run.step(2, "does another", "works", lambda: "3 rows")
    first, second = run.rows
    assert not first["ok"] and first["result"] == "ValueError: the input 'text' must be text"
    assert first["then"] == walkthrough.THEN[1]
    assert second["ok"] and second["result"] == "ok: 3 rows"


def test_report_writes_the_table_and_the_json(tmp_path):
    rows = [{"step": n, "action": f"step {n} | piped", "expected": "works", "then": "failed",
             "ok": n != 2, "result": "ok" if n != 2 else "KeyError: 'x'"}
            for n in range(1, 17)]
    text = walkthrough.write_report(rows, str(tmp_path), seconds=12.3)
    assert "15 of 16 steps ok, 12 s." in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + 16  # the header, its rule and one line per step
    assert "| 2 | step 2 \\| piped | works | failed | **fails**: KeyError: 'x' |" in table
    assert (tmp_path / "walkthrough.md").read_text("utf-8") == text
    stored = json.loads((tmp_path / "walkthrough.json").read_text("utf-8"))
    assert stored["passed"] == 15 and stored["rows"] == rows
