"""`training.predict` with hostile names and concurrent runs (issue 30).

- Class names and row ids that would start a formula (`=HYPERLINK(...)`, `@SUM`, `+1`)
  are written escaped (a leading `'`), numbers such as `-3` as they are;
- two runs into one `--output` never share a staging file: while one writes, a second
  is refused naming the first; a staging file left by a killed run is removed by the
  next; a lock left by a killed run is taken over with a warning;
- a CSV cell over Python's default 128 KB field limit is read.
"""

import csv
import os
import subprocess
import sys
import textwrap

import keras
import pytest

from hgfn_keras import Modality, Task, build_model
from training import predict

FORMULA = '=HYPERLINK("http://example.com/x", "click")'
MODALITIES = (Modality("image", width=3), Modality("audio", width=2))
TASKS = (Task("damage", 2, class_names=(FORMULA, "@SUM(A1)")),)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), list(TASKS), fusion="cfc",
                        fusion_kwargs={"units": 4}, head_units=2, mtl="lsew",
                        use_modality_mask=False, normalize=False)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(str(path))
    return path


def _csv_input(path, ids, image_cells=None):
    rows = len(ids)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "image", "audio"])
        for i, row_id in enumerate(ids):
            image = image_cells[i] if image_cells else f"{i} 0.5 -1"
            writer.writerow([row_id, image, "0.1 0.2"])
    assert rows
    return path


def _read_raw(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_cells_that_would_start_a_formula_are_escaped(model_path, tmp_path, capsys):
    ids = ["=1+1", "@cmd", "+33", "-3", "plain", "-2.5e3"]
    source = _csv_input(tmp_path / "in.csv", ids)
    out = tmp_path / "p.csv"
    assert predict.main(["--model", str(model_path), "--input", str(source),
                         "--output", str(out)]) == 0
    rows = _read_raw(out)
    header, body = rows[0], rows[1:]
    # The task name comes first in a header cell: not a formula, left as it is.
    assert header[1:3] == ["damage_prob_" + FORMULA, "damage_prob_@SUM(A1)"]
    assert [r[0] for r in body] == ["'=1+1", "'@cmd", "+33", "-3", "plain", "-2.5e3"]
    predicted = {r[header.index("damage_pred")] for r in body}
    assert predicted <= {"'" + FORMULA, "'@SUM(A1)"} and predicted
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "@")), cell


HOLDER = textwrap.dedent("""
    import fcntl, json, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": "here", "started": "then"}).encode())
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_second_run_into_one_output_is_refused_while_the_first_writes(
        model_path, tmp_path, capsys):
    source = _csv_input(tmp_path / "in.csv", ["a", "b"])
    out = tmp_path / "p.csv"
    out.write_text("the first run's rows\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / ".p.csv.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = predict.main(["--model", str(model_path), "--input", str(source),
                             "--output", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith(f"error: --output: {str(out)!r} is in use by another run "
                                 f"(pid {holder.pid} on here, started then")
        assert out.read_text() == "the first run's rows\n"
    finally:
        holder.kill()
        holder.wait()
    # Killed: its lock is taken over, and the staging file it left is removed.
    left = tmp_path / f".p.csv.{holder.pid}-deadbeef.partial"
    left.write_text("half")
    with pytest.warns(UserWarning, match=rf"stale lock .*pid {holder.pid}"):
        assert predict.main(["--model", str(model_path), "--input", str(source),
                             "--output", str(out)]) == 0
    assert len(_read_raw(out)) == 3
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "p.csv"]


def test_each_run_stages_under_a_name_of_its_own(model_path, tmp_path, monkeypatch):
    staged = []
    real = predict._write_predictions

    def spy(path, *args):
        staged.append(os.path.basename(path))
        return real(path, *args)

    monkeypatch.setattr(predict, "_write_predictions", spy)
    source = _csv_input(tmp_path / "in.csv", ["a"])
    for _ in range(2):
        assert predict.main(["--model", str(model_path), "--input", str(source),
                             "--output", str(tmp_path / "p.csv")]) == 0
    assert len(set(staged)) == 2 and all(f".{os.getpid()}-" in name for name in staged)
    assert all(not name.startswith("p.csv.partial") for name in staged)


def test_a_csv_cell_over_128_kb_is_read(model_path, tmp_path):
    huge = " ".join(["1.0"] * 2) + " " * 200_000 + "2.0"  # 3 numbers in a 200 KB cell
    source = _csv_input(tmp_path / "in.csv", ["a", "b"], image_cells=[huge, "1 2 3"])
    out = tmp_path / "p.csv"
    assert predict.main(["--model", str(model_path), "--input", str(source),
                         "--output", str(out)]) == 0
    assert len(_read_raw(out)) == 3
