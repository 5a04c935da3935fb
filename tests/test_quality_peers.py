"""The quality benchmark's scikit-learn peers (`benchmarks/peers.py`) and their scoring."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.metrics import average_precision_score, f1_score  # noqa: E402

from benchmarks import peers  # noqa: E402
from benchmarks.scoring import score  # noqa: E402
from hgfn_keras import Task  # noqa: E402


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
    probabilities = peers.fit_predict_peer(
        peer, tasks, x[train], {k: v[train] for k, v in y.items()}, x[test], seed=0)
    assert probabilities["a"].shape == (20,) and probabilities["c"].shape == (20, 3)
    metrics = score(tasks, {k: v[test] for k, v in y.items()}, probabilities)

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
    full = peers.class_probabilities(np.array([0, 2]), proba, 3)
    assert np.allclose(full, [[0.2, 0.0, 0.8], [0.6, 0.0, 0.4]])
    assert np.allclose(peers.class_probabilities(np.array([0, 1]), proba, 2), [0.8, 0.4])


def test_joint_peer_matches_a_multilabel_fit():
    # All tasks binary, no missing label: rf/mlp/knn fit one multi-label model (as peers.py).
    from sklearn.neighbors import KNeighborsClassifier

    tasks = [Task("a", 2), Task("b", 2)]
    x, y = _tiny_arrays()
    y = {"a": y["a"], "b": y["b"]}
    got = peers.fit_predict_peer("knn", tasks, x[:40], {k: v[:40] for k, v in y.items()},
                                   x[40:], seed=0)
    expected = KNeighborsClassifier(10).fit(x[:40], np.stack([y["a"][:40], y["b"][:40]], 1))
    for j, proba in enumerate(expected.predict_proba(x[40:])):
        assert np.allclose(got[("a", "b")[j]], proba[:, 1])



def test_peer_thresholds_come_from_validation_and_leave_the_half_numbers_alone(tmp_path):
    from hgfn_keras.data import load_dataset
    from hgfn_keras.evaluation.decision_thresholds import choose_thresholds
    from hgfn_keras.evaluation.metrics import multitask_metrics

    x, y = _tiny_arrays(rows=150)
    y["a"] = (x[:, 0] > 1.0).astype(np.int32)  # rare: 0.5 is a poor threshold
    np.savez(tmp_path / "toy.npz", x_u=x[:, :3], x_v=x[:, 3:], **{f"y_{k}": v for k, v in y.items()})
    dataset = load_dataset(f"npz:{tmp_path / 'toy.npz'}", seed=0)
    numeric = peers.numeric_features(dataset)
    scored = peers.run_peer("lr", dataset, numeric, "test", seed=0)

    # The 0.5 numbers are those of the peer predicting the test rows alone.
    (_, y_train), (_, y_val), (_, y_test) = (dataset.splits[s]
                                             for s in ("train", "validation", "test"))
    alone = {s: peers.fit_predict_peer("lr", dataset.tasks, numeric["train"], y_train,
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


def test_numeric_features_standardise_on_the_present_training_rows():
    from types import SimpleNamespace

    from hgfn_keras.data import MASK_KEY

    # The third training row lacks the modality: its 100 and 7 are placeholders.
    train = {"v": np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 7.0]]), MASK_KEY: [[1], [1], [0]]}
    test = {"v": np.array([[2.0, 9.0], [50.0, 50.0]]), MASK_KEY: [[1], [0]]}
    dataset = SimpleNamespace(modalities=[SimpleNamespace(name="v", kind="vector")],
                              splits={"train": (train, None), "test": (test, None)},
                              size=lambda split: len(dataset.splits[split][0]["v"]))
    out = peers.numeric_features(dataset, ("train", "test"))
    # Present training rows: mean [2, 5], std [1, 0]; the constant column keeps scale 1.
    assert np.allclose(out["train"], [[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert np.allclose(out["test"], [[0.0, 4.0], [0.0, 0.0]])  # absent: the training mean
