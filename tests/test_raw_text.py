"""Raw text on every path a vector takes (issue 30, item 1): numpy `str`/`bytes` arrays
and lists in `fit`/`predict`/`evaluate`, and text modalities in the npz contract through
`load_npz`, `training.convert`, `training.predict`, `training.train`, the tuner and the
quality benchmark."""

import csv

import keras
import numpy as np
import pytest

from hgfn_keras import Modality, Task, TextEncoder, build_model, load_npz
from hgfn_keras.utils.text_arrays import as_text_array, is_text_array

WORDS = ["café", "naïve", "good", "bad", "shirt", "größe", "fit", "dress"]


def _texts(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 3)) for _ in range(n)]


def _text_model(texts):
    keras.utils.set_random_seed(0)
    encoder = TextEncoder.from_texts(texts, min_count=1, embedding_dim=4, max_tokens=8)
    model = build_model([Modality("review", kind="text"), Modality("image", width=2)],
                        [Task("liked", 2)], fusion="cfc", mtl="lsew", head_units=4,
                        encoders={"review": encoder})
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def _npz(path, n=30, text_as=str, seed=0):
    rng = np.random.default_rng(seed)
    texts = _texts(n, seed)
    x_text = np.array([text_as(t) if text_as is str else t.encode("utf-8") for t in texts])
    np.savez(path, x_review=x_text, x_image=rng.normal(size=(n, 2)).astype("float32"),
             y_liked=np.arange(n) % 2, y_kind=np.arange(n) % 3)
    return texts


@pytest.mark.parametrize("form", ["unicode", "bytes", "list", "object"])
def test_fit_predict_evaluate_take_numpy_str_bytes_and_lists(form):
    texts = _texts(12)
    as_form = {"unicode": np.array, "object": lambda t: np.array(t, dtype=object),
               "bytes": lambda t: np.array([s.encode("utf-8") for s in t]),
               "list": list}[form]
    image = np.linspace(-1, 1, 24, dtype="float32").reshape(12, 2)
    y = {"liked": np.arange(12) % 2}
    model = _text_model(texts)
    before = model.predict({"review": np.array(texts, dtype=object), "image": image},
                           verbose=0)["liked"]
    x = {"review": as_form(texts), "image": image}
    # The same answer as the object array, which Keras took before: "café" decoded as UTF-8.
    np.testing.assert_allclose(model.predict(x, verbose=0)["liked"], before, rtol=1e-6)
    model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(model.evaluate(x, y, verbose=0, return_dict=True)["loss"])


def test_as_text_array_decodes_utf8_and_names_the_bad_row():
    assert as_text_array(np.array(["é", ""])).tolist() == ["é", ""]
    assert as_text_array(np.array([["a"], ["b"]])).tolist() == ["a", "b"]
    assert as_text_array(np.array(["ü".encode()])).dtype == object
    with pytest.raises(ValueError, match=r"The input 'review' must be UTF-8 text: row 1"):
        as_text_array([b"ok", b"\xff\xfe"], "The input 'review'")
    with pytest.raises(ValueError, match=r"shape \[N\].*Received: shape=\(2, 2\)"):
        as_text_array(np.array([["a", "b"], ["c", "d"]]))
    assert is_text_array(np.array(["a"])) and not is_text_array(np.zeros((2, 2)))


@pytest.mark.parametrize("text_as", [str, bytes])
def test_load_npz_reads_a_text_modality_from_its_dtype(tmp_path, text_as):
    path = tmp_path / "own.npz"
    texts = _npz(path, text_as=text_as)
    with np.load(path, allow_pickle=False) as stored:  # no pickle: a plain <U / S array
        assert stored["x_review"].dtype.kind == ("U" if text_as is str else "S")
    data = load_npz(path)
    kinds = {m.name: m.kind for m in data.modalities}
    assert kinds == {"image": "vector", "review": "text"}
    x, _ = data.splits["train"]
    assert x["review"].dtype == object
    assert set(x["review"].tolist()) <= set(texts)
    assert data.statistics().token_counts["review"].counts["café"] > 0


def test_load_npz_refuses_text_of_two_dimensions(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_review=np.array([["a", "b"]] * 6), x_image=np.zeros((6, 2)),
             y_t=np.arange(6) % 2)
    with pytest.raises(ValueError, match=r"`x_review` holds text, which must be 1-D"):
        load_npz(path)


def test_convert_writes_an_npz_text_modality_to_shards(tmp_path, capsys):
    from hgfn_keras.data.tfrecord import StreamedDataset
    from training import convert

    path = tmp_path / "own.npz"
    _npz(path, text_as=bytes)
    convert.main(["--input", str(path), "--output", str(tmp_path / "shards")])
    assert "'review': 'text'" in capsys.readouterr().out
    streamed = StreamedDataset(str(tmp_path / "shards"))
    assert {m.name: m.kind for m in streamed.modalities}["review"] == "text"
    in_memory = load_npz(path)
    batches, _ = streamed.pipeline("test", batch_size=64, shuffle=False)
    x, _ = next(iter(batches))
    assert [t.decode("utf-8") for t in x["review"].numpy()] == \
        in_memory.splits["test"][0]["review"].tolist()


@pytest.fixture(scope="module")
def text_model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text_model")
    model = _text_model(_texts(30))
    path = folder / "model.keras"
    model.save(path)
    return model, path


@pytest.mark.parametrize("source", ["unicode npz", "utf-8 bytes npz", "utf-8 csv"])
def test_predict_cli_reads_utf8_text(text_model_file, tmp_path, source):
    from training import predict

    model, model_path = text_model_file
    path = tmp_path / "own.npz"
    texts = _npz(path, text_as=bytes if "bytes" in source else str)
    image = np.load(path)["x_image"]
    if source.endswith("csv"):
        path = tmp_path / "own.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["review", "image_0", "image_1"])
            writer.writerows([t, *v.tolist()] for t, v in zip(texts, image))
    out = tmp_path / "predictions.csv"
    assert predict.main(["--model", str(model_path), "--input", str(path),
                         "--output", str(out)]) == 0
    with open(out, newline="") as f:
        probabilities = [float(r["liked_prob_1"]) for r in csv.DictReader(f)]
    expected = model.predict({"review": texts, "image": image}, verbose=0)["liked"][:, 0]
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_predict_cli_names_a_text_modality_that_is_not_utf8(text_model_file, tmp_path,
                                                           capsys):
    from training import predict

    _, model_path = text_model_file
    path = tmp_path / "latin1.npz"
    np.savez(path, x_review=np.array(["café".encode("latin-1")] * 3),
             x_image=np.zeros((3, 2), "float32"))
    assert predict.main(["--model", str(model_path), "--input", str(path),
                         "--output", str(tmp_path / "p.csv")]) != 0
    assert "x_review must be UTF-8 text: row 0" in capsys.readouterr().err


@pytest.mark.slow
def test_train_tune_and_quality_benchmark_take_an_npz_with_text(tmp_path, capsys):
    """The CLIs end to end on a text npz (slow: three trainings of one epoch)."""
    from benchmarks import quality
    from training import train
    from tuning import search

    path = tmp_path / "own.npz"
    _npz(path, n=40, text_as=bytes)
    common = ["--fusion", "cfc", "--mtl", "lsew", "--epochs", "1", "--verbose", "0"]
    assert train.main(["--dataset", f"npz:{path}", *common, "--embedding-dim", "8",
                       "--output-dir", str(tmp_path / "run"),
                       "--export-dir", str(tmp_path / "saved")]) in (0, None)
    assert (tmp_path / "run" / "metrics.json").exists()
    search.main(["--dataset", f"npz:{path}", "--tuner", "random", "--max-trials", "1",
                 *common, "--output-dir", str(tmp_path / "tune")])
    assert (tmp_path / "tune" / "best_hyperparameters.json").exists()
    quality.main(["--dataset", f"npz:{path}", "--seeds", "1", "--pairs", "cfc+lsew",
                  "--peers", "lr,tfidf", "--set", "epochs=1",
                  "--output-dir", str(tmp_path / "quality")])
    assert "tfidf" in (tmp_path / "quality" / "quality.md").read_text()


def test_readme_npz_text_example_writes_a_text_modality_without_pickle(tmp_path, monkeypatch):
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    snippets = [s for s in re.findall(r"```python\n(.*?)```", readme, flags=re.S)
                if 'np.savez("own.npz"' in s]
    assert len(snippets) == 1
    monkeypatch.chdir(tmp_path)
    exec(snippets[0], {})
    with np.load(tmp_path / "own.npz", allow_pickle=False) as stored:
        assert stored["x_text"].dtype.kind == "U" and stored["x_text"].shape == (3,)
    from hgfn_keras.data.npz import _check_features

    assert _check_features("x_text", np.load(tmp_path / "own.npz")["x_text"]).tolist()[0] == \
        "Lovely dress"
