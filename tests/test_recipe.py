"""The training recipe in the library (`TrainConfig`, `hgfn_keras.recipe`), the
model's handles, the strategy hook, and the CLI's choices against the registries."""

import json

import keras
import keras_tuner
import numpy as np
import pytest

from hgfn_keras import (
    FUSIONS,
    MTL_CHOICES,
    TASK_WEIGHTINGS,
    HierarchicalGraphFusion,
    MultiTaskModel,
    TrainConfig,
    build_model,
    load_npz,
    recipe,
)
from hgfn_keras.recipe.train_config import DEFAULTS, weighting_fields
from tests.conftest import TINY_MODALITIES, TINY_TASKS, tiny_xy
from training import train
from tuning import HGFNHyperModel

MODALITIES, TASKS = list(TINY_MODALITIES), list(TINY_TASKS)


# ------------------------------------------------------------ CLI == registries


def test_the_cli_is_derived_from_train_config():
    # One source of defaults and choices: every TrainConfig field is a flag whose default
    # and choices are the field's (issue 22: the CLI is built from the library).
    from hgfn_keras.recipe.train_config import CHOICES

    parser = train.build_parser()
    flags = {a.dest: a for a in parser._actions}
    for name, value in DEFAULTS.items():
        if name in train.OFF_SWITCHES:
            assert f"no_{name}" in flags, name
            continue
        assert flags[name].default == value, name
        assert flags[name].option_strings == ["--" + name.replace("_", "-")], name
        if name in CHOICES:
            assert list(flags[name].choices) == list(CHOICES[name]), name
    assert set(CHOICES["fusion"]) == set(FUSIONS)
    assert set(CHOICES["mtl"]) == set(MTL_CHOICES)
    assert train.train_config(train.parse_args([])) == TrainConfig()


def test_parse_config_raises_instead_of_exiting():
    assert train.parse_config(["--fusion", "cfc", "--mtl", "lsew"]) == TrainConfig(
        fusion="cfc", mtl="lsew")
    with pytest.raises(ValueError, match="does not apply to mtl='lsew'"):
        train.parse_config(["--mtl", "lsew", "--alpha", "2"])
    with pytest.raises(ValueError, match="invalid choice: 'nope'"):
        train.parse_config(["--fusion", "nope"])


def test_the_old_strategy_flag_still_works(capsys):
    args = train.parse_args(["--strategy", "mirrored"])
    assert args.distribution == "mirrored"
    assert "--strategy is now --distribution" in capsys.readouterr().err


def test_weighting_flags_follow_the_constructors():
    for mtl in MTL_CHOICES:
        cls = TASK_WEIGHTINGS["lsew" if mtl == "mtinet" else mtl]
        import inspect

        takes = set(inspect.signature(cls.__init__).parameters)
        assert ("alpha" in weighting_fields(mtl)) == ("alpha" in takes), mtl
    assert "alpha" in weighting_fields("gradnorm")  # GradNorm has an α too
    assert TrainConfig(mtl="gradnorm", alpha=2.0).mtl_kwargs() == {"alpha": 2.0}
    assert TrainConfig(mtl="gradnorm").mtl_kwargs() == {}  # GradNorm's own defaults


@pytest.mark.parametrize("argv, message", [
    (["--mtl", "lsew", "--alpha", "2"], r"`alpha` \(--alpha\) does not apply to mtl='lsew'"),
    (["--mtl", "moo", "--no-rebalance"], r"--no-rebalance\) does not apply to mtl='moo'"),
    (["--mtl", "lsew", "--no-tdb"], r"--no-tdb\) does not apply to mtl='lsew'"),
    (["--mtl", "lsew", "--no-normalize-losses"],
     r"--no-normalize-losses\) does not apply to mtl='lsew'"),
    (["--mtl", "uncertainty", "--grad-norm-layer", "shared"], r"grad_norm_layer.*uncertainty"),
    (["--fusion", "hgfn", "--cfc-units", "64"], r"cfc_units.*fusion='hgfn'"),
    (["--fusion", "cfc", "--theta", "0.3"], r"theta.*fusion='cfc'"),
    (["--optimizer", "adam", "--weight-decay", "0.1"], r"weight_decay.*adamw"),
])
def test_a_flag_that_does_not_apply_is_an_error(argv, message, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(argv)
    assert __import__("re").search(message, capsys.readouterr().err)


def test_no_normalize_losses_reaches_the_strategy():
    config = train.train_config(train.parse_args(["--mtl", "dmtl", "--no-normalize-losses"]))
    assert config.normalize_losses is False
    assert config.mtl_kwargs() == {"normalize_losses": False}
    assert TrainConfig(mtl="dmtl").mtl_kwargs() == {}


def test_train_config_round_trips_through_json():
    config = TrainConfig(fusion="cfc", mtl="gradnorm", alpha=0.5, optimizer="adamw",
                         weight_decay=1e-4, reduce_lr_patience=2, min_epochs=3)
    assert TrainConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["weight_decay"] == 1e-4
    with pytest.raises(ValueError, match="Unknown TrainConfig field.*nope"):
        TrainConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="`theta` must be in"):
        TrainConfig(theta=1.5)


@pytest.mark.parametrize("field, value", [
    ("learning_rate", float("nan")), ("learning_rate", float("inf")), ("alpha", float("nan")),
    ("beta", float("nan")), ("weight_decay", float("inf")), ("theta", float("nan")),
    ("dropout", float("nan")), ("token_dropout", float("-inf")),
    ("tdb_learning_rate", float("nan")),
])
def test_non_finite_numbers_are_refused_naming_the_field(field, value):
    """Was: `nan <= 0` is False, so learning_rate=nan and alpha=nan passed."""
    with pytest.raises(ValueError, match=rf"^`{field}` must .* Received: {field}={value!r}$"):
        TrainConfig(**{field: value})


# ----------------------------------------------------------------- handles


@pytest.mark.parametrize("mtl", list(MTL_CHOICES))
@pytest.mark.slow
def test_a_fusion_instance_trains_with_every_strategy(mtl):
    # Used to fail with "No such layer: fusion" (the layer is not named "fusion").
    keras.utils.set_random_seed(0)
    fusion = HierarchicalGraphFusion(theta=0.5, modality_names=["a", "b"])
    model = build_model(MODALITIES, TASKS, fusion=fusion, mtl=mtl, head_units=4)
    assert model.fusion_layer is fusion
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x, y = tiny_xy(16)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def _custom_network():
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = keras.layers.Concatenate()([a, b])
    first = keras.layers.Dense(1, activation="sigmoid", name="head_one")
    second = keras.layers.Dense(3, activation="softmax", name="head_two")
    # The outputs are named after the tasks, the layers are not.
    outputs = {"t1": keras.layers.Identity(name="t1_out")(first(h)),
               "t2": keras.layers.Identity(name="t2_out")(second(h))}
    return keras.Model([a, b], outputs), first, second


def test_custom_heads_get_a_clear_error_or_working_handles():
    network, first, second = _custom_network()
    # Used to fail at the first DMTL step with "No such layer: t1".
    with pytest.raises(ValueError, match=r"task\(s\) \['t1', 't2'\].*head_layers="):
        MultiTaskModel(network, TASKS, task_weighting="dmtl")
    model = MultiTaskModel(network, TASKS, task_weighting="dmtl",
                           head_layers={"t1": first, "t2": "head_two"})
    assert model.head_layers == {"t1": first, "t2": second}
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x, y = tiny_xy(16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.allclose(model.task_weights.numpy(), 1.0)  # TDB moved them
    with pytest.raises(ValueError, match="fusion layer"):
        MultiTaskModel(network, TASKS, task_weighting="moo")


def test_handles_survive_a_keras_round_trip(tmp_path):
    model = build_model(MODALITIES, TASKS, mtl="gradnorm", head_units=4)
    model.compile(optimizer="adam")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.fusion_layer.name == model.fusion_layer.name
    assert loaded.shared_layer.name == "shared"
    assert sorted(loaded.head_layers) == ["t1", "t2"]
    x, _ = tiny_xy(16)
    for name, value in model.predict(x, verbose=0).items():
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[name], value, atol=1e-6)


def test_mtinet_is_a_head_architecture():
    model = build_model(MODALITIES, TASKS, mtl="mtinet", head_units=4)
    assert type(model.task_weighting).__name__ == "TaskWeighting"
    assert model.auxiliary_outputs == {"t1_intermediate": "t1", "t2_intermediate": "t2"}
    same = build_model(MODALITIES, TASKS, heads="mtinet", mtl="dmtl", head_units=4)
    assert sorted(same.head_layers) == ["t1", "t2"]
    with pytest.raises(ValueError, match="`heads` must be one of"):
        build_model(MODALITIES, TASKS, heads="towers")


# ------------------------------------------------------------ sample weights


def test_sample_weights_reach_the_task_losses():
    keras.utils.set_random_seed(0)
    model = build_model(MODALITIES, TASKS, mtl="lsew", head_units=4)
    x, y = tiny_xy(8)
    y_pred = model(x)
    weights = np.array([1, 1, 1, 1, 0, 0, 0, 0], "float32")
    _, weighted = model.compute_losses(y, y_pred, weights)
    half = {k: v[:4] for k, v in x.items()}
    _, plain = model.compute_losses({k: v[:4] for k, v in y.items()}, model(half))
    np.testing.assert_allclose(weighted.numpy(), plain.numpy(), rtol=1e-5)


# --------------------------------------------------------------- the recipe


def test_recipe_knobs(tiny_npz_file):
    dataset = load_npz(tiny_npz_file)
    config = TrainConfig(dataset=f"npz:{tiny_npz_file}", fusion="cfc", mtl="lsew",
                         epochs=2, batch_size=16, head_units=4, optimizer="adamw",
                         weight_decay=0.01, reduce_lr_patience=1, min_epochs=1, patience=1)
    model = recipe.build_and_compile(config, dataset)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    result = recipe.fit(model, config, dataset, verbose=0)
    assert result.model is model
    assert len(result.rebalancing.history) == len(result.history.history["loss"])


@pytest.mark.slow
def test_tuner_and_cli_train_the_same_weights(tiny_npz_file, tmp_path):
    fixed = {"dataset": f"npz:{tiny_npz_file}", "epochs": 2, "batch_size": 16, "head_units": 4,
             "seed": 3}
    # The CLI.
    keras.backend.clear_session()
    train.run(train.parse_args(["--dataset", f"npz:{tiny_npz_file}", "--epochs", "2",
                                "--batch-size", "16", "--head-units", "4", "--seed", "3",
                                "--no-export", "--verbose", "0",
                                "--output-dir", str(tmp_path / "cli")]))
    cli = keras.saving.load_model(tmp_path / "cli" / "model.keras")
    # The tuner, with every searched value at its default (the CLI's).
    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    dataset = load_npz(tiny_npz_file, seed=3)
    hypermodel = HGFNHyperModel(dataset, fixed=fixed)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, verbose=0)
    # The same config (the tuner names DMTL's α = 1 and η = 0.02 that the CLI
    # leaves to DMTL).
    assert hypermodel.config(hp) == train.train_config(train.parse_args(
        ["--dataset", f"npz:{tiny_npz_file}", "--epochs", "2", "--batch-size", "16",
         "--head-units", "4", "--seed", "3", "--alpha", "1", "--tdb-learning-rate", "0.02"]))
    assert cli.task_weighting.alpha == model.task_weighting.alpha == 1.0
    for a, b in zip(cli.network.weights, model.network.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
    np.testing.assert_allclose(cli.task_weights.numpy(), model.task_weights.numpy(), rtol=1e-5)
