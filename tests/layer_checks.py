"""The standard checks every layer passes (after keras-hub's run_layer_test):
`run_layer_test` for any layer, and its two front ends for a fusion layer and an encoder.
`run_strategy_test` does the same for a multi-task strategy, and
`check_backup_and_restore_resumes` checks that an interrupted fit resumes exactly."""

import os

import keras
import numpy as np
import pytest


def random_modalities(widths, batch=5, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, w)).astype("float32") for w in widths]


def _symbolic(value):
    value = np.asarray(value)
    dtype = "string" if value.dtype == object else str(value.dtype)
    return keras.Input(value.shape[1:], dtype=dtype)


def run_layer_test(make_layer, args, expected_output_shape, tmp_path,
                   expected_num_trainable_weights, call_kwargs=None):
    """Eager call, output shape, trainable weight count, config round trip, symbolic call
    inside a functional model, one fit step (the layer's weights move if it has any),
    `.keras` save/load with equal outputs, and an eager call under mixed_bfloat16
    (floating variables stay float32).

    Args:
        make_layer: `make_layer(**kwargs)` returns a fresh layer; `kwargs` are Layer
            arguments (`dtype`).
        args: the positional call arguments, each an array or a dict/list of arrays with
            the batch first.
        expected_output_shape: the output's shape, with the batch size first.
        call_kwargs: keyword call arguments (arrays), such as `modality_mask`.
    """
    call_kwargs = call_kwargs or {}
    batch = expected_output_shape[0]

    # Eager call.
    layer = make_layer()
    eager = np.asarray(keras.ops.cast(layer(*args, **call_kwargs), "float32"))
    assert eager.shape == tuple(expected_output_shape)
    assert np.all(np.isfinite(eager))
    assert len(layer.trainable_weights) == expected_num_trainable_weights

    # Config round trip keeps every argument.
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config

    # Symbolic call inside a functional model, one fit step, .keras save/load.
    symbolic_args = keras.tree.map_structure(_symbolic, args)
    symbolic_kwargs = keras.tree.map_structure(_symbolic, call_kwargs)
    fresh = make_layer()
    output = fresh(*symbolic_args, **symbolic_kwargs)
    assert tuple(output.shape) == (None, *expected_output_shape[1:])
    inputs = keras.tree.flatten([symbolic_args, symbolic_kwargs])
    x = keras.tree.flatten([args, call_kwargs])
    model = keras.Model(inputs, keras.layers.Dense(1)(output))
    model.compile(optimizer="sgd", loss="mse")
    before = [w.numpy().copy() for w in fresh.trainable_weights]
    model.fit(x, np.ones((*expected_output_shape[:-1], 1)), epochs=1, batch_size=batch,
              verbose=0)
    after = [w.numpy() for w in fresh.trainable_weights]
    if expected_num_trainable_weights:
        assert any(not np.allclose(a, b) for a, b in zip(before, after)), "fit changed no weight"
    path = os.path.join(str(tmp_path), "layer.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)

    # Mixed precision: bfloat16 compute, float32 variables.
    mixed = make_layer(dtype="mixed_bfloat16")
    output = np.asarray(keras.ops.cast(mixed(*args, **call_kwargs), "float32"))
    assert output.shape == tuple(expected_output_shape)
    assert np.all(np.isfinite(output))
    # Integer state (a Normalization's `count`) keeps its own dtype.
    assert all(w.dtype == "float32" for w in mixed.weights if "float" in w.dtype)
    return layer


def run_fusion_layer_test(layer_cls, init_kwargs, widths, expected_width, tmp_path,
                          expected_num_trainable_weights, batch=5, with_mask=True):
    """`run_layer_test` for a `Fusion` subclass: modalities `m0, m1, ...` of the given
    widths as a dict, and a modality mask with one modality missing in one row."""
    names = [f"m{i}" for i in range(len(widths))]
    data = dict(zip(names, random_modalities(widths, batch)))
    mask = np.ones((batch, len(widths)), "float32")
    mask[0, 0] = 0.0
    return run_layer_test(
        lambda **kwargs: layer_cls(**init_kwargs, modality_names=names, **kwargs),
        (data,), (batch, expected_width), tmp_path, expected_num_trainable_weights,
        call_kwargs={"modality_mask": mask} if with_mask else None)


def run_encoder_layer_test(make_layer, inputs, expected_width, tmp_path,
                           expected_num_trainable_weights):
    """`run_layer_test` for an encoder (raw inputs `[batch, ...]` to `[batch, width]`)."""
    inputs = np.asarray(inputs)
    return run_layer_test(make_layer, (inputs,), (len(inputs), expected_width), tmp_path,
                          expected_num_trainable_weights)


#: The strategies whose task weights sum to T, the number of tasks (LSEW's ones, DMTL
#: and GradNorm renormalised, MOO's T · α, DWA's T · softmax, FAMO's T · c z / L);
#: uncertainty weighting's exp(−s_f) are free.
SUM_TO_T = ("dmtl", "dwa", "famo", "gradnorm", "lsew", "moo")


def run_strategy_test(name, init_kwargs, tmp_path, policy=None):
    """The standard checks for a multi-task strategy (a `TaskWeighting`):
    config round trip, its variables once built for T tasks, one fit step of a
    tiny model (finite losses, weights summing to T where the strategy keeps
    them so, network weights moved), `.keras` save/load with equal outputs and
    equal task weights, and optionally the same under a mixed-precision policy."""
    from hgfn_keras import TASK_WEIGHTINGS, build_model
    from tests.conftest import TINY_MODALITIES, TINY_TASKS, tiny_xy

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
        if name in SUM_TO_T:
            assert model.task_weights.numpy().sum() == pytest.approx(len(TINY_TASKS), abs=1e-4)
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


def check_backup_and_restore_resumes(make_model, x, y, epochs, backup_dir, interrupt_at=2):
    """Fits `make_model()` straight through, and again interrupted at `interrupt_at`
    then resumed by the project's `AtomicBackupAndRestore` (keeping the
    `TaskRebalancing` records and the `History`) in a model of other initial
    weights (`make_model(seed=1)`, as a new process would build it); the task
    weights, every weight, the history and the task-weight records must come out
    the same, the history holding every epoch."""
    import pytest

    from hgfn_keras import TaskRebalancing
    from hgfn_keras.recipe.backup import AtomicBackupAndRestore

    def callbacks():
        rebalancing, history = TaskRebalancing(), keras.callbacks.History()
        # The backup last: it keeps the state of the callbacks before it.
        return [rebalancing, history,
                AtomicBackupAndRestore(backup_dir, keep=[rebalancing, history])]

    def run(interrupt=False):
        model = make_model()
        if interrupt:
            class Interrupt(keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    if epoch == interrupt_at:
                        raise RuntimeError("interrupted")

            with pytest.raises(RuntimeError, match="interrupted"):
                model.fit(x, y, epochs=epochs, batch_size=8, shuffle=False, verbose=0,
                          callbacks=[*callbacks(), Interrupt()])
            model = make_model(seed=1)  # a new process: other initial weights
        used = callbacks()
        model.fit(x, y, epochs=epochs, batch_size=8, shuffle=False, verbose=0, callbacks=used)
        return model, used[0], used[1]

    straight, straight_rebalancing, straight_history = run()
    resumed, resumed_rebalancing, resumed_history = run(interrupt=True)
    np.testing.assert_allclose(resumed.task_weights.numpy(), straight.task_weights.numpy(),
                               rtol=1e-5)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert resumed_history.epoch == list(range(epochs))
    assert sorted(resumed_history.history) == sorted(straight_history.history)
    for key, values in straight_history.history.items():
        np.testing.assert_allclose(resumed_history.history[key], values, rtol=1e-5, atol=1e-7)
    assert [r["epoch"] for r in resumed_rebalancing.records] == list(range(epochs))
    for got, expected in zip(resumed_rebalancing.records, straight_rebalancing.records):
        for key in ("losses", "tdb", "rebalanced"):
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-7)
