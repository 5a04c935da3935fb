"""The SavedModel signature on a request of 0 rows, and NaN or inf in a masked slot."""

import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras.data.dataset import MASK_KEY
from hgfn_keras.serving.export import ALL_PRESENT_SIGNATURE, export_saved_model
from tests.conftest import IMAGE_AUDIO_SENSOR, masked_inputs


@pytest.fixture(scope="module")
def loaded(masked_model, tmp_path_factory):
    path = export_saved_model(masked_model, str(tmp_path_factory.mktemp("serve") / "tiny"),
                              return_modality_weights=True)
    return tf.saved_model.load(path)


def _call(signature, x):
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in x.items()}).items()}


@pytest.mark.slow
def test_zero_rows_give_zero_rows(masked_model, loaded):
    x = {k: v[:0] for k, v in masked_inputs().items()}
    out = _call(loaded.signatures["serving_default"], x)
    assert out["flood"].shape == (0, 1) and out["damage"].shape == (0, 3)
    assert out["modality_weights"].shape == (0, len(IMAGE_AUDIO_SENSOR))
    x.pop(MASK_KEY)
    out = _call(loaded.signatures[ALL_PRESENT_SIGNATURE], x)
    assert out["damage"].shape == (0, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_in_a_masked_slot_is_ignored(masked_model, loaded, bad):
    serve = loaded.signatures["serving_default"]
    x = masked_inputs()
    x[MASK_KEY][1, 0] = 0.0   # row 1: image missing
    x[MASK_KEY][4, 2] = 0.0   # row 4: sensor missing
    expected = _call(serve, x)
    x["image"][1] = bad
    x["sensor"][4, 1] = bad
    out = _call(serve, x)
    for name in ("flood", "damage", "modality_weights"):
        assert np.isfinite(out[name]).all(), name
        np.testing.assert_allclose(out[name], expected[name], atol=1e-6)
    keras_out = masked_model.predict(
        {k: np.where(np.isfinite(v), v, 0.0) for k, v in x.items()}, verbose=0)
    np.testing.assert_allclose(out["damage"], keras_out["damage"], atol=1e-5)


def test_a_non_finite_value_in_a_present_slot_is_still_refused(loaded):
    serve = loaded.signatures["serving_default"]
    x = masked_inputs()
    x[MASK_KEY][1, 0] = 0.0
    x["image"][1] = np.nan       # masked: fine
    x["image"][3, 2] = np.nan    # present: refused, naming the row
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        _call(serve, x)
    message = str(caught.value).replace("\\'", "'")
    assert "Bad input 'image': NaN or inf in the row(s) of the batch" in message
    assert "every value of a present modality must be finite" in message
    assert "Rows:] [3]" in message, message
    x = masked_inputs()
    x["audio"][2] = np.inf
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Bad input \\?'audio\\?': NaN or inf"):
        _call(loaded.signatures[ALL_PRESENT_SIGNATURE], {k: v for k, v in x.items()
                                                          if k != MASK_KEY})
