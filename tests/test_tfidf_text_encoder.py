"""TfidfTextEncoder: TF-IDF n-grams from the training texts, inside the model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import Modality, Task, build_model, export_saved_model
from hgfn_keras.encoders import TfidfTextEncoder

TEXTS = np.array(["good dress nice", "bad shoes", "good fit", "", "nice bad dress",
                  "love it", "runs small", "too big"] * 4, dtype=object)


def _model():
    keras.utils.set_random_seed(0)
    encoder = TfidfTextEncoder.from_texts(TEXTS, units=4, max_tokens=50, input_dropout=0.2,
                                          name="review_encoder")
    model = build_model([Modality("review", kind="text"), Modality("meta", width=2)],
                        [Task("t", 2)], encoders={"review": encoder}, head_units=4, mtl="lsew")
    x = {"review": TEXTS, "meta": np.random.default_rng(0).random((len(TEXTS), 2), "float32")}
    model.compile(optimizer="adam")
    model.fit(x, {"t": np.arange(len(TEXTS)) % 2}, epochs=1, verbose=0)
    return model, x


def test_features_are_unit_norm_tf_idf_of_the_training_vocabulary():
    encoder = TfidfTextEncoder.from_texts(["a b", "a c", "a"], ngrams=2, units=3)
    vocabulary = encoder.vectorizer.get_vocabulary()
    assert "a" in vocabulary and "a b" in vocabulary  # words and word pairs
    weights = tf.math.l2_normalize(encoder.vectorizer(tf.constant(["a b", ""])), -1).numpy()
    np.testing.assert_allclose(np.linalg.norm(weights[0]), 1.0, rtol=1e-6)
    assert not weights[1].any()  # an empty text has no feature
    # "b" is rarer than "a" in the training texts: a larger IDF, a larger weight.
    assert weights[0][vocabulary.index("b")] > weights[0][vocabulary.index("a")]


@pytest.mark.slow
def test_keras_file_and_saved_model_give_the_same_outputs(tmp_path):
    model, x = _model()
    expected = model.predict(x, verbose=0)["t"]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["t"], expected, atol=1e-6)
    path = export_saved_model(model, str(tmp_path / "sm"), version=1)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    served = serve(review=tf.constant(x["review"].astype(str).tolist()),
                   meta=tf.constant(x["meta"]), modality_mask=tf.ones((len(TEXTS), 2)))
    np.testing.assert_allclose(served["t"].numpy(), expected, atol=1e-5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`units` must be a positive integer"):
        TfidfTextEncoder(units=0)
    with pytest.raises(ValueError, match="`input_dropout` must be in"):
        TfidfTextEncoder(input_dropout=1.0)
    with pytest.raises(ValueError, match="non-empty training texts"):
        TfidfTextEncoder.from_texts(["", " "])
