"""The experiment runner on a tiny npz file: two fusions × two strategies × one seed.

`main(argv)` runs in this process (`run_as_process`): the runner trains in one process
anyway, and `test_wheel.py` starts its console script in a process of its own."""

import csv

import numpy as np
import pytest

from tests.conftest import run_as_process


def _npz(tmp_path, rows=60):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_image=rng.normal(size=(rows, 5)).astype("float32"),
             x_audio=rng.normal(size=(rows, 3)).astype("float32"),
             y_flood=rng.integers(0, 2, rows), y_damage=rng.integers(0, 3, rows))
    return path


def _run(*argv):
    from training import experiments

    return run_as_process(experiments.main, *argv)


@pytest.mark.slow
def test_runner_writes_csv_and_tables(tmp_path):
    out = tmp_path / "out"
    result = _run("--dataset", f"npz:{_npz(tmp_path)}", "--fusions", "cfc,hgfn",
                  "--mtls", "lsew,moo", "--seeds", "1", "--epochs", "1",
                  "--output-dir", str(out), "--train-args", "--batch-size 16 --embedding-dim 4",
                  "--plots")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[4/4] hgfn+moo seed 0" in result.stdout
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    columns = ["fusion", "mtl", "seed"]
    columns += [f"{t}_{m}" for t in ("damage", "flood")
                for m in ("f1", "hamming_loss", "map", "accuracy")]
    columns += [f"mean_{m}" for m in ("f1", "hamming_loss", "map", "accuracy")]
    columns += ["epochs_run", "wall_seconds"]
    assert list(rows[0]) == columns
    assert {(r["fusion"], r["mtl"]) for r in rows} == {
        ("cfc", "lsew"), ("cfc", "moo"), ("hgfn", "lsew"), ("hgfn", "moo")}
    for row in rows:
        f1 = [float(row["damage_f1"]), float(row["flood_f1"])]
        assert float(row["mean_f1"]) == pytest.approx(np.mean(f1), abs=1e-5)
    markdown = (out / "results.md").read_text()
    assert "| HGFN + MOO |" in markdown and "Table V shape" in markdown
    assert (out / "runs" / "hgfn+lsew" / "seed0" / "fusion_weights_flood.png").is_file()
    # A rerun skips what is there already.
    again = _run("--dataset", f"npz:{_npz(tmp_path)}", "--fusions", "cfc,hgfn",
                 "--mtls", "lsew,moo", "--seeds", "1", "--epochs", "1",
                 "--output-dir", str(out))
    assert again.returncode == 0 and again.stdout.count("skipped") == 4


def test_runner_refuses_unknown_names(tmp_path):
    result = _run("--fusions", "cfc,nope", "--output-dir", str(tmp_path))
    assert result.returncode != 0 and "nope" in result.stderr and "Traceback" not in result.stderr
