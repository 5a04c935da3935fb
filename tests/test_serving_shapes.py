"""The SavedModel signature refuses inputs of the wrong rank naming them (issue 30).

The signature declares `review` as `string [N]` and `meta` as `float32 [N, 2]`, so
TensorFlow folded the run-time rank checks to "true": a text of shape [1, 2] reached the
tokeniser ("input must be a vector, got shape: [1,2]" from `StringSplitV2`) and a
`meta` of rank 3 failed in an internal op ("The second input must be a scalar" at
`All_4`), neither naming the input. Now each is refused by its own check, before any
other check and before the model runs, with the input's name, the shape expected and
the shape received.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import Modality, Task, build_model
from hgfn_keras.encoders import TfidfTextEncoder
from hgfn_keras.serving.export import export_saved_model

TEXTS = ["good food", "bad service", "ok", "good service"]


@pytest.fixture(scope="module")
def signature(tmp_path_factory):
    keras.utils.set_random_seed(0)
    encoder = TfidfTextEncoder.from_texts(TEXTS, units=4, max_tokens=50,
                                          name="review_encoder")
    model = build_model([Modality("review", kind="text"), Modality("meta", width=2)],
                        [Task("t", 2)], encoders={"review": encoder}, head_units=2,
                        mtl="lsew")
    model.predict({"review": np.array(TEXTS, object), "meta": np.ones((4, 2), "float32")},
                  verbose=0)
    path = export_saved_model(model, str(tmp_path_factory.mktemp("sm") / "text"))
    return tf.saved_model.load(path).signatures["serving_default"]


def _good(rows):
    return {"review": tf.constant(["a b"] * rows), "meta": tf.ones((rows, 2)),
            "modality_mask": tf.ones((rows, 2))}


def _refusal(signature, feed):
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        signature(**feed)
    return caught.value.message.replace("\\'", "'")


@pytest.mark.parametrize("rows", [1, 2])
def test_a_text_of_two_dimensions_is_refused_naming_it(signature, rows):
    assert signature(**_good(rows))["t"].shape == (rows, 1)
    message = _refusal(signature, dict(_good(rows), review=tf.constant([["a", "b"]])))
    assert "Bad input 'review': expected string [N]. Received shape:] [1 2]" in message
    message = _refusal(signature, dict(_good(rows), review=tf.constant("a b")))  # a scalar
    assert "Bad input 'review': expected string [N]. Received shape:] []" in message


@pytest.mark.parametrize("shape", [(2, 2, 1), (2, 2, 3), (1, 2, 1)])
def test_a_vector_of_rank_three_is_refused_naming_it(signature, shape):
    message = _refusal(signature, dict(_good(2), meta=tf.ones(shape)))
    received = " ".join(str(d) for d in shape)
    assert f"Bad input 'meta': expected float32 [N, 2]. Received shape:] [{received}]" in (
        message)


def test_a_mask_of_rank_three_is_refused_naming_it(signature):
    message = _refusal(signature, dict(_good(2), modality_mask=tf.ones((2, 2, 1))))
    assert "Bad input 'modality_mask': expected float32 [N, 2]. Received shape:] [2 2 1]" in (
        message)
