"""The size-aware defaults (issue 28): the rule, how a TrainConfig is resolved, the
per-task thresholds kept where they win, and input dropout."""

import json

import numpy as np
import pytest

from hgfn_keras import Modality, Task, TrainConfig, build_model, load_npz, recipe
from hgfn_keras.evaluation.decision_thresholds import winning_thresholds
from hgfn_keras.recipe.size_aware_defaults import (
    AUTO_FIELDS,
    FIXED_SETTINGS,
    resolve_settings,
    size_aware_settings,
)


@pytest.mark.parametrize("rows, batch", [(100, 16), (300, 32), (1000, 64), (14000, 128)])
def test_small_sets_get_smaller_batches_and_enough_steps(rows, batch):
    settings = size_aware_settings(rows, {"a": 20, "b": 30}, {})
    assert settings["batch_size"] == batch
    steps_per_epoch = -(-rows // batch)
    # A step budget, not a fixed 12 epochs: a 100-row set trains far more than 12 steps.
    assert settings["epochs"] * steps_per_epoch >= 12 * steps_per_epoch
    assert settings["epochs"] >= 12 and settings["patience"] >= 3
    if rows == 100:
        assert settings["epochs"] * steps_per_epoch > 12 * 10


def test_a_large_set_trains_as_before():
    settings = size_aware_settings(14000, {"text": 0, "meta": 8}, {})
    assert (settings["batch_size"], settings["patience"]) == (128, 3)
    assert 12 <= settings["epochs"] <= 16
    assert settings["units"] == 128 and settings["input_dropout"] == 0.0


def test_widths_stay_at_128_by_default_and_the_rule_can_shrink_them():
    # Shrinking lost on validation (docs/DESIGN.md): the chosen bounds keep D = 128.
    assert size_aware_settings(100, {"a": 20, "b": 400}, {})["units"] == 128
    assert size_aware_settings(100, {"a": 20, "b": 400}, {})["head_units"] == 64
    narrow = size_aware_settings(1000, {"a": 20, "b": 30}, {}, min_units=16)
    wide = size_aware_settings(1000, {"a": 20, "b": 9000}, {}, min_units=16)
    small = size_aware_settings(100, {"a": 20, "b": 30}, {}, min_units=16)
    assert narrow["units"] > small["units"] and narrow["units"] > wide["units"]
    assert all(s["head_units"] <= s["units"] for s in (narrow, wide, small))
    assert wide["input_dropout"]["b"] > 0 and narrow["input_dropout"] == 0.0


def test_the_rule_refuses_an_empty_split():
    with pytest.raises(ValueError, match="train_rows.*Received: 0"):
        size_aware_settings(0, {"a": 2}, {})


def test_resolving_fills_only_what_is_left_at_none():
    config = TrainConfig(epochs=5, head_units=8, decision_thresholds=False)
    resolved = resolve_settings(config, 100, {"a": 20, "b": 400}, {})
    assert (resolved.epochs, resolved.head_units, resolved.decision_thresholds) == (5, 8, False)
    assert resolved.batch_size == 16 and resolved.optimizer == "adamw"
    assert resolved.units == size_aware_settings(100, {"a": 20, "b": 400}, {})["units"]
    assert all(getattr(resolved, name) is not None for name in AUTO_FIELDS)
    assert resolve_settings(resolved, 100, {"a": 20}, {}) == resolved  # idempotent


def test_the_paper_preset_keeps_the_fixed_recipe():
    resolved = resolve_settings(TrainConfig.paper(), 100, {"a": 20, "b": 400}, {})
    assert {name: getattr(resolved, name) for name in AUTO_FIELDS} == FIXED_SETTINGS
    assert resolved.units is None  # HGFN's own default (the widest modality)


def test_a_weight_decay_given_asks_for_adamw_and_adam_gets_none():
    assert resolve_settings(TrainConfig.paper(weight_decay=0.1), 100, {"a": 2}, {}
                            ).optimizer == "adamw"
    assert resolve_settings(TrainConfig(optimizer="adam"), 100, {"a": 2}, {}
                            ).weight_decay == 0.0
    with pytest.raises(ValueError, match="weight_decay"):
        TrainConfig(optimizer="adam", weight_decay=0.1)


def test_units_are_left_alone_where_the_fusion_does_not_project():
    assert resolve_settings(TrainConfig(fusion="cfc", mtl="lsew"), 100, {"a": 2}, {}
                            ).units is None
    assert resolve_settings(TrainConfig(alignment="pad"), 100, {"a": 2}, {}).units is None


def test_auto_fields_round_trip_through_json():
    config = TrainConfig(input_dropout={"words": 0.2}, decision_thresholds="auto")
    assert TrainConfig.from_json(config.to_json()) == config
    assert json.loads(TrainConfig().to_json())["epochs"] is None
    for field, value in [("decision_thresholds", "sometimes"), ("decision_thresholds", 1),
                         ("input_dropout", 1.5), ("input_dropout", {"words": -0.1}),
                         ("epochs", 0), ("batch_size", 2.5), ("patience", -1)]:
        with pytest.raises(ValueError, match=f"`{field}`"):
            TrainConfig(**{field: value})


def test_thresholds_are_kept_only_where_they_win():
    rng = np.random.default_rng(0)
    rows = 400
    rare = (rng.random(rows) < 0.08).astype(int)
    # Ranked well but never above 0.5: 0.5 predicts no positive, a threshold wins.
    rare_prob = np.clip(0.1 + 0.25 * rare + 0.05 * rng.random(rows), 0, 1)
    common = (rng.random(rows) < 0.5).astype(int)
    # Calibrated and separable at 0.5: a threshold cannot do better on new rows.
    common_prob = np.where(common == 1, 0.9, 0.1) + 0.01 * rng.random(rows)
    tasks = [Task("rare", 2), Task("common", 2), Task("kind", 3)]
    y = {"rare": rare, "common": common, "kind": rng.integers(0, 3, rows)}
    p = {"rare": rare_prob, "common": common_prob,
         "kind": np.full((rows, 3), 1 / 3)}
    thresholds, report = winning_thresholds(tasks, y, p)
    assert list(thresholds) == ["rare"] and 0.1 < thresholds["rare"] < 0.5
    assert report["rare"]["kept"] and not report["common"]["kept"]
    assert report["rare"]["f1_at_threshold"] > report["rare"]["f1_at_0.5"] == 0.0
    assert set(report) == {"rare", "common"}  # a K-class task decides by argmax


def test_input_dropout_acts_on_the_named_modalities_in_training_only():
    modalities = [Modality("a", width=6), Modality("b", width=3)]
    model = build_model(modalities, [Task("t", 2)], fusion="cfc", mtl="lsew",
                        fusion_kwargs={"units": 4}, head_units=4, input_dropout={"a": 0.5})
    names = [layer.name for layer in model.network.layers]
    assert "a_input_dropout" in names and "b_input_dropout" not in names
    x = {"a": np.ones((4, 6), "float32"), "b": np.ones((4, 3), "float32"),
         "modality_mask": np.ones((4, 2), "float32")}
    inference = [np.asarray(model(x, training=False)["t"]) for _ in range(2)]
    np.testing.assert_array_equal(*inference)
    with pytest.raises(ValueError, match="input_dropout.*Received: input_dropout=\\{'c': 0.1\\}"):
        build_model(modalities, [Task("t", 2)], fusion="cfc", input_dropout={"c": 0.1})


@pytest.mark.parametrize("preset, monitor", [("package", "val_mean_map"), ("paper", "val_loss")])
def test_early_stopping_watches_the_presets_monitor(tiny_npz_file, preset, monitor):
    dataset = load_npz(tiny_npz_file)
    config = TrainConfig(dataset=f"npz:{tiny_npz_file}", preset=preset, epochs=2, patience=1,
                         batch_size=8, head_units=4)
    assert recipe.resolve_config(config, dataset).monitor == monitor
    model = recipe.build_and_compile(config, dataset)
    result = recipe.fit(model, config, dataset, verbose=0)
    # The package's monitor is a validation metric: fit adds the callback computing it.
    assert ("val_mean_map" in result.history.history) == (monitor == "val_mean_map")


def test_a_monitor_outside_the_list_is_refused():
    with pytest.raises(ValueError, match="`monitor`.*val_mean_map.*Received"):
        TrainConfig(monitor="val_accuracy")
