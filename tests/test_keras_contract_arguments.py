"""The Keras contract, round four (issue 30, item 3): `sample_weight` for some tasks,
`recipe.evaluate(model, (x, y))`, `fusion_weights` exported, float32 outputs under
mixed float16, rows with no modality refused everywhere, zeros that look like missing
rows warned about."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import hgfn_keras
from hgfn_keras import Modality, Task, build_model, load_npz
from hgfn_keras.data.dataset import MASK_KEY
from tests.conftest import make_model

MODALITIES = [Modality("a", width=3), Modality("b", width=2)]
TASKS = [Task("t", 2), Task("k", 3)]


def _xy(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = {m.name: rng.normal(size=(n, m.width)).astype("float32") for m in MODALITIES}
    return x, {"t": np.arange(n) % 2, "k": np.arange(n) % 3}


def _trained_weights(sample_weight):
    model = make_model(MODALITIES, TASKS, fusion="cfc", mtl="lsew", head_units=4)
    x, y = _xy()
    model.fit(x, y, sample_weight=sample_weight, epochs=2, batch_size=6, shuffle=False,
              verbose=0)
    return model, [w.numpy() for w in model.weights]


@pytest.mark.slow
def test_sample_weight_for_some_tasks_weighs_the_others_one():
    weights = np.linspace(0.0, 2.0, 12).astype("float32")
    model, partial = _trained_weights({"t": weights})
    _, full = _trained_weights({"t": weights, "k": np.ones(12, "float32")})
    for a, b in zip(partial, full):
        np.testing.assert_array_equal(a, b)
    _, every_task = _trained_weights(weights)  # the weights do act on "t"
    assert any(not np.array_equal(a, b) for a, b in zip(partial, every_task))
    x, y = _xy()
    logs = model.evaluate(x, y, sample_weight={"k": np.ones(12)}, return_dict=True, verbose=0)
    assert np.isfinite(logs["loss"])
    with pytest.raises(ValueError, match=r"names task\(s\) \['nope'\]"):
        model.fit(x, y, sample_weight={"nope": weights}, verbose=0)


def test_recipe_evaluate_takes_numpy_x_y_and_the_refusal_points_to_it():
    model = make_model(MODALITIES, TASKS, fusion="cfc", mtl="lsew", head_units=4)
    x, y = _xy()
    metrics = hgfn_keras.recipe.evaluate(model, (x, y))
    assert set(metrics["tasks"]) == {"t", "k"}
    for name in ("t", "k"):
        assert set(metrics["tasks"][name]) == {"f1", "hamming_loss", "map", "accuracy"}
    expected = hgfn_keras.multitask_metrics(model.tasks, y, model.predict(x, verbose=0))
    assert metrics["mean"] == expected["mean"]
    with pytest.raises(ValueError, match=r"takes the inputs and the labels"):
        hgfn_keras.recipe.evaluate(model, (x, y, None))
    with pytest.raises(ValueError, match=r"recipe\.evaluate\(model, \(x, y\)\)"):
        model.compile(optimizer="adam", metrics=["accuracy"])


def test_fusion_weights_is_exported():
    from hgfn_keras import fusion_weights
    from hgfn_keras.inspection import fusion_weights as where_it_lives

    assert fusion_weights is where_it_lives


@pytest.mark.parametrize("heads", ["dense", "mtinet", "one_vs_rest"])
def test_outputs_are_float32_under_mixed_float16(heads, tmp_path):
    from hgfn_keras.export import export_saved_model

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        tasks = [Task("t", 2), Task("k", 3, one_vs_rest=heads == "one_vs_rest")]
        model = make_model(MODALITIES, tasks, fusion="hgfn", head_units=4,
                           mtl="mtinet" if heads == "mtinet" else "lsew")
        x, _ = _xy()
        assert model.network.get_layer("fusion").compute_dtype == "float16"
        for name, value in model(x).items():
            assert value.dtype == "float32", name
        for name, value in model.predict(x, verbose=0).items():
            assert value.dtype == np.float32, name
        if heads == "dense":  # the SavedModel's outputs too
            path = export_saved_model(model, str(tmp_path / "m"))
            serve = tf.saved_model.load(path).signatures["serving_default"]
            out = serve(**{k: tf.constant(v) for k, v in x.items()},
                        **{MASK_KEY: tf.ones((12, 2))})
            assert {k: v.dtype for k, v in out.items() if "prob" in k or k in ("t", "k")}
            for name, value in out.items():
                assert value.dtype in (tf.float32, tf.int32, tf.int64, tf.string), name
                assert value.dtype != tf.float16, name
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_rows_with_no_modality_are_refused_by_fit_evaluate_and_predict_naming_them():
    model = make_model(MODALITIES, TASKS, fusion="cfc", mtl="lsew", head_units=4)
    x, y = _xy()
    x[MASK_KEY] = np.ones((12, 2), "float32")
    x[MASK_KEY][[2, 7]] = 0.0  # as the SavedModel's "every modality is missing ... Rows:"
    message = r"every modality is missing \(the mask is all 0\) in 2 row\(s\): \[2, 7\]"
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.predict(x, verbose=0)
    x[MASK_KEY][7, 1] = 1.0
    x[MASK_KEY][2, 0] = 1.0
    model.fit(x, y, epochs=1, verbose=0)  # one present modality is enough


def test_npz_refuses_rows_with_no_modality(tmp_path):
    path = tmp_path / "f.npz"
    rng = np.random.default_rng(0)
    mask_a, mask_b = np.ones(20), np.ones(20)
    mask_a[[4, 9]] = mask_b[[4, 9]] = 0
    mask_b[5] = 0  # one modality missing: fine
    np.savez(path, x_a=rng.normal(size=(20, 3)), x_b=rng.normal(size=(20, 2)),
             mask_a=mask_a, mask_b=mask_b, y_t=np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"`mask_a \+ mask_b`: every modality is missing.*"
                                         r"2 row\(s\): \[4, 9\]"):
        load_npz(path)


def test_zero_rows_without_a_mask_warn_once_naming_the_modality():
    model = make_model(MODALITIES, TASKS, fusion="cfc", mtl="lsew", head_units=4)
    x, y = _xy()
    x["b"][[3, 5, 8]] = 0.0
    with pytest.warns(UserWarning) as caught:
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    messages = [str(w.message) for w in caught if "only zeros" in str(w.message)]
    assert messages == [messages[0]] and "Modality 'b': 3 of 12 row(s)" in messages[0]
    # Marked missing in the mask: no warning (the rows are missing, and said to be).
    x[MASK_KEY] = np.ones((12, 2), "float32")
    x[MASK_KEY][[3, 5, 8], 1] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(x, y, epochs=1, verbose=0)


def test_npz_zero_rows_without_a_mask_warn(tmp_path):
    path = tmp_path / "f.npz"
    rng = np.random.default_rng(0)
    image = rng.normal(size=(20, 3))
    image[[1, 2]] = 0.0
    np.savez(path, x_image=image, x_b=rng.normal(size=(20, 2)), y_t=np.arange(20) % 2)
    with pytest.warns(UserWarning, match=r"Modality 'image': 2 of 20 row\(s\) hold only "
                                         r"zeros.*`mask_image`"):
        load_npz(path)
