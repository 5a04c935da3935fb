"""The quality benchmark (`benchmarks/quality.py`): its peers' numbers and one end-to-end run."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.metrics import average_precision_score, f1_score  # noqa: E402

from benchmarks import quality  # noqa: E402
from hgfn_keras import Task  # noqa: E402


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _tiny_arrays(rows=60, seed=0):
    """Features and labels with signal: two binary tasks and one 3-class task."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5))
    y = {"a": (x[:, 0] > 0).astype(np.int32),
         "b": (x[:, 1] + 0.5 * rng.normal(size=rows) > 0.3).astype(np.int32),
         "c": np.digitize(x[:, 2], [-0.4, 0.4]).astype(np.int32)}
    return x, y


@pytest.mark.parametrize("peer", ["lr", "knn", "rf"])
def test_peer_metrics_equal_sklearn_on_the_same_predictions(peer):
    tasks = [Task("a", 2), Task("b", 2), Task("c", 3)]
    x, y = _tiny_arrays()
    y["b"][:5] = -1  # missing labels: left out of training rows and of the metrics
    train, test = slice(0, 40), slice(40, None)
    probabilities = quality.fit_predict_peer(
        peer, tasks, x[train], {k: v[train] for k, v in y.items()}, x[test], seed=0)
    assert probabilities["a"].shape == (20,) and probabilities["c"].shape == (20, 3)
    metrics = quality.score(tasks, {k: v[test] for k, v in y.items()}, probabilities)

    for name in ("a", "b"):
        truth, p = y[name][test], probabilities[name]
        assert metrics["tasks"][name]["f1"] == pytest.approx(
            f1_score(truth, p >= 0.5, zero_division=0))
        assert metrics["tasks"][name]["map"] == pytest.approx(average_precision_score(truth, p))
    truth, p = y["c"][test], probabilities["c"]
    assert metrics["tasks"]["c"]["f1"] == pytest.approx(
        f1_score(truth, p.argmax(1), average="macro", labels=[0, 1, 2], zero_division=0))
    assert metrics["tasks"]["c"]["map"] == pytest.approx(np.mean(
        [average_precision_score(truth == k, p[:, k]) for k in range(3) if np.any(truth == k)]))
    assert np.allclose(p.sum(axis=1), 1.0)


def test_peer_probabilities_follow_the_classes_it_saw():
    # A classifier that never saw class 1 of a 3-class task gives it probability 0.
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    full = quality.class_probabilities(np.array([0, 2]), proba, 3)
    assert np.allclose(full, [[0.2, 0.0, 0.8], [0.6, 0.0, 0.4]])
    assert np.allclose(quality.class_probabilities(np.array([0, 1]), proba, 2), [0.8, 0.4])


def test_joint_peer_matches_a_multilabel_fit():
    # All tasks binary, no missing label: rf/mlp/knn fit one multi-label model (as peers.py).
    from sklearn.neighbors import KNeighborsClassifier

    tasks = [Task("a", 2), Task("b", 2)]
    x, y = _tiny_arrays()
    y = {"a": y["a"], "b": y["b"]}
    got = quality.fit_predict_peer("knn", tasks, x[:40], {k: v[:40] for k, v in y.items()},
                                   x[40:], seed=0)
    expected = KNeighborsClassifier(10).fit(x[:40], np.stack([y["a"][:40], y["b"][:40]], 1))
    for j, proba in enumerate(expected.predict_proba(x[40:])):
        assert np.allclose(got[("a", "b")[j]], proba[:, 1])


def test_strict_json_gives_null_with_a_reason():
    nulls = {}
    clean = quality.strict({"runs": [{"metrics": {"map": math.nan}}], "s": {"std": np.nan}},
                           "", nulls)
    text = json.dumps(clean, allow_nan=False)
    assert _strict_json(text)["runs"][0]["metrics"]["map"] is None
    assert set(nulls) == {"runs[0].metrics.map", "s.std"}
    assert all(nulls.values())


def test_peer_thresholds_come_from_validation_and_leave_the_half_numbers_alone(tmp_path):
    from hgfn_keras.data import load_dataset
    from hgfn_keras.decision_thresholds import choose_thresholds
    from hgfn_keras.metrics import multitask_metrics

    x, y = _tiny_arrays(rows=150)
    y["a"] = (x[:, 0] > 1.0).astype(np.int32)  # rare: 0.5 is a poor threshold
    np.savez(tmp_path / "toy.npz", x_u=x[:, :3], x_v=x[:, 3:], **{f"y_{k}": v for k, v in y.items()})
    dataset = load_dataset(f"npz:{tmp_path / 'toy.npz'}", seed=0)
    numeric = quality.numeric_features(dataset)
    scored = quality.run_peer("lr", dataset, numeric, "test", seed=0)

    # The 0.5 numbers are those of the peer predicting the test rows alone.
    (_, y_train), (_, y_val), (_, y_test) = (dataset.splits[s]
                                             for s in ("train", "validation", "test"))
    alone = {s: quality.fit_predict_peer("lr", dataset.tasks, numeric["train"], y_train,
                                         numeric[s], seed=0) for s in ("validation", "test")}
    plain = multitask_metrics(dataset.tasks, y_test, alone["test"])
    assert scored["mean"] == pytest.approx(plain["mean"])
    # The thresholds: chosen on the validation predictions, for the binary tasks only.
    decision = scored["decision"]
    assert decision["thresholds"] == pytest.approx(
        choose_thresholds(dataset.tasks, y_val, alone["validation"]))
    assert set(decision["thresholds"]) == {"a", "b"}
    assert decision["mean"] == pytest.approx(multitask_metrics(
        dataset.tasks, y_test, alone["test"], thresholds=decision["thresholds"])["mean"])
    assert decision["tasks"]["c"] == scored["tasks"]["c"]  # argmax: unchanged
    assert decision["tasks"]["a"]["map"] == scored["tasks"]["a"]["map"]


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
                  "--split", "validation", "--output-dir", str(out)])

    printed = capsys.readouterr().out
    assert "[1/4] seed 0" in printed and "cfc+lsew" in printed
    assert "F1 @ val thr" in printed and "HL @ val thr" in printed
    result = _strict_json((out / "quality.json").read_text())
    assert result["split"] == "validation" and result["seeds"] == [0]
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
