"""The learning-curve benchmark (`benchmarks/learning_curve.py`): its subsample, its
rows and its refusals."""

import json

import numpy as np
import pytest

pytest.importorskip("sklearn")

from benchmarks import learning_curve  # noqa: E402
from hgfn_keras.data import load_dataset  # noqa: E402

ROWS = 400


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    """400 rows, two vector modalities, a common and a rare (10 %) binary task, and a
    multi-class task; split 60/20/20 by a `split` array."""
    rng = np.random.default_rng(0)
    rare = np.zeros(ROWS, int)
    rare[rng.permutation(ROWS)[:40]] = 1
    common = (rng.random(ROWS) < 0.5).astype(int)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_a=rng.normal(size=(ROWS, 4)) + common[:, None],
             x_b=rng.normal(size=(ROWS, 3)) + rare[:, None],
             y_common=common, y_rare=rare, y_kind=rng.integers(0, 3, ROWS),
             split=np.repeat([0, 1, 2], [240, 80, 80]))
    return f"npz:{path}"


def test_subsample_is_stratified_and_leaves_validation_and_test(tiny_npz):
    dataset = load_dataset(tiny_npz, seed=0)
    train_rare = dataset.splits["train"][1]["rare"]
    rate = train_rare.mean()
    subset, info = learning_curve.subsample_training(dataset, 50, seed=0)
    assert subset.size("train") == 50 and info["size"] == 50
    # The rarest task is the stratified one, and its share is kept to within a row.
    assert info["stratified_on"] == "rare" and info["stratified"] is True
    assert abs(subset.splits["train"][1]["rare"].sum() - 50 * rate) <= 1
    # Every training array is cut alike, to rows of the original training split.
    x, y = subset.splits["train"]
    assert all(len(v) == 50 for v in [*x.values(), *y.values()])
    full_rows = {tuple(r) for r in dataset.splits["train"][0]["a"]}
    assert all(tuple(r) in full_rows for r in x["a"])
    assert len({tuple(r) for r in x["a"]}) == 50  # no row twice
    # Validation and test untouched.
    for split in ("validation", "test"):
        for part in (0, 1):
            for key, value in dataset.splits[split][part].items():
                np.testing.assert_array_equal(subset.splits[split][part][key], value)
    # Another seed draws other rows; the same seed the same ones; the original is kept.
    again, _ = learning_curve.subsample_training(dataset, 50, seed=0)
    other, _ = learning_curve.subsample_training(dataset, 50, seed=1)
    np.testing.assert_array_equal(again.splits["train"][0]["a"], x["a"])
    assert not np.array_equal(other.splits["train"][0]["a"], x["a"])
    assert dataset.size("train") == 240
    # None, or a size of at least the split, keeps the dataset as it is.
    assert learning_curve.subsample_training(dataset, None, seed=0)[0] is dataset
    assert learning_curve.subsample_training(dataset, 240, seed=0)[0] is dataset


def test_stratification_falls_back_to_random_when_it_cannot_stratify():
    labels = np.arange(30)  # every value once: pooled into one, drawn at random
    kept, stratified = learning_curve.subsample_indices(labels, 12, seed=0)
    assert len(kept) == 12 and len(set(kept)) == 12
    labels = np.repeat(np.arange(15), 2)  # 15 values of 2 rows: 10 rows cannot hold them
    kept, stratified = learning_curve.subsample_indices(labels, 10, seed=0)
    assert len(kept) == 10 and stratified is False


def _read(out):
    return json.loads((out / "learning_curve.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))


ROW_KEYS = {"row", "kind", "size", "size_label", "seed", "split", "mean_f1", "mean_map",
            "mean_f1_at_val_thr"}


def test_benchmark_rows_schema(tiny_npz, tmp_path, capsys):
    out = tmp_path / "lc"
    learning_curve.main(["--dataset", tiny_npz, "--sizes", "all,60,1000", "--seeds", "2",
                         "--pairs", "", "--peers", "lr,knn,tfidf", "--output-dir", str(out)])
    result = _read(out)
    rows = result["rows"]
    assert all(set(r) == ROW_KEYS for r in rows)
    # 2 seeds x 2 sizes (1000 > 240 training rows is left out) x 2 peers x 2 splits.
    assert len(rows) == 16
    assert {(r["row"], r["kind"]) for r in rows} == {("lr", "peer"), ("knn", "peer")}
    assert {(r["size"], r["size_label"]) for r in rows} == {(60, "60"), (240, "all")}
    assert {r["split"] for r in rows} == {"validation", "test"}
    assert all(0.0 <= r["mean_f1"] <= 1.0 and 0.0 <= r["mean_map"] <= 1.0 for r in rows)
    # The validation and test scores differ: two scorings, not one copied.
    by = {(r["row"], r["size"], r["seed"], r["split"]): r["mean_map"] for r in rows}
    assert any(by[k[:3] + ("validation",)] != by[k[:3] + ("test",)] for k in by)
    assert "size 1000" in result["skipped"] and "tfidf" in result["skipped"]
    assert result["package"]["version"] and "git_commit" in result["package"]
    assert {(s["size"], s["seed"]) for s in result["subsamples"]} == {
        (60, 0), (60, 1), (240, 0), (240, 1)}
    text = (out / "learning_curve.md").read_text()
    assert "## validation split" in text and "## test split" in text and "best peer" in text
    assert "all (240)" in text


@pytest.mark.slow
def test_benchmark_trains_pairs_with_settings(tiny_npz, tmp_path, capsys):
    out = tmp_path / "lc"
    learning_curve.main(["--dataset", tiny_npz, "--sizes", "60", "--seeds", "1",
                         "--pairs", "cfc+lsew@epochs=1", "--peers", "",
                         "--output-dir", str(out)])
    rows = _read(out)["rows"]
    assert [(r["row"], r["kind"], r["size"], r["split"]) for r in rows] == [
        ("cfc+lsew@epochs=1", "pair", 60, "validation"),
        ("cfc+lsew@epochs=1", "pair", 60, "test")]
    run = out / "runs" / "cfc+lsew@epochs=1" / "size60" / "seed0"
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 1 and config["fusion"] == "cfc"
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 1


@pytest.mark.parametrize("sizes", ["100,abc", "5", "", "100,-3", "1e3"])
def test_bad_sizes_are_refused(sizes, tmp_path, capsys):
    with pytest.raises(SystemExit):
        learning_curve.main(["--dataset", "clothing", "--sizes", sizes,
                             "--output-dir", str(tmp_path)])
    error = capsys.readouterr().err
    assert "--sizes" in error and f"Received: {sizes!r}" in error


def test_bad_pair_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        learning_curve.main(["--dataset", "clothing", "--pairs", "nope+lsew",
                             "--output-dir", str(tmp_path)])
    assert "nope+lsew" in capsys.readouterr().err
