"""Degenerate tasks, non-finite input, and missing modalities: warnings, errors, no NaN."""

import keras
import numpy as np
import pytest

from hgfn_keras import Modality, Task, build_model
from tests.conftest import make_inputs

MODALITIES = (Modality("image", width=4), Modality("audio", width=3))
ROWS = 32


def _x(seed=0):
    return make_inputs(MODALITIES, ROWS, np.random.default_rng(seed))


def _model(tasks, mtl="dmtl"):
    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), tasks, mtl=mtl, head_units=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros(ROWS, "int32"), "'t' has no positive training label"),
        (np.ones(ROWS, "int32"), "'t' has no negative training label"),
        (np.full(ROWS, -1, "int32"), "'t' has no training label \\(all are -1\\)"),
    ],
)
@pytest.mark.parametrize("mtl", ["dmtl", "lsew", "moo"])
@pytest.mark.slow
def test_degenerate_binary_task_warns_and_trains_without_nan(labels, message, mtl):
    tasks = [Task("t", 2), Task("other", 3)]
    y = {"t": labels, "other": np.arange(ROWS, dtype="int32") % 3}
    model = _model(tasks, mtl)
    with pytest.warns(UserWarning, match=message):
        history = model.fit(_x(), y, epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.all(np.isfinite(model.task_weights.numpy()))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


@pytest.mark.slow
def test_class_that_never_occurs_is_named():
    tasks = [Task("t", 2), Task("level", 4, class_names=("none", "mild", "severe", "total"))]
    y = {"t": np.arange(ROWS, dtype="int32") % 2, "level": np.arange(ROWS, dtype="int32") % 3}
    model = _model(tasks)
    with pytest.warns(UserWarning, match=r"'level': class\(es\) \['total'\] never occur"):
        model.fit(_x(), y, epochs=1, batch_size=8, verbose=0)
    assert np.all(np.isfinite(model.task_weights.numpy()))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_named_with_the_row(bad):
    model = _model([Task("t", 2)])
    x = _x()
    x["audio"][5, 1] = bad
    with pytest.raises(ValueError, match="'audio' holds NaN or inf in 1 row\\(s\\), the first at "
                                         "row 5"):
        model.fit(x, {"t": np.arange(ROWS) % 2}, epochs=1, verbose=0)


def test_masked_modality_output_does_not_depend_on_the_slot():
    model = _model([Task("t", 2), Task("k", 3)])
    x = _x()
    x["modality_mask"] = np.ones((ROWS, 2), "float32")
    x["modality_mask"][::2, 0] = 0.0
    before = model.predict(x, verbose=0)
    x["image"][::2] = 1e4  # garbage in the masked slots only
    after = model.predict(x, verbose=0)
    for name in ("t", "k"):
        np.testing.assert_allclose(before[name], after[name], atol=1e-6)
        assert np.all(np.isfinite(after[name]))
