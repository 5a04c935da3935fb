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


def run_strategy_test(name, init_kwargs, tmp_path, policy=None):
    """The standard checks for a multi-task strategy (a `TaskWeighting`):
    config round trip, its variables once built for T tasks, one fit step of a
    tiny model (finite losses, weights summing to T where the strategy keeps
    them so, network weights moved), `.keras` save/load with equal outputs and
    equal task weights, and optionally the same under a mixed-precision policy."""
    from tests.conftest import TINY_MODALITIES, TINY_TASKS, tiny_xy
    from hgfn_keras import TASK_WEIGHTINGS, build_model

    cls = TASK_WEIGHTINGS[name]
    strategy = cls(**init_kwargs)
    config = strategy.get_config()
    clone = cls.from_config(config)
    # An optimizer's config comes back with its class name capitalised ("sgd" ->
    # "SGD"); everything else is equal, and a second round trip is exact.
    assert {k: v for k, v in clone.get_config().items() if k != "optimizer"} == {
        k: v for k, v in config.items() if k != "optimizer"}
    assert cls.from_config(clone.get_config()).get_config() == clone.get_config()
    strategy.build((len(TINY_TASKS),))
    # task_weights, epoch_loss_sums, epoch_steps, and what the strategy adds.
    assert len(strategy.weights) >= 3
    assert tuple(strategy.task_weights.shape) == (len(TINY_TASKS),)

    previous = keras.config.dtype_policy()
    if policy is not None:
        keras.mixed_precision.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = build_model(list(TINY_MODALITIES), list(TINY_TASKS), fusion="cfc",
                            fusion_kwargs={"units": 8}, head_units=4, mtl=name,
                            mtl_kwargs=init_kwargs)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        x, y = tiny_xy()
        before = [w.numpy().copy() for w in model.network.trainable_weights]
        history = model.fit(x, y, epochs=1, batch_size=6, verbose=0)
        assert all(np.all(np.isfinite(v)) for v in history.history.values()), history.history
        assert any(not np.allclose(w.numpy(), b)
                   for w, b in zip(model.network.trainable_weights, before))
        assert np.all(model.task_weights.numpy() > 0)
        path = os.path.join(str(tmp_path), f"{name}.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        np.testing.assert_allclose(reloaded.task_weights.numpy(), model.task_weights.numpy())
        assert type(reloaded.task_weighting) is cls
        for task, value in model.predict(x, verbose=0).items():
            np.testing.assert_allclose(reloaded.predict(x, verbose=0)[task], value, atol=1e-3)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    return model


def run_encoder_layer_test(make_layer, inputs, expected_width, tmp_path,
                           expected_num_trainable_weights):
    """The standard checks for an encoder (raw inputs `[batch, ...]` to `[batch, width]`):
    eager call, config round trip, its trainable weight count, symbolic call inside a
    functional model, one fit step (the encoder's weights move if it has any), `.keras`
    save/load with equal outputs, and an eager call under mixed_bfloat16 (variables
    stay float32).

    `make_layer(**kwargs)` returns a fresh encoder; `kwargs` are Layer arguments
    (`dtype`)."""
    inputs = np.asarray(inputs)
    batch = len(inputs)

    # Eager call.
    layer = make_layer()
    eager = np.asarray(layer(inputs), dtype="float32")
    assert eager.shape == (batch, expected_width)
    assert np.all(np.isfinite(eager))
    assert len(layer.trainable_weights) == expected_num_trainable_weights

    # Config round trip keeps every argument.
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config

    # Symbolic call inside a functional model, one fit step, .keras save/load.
    dtype = "string" if inputs.dtype == object else str(inputs.dtype)
    encoder = make_layer()
    symbolic_input = keras.Input(inputs.shape[1:], dtype=dtype, name="raw")
    encoded = encoder(symbolic_input)
    assert tuple(encoded.shape) == (None, expected_width)
    model = keras.Model(symbolic_input, keras.layers.Dense(1)(encoded))
    model.compile(optimizer="sgd", loss="mse")
    before = [w.numpy().copy() for w in encoder.trainable_weights]
    model.fit(inputs, np.ones((batch, 1)), epochs=1, batch_size=batch, verbose=0)
    after = [w.numpy() for w in encoder.trainable_weights]
    if expected_num_trainable_weights:
        assert any(not np.allclose(a, b) for a, b in zip(before, after)), "fit changed no weight"
    path = os.path.join(str(tmp_path), "encoder.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0),
                               model.predict(inputs, verbose=0), atol=1e-5)

    # Mixed precision: bfloat16 compute, float32 variables.
    mixed = make_layer(dtype="mixed_bfloat16")
    output = np.asarray(keras.ops.cast(mixed(inputs), "float32"))
    assert output.shape == (batch, expected_width)
    assert np.all(np.isfinite(output))
    assert all(w.dtype == "float32" for w in mixed.weights)
    return layer
