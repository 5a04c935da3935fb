"""Tests for the mutation audit's survivors (issue 30, "What it must show"): each fails
on the one-line mutant named in its comment, and was seen to fail on it.

1. `build_model(fusion="HGFN")` missing the package preset (names looked up case-
   sensitively);
2. the projection's activation dropped (the config says relu, the model runs linear);
3. `rebalance_on="train"` re-balancing on validation losses whenever they exist;
4. `max_weight_ratio` dropped from DMTL's `get_config`;
5. `TaskRebalancing` recording training losses while the weights came from validation;
6. the backup fingerprint leaving a `TrainConfig` field out;
7. random states restored in the order of their keys sorted as strings;
8. the TFRecord writer's check for a mask on an undeclared modality disabled;
9. `add_class_weights` giving a class left out weight 0 instead of 1.
"""

import dataclasses
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import Modality, Task, TaskRebalancing, TrainConfig, build_model
from hgfn_keras.multitask import DynamicTaskBalancing

MODALITIES = (Modality("a", width=3), Modality("b", width=2))


def _dmtl(num_tasks=2, **kwargs):
    weighting = DynamicTaskBalancing(**kwargs)
    weighting.build((num_tasks,))
    return weighting


# 1. Mutant: `PACKAGE_FUSION_KWARGS.get(fusion)` (no `.lower()`) in presets, or no
#    normalisation in `build_model`.
@pytest.mark.parametrize("name", ["HGFN", "Hgfn", "hgfn"])
def test_a_fusion_name_in_any_case_gets_the_package_preset(name):
    from hgfn_keras.presets import PACKAGE_FUSION_KWARGS, preset_fusion_kwargs

    assert preset_fusion_kwargs("package", name) == PACKAGE_FUSION_KWARGS["hgfn"]
    model = build_model(list(MODALITIES), [Task("t", 2)], fusion=name, head_units=2)
    config = model.fusion_layer.get_config()
    for key, value in PACKAGE_FUSION_KWARGS["hgfn"].items():
        assert config[key] == value, key
    assert model.fusion_layer.alignment_layer.mode == "project"


# 2. Mutant: the alignment's `Dense(..., activation=self.activation)` without the
#    activation.
def test_the_projection_applies_its_activation():
    from hgfn_keras import HierarchicalGraphFusion

    layer = HierarchicalGraphFusion(alignment="project", units=4, projection_activation="relu")
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(5, 2)).astype("float32")]
    layer(inputs)
    assert layer.get_config()["projection_activation"] == "relu"
    alignment = layer.alignment_layer
    aligned = keras.ops.convert_to_numpy(alignment(inputs))
    for i, x in enumerate(inputs):
        dense = alignment.projections[i]
        linear = x @ dense.kernel.numpy() + dense.bias.numpy()
        assert np.any(linear < 0)  # so that relu makes a difference
        np.testing.assert_allclose(aligned[:, i], np.maximum(linear, 0), rtol=1e-5, atol=1e-6)


# 3. Mutant: `if validation_losses is not None:` for `if self.rebalance_on ==
#    "validation" and validation_losses is not None:` in `rebalancing_losses`.
def test_rebalance_on_train_reads_the_training_losses_even_with_validation_losses():
    train = np.array([0.2, 0.8])
    validation = np.array([0.9, 0.1])
    for rebalance_on, read in (("train", train), ("validation", validation)):
        weighting = _dmtl(rebalance=True, rebalance_on=rebalance_on, normalize_losses=False,
                          min_weight=1e-6)
        weighting.start_epoch()
        weighting.update(tf.constant(train, "float32"), tf.constant([0.1, 0.1], "float32"))
        losses = keras.ops.convert_to_numpy(weighting.rebalancing_losses(validation))
        np.testing.assert_allclose(losses, read, rtol=1e-6)
        weights = np.asarray(weighting.end_epoch(validation_losses=validation))
        scalars = read.max() / read  # s_f = max_g ā_g / ā_f, then w = T s / Σ s
        np.testing.assert_allclose(weights, 2 * scalars / scalars.sum(), rtol=1e-5)


# 4. Mutant: `"max_weight_ratio": self.max_weight_ratio` left out of `get_config`.
def test_max_weight_ratio_survives_the_config_and_a_keras_save(tmp_path):
    weighting = _dmtl(max_weight_ratio=2.5, rebalance=True)
    assert weighting.get_config()["max_weight_ratio"] == 2.5
    assert DynamicTaskBalancing.from_config(weighting.get_config()).max_weight_ratio == 2.5
    model = build_model(list(MODALITIES), [Task("t", 2), Task("u", 3)], fusion="cfc",
                        fusion_kwargs={"units": 4}, head_units=2, mtl="dmtl",
                        mtl_kwargs={"max_weight_ratio": 2.5, "rebalance": True})
    path = str(tmp_path / "m.keras")
    model.save(path)
    assert keras.saving.load_model(path).task_weighting.max_weight_ratio == 2.5


# 5. Mutant: `weighting.rebalancing_losses()` (no validation losses) in
#    `TaskRebalancing.on_epoch_end`: the records hold training losses.
def test_task_rebalancing_records_the_losses_the_weights_came_from():
    weighting = _dmtl(rebalance=True, rebalance_on="validation", normalize_losses=False,
                      min_weight=1e-6)
    callback = TaskRebalancing()
    callback.set_model(types.SimpleNamespace(task_weighting=weighting, loss_names=["a", "b"]))
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    weighting.update(tf.constant([0.2, 0.8]), tf.constant([0.1, 0.1]))
    callback.on_epoch_end(0, {"val_a_loss": 0.9, "val_b_loss": 0.3})
    record = callback.records[0]
    np.testing.assert_allclose(record["losses"], [0.9, 0.3], rtol=1e-6)
    scalars = 0.9 / np.array([0.9, 0.3])
    np.testing.assert_allclose(record["rebalanced"], 2 * scalars / scalars.sum(), rtol=1e-5)


# 6. Mutant: a field left out of `settings_fingerprint` (e.g. `modality_dropout`).
#: TrainConfig fields that do not change what a run computes, so the fingerprint may
#: leave them out. Empty: every field is in the fingerprint.
NOT_IN_FINGERPRINT = frozenset()


#: A valid value other than the default, for the fields whose type does not give one.
OTHER_VALUES = {"dataset": "crisismmd", "keep_modalities": "weighted",
                "projection_activation": "tanh", "num_classes": {"t": 3},
                "limit": 100, "max_weight_ratio": 2.0, "modality_dropout": 0.1,
                "input_dropout": 0.2, "decision_thresholds": "auto"}


def _another_value(name, value):
    """A valid value of field `name` other than `value`."""
    from hgfn_keras.recipe.train_config import CHOICES

    if name in OTHER_VALUES and OTHER_VALUES[name] != value:
        return OTHER_VALUES[name]
    others = [c for c in CHOICES.get(name, ()) if c != value and c is not None]
    if others:
        return others[0]
    if isinstance(value, bool) or value is None and "bool" in str(_field_type(name)):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.25
    if value is None:
        return {"int": 3, "float": 0.5}.get(_field_type(name).__name__, 3)
    raise AssertionError(f"no other value known for {name}={value!r}: add it to OTHER_VALUES")


def _field_type(name):
    kind = {f.name: f.type for f in dataclasses.fields(TrainConfig)}[name]
    return {"int": int, "float": float, "bool": bool, "str": str}.get(kind, kind) \
        if isinstance(kind, str) else kind


#: Settings under which each field can change alone (some apply to one fusion or
#: strategy only: `cfc_units` to the fusions without a graph, `weight_decay` to AdamW).
BASES = ({"optimizer": "adamw"}, {"optimizer": "adamw", "fusion": "cfc"},
         {"optimizer": "adamw", "mtl": "lsew"}, {"optimizer": "adamw", "mtl": "gradnorm"})


def test_every_train_config_field_changes_the_backup_fingerprint():
    from hgfn_keras.recipe.backup_fingerprint import settings_fingerprint

    checked, refused = [], {}
    for field in dataclasses.fields(TrainConfig):
        if field.name in NOT_IN_FINGERPRINT:
            continue
        for settings in BASES:
            base = TrainConfig(**settings)
            value = getattr(base, field.name)
            other = _another_value(field.name, value)
            try:
                changed = base.replace(**{field.name: other})
            except (ValueError, TypeError) as error:
                refused[field.name] = f"{other!r}: {error}"
                continue
            assert getattr(changed, field.name) != value
            assert settings_fingerprint(changed) != settings_fingerprint(base), (
                f"changing {field.name} alone ({value!r} -> {other!r}) leaves the backup "
                "fingerprint unchanged: a resumed run would mix settings")
            checked.append(field.name)
            refused.pop(field.name, None)
            break
    assert not refused, f"no valid other value found (teach OTHER_VALUES / BASES): {refused}"
    assert "modality_dropout" in checked
    assert len(checked) == len(dataclasses.fields(TrainConfig)) - len(NOT_IN_FINGERPRINT)


# 7. Mutant: `sorted(k for k in arrays if k.startswith("random/"))` (keys as strings:
#    random/10 before random/2).
def test_twelve_random_states_are_restored_into_their_own_layers(tmp_path):
    from hgfn_keras.recipe.resume_state import random_state_variables, restore, snapshot

    generators = [keras.random.SeedGenerator(seed) for seed in range(12)]
    model = types.SimpleNamespace(variables=[g.state for g in generators])
    assert len(random_state_variables(model)) == 12
    for i, g in enumerate(generators):
        g.state.assign(np.array([i, 100 + i], g.state.dtype))
    path = str(tmp_path / "state.npz")
    snapshot(path, model, [])
    for g in generators:
        g.state.assign(np.zeros(2, g.state.dtype))
    restore(path, model, [])
    for i, g in enumerate(generators):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(g.state), [i, 100 + i])


# 8. Mutant: the writer's `elif mask is not None and np.any(mask[:, i] == 0)` branch
#    disabled.
def test_the_shard_writer_refuses_a_mask_on_an_undeclared_modality(tmp_path):
    from hgfn_keras.data.tfrecord import ShardWriter

    writer = ShardWriter(str(tmp_path / "shards"), list(MODALITIES), [Task("t", 2)],
                         masked=["a"])
    x = {"a": np.ones((3, 3)), "b": np.ones((3, 2)),
         "modality_mask": np.array([[1, 1], [0, 1], [1, 1]], "float32")}
    writer.write("train", x, {"t": np.array([0, 1, 0])})  # `a` is declared
    x["modality_mask"] = np.array([[1, 1], [1, 0], [1, 1]], "float32")
    with pytest.raises(ValueError, match=r"Rows miss modality 'b' .*not declared in `masked`"):
        writer.write("train", x, {"t": np.array([0, 1, 0])})


# 9. Mutant: `class_weight[t.name].get(c, 0.0)` in `add_class_weights`.
def test_add_class_weights_gives_a_class_left_out_weight_one():
    from hgfn_keras.multitask.class_weights import add_class_weights

    y = {"t": np.array([0, 1, 2, -1]), "u": np.array([1, 0, 1, 0])}
    dataset = tf.data.Dataset.from_tensor_slices(({"a": np.ones((4, 1))}, y)).batch(4)
    weighted = add_class_weights(dataset, {"t": {0: 3.0}, "u": {}},
                                 [Task("t", 3), Task("u", 2)])
    _, _, weights = next(iter(weighted))
    np.testing.assert_allclose(weights["t"].numpy(), [3.0, 1.0, 1.0, 3.0])
    np.testing.assert_allclose(weights["u"].numpy(), [1.0, 1.0, 1.0, 1.0])
