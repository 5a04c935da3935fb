"""The quality benchmark (`benchmarks/quality.py`): its report and one end-to-end run.

The peers are tested in test_quality_peers.py.
"""

import json
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from benchmarks import quality, quality_report  # noqa: E402
from hgfn_keras.evaluation.report import ONE_VALUE  # noqa: E402


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _run(row, kind, seed, f1, hamming_loss, map_):
    metrics = {"f1": f1, "hamming_loss": hamming_loss, "map": map_,
               "accuracy": 1.0 - hamming_loss}
    if math.isnan(map_):
        metrics["map_undefined"] = "no positive label among the 4 labelled evaluated rows"
    decision = {"mean": {m: metrics[m] for m in ("f1", "hamming_loss", "accuracy")},
                "tasks": {"t": {m: metrics[m] for m in ("f1", "hamming_loss")}}}
    return {"row": row, "kind": kind, "seed": seed, "wall_seconds": 1.0,
            "metrics": {"mean": dict(metrics), "tasks": {"t": dict(metrics)},
                        "decision": decision}}


def test_summary_and_report_from_runs_by_hand(tmp_path):
    runs = [_run("hgfn+dmtl", "pair", 0, 0.6, 0.2, 0.7),
            _run("hgfn+dmtl", "pair", 1, 0.8, 0.1, 0.9),
            _run("lr", "peer", 0, 0.5, 0.15, math.nan), _run("lr", "peer", 1, 0.7, 0.25, math.nan),
            _run("knn", "peer", 0, 0.4, 0.3, 0.6)]
    summary = quality_report.summarise(runs, ["hgfn+dmtl", "lr", "knn"], ["lr", "knn"], ["t"])
    f1 = summary["rows"]["hgfn+dmtl"]["mean"]["f1"]
    assert f1["mean"] == pytest.approx(0.7) and f1["n"] == 2
    assert f1["std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert summary["rows"]["knn"]["mean"]["f1"]["std_undefined"] == ONE_VALUE
    assert math.isnan(summary["rows"]["lr"]["mean"]["map"]["mean"])
    # Best peer: F1 lr (0.6 > 0.4), HL lr (0.2 < 0.3), MAP knn (lr's is undefined).
    assert {m: b["peer"] for m, b in summary["best_peer"].items()} == {
        "f1": "lr", "hamming_loss": "lr", "map": "knn"}
    assert summary["pairs_vs_best_peer"]["hgfn+dmtl"] == {
        "f1_at_least_best_peer": True, "map_at_least_best_peer": True,
        "hl_within_best_peer_plus_0.01": True}

    result = {"dataset": "npz:toy.npz", "dataset_name": "toy", "split": "test", "limit": None,
              "seeds": [0, 1], "package": {"version": "0", "git_commit": None, "git_dirty": None},
              "sklearn_version": "1", "started": "today", "wall_seconds": 3.0, "command": "c",
              "tasks": [{"name": "t", "num_classes": 2}], "runs": runs, "summary": summary}
    json_path, md_path = quality_report.write_outputs(result, tmp_path)
    written = _strict_json(open(json_path).read())
    assert written["summary"]["rows"]["knn"]["mean"]["f1"]["std"] is None
    assert written["runs"][2]["metrics"]["mean"]["map"] is None
    report = open(md_path).read()
    assert "| HGFN+DMTL | 0.700 ± 0.141 | 0.1500 ± 0.0707 | 0.800 ± 0.141 |" in report
    assert "| knn: kNN-10 | 0.400 | 0.3000 | **0.600** |" in report
    # Every reason for a null is said once, sorted.
    assert report.count("Undefined numbers (null in quality.json): ") == 1
    assert ("no finite value over the seeds; no positive label among the 4 labelled "
            f"evaluated rows; {ONE_VALUE}\n") in report


@pytest.mark.slow
def test_benchmark_end_to_end_on_a_tiny_npz(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = 240
    x_a = rng.normal(size=(rows, 6)).astype("float32") * 50 + 100  # unscaled, as users' are
    x_b = rng.normal(size=(rows, 4)).astype("float32")
    np.savez(tmp_path / "toy.npz", x_a=x_a, x_b=x_b,
             y_pos=(x_a[:, 0] > 100).astype("int32"),
             y_neg=(x_b[:, 0] > 0.5).astype("int32"),
             y_three=np.digitize(x_b[:, 1], [-0.4, 0.4]).astype("int32"))
    out = tmp_path / "out"
    peers = ["lr", "knn", "gb"]
    quality.main(["--dataset", f"npz:{tmp_path / 'toy.npz'}", "--seeds", "1",
                  "--pairs", "cfc+lsew", "--peers", ",".join(peers + ["tfidf"]),
                  "--split", "validation", "--set", "epochs=2", "--output-dir", str(out)])

    printed = capsys.readouterr().out
    assert "[1/4] seed 0" in printed and "cfc+lsew" in printed
    assert "F1 @ val thr" in printed and "HL @ val thr" in printed
    result = _strict_json((out / "quality.json").read_text())
    assert result["split"] == "validation" and result["seeds"] == [0]
    assert result["settings"] == {"epochs": 2}  # --set reached the pair's TrainConfig:
    assert [r["epochs_run"] for r in result["runs"] if r["kind"] == "pair"] == [2]
    assert result["skipped"] == {"tfidf": "the dataset has no text modality"}
    assert result["package"]["version"]
    rows = {(r["row"], r["seed"]) for r in result["runs"]}
    assert rows == {("cfc+lsew", 0)} | {(p, 0) for p in peers}
    for run in result["runs"]:
        assert run["wall_seconds"] > 0
        assert set(run["metrics"]["tasks"]) == {"neg", "pos", "three"}
        values = [*run["metrics"]["mean"].values()] + [
            v for task in run["metrics"]["tasks"].values() for v in task.values()]
        assert all(v is not None and 0.0 <= v <= 1.0 for v in values)
        decision = run["metrics"]["decision"]
        assert set(decision["thresholds"]) == {"neg", "pos"}  # "three" decides by argmax
        assert all(0.0 < t < 1.0 for t in decision["thresholds"].values())
        assert all(0.0 <= decision["mean"][m] <= 1.0 for m in ("f1", "hamming_loss"))
    assert set(result["summary"]["rows"]) == {"cfc+lsew", *peers}
    best = result["summary"]["best_peer"]
    assert set(best) == {"f1", "hamming_loss", "map"} and best["f1"]["peer"] in peers
    assert set(result["summary"]["pairs_vs_best_peer"]["cfc+lsew"]) == {
        "f1_at_least_best_peer", "map_at_least_best_peer", "hl_within_best_peer_plus_0.01"}

    report = (out / "quality.md").read_text()
    assert f"F1 `{best['f1']['peer']}`" in report and "**" in report
    assert "CFC+LSEW" in report and "## Per task: MAP" in report
    assert "| F1 @ val thr | HL @ val thr |" in report
    assert "## Per task: F1 @ val threshold" in report and "(optimistic)" in report
    assert set(result["summary"]["best_peer_decision"]) == {"f1", "hamming_loss"}
    assert set(result["summary"]["rows"]["cfc+lsew"]["decision"]["mean"]) == {
        "f1", "hamming_loss", "accuracy"}
    # The validation split was scored, by the model the recipe saved.
    assert (out / "runs" / "cfc+lsew" / "seed0" / "model.keras").exists()


@pytest.mark.parametrize("setting, message", [
    ("epochs", "--set expects FIELD=VALUE"),
    ("epoch=3", "epoch"),
    ("epochs=0", "epochs"),
    ("seed=3", "come from --dataset, --pairs, --seeds and --limit"),
])
def test_a_bad_set_is_refused_before_any_run(tmp_path, capsys, setting, message):
    with pytest.raises(SystemExit) as exit:
        quality.main(["--dataset", "clothing", "--set", setting,
                      "--output-dir", str(tmp_path / "out")])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
