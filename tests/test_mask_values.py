"""`modality_mask` holds 0 (missing) and 1 (present) only, wherever a mask comes in.

A mask of -1, 0.5 or 2 is not "partly present": the fusion multiplies by it and the
model answers with confident nonsense (modality weights such as [-1.005, 1.0, 1.005]).
The npz loader (`test_data.py::test_npz_mask_values`) and `training.predict`
(`test_predict_cli.py::test_bad_input_is_one_error_line[bad_mask]`) refuse such masks too.
"""

import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras.data.dataset import MASK_KEY, check_mask_values
from hgfn_keras.serving.export import export_saved_model
from tests.conftest import MASKED_ROWS, masked_inputs

BAD = [-1.0, 0.5, 2.0]


@pytest.mark.parametrize("bad", BAD)
def test_numpy_mask_other_than_0_and_1_is_refused_by_the_model(masked_model, bad):
    x = masked_inputs()
    x[MASK_KEY][4, 1] = bad
    y = {"flood": np.arange(MASKED_ROWS) % 2, "damage": np.arange(MASKED_ROWS) % 3}
    message = (rf"`modality_mask` must hold only 0 \(modality missing\) and 1 \(present\). "
               rf"Received: value\(s\) \[{bad}\] in 1 row\(s\), the first \[4\]")
    with pytest.raises(ValueError, match=message):
        masked_model.predict(x, verbose=0)
    with pytest.raises(ValueError, match=message):
        masked_model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        masked_model.evaluate(x, y, verbose=0)
    x[MASK_KEY] = x[MASK_KEY].astype(bool)  # bool and integer 0/1 masks are fine
    x[MASK_KEY][4, 1] = True
    masked_model.predict(x, verbose=0)
    x[MASK_KEY] = x[MASK_KEY].astype("int64")
    masked_model.predict(x, verbose=0)


def test_check_mask_values_names_the_key_values_and_rows():
    with pytest.raises(ValueError, match=r"`mask_audio` must hold only 0 .* Received: value\(s\) "
                                         r"\[-1, 2\] in 2 row\(s\), the first \[1, 3\]"):
        check_mask_values(np.array([1, -1, 0, 2]), "mask_audio")
    with pytest.raises(ValueError, match=r"`m` must hold only 0 .* Received: dtype=<U1"):
        check_mask_values(np.array(["1", "0"]), "m")


def test_saved_model_refuses_mask_values_other_than_0_and_1(masked_model, tmp_path):
    path = export_saved_model(masked_model, str(tmp_path / "tiny"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    x = masked_inputs()
    good = serve(**{k: tf.constant(v) for k, v in x.items()})
    expected = masked_model.predict(x, verbose=0)
    np.testing.assert_allclose(good["flood"].numpy(), expected["flood"], atol=1e-5)
    x[MASK_KEY][2, 0] = -1.0
    x[MASK_KEY][5, 2] = 2.0
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        serve(**{k: tf.constant(v) for k, v in x.items()})
    message = str(caught.value).replace("\\'", "'")
    assert ("Bad input 'modality_mask': every value must be 0 (modality missing) or 1 "
            "(present)") in message
    assert "Rows:] [2 5]" in message, message
    assert "Values:] [[-1 1 1]" in message, message
    x[MASK_KEY][[2, 5]] = [0.0, 1.0, 0.5]
    with pytest.raises(tf.errors.InvalidArgumentError, match="every value must be 0"):
        serve(**{k: tf.constant(v) for k, v in x.items()})
    x = masked_inputs()  # still serving
    np.testing.assert_allclose(serve(**{k: tf.constant(v) for k, v in x.items()})["flood"],
                               expected["flood"], atol=1e-5)
