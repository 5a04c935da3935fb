"""Modality dropout, HGFN's kept modality vectors, DMTL's re-balancing on validation
losses, and the robustness benchmark (issue 21)."""

import json
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import Modality, Task, build_model
from hgfn_keras.data.dataset import MASK_KEY
from hgfn_keras.fusion import HierarchicalGraphFusion, ModalityDropout
from hgfn_keras.serving.export import export_saved_model
from tests.layer_checks import random_modalities, run_fusion_layer_test

MODALITIES = [Modality("image", width=4), Modality("audio", width=2),
              Modality("sensor", width=3)]
TASKS = [Task("flood", 2), Task("damage", 3)]


def _data(rows=32, seed=0):
    rng = np.random.default_rng(seed)
    x = {m.name: rng.normal(size=(rows, m.width)).astype("float32") for m in MODALITIES}
    mask = np.ones((rows, len(MODALITIES)), "float32")
    mask[::4, 1] = 0.0  # some rows already miss a modality
    mask[1::8, [0, 2]] = 0.0  # and some have one modality only
    x[MASK_KEY] = mask
    y = {"flood": (x["image"][:, 0] > 0).astype("int32"),
         "damage": np.digitize(x["sensor"][:, 0], [-0.4, 0.4]).astype("int32")}
    return x, y


# ----------------------------------------------------------------------- modality dropout


def test_modality_dropout_never_masks_every_modality_of_a_row():
    layer = ModalityDropout(0.9, seed=3)
    x, _ = _data(rows=2000)
    mask = x[MASK_KEY]
    dropped = np.asarray(layer(mask, training=True))
    assert set(np.unique(dropped)) <= {0.0, 1.0}
    assert dropped.sum(axis=1).min() >= 1  # never a row with nothing left
    assert np.all(dropped <= mask)  # a missing modality never comes back
    assert np.all(dropped[mask.sum(axis=1) == 1] == mask[mask.sum(axis=1) == 1])
    # It does drop: with rate 0.9 nearly every row of several modalities loses some
    # (all but one when the draw would take them all).
    several = mask.sum(axis=1) > 1
    assert (dropped[several].sum(axis=1) < mask[several].sum(axis=1)).mean() > 0.95


def test_modality_dropout_rate_matches_when_rows_keep_something():
    layer = ModalityDropout(0.2, seed=0)
    mask = np.ones((20000, 3), "float32")
    dropped = np.asarray(layer(mask, training=True))
    # P(dropped) = 0.2 per modality, less the rows that would have lost all three
    # (0.2**3 = 0.008), which keep one of them: 0.2 - 0.008 / 3 = 0.1973.
    assert abs((1 - dropped.mean()) - 0.1973) < 0.008
    assert dropped.sum(axis=1).min() == 1


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.5", None, True])
def test_modality_dropout_bad_rate_is_named(rate):
    with pytest.raises(ValueError, match="`rate` must be a number in \\[0, 1\\)"):
        ModalityDropout(rate)


def test_modality_dropout_needs_the_mask_input():
    with pytest.raises(ValueError, match="needs use_modality_mask=True"):
        build_model(MODALITIES, TASKS, use_modality_mask=False, modality_dropout=0.3)


@pytest.mark.slow
def test_modality_dropout_is_off_in_predict_evaluate_saved_model_and_keras_file(tmp_path):
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = build_model(MODALITIES, TASKS, fusion="hgfn", head_units=4, mtl="lsew",
                        modality_dropout=0.7)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)

    first = model.predict(x, verbose=0)
    second = model.predict(x, verbose=0)
    direct = model(x, training=False)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
        np.testing.assert_allclose(first[name], np.asarray(direct[name]), atol=1e-6)
    assert model.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    # In training it does act: two training-mode passes differ.
    a = model(x, training=True)["flood"]
    b = model(x, training=True)["flood"]
    assert not np.allclose(np.asarray(a), np.asarray(b))

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.network.get_layer("modality_dropout")
    assert isinstance(layer, ModalityDropout) and layer.rate == 0.7
    reloaded = loaded.predict(x, verbose=0)
    for name in first:
        np.testing.assert_allclose(reloaded[name], first[name], atol=1e-6)

    export_dir = export_saved_model(model, str(tmp_path / "served"))
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    served = serve(**{k: tf.constant(v) for k, v in x.items()})
    for name in ("flood", "damage"):
        np.testing.assert_allclose(served[name].numpy(), first[name], atol=1e-5)


# -------------------------------------------------------------------- kept modality vectors


def test_keep_modalities_passes_the_shared_fusion_layer_test(tmp_path):
    # widths 4, 2, 3 padded to D = 4; M = 3 kept vectors + 3 levels: 6 * 4 wide.
    run_fusion_layer_test(HierarchicalGraphFusion, {"keep_modalities": True}, [4, 2, 3], 24,
                          tmp_path, expected_num_trainable_weights=12)


def test_keep_modalities_adds_the_masked_aligned_vectors_and_leaves_the_levels_alone():
    names = ["a", "b", "c"]
    x = dict(zip(names, random_modalities([4, 2, 3], batch=6)))
    mask = np.ones((6, 3), "float32")
    mask[0, 1] = 0.0
    mask[3, [0, 2]] = 0.0
    paper = HierarchicalGraphFusion(modality_names=names)
    kept = HierarchicalGraphFusion(modality_names=names, keep_modalities=True)
    levels = np.asarray(paper(x, modality_mask=mask))
    kept(x, modality_mask=mask)
    kept.set_weights(paper.get_weights())  # the same weights: same levels
    fused = np.asarray(kept(x, modality_mask=mask))
    assert fused.shape == (6, 3 * 4 + levels.shape[1])
    np.testing.assert_allclose(fused[:, 12:], levels, atol=1e-6)
    padded = np.stack([np.pad(x[n], [(0, 0), (0, 4 - x[n].shape[1])]) for n in names], 1)
    expected = (padded * mask[:, :, None]).reshape(6, 12)
    np.testing.assert_allclose(fused[:, :12], expected, atol=1e-6)


@pytest.mark.parametrize("value", ["yes", 1, 0.0, None])
def test_keep_modalities_bad_value_is_named(value):
    with pytest.raises(ValueError, match="`keep_modalities` must be one of"):
        HierarchicalGraphFusion(keep_modalities=value)


def test_weighted_kept_modalities_are_scaled_by_m_times_their_dau_weight():
    names = ["a", "b"]
    x = dict(zip(names, random_modalities([3, 3], batch=4)))
    mask = np.ones((4, 2), "float32")
    mask[1, 0] = 0.0
    fusion = HierarchicalGraphFusion(modality_names=names, keep_modalities="weighted")
    fused, weights, vertices = fusion(x, modality_mask=mask, return_weights=True)
    w = np.asarray(weights[0])
    aligned = np.asarray(vertices[0])  # [batch, M, D], masked
    expected = (2 * w[:, :, None] * aligned).reshape(4, 6)
    np.testing.assert_allclose(np.asarray(fused)[:, :6], expected, atol=1e-6)
    assert np.all(np.asarray(fused)[1, :3] == 0)  # the missing modality stays 0


# ------------------------------------------------------------- re-balancing on validation


def test_rebalancing_on_validation_reads_the_validation_losses():
    x, y = _data(rows=48)
    keras.utils.set_random_seed(0)
    model = build_model(MODALITIES, TASKS, fusion="cfc", fusion_kwargs={"units": 8},
                        head_units=4, mtl="dmtl",
                        mtl_kwargs={"rebalance": True, "rebalance_on": "validation"})
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    split = {k: v[:32] for k, v in x.items()}, {k: v[:32] for k, v in y.items()}
    val = {k: v[32:] for k, v in x.items()}, {k: v[32:] for k, v in y.items()}
    history = model.fit(*split, validation_data=val, epochs=2, batch_size=8, verbose=0)
    weighting = model.task_weighting
    val_losses = np.array([history.history[f"val_{n}_loss"][-1] for n in model.loss_names])
    train_losses = np.array([history.history[f"{n}_loss"][-1] for n in model.loss_names])
    normalised = val_losses / weighting.loss_references()
    scalars = normalised.max() / normalised
    expected = len(scalars) * scalars / scalars.sum()
    np.testing.assert_allclose(model.task_weights.numpy(), expected, rtol=1e-4)
    # ... and not the training losses (which would give other weights here).
    train_scalars = (train_losses / weighting.loss_references()).max() / (
        train_losses / weighting.loss_references())
    assert not np.allclose(expected, len(scalars) * train_scalars / train_scalars.sum(),
                           rtol=1e-3)


def test_rebalance_on_is_checked_and_saved():
    from hgfn_keras.multitask import get_task_weighting

    with pytest.raises(ValueError, match="`rebalance_on` must be one of"):
        get_task_weighting("dmtl", rebalance_on="test")
    weighting = get_task_weighting("dmtl", rebalance_on="validation")
    assert weighting.get_config()["rebalance_on"] == "validation"


# ----------------------------------------------------------------- the robustness benchmark


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _tiny_npz(tmp_path, rows, video_width):
    """An npz with audio [rows, 3] and video [rows, video_width]; happy (binary) and
    mood (3 classes) follow the features."""
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(rows, 3)).astype("float32")
    video = rng.normal(size=(rows, video_width)).astype("float32")
    path = tmp_path / "tiny.npz"
    np.savez(path, x_audio=audio, x_video=video, y_happy=(audio[:, 0] > 0).astype(int),
             y_mood=np.digitize(video[:, 0], [-0.4, 0.4]))
    return path


@pytest.mark.slow
def test_robustness_benchmark_end_to_end_on_a_tiny_npz(tmp_path, capsys):
    from benchmarks import robustness

    path = _tiny_npz(tmp_path, rows=80, video_width=4)
    out = tmp_path / "out"
    robustness.main(["--dataset", f"npz:{path}", "--pairs", "hgfn+dmtl,cfc+lsew",
                     "--seeds", "1", "--set", "epochs=2", "--modality-dropout", "0.2",
                     "--sigmas", "0.5,2", "--output-dir", str(out)])
    result = _strict_json((out / "robustness.json").read_text())
    conditions = ["clean", "missing:audio", "missing:video", "noise:audio:0.5",
                  "noise:audio:2", "noise:video:0.5", "noise:video:2"]
    assert len(result["rows"]) == 2 * len(conditions)
    for row in result["rows"]:
        assert set(row) == {"pair", "seed", "split", "condition", "mean_f1", "mean_map"}
        assert row["pair"] in ("hgfn+dmtl", "cfc+lsew") and row["seed"] == 0
        assert row["split"] == "test"
        assert 0.0 <= row["mean_f1"] <= 1.0 and 0.0 <= row["mean_map"] <= 1.0
    assert [r["condition"] for r in result["rows"][:len(conditions)]] == conditions
    measures = result["robustness"]["test"]
    assert set(measures) == {"hgfn+dmtl", "cfc+lsew"}
    assert measures["cfc+lsew"]["effective_robustness"] == 0.0  # the reference
    assert result["settings"]["overrides"] == {"epochs": 2, "modality_dropout": 0.2}
    printed = capsys.readouterr().out
    assert "| missing:audio |" in printed and "relative robustness" in printed
    assert (out / "robustness_test.png").stat().st_size > 0


def test_robustness_conditions_perturb_only_their_modality():
    from types import SimpleNamespace

    from benchmarks import robustness

    dataset = SimpleNamespace(modalities=[Modality("a", width=2), Modality("b", width=3)])
    x = {"a": np.ones((4, 2), "float32"), "b": np.ones((4, 3), "float32"),
         MASK_KEY: np.ones((4, 2), "float32")}
    stds = {"a": np.array([1.0, 0.0]), "b": np.array([2.0, 2.0, 2.0])}
    missing = robustness.perturb(x, dataset, "missing:b", stds, np.random.default_rng(0))
    assert missing[MASK_KEY][:, 1].sum() == 0 and missing[MASK_KEY][:, 0].sum() == 4
    assert np.all(missing["b"] == 0) and np.all(missing["a"] == 1)
    assert np.all(x[MASK_KEY] == 1)  # the input is not changed in place
    noisy = robustness.perturb(x, dataset, "noise:a:2", stds, np.random.default_rng(0))
    assert np.all(noisy["a"][:, 1] == 1)  # a feature of std 0 gets no noise
    assert not np.allclose(noisy["a"][:, 0], 1) and np.all(noisy["b"] == 1)
    assert robustness.conditions(dataset, [1.0]) == [
        "clean", "missing:a", "missing:b", "noise:a:1", "noise:b:1"]


# ------------------------------------------------------------------------------- presets


def _layers(model):
    return {layer.name: layer for layer in model.network.layers}


def test_package_preset_adds_the_recommended_settings_and_paper_keeps_the_layers_own():
    package = build_model(MODALITIES, TASKS, fusion="hgfn", mtl="dmtl")
    paper = build_model(MODALITIES, TASKS, fusion="hgfn", mtl="dmtl", preset="paper")
    fusion = package.fusion_layer
    assert (fusion.alignment, fusion.units, fusion.keep_modalities) == ("project", 128, "weighted")
    assert fusion.projection_activation == "relu" and fusion.width == 128
    assert package.task_weighting.rebalance is False
    assert _layers(package)["modality_dropout"].rate == 0.3
    defaults = HierarchicalGraphFusion(modality_names=[m.name for m in MODALITIES])
    for key, value in defaults.get_config().items():
        if key not in ("name", "trainable", "dtype"):
            assert paper.fusion_layer.get_config()[key] == value, key
    assert paper.task_weighting.rebalance and paper.task_weighting.rebalance_on == "train"
    assert "modality_dropout" not in _layers(paper)
    # The caller's own arguments win over the preset's.
    mine = build_model(MODALITIES, TASKS, fusion_kwargs={"alignment": "pad", "units": 4},
                       mtl_kwargs={"rebalance": True}, modality_dropout=0.0)
    assert mine.fusion_layer.alignment == "pad" and mine.fusion_layer.keep_modalities
    assert mine.task_weighting.rebalance
    assert "modality_dropout" not in _layers(mine)
    # GFN (the paper's baseline) and the other strategies are left as they are.
    gfn = build_model(MODALITIES, TASKS, fusion="gfn", mtl="lsew")
    assert gfn.fusion_layer.alignment == "auto" and not gfn.fusion_layer.keep_modalities


def test_paper_preset_gives_the_paper_layers_outputs_for_the_same_weights():
    x, _ = _data(rows=8)
    keras.utils.set_random_seed(1)
    paper = build_model(MODALITIES, TASKS, fusion="hgfn", mtl="dmtl", preset="paper")
    keras.utils.set_random_seed(2)
    explicit = build_model(MODALITIES, TASKS, mtl="dmtl", modality_dropout=0.0,
                           fusion=HierarchicalGraphFusion(
                               modality_names=[m.name for m in MODALITIES], name="fusion"),
                           mtl_kwargs={"rebalance": True})
    explicit.set_weights(paper.get_weights())
    got, want = paper.predict(x, verbose=0), explicit.predict(x, verbose=0)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"preset": "fast"}, "`preset` must be one of"),
    ({"modality_dropout": 1.0}, "`modality_dropout` must be a number in \\[0, 1\\)"),
    ({"modality_dropout": "0.2"}, "`modality_dropout` must be a number in \\[0, 1\\)"),
])
def test_bad_preset_and_modality_dropout_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(MODALITIES, TASKS, **kwargs)


def test_train_config_paper_preset_round_trips_and_is_checked():
    from hgfn_keras import TrainConfig

    config = TrainConfig.paper(fusion="hgfn", mtl="dmtl", modality_dropout=0.1)
    assert config.preset == "paper" and config.modality_dropout == 0.1
    assert TrainConfig.from_json(config.to_json()) == config
    assert "keep_modalities" not in config.fusion_kwargs()  # the preset's choice
    assert TrainConfig(keep_modalities="weighted").fusion_kwargs()["keep_modalities"] == "weighted"
    for field, value in (("preset", "fast"), ("modality_dropout", 1.5),
                         ("keep_modalities", "yes"), ("rebalance_on", "test")):
        with pytest.raises(ValueError, match=f"`{field}`"):
            TrainConfig(**{field: value})


def test_max_weight_ratio_caps_the_rebalanced_weights():
    from hgfn_keras.multitask import get_task_weighting

    with pytest.raises(ValueError, match="`max_weight_ratio` must be None or a number >= 1"):
        get_task_weighting("dmtl", max_weight_ratio=0.5)
    weighting = get_task_weighting("dmtl", max_weight_ratio=2.0)
    weighting.build((3,))
    # Losses 1, 0.5 and 0.1: s = 1, 2, 10, capped at 2 -> 1, 2, 2 -> T s / sum s.
    weights = _rebalanced(weighting, [1.0, 0.5, 0.1])
    np.testing.assert_allclose(weights, 3 * np.array([1, 2, 2]) / 5, rtol=1e-5)
    uncapped = get_task_weighting("dmtl")
    uncapped.build((3,))
    np.testing.assert_allclose(_rebalanced(uncapped, [1.0, 0.5, 0.1]),
                               3 * np.array([1, 2, 10]) / 13, rtol=1e-5)


def _rebalanced(weighting, losses):
    weighting.epoch_loss_sums.assign(np.asarray(losses, "float32"))
    weighting.epoch_steps.assign(1.0)
    return np.asarray(weighting.rebalanced_weights())


def test_multitask_gain_summary_delta_m_and_ranks():
    from benchmarks.multitask_gain import SINGLE, summarise

    results = {SINGLE: [{"a": {"f1": 0.5, "map": 0.8}, "b": {"f1": 0.0, "map": 0.4}}],
               "lsew": [{"a": {"f1": 0.6, "map": 0.8}, "b": {"f1": 0.1, "map": 0.2}}]}
    summary, _ = summarise(results, [SINGLE, "lsew"], ["a", "b"])
    # a: +20 %, 0 %; b: F1 left out (single-task 0), MAP -50 %.
    assert summary["lsew"]["delta_m_percent"] == pytest.approx((20 + 0 - 50) / 3)
    assert summary["lsew"]["skipped_task_metrics"] == 1
    assert summary[SINGLE]["delta_m_percent"] == 0.0
    # Ranks over 4 task-metrics: lsew 1, 1 (tie), 1, 2; single 2, 1, 2, 1.
    assert summary["lsew"]["mean_rank"] == pytest.approx(1.25)
    assert summary[SINGLE]["mean_rank"] == pytest.approx(1.5)


def test_binary_concepts_split_k_class_tasks():
    from benchmarks.multitask_gain import binary_concepts
    from hgfn_keras.data import load_npz

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "d.npz")
        np.savez(path, x_a=rng.normal(size=(30, 2)).astype("float32"),
                 x_b=rng.normal(size=(30, 2)).astype("float32"),
                 y_kind=np.arange(30) % 3, y_flag=np.arange(30) % 2)
        dataset = binary_concepts(load_npz(path))
    assert sorted(dataset.task_names) == ["flag", "kind_0", "kind_1", "kind_2"]
    _, y = dataset.splits["train"]
    assert np.all(y["kind_0"] + y["kind_1"] + y["kind_2"] == 1)


@pytest.mark.slow
def test_multitask_gain_end_to_end_on_a_tiny_npz(tmp_path, capsys):
    from benchmarks import multitask_gain

    path = _tiny_npz(tmp_path, rows=60, video_width=2)
    out = tmp_path / "out"
    summary = multitask_gain.main([
        "--dataset", f"npz:{path}", "--weightings", "lsew,dmtl@rebalance=true", "--seeds", "1",
        "--binary-concepts", "--set", "epochs=1", "--fusion", "cfc", "--output-dir",
        str(out)])
    assert set(summary) == {"single-task", "lsew", "dmtl@rebalance=true"}
    result = _strict_json((out / "multitask_gain.json").read_text())
    assert sorted(result["results"]["single-task"][0]) == ["happy", "mood_0", "mood_1", "mood_2"]
    assert result["summary"]["single-task"]["delta_m_percent"] == 0.0
    assert "| dmtl@rebalance=true |" in capsys.readouterr().out


def test_multitask_gain_strategies_is_the_old_name_of_weightings(capsys):
    from benchmarks import multitask_gain

    common = ["--dataset", "clothing", "--output-dir", "o"]
    args = multitask_gain.parse_args([*common, "--weightings", "lsew,dmtl@rebalance=true"])
    assert args.weightings == ["lsew", "dmtl@rebalance=true"]
    assert capsys.readouterr().err == ""
    for old in (["--strategies", "lsew,famo"], ["--strategies=lsew,famo"]):
        assert multitask_gain.parse_args([*common, *old]).weightings == ["lsew", "famo"]
        assert capsys.readouterr().err == ("note: --strategies is now --weightings (the old "
                                           "name goes in the next release)\n")
    with pytest.raises(SystemExit):
        multitask_gain.parse_args([*common, "--weightings", "lsew,nope"])
    assert "--weightings nope:" in capsys.readouterr().err


def test_the_recipe_builds_the_configs_preset(tmp_path):
    from hgfn_keras import TrainConfig, recipe
    from hgfn_keras.data import load_npz

    x, y = _data(rows=40)
    path = tmp_path / "d.npz"
    np.savez(path, **{f"x_{k}": v for k, v in x.items() if k != MASK_KEY},
             **{f"mask_{m.name}": x[MASK_KEY][:, i] for i, m in enumerate(MODALITIES)},
             **{f"y_{k}": v for k, v in y.items()})
    dataset = load_npz(str(path))
    package = recipe.build(TrainConfig(dataset=f"npz:{path}"), dataset)
    paper = recipe.build(TrainConfig.paper(dataset=f"npz:{path}"), dataset)
    assert package.fusion_layer.keep_modalities == "weighted"
    assert "modality_dropout" in _layers(package) and not package.task_weighting.rebalance
    assert paper.fusion_layer.keep_modalities is False and paper.fusion_layer.alignment == "auto"
    assert "modality_dropout" not in _layers(paper) and paper.task_weighting.rebalance
