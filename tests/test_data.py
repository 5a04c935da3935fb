"""Tests of the data loaders: the embedded clothing reviews and the npz feature files."""

import csv
import gzip
import os
import warnings

import numpy as np
import pytest

from hgfn_keras.data import (
    MASK_KEY,
    SPLITS,
    MultimodalDataset,
    clothing_path,
    load_clothing,
    load_dataset,
    load_npz,
)

NUM_KEPT_ROWS = 23_472  # 23,486 rows minus the 14 without a department


def _csv_rows(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def clothing():
    return load_clothing(seed=0)


@pytest.fixture(scope="module")
def kept_csv_rows():
    return [r for r in _csv_rows(clothing_path()) if r["Department Name"] != ""]


def _concat(dataset, getter):
    return np.concatenate([getter(*dataset.splits[s]) for s in SPLITS])


# --------------------------------------------------------------------------- clothing


def test_clothing_path_is_packaged():
    assert os.path.isfile(clothing_path())
    assert clothing_path().endswith("womens_clothing_reviews.csv.gz")


def test_clothing_specs(clothing):
    assert isinstance(clothing, MultimodalDataset)
    assert clothing.name == "clothing"
    assert clothing.modality_names == ["review", "title", "metadata"]
    assert [m.kind for m in clothing.modalities] == ["text", "text", "vector"]
    assert clothing.modalities[2].width == 2
    assert clothing.task_names == ["recommended", "rating", "department"]
    assert [t.num_classes for t in clothing.tasks] == [2, 5, 6]
    assert clothing.tasks[0].class_names == ("no", "yes")
    assert clothing.tasks[1].class_names == ("1", "2", "3", "4", "5")
    departments = clothing.tasks[2].class_names
    assert departments == tuple(sorted(departments))
    assert departments == ("Bottoms", "Dresses", "Intimate", "Jackets", "Tops", "Trend")


def test_clothing_counts_and_split_sizes(clothing):
    sizes = {s: clothing.size(s) for s in SPLITS}
    assert sum(sizes.values()) == NUM_KEPT_ROWS
    assert sizes == {"train": 14_083, "validation": 4_694, "test": 4_695}
    for split, fraction in zip(SPLITS, (0.6, 0.2, 0.2)):
        assert abs(sizes[split] / NUM_KEPT_ROWS - fraction) < 1e-3


def test_clothing_arrays_and_dtypes(clothing):
    for split in SPLITS:
        x, y = clothing.splits[split]
        # No leak: only the review, the title and the two metadata numbers are inputs.
        assert set(x) == {"review", "title", "metadata", MASK_KEY}
        assert set(y) == {"recommended", "rating", "department"}
        n = clothing.size(split)
        for name in ("review", "title"):
            assert x[name].dtype == object and x[name].shape == (n,)
            assert all(type(v) is str for v in x[name])
        assert x["metadata"].dtype == np.float32 and x["metadata"].shape == (n, 2)
        assert x[MASK_KEY].dtype == np.float32 and x[MASK_KEY].shape == (n, 3)
        for values in y.values():
            assert values.dtype == np.int32 and values.shape == (n,)


def test_clothing_missing_text_matches_csv(clothing, kept_csv_rows):
    assert len(kept_csv_rows) == NUM_KEPT_ROWS
    mask = _concat(clothing, lambda x, y: x[MASK_KEY])
    missing_titles = sum(r["Title"] == "" for r in kept_csv_rows)
    missing_reviews = sum(r["Review Text"] == "" for r in kept_csv_rows)
    assert missing_titles > 3000
    assert int(np.sum(mask[:, 1] == 0)) == missing_titles == 3809
    assert int(np.sum(mask[:, 0] == 0)) == missing_reviews == 844
    assert np.all(mask[:, 2] == 1)
    for column, name in ((0, "review"), (1, "title")):
        text = _concat(clothing, lambda x, y: x[name])
        assert np.all((text == "") == (mask[:, column] == 0))
        assert not any(t.strip().lower() == "nan" for t in text)


def test_clothing_labels_in_range(clothing, kept_csv_rows):
    for task in clothing.tasks:
        labels = _concat(clothing, lambda x, y: y[task.name])
        assert labels.min() >= 0 and labels.max() < task.num_classes
        assert len(np.unique(labels)) == task.num_classes
    recommended = _concat(clothing, lambda x, y: y["recommended"])
    assert int(recommended.sum()) == sum(r["Recommended IND"] == "1" for r in kept_csv_rows)


def test_clothing_metadata_is_raw(clothing, kept_csv_rows):
    # The model standardises the metadata (FeatureNormalization), so the dataset
    # holds the raw numbers that a serving client sends too.
    metadata = _concat(clothing, lambda x, y: x["metadata"])
    ages = sorted(float(r["Age"]) for r in kept_csv_rows)
    np.testing.assert_allclose(sorted(metadata[:, 0]), ages)
    assert metadata[:, 1].min() >= 0 and float(metadata[:, 1].max()) == max(
        float(r["Positive Feedback Count"]) for r in kept_csv_rows)


def test_clothing_split_follows_seed(clothing):
    again = load_clothing(seed=0)
    other = load_clothing(seed=1)
    for split in SPLITS:
        np.testing.assert_array_equal(
            again.splits[split][0]["review"], clothing.splits[split][0]["review"]
        )
        np.testing.assert_array_equal(
            again.splits[split][1]["rating"], clothing.splits[split][1]["rating"]
        )
    assert not np.array_equal(
        other.splits["test"][0]["review"], clothing.splits["test"][0]["review"]
    )


def test_clothing_limit():
    small = load_clothing(seed=3, limit=50)
    assert {s: small.size(s) for s in SPLITS} == {"train": 30, "validation": 10, "test": 10}
    assert [t.num_classes for t in small.tasks] == [2, 5, 6]
    again = load_clothing(seed=3, limit=50)
    np.testing.assert_array_equal(
        small.splits["train"][0]["review"], again.splits["train"][0]["review"]
    )
    with pytest.raises(ValueError, match="`limit`.*Received: limit=5"):
        load_clothing(limit=5)


def _write_csv(path, header, rows):
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


HEADER = [
    "Clothing ID", "Age", "Title", "Review Text", "Rating", "Recommended IND",
    "Positive Feedback Count", "Division Name", "Department Name", "Class Name",
]


def test_clothing_pandas_nan_strings_and_bad_numbers(tmp_path):
    rows = []
    for i in range(12):
        title = "nan" if i % 3 == 0 else f"title {i}"
        review = "NaN" if i == 1 else f"line one\nline two {i}"
        age = "oops" if i == 2 else str(20 + i)
        department = ("Dresses", "Tops")[i % 2]
        rows.append([i, age, title, review, 1 + i % 5, i % 2, i, "General", department, "X"])
    rows.append([99, 30, "t", "r", 5, 1, 0, "", "", ""])  # no department: dropped
    path = tmp_path / "tiny.csv.gz"
    _write_csv(path, HEADER, rows)
    dataset = load_clothing(path=str(path))
    assert sum(dataset.size(s) for s in SPLITS) == 12
    mask = _concat(dataset, lambda x, y: x[MASK_KEY])
    titles = _concat(dataset, lambda x, y: x["title"])
    reviews = _concat(dataset, lambda x, y: x["review"])
    assert int(np.sum(mask[:, 1] == 0)) == 4 and "nan" not in set(titles)
    assert int(np.sum(mask[:, 0] == 0)) == 1 and "NaN" not in set(reviews)
    assert any("\n" in r for r in reviews)  # multi-line quoted fields survive
    assert int(np.sum(mask[:, 2] == 0)) == 1  # the unparseable age
    metadata = _concat(dataset, lambda x, y: x["metadata"])
    np.testing.assert_array_equal(metadata[mask[:, 2] == 0], 0.0)
    assert dataset.tasks[2].class_names == ("Dresses", "Tops")


def test_clothing_missing_column(tmp_path):
    path = tmp_path / "no_age.csv.gz"
    _write_csv(path, [h for h in HEADER if h != "Age"], [])
    with pytest.raises(ValueError, match="Age"):
        load_clothing(path=str(path))


# --------------------------------------------------------------------------- npz


def _valid_arrays(n=20):
    rng = np.random.default_rng(0)
    return {
        "x_audio": rng.normal(size=(n, 4)),
        "x_video": rng.normal(size=(n, 3, 2)).astype(np.float32),
        "x_text": rng.integers(0, 5, size=(n, 6)),
        "y_happy": np.arange(n) % 2,
        "y_emotion": np.arange(n) % 4,
        "y_sparse": np.where(np.arange(n) % 2 == 0, np.arange(n) % 3, -1).astype(np.float64),
        "split": np.array([0] * 12 + [1] * 4 + [2] * 4),
        "mask_video": (np.arange(n) % 5 != 0).astype(np.int64),
    }


def _save(tmp_path, arrays, name="feats"):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_valid(tmp_path):
    arrays = _valid_arrays()
    dataset = load_npz(_save(tmp_path, arrays, "cmu_toy"))
    assert dataset.name == "cmu_toy"
    assert dataset.modality_names == ["audio", "text", "video"]
    kinds = {m.name: (m.kind, m.width, m.steps) for m in dataset.modalities}
    assert kinds == {
        "audio": ("vector", 4, None),
        "text": ("vector", 6, None),
        "video": ("sequence", 2, 3),
    }
    assert dataset.task_names == ["emotion", "happy", "sparse"]
    assert {t.name: t.num_classes for t in dataset.tasks} == {
        "emotion": 4,
        "happy": 2,
        "sparse": 3,
    }
    assert {s: dataset.size(s) for s in SPLITS} == {"train": 12, "validation": 4, "test": 4}
    x, y = dataset.splits["validation"]
    np.testing.assert_allclose(x["audio"], arrays["x_audio"][12:16].astype(np.float32))
    assert x["audio"].dtype == x["text"].dtype == x["video"].dtype == np.float32
    assert x["video"].shape == (4, 3, 2)
    assert all(v.dtype == np.int32 for v in y.values())
    np.testing.assert_array_equal(y["emotion"], arrays["y_emotion"][12:16])
    mask = np.concatenate([dataset.splits[s][0][MASK_KEY] for s in SPLITS])
    assert mask.dtype == np.float32 and mask.shape == (20, 3)
    np.testing.assert_array_equal(mask[:, 0], 1)
    np.testing.assert_array_equal(mask[:, 2], arrays["mask_video"])


def test_npz_random_split_and_binary_k(tmp_path):
    arrays = _valid_arrays()
    del arrays["split"], arrays["mask_video"]
    arrays["y_happy"] = np.zeros(20, dtype=np.int64)  # only 0: still binary
    path = _save(tmp_path, arrays)
    first, again, other = load_npz(path, seed=0), load_npz(path, seed=0), load_npz(path, seed=7)
    assert {s: first.size(s) for s in SPLITS} == {"train": 12, "validation": 4, "test": 4}
    expected = np.random.default_rng(0).permutation(20)[:12]
    np.testing.assert_array_equal(
        first.splits["train"][1]["emotion"], arrays["y_emotion"][expected]
    )
    np.testing.assert_array_equal(
        first.splits["train"][0]["audio"], again.splits["train"][0]["audio"]
    )
    assert not np.array_equal(
        first.splits["train"][0]["audio"], other.splits["train"][0]["audio"]
    )
    assert {t.name: t.num_classes for t in first.tasks}["happy"] == 2
    np.testing.assert_array_equal(first.splits["test"][0][MASK_KEY], 1.0)


def test_npz_task_without_train_labels_warns(tmp_path):
    arrays = _valid_arrays()
    arrays["y_late"] = np.where(arrays["split"] == 0, -1, 1)
    with pytest.warns(UserWarning, match="'late'"):
        dataset = load_npz(_save(tmp_path, arrays))
    assert "late" in dataset.task_names


def test_npz_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist.*nowhere.npz"):
        load_npz(str(tmp_path / "nowhere.npz"))


def test_npz_not_an_npz(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="must be an `.npz` archive.*notes.npz"):
        load_npz(str(text))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="not a single `.npy` array"):
        load_npz(str(single))


def _bad(tmp_path, arrays, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=match):
            load_npz(_save(tmp_path, arrays))


def test_npz_needs_two_modalities(tmp_path):
    arrays = _valid_arrays()
    del arrays["x_video"], arrays["x_text"], arrays["mask_video"]
    _bad(tmp_path, arrays, r"at least two modalities.*x_audio")
    del arrays["x_audio"]
    _bad(tmp_path, arrays, r"at least two modalities")


def test_npz_needs_a_task(tmp_path):
    arrays = {k: v for k, v in _valid_arrays().items() if not k.startswith("y_")}
    _bad(tmp_path, arrays, r"at least one task \(a `y_<task>` key\)")


def test_npz_unknown_keys(tmp_path):
    arrays = _valid_arrays()
    arrays["labels"] = np.zeros(20)
    arrays["z_extra"] = np.zeros(20)
    _bad(tmp_path, arrays, r"Unknown key\(s\).*\['labels', 'z_extra'\]")


@pytest.mark.parametrize("key", ["x_2d", "y_my-task", "mask_", "x_"])
def test_npz_names_must_be_identifiers(tmp_path, key):
    arrays = _valid_arrays()
    arrays[key] = np.zeros((20, 2)) if key.startswith("x_") else np.zeros(20)
    _bad(tmp_path, arrays, f"`{key}`: the name after .* must be a Python identifier")


def test_npz_reserved_modality_name(tmp_path):
    arrays = _valid_arrays()
    arrays["x_modality_mask"] = np.zeros((20, 2))
    _bad(tmp_path, arrays, "`x_modality_mask`.*reserved")


def test_npz_x_dtype(tmp_path):
    arrays = _valid_arrays()
    arrays["x_audio"] = np.zeros((20, 4), dtype=bool)
    _bad(tmp_path, arrays, r"`x_audio` must hold floating.*dtype=bool")
    # A string array is a text modality (issue 30); one of 2-D is refused as text.
    arrays["x_audio"] = np.full((20, 4), "a")
    _bad(tmp_path, arrays, r"`x_audio` holds text, which must be 1-D \[N\].*shape=\(20, 4\)")
    arrays["x_audio"] = np.zeros((20, 4), dtype="datetime64[s]")
    _bad(tmp_path, arrays, r"`x_audio` must hold floating.*or text.*dtype=datetime64")


@pytest.mark.parametrize("shape", [(20,), (20, 2, 2, 2)])
def test_npz_x_ndim(tmp_path, shape):
    arrays = _valid_arrays()
    arrays["x_audio"] = np.zeros(shape)
    _bad(
        tmp_path,
        arrays,
        rf"`x_audio` must be 2-D \[N, D\] or 3-D \[N, T, D\]. Received: shape={shape}".replace(
            "(", r"\("
        ).replace(")", r"\)"),
    )


def test_npz_x_non_finite(tmp_path):
    arrays = _valid_arrays()
    arrays["x_video"] = arrays["x_video"].copy()
    arrays["x_video"][7, 0, 1] = np.nan
    arrays["x_video"][9, 2, 0] = np.inf
    _bad(tmp_path, arrays,
         r"`x_video` \(as float32\) holds NaN or inf in 2 row\(s\), the first at row 7")


def test_npz_row_counts_disagree(tmp_path):
    arrays = _valid_arrays()
    arrays["y_happy"] = np.zeros(19, dtype=np.int64)
    _bad(tmp_path, arrays, r"same number of rows.*`x_audio`: N=20.*`y_happy`: N=19")


def test_npz_y_not_integer(tmp_path):
    arrays = _valid_arrays()
    arrays["y_happy"] = np.full(20, 0.5)
    _bad(tmp_path, arrays, r"`y_happy` must hold integer labels.*0\.5")
    arrays["y_happy"] = np.zeros((20, 1), dtype=np.int64)
    _bad(tmp_path, arrays, r"`y_happy` must be 1-D \[N\]")


def test_npz_y_below_minus_one(tmp_path):
    arrays = _valid_arrays()
    arrays["y_happy"] = np.full(20, -2)
    _bad(tmp_path, arrays, r"`y_happy` labels must be >= -1.*min=-2")


def test_npz_bad_split_values(tmp_path):
    arrays = _valid_arrays()
    arrays["split"] = np.full(20, 3)
    _bad(tmp_path, arrays, r"`split` must hold only 0 \(train\).*\[3\]")


def test_npz_empty_split(tmp_path):
    arrays = _valid_arrays()
    arrays["split"] = np.array([0] * 16 + [2] * 4)
    _bad(tmp_path, arrays, r"The 'validation' split is empty")
    arrays = _valid_arrays(n=3)
    del arrays["split"]
    # 3 rows: 60% -> 1 train row, 20% -> 0 validation rows.
    _bad(tmp_path, arrays, r"The 'validation' split is empty.*60/20/20 permutation \(seed=0\)")


def test_npz_mask_unknown_modality(tmp_path):
    arrays = _valid_arrays()
    arrays["mask_smell"] = np.ones(20)
    _bad(tmp_path, arrays, r"`mask_smell` is a mask for an unknown modality 'smell'")


@pytest.mark.parametrize("bad", [0.5, -1.0, 2.0])
def test_npz_mask_values(tmp_path, bad):
    arrays = _valid_arrays()
    arrays["mask_audio"] = np.full(20, bad)
    _bad(tmp_path, arrays, rf"`mask_audio` must hold only 0 and 1.*\[{bad}\]")


# --------------------------------------------------------------------------- load_dataset


def test_load_dataset(tmp_path):
    small = load_dataset("clothing", seed=1, limit=20)
    assert small.name == "clothing" and sum(small.size(s) for s in SPLITS) == 20
    path = _save(tmp_path, _valid_arrays(), "toy")
    assert load_dataset(f"npz:{path}").name == "toy"
    for spec in ("imdb", "npz:", "NPZ:x.npz"):
        with pytest.raises(ValueError,
                           match=rf"'clothing', 'npz:PATH'.*'tfrecord:DIR'.*spec='{spec}'"):
            load_dataset(spec)


def test_npz_with_a_damaged_member_names_it(tmp_path):
    # A byte-damaged archive member used to give a bare `zipfile.BadZipFile` traceback.
    rng = np.random.default_rng(0)
    path = tmp_path / "damaged.npz"
    np.savez(path, x_a=rng.normal(size=(30, 4)), x_b=rng.normal(size=(30, 3)),
             y_t=np.arange(30) % 2)
    data = bytearray(path.read_bytes())
    data[200:260] = bytes(60)  # inside x_a's data
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"`x_a` of the feature file is damaged"):
        load_npz(path)
