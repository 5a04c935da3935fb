"""The standard checks every fusion layer passes (after keras-hub's run_layer_test)."""

import os

import keras
import numpy as np


def random_modalities(widths, batch=5, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, w)).astype("float32") for w in widths]


def run_fusion_layer_test(layer_cls, init_kwargs, widths, expected_width, tmp_path,
                          batch=5, with_mask=True):
    """Build, symbolic and eager call, output shape, config round trip, .keras
    save/load with equal outputs, and one fit step, for a `Fusion` subclass."""
    names = [f"m{i}" for i in range(len(widths))]
    kwargs = dict(init_kwargs, modality_names=names)
    data = dict(zip(names, random_modalities(widths, batch)))
    mask = np.ones((batch, len(widths)), "float32")
    mask[0, 0] = 0.0

    # Eager call.
    layer = layer_cls(**kwargs)
    eager = layer(data, modality_mask=mask) if with_mask else layer(data)
    assert tuple(eager.shape) == (batch, expected_width)
    assert np.all(np.isfinite(np.asarray(eager)))

    # Config round trip keeps every argument.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config

    # Symbolic call inside a functional model, one fit step, .keras save/load.
    inputs = {n: keras.Input((w,), name=n) for n, w in zip(names, widths)}
    mask_input = keras.Input((len(widths),), name="mask")
    fusion = layer_cls(**kwargs)
    fused = fusion(inputs, modality_mask=mask_input) if with_mask else fusion(inputs)
    assert tuple(fused.shape) == (None, expected_width)
    output = keras.layers.Dense(1)(fused)
    model = keras.Model([*inputs.values(), mask_input], output)
    model.compile(optimizer="sgd", loss="mse")
    x = [data[n] for n in names] + [mask]
    before = [w.copy() for w in fusion.get_weights()]
    model.fit(x, np.zeros((batch, 1)), epochs=1, batch_size=batch, verbose=0)
    after = fusion.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after)), "fit changed no weight"
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    return layer
