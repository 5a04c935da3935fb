"""Raw features standardised inside the model (FeatureNormalization)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import Modality, Task, build_model, export_saved_model
from hgfn_keras.data.dataset import MASK_KEY, SPLITS, MultimodalDataset
from hgfn_keras import feature_normalization as feature_normalization_module
from hgfn_keras.feature_normalization import FeatureNormalization
from tests.layer_checks import run_layer_test

MODALITIES = [Modality("image", width=3), Modality("audio", width=2)]
TASKS = [Task("flood", 2), Task("damage", 3)]


def _x(rows, seed, image_scale=1000.0, image_shift=5000.0):
    rng = np.random.default_rng(seed)
    return {
        "image": (image_shift + image_scale * rng.normal(size=(rows, 3))).astype("float32"),
        "audio": rng.normal(size=(rows, 2)).astype("float32"),
        MASK_KEY: np.ones((rows, 2), "float32"),
    }


def _y(rows, seed):
    rng = np.random.default_rng(seed)
    return {"flood": rng.integers(0, 2, rows).astype("int32"),
            "damage": rng.integers(0, 3, rows).astype("int32")}


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    return build_model(MODALITIES, TASKS, fusion="hgfn", head_units=4, mtl="lsew", **kwargs)


def test_statistics_come_from_the_training_split_only():
    # The validation and test rows sit far from the training rows: had they leaked
    # into the statistics, the mean would move far from the training mean.
    from hgfn_keras import TrainConfig
    from hgfn_keras.recipe import build

    splits = {"train": (_x(60, 0, image_shift=0.0), _y(60, 0)),
              "validation": (_x(20, 1, image_shift=1e5), _y(20, 1)),
              "test": (_x(20, 2, image_shift=-1e5), _y(20, 2))}
    dataset = MultimodalDataset("toy", list(MODALITIES), list(TASKS), splits)
    model = build(TrainConfig(fusion="cfc", mtl="lsew"), dataset)
    layer = model.normalization_layers["image"]
    train = splits["train"][0]["image"].astype("float64")
    np.testing.assert_allclose(layer.adapt_mean.numpy(), train.mean(0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(layer.adapt_variance.numpy(), train.var(0), rtol=1e-4)
    assert set(SPLITS) == set(splits)


def test_rows_of_a_missing_modality_are_left_out():
    x = _x(40, 0)
    x["image"][:10] = 1e6  # placeholders of rows where the image is missing
    x[MASK_KEY][:10, 0] = 0.0
    model = _model(normalization_data=x)
    layer = model.normalization_layers["image"]
    present = x["image"][10:].astype("float64")
    np.testing.assert_allclose(layer.adapt_mean.numpy(), present.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.adapt_variance.numpy(), present.var(0), rtol=1e-4)
    # The audio is present everywhere: all 40 rows count.
    np.testing.assert_allclose(model.normalization_layers["audio"].adapt_mean.numpy(),
                               x["audio"].astype("float64").mean(0), rtol=1e-4, atol=1e-6)


def test_a_constant_feature_gives_finite_outputs():
    x = _x(32, 0)
    x["image"][:, 1] = 7.0  # constant in training
    model = _model(normalization_data=x)
    test = _x(8, 1)
    test["image"][:, 1] = 1e9  # far from the constant at prediction time
    layer = model.normalization_layers["image"]
    scaled = layer(test["image"]).numpy()
    assert np.all(np.isfinite(scaled))
    np.testing.assert_allclose(scaled[:, 1], 1e9 - 7.0, rtol=1e-6)  # centred, not scaled
    outputs = model.predict(test, verbose=0)
    assert all(np.all(np.isfinite(v)) for v in outputs.values())


def test_fit_adapts_on_numpy_inputs_and_standardises_them():
    x, y = _x(48, 0), _y(48, 0)
    model = _model()
    assert not model.normalization_layers["image"].adapted
    model.compile(optimizer="adam")
    model.fit(x, y, epochs=1, verbose=0)
    layer = model.normalization_layers["image"]
    assert layer.adapted
    scaled = layer(x["image"]).numpy()
    np.testing.assert_allclose(scaled.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(scaled.std(0), 1.0, atol=1e-4)


@pytest.mark.slow
def test_fit_on_a_dataset_without_statistics_warns():
    x, y = _x(16, 0), _y(16, 0)
    model = _model()
    model.compile(optimizer="adam")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.warns(UserWarning, match="has no statistics"):
        model.fit(data, epochs=1, verbose=0, shuffle=False)


def test_keras_file_keeps_the_statistics(tmp_path):
    x = _x(32, 0)
    model = _model(normalization_data=x)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    for name, layer in model.normalization_layers.items():
        again = loaded.normalization_layers[name]
        np.testing.assert_array_equal(again.adapt_mean.numpy(), layer.adapt_mean.numpy())
        np.testing.assert_array_equal(again.adapt_variance.numpy(),
                                      layer.adapt_variance.numpy())
    test = _x(5, 3)
    for name, value in model.predict(test, verbose=0).items():
        np.testing.assert_allclose(loaded.predict(test, verbose=0)[name], value, atol=1e-6)


@pytest.mark.slow
def test_saved_model_scales_raw_inputs_as_predict_does(tmp_path):
    x = _x(32, 0)
    model = _model(normalization_data=x)
    path = export_saved_model(model, str(tmp_path / "toy"), version=1)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    raw = _x(7, 4)  # raw features of scale 1e3 around 5e3
    served = serve(**{k: tf.constant(v) for k, v in raw.items()})
    expected = model.predict(raw, verbose=0)
    for task in TASKS:
        np.testing.assert_allclose(served[task.name].numpy(), expected[task.name], atol=1e-5)


def test_bad_arguments_name_the_modality():
    layer = FeatureNormalization("image")
    with pytest.raises(ValueError, match="'image'.*NaN"):
        layer.adapt(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="'image'.*rows"):
        layer.adapt(np.ones((3, 2)), present=np.ones(4))
    with pytest.raises(ValueError, match="`modality` must be"):
        FeatureNormalization("")


def _adapted(**kwargs):
    layer = FeatureNormalization("image", **kwargs)
    layer.adapt(_x(32, 0)["image"])
    return layer


def test_feature_normalization_passes_the_standard_checks(tmp_path):
    # No trainable weight: the statistics are non-trainable, and the .keras round trip
    # (equal outputs) shows they are saved.
    run_layer_test(_adapted, (_x(6, 1)["image"],), (6, 3), tmp_path,
                   expected_num_trainable_weights=0)


def test_feature_normalization_stays_float32_under_a_global_mixed_policy():
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        layer = _adapted()
        output = layer(_x(6, 1)["image"])
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    assert layer.compute_dtype == "float32" and output.dtype == "float32"
    assert np.all(np.abs(np.asarray(output)) < 10)  # standardised, not raw 5e3


def test_every_layer_of_the_module_is_tested():
    public = {value for value in vars(feature_normalization_module).values()
              if isinstance(value, type) and issubclass(value, keras.layers.Layer)
              and value.__module__ == feature_normalization_module.__name__}
    assert public == {FeatureNormalization}
