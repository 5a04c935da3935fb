"""One-vs-rest concept tasks (issue 12, part 4): a K-class task trained as K binary
concepts, each with its own sigmoid, focal loss and DMTL weight."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import (
    ConceptProbabilities,
    Modality,
    MultiTaskModel,
    Task,
    TaskRebalancing,
    TrainConfig,
    build_model,
    multitask_metrics,
    recipe,
    task_counts,
)
from hgfn_keras.data import load_dataset
from hgfn_keras.serving.export import export_saved_model
from tests.conftest import make_inputs, make_model
from tests.layer_checks import check_backup_and_restore_resumes

MODALITIES = (Modality("image", width=5), Modality("audio", width=3))
# "damage" is one-vs-rest: 3 concepts damage.0, damage.1, damage.2.
TASKS = (Task("flood", 2), Task("damage", 3, one_vs_rest=True))
LOSS_NAMES = ["flood", "damage.0", "damage.1", "damage.2"]
ROWS = 24


def _data(seed=0, rows=ROWS):
    rng = np.random.default_rng(seed)
    x = make_inputs(MODALITIES, rows, rng)
    y = {"flood": np.arange(rows) % 2, "damage": np.arange(rows) % 3}
    y["damage"][[1, 9, 17]] = -1  # missing
    return x, {k: v.astype("int32") for k, v in y.items()}


def _model(seed=0, mtl="dmtl", tasks=TASKS):
    return make_model(MODALITIES, tasks, keras.optimizers.Adam(1e-2), seed=seed, head_units=4,
                      dropout=0.0, mtl=mtl, preset="paper")


# ------------------------------------------------------------------------ Task


def test_task_names_its_concepts_and_round_trips():
    task = Task("damage", 3, class_names=["none", "some", "severe"], one_vs_rest=True)
    assert task.concepts == ["damage.0", "damage.1", "damage.2"]
    assert Task("flood", 2).concepts == ["flood"]
    assert Task("damage", 3).concepts == ["damage"]
    assert Task.from_config(json.loads(json.dumps(task.to_config()))) == task
    # A config saved before the field existed reads as not one-vs-rest.
    assert Task.from_config({"name": "d", "num_classes": 3, "class_names": None}).one_vs_rest \
        is False


def test_one_vs_rest_on_a_binary_task_is_an_error():
    # A binary task is one concept already: two concepts "0 or not", "1 or not"
    # would be the same task twice. The error names the task and the values.
    with pytest.raises(ValueError, match=r"Task 'flood'.*binary task is one concept.*"
                                         r"num_classes=2, one_vs_rest=True"):
        Task("flood", 2, one_vs_rest=True)
    with pytest.raises(ValueError, match=r"Task 'd'.*one_vs_rest.*Received: one_vs_rest=1"):
        Task("d", 3, one_vs_rest=1)


# ----------------------------------------------------------------------- model


def test_k_concept_heads_are_built():
    model = _model()
    assert model.loss_names == LOSS_NAMES
    assert list(model.head_layers) == LOSS_NAMES
    for name in LOSS_NAMES[1:]:
        head = model.head_layers[name]
        assert isinstance(head, keras.layers.Dense) and head.units == 1
        assert head.get_config()["activation"] == "sigmoid"
    # The three concepts share the task's hidden layer, each has its own kernel.
    kernels = {id(model.head_layers[n].kernel) for n in LOSS_NAMES}
    assert len(kernels) == 4
    assert model.task_weights.shape == (4,)
    assert sorted(model.network.output) == sorted(["flood", "damage", *LOSS_NAMES[1:]])


def test_recombined_probabilities_sum_to_one():
    model = _model()
    x, _ = _data()
    p = model.predict(x, verbose=0)
    assert p["damage"].shape == (ROWS, 3)
    np.testing.assert_allclose(p["damage"].sum(axis=1), 1.0, atol=1e-6)
    sigmoids = np.concatenate([p[f"damage.{k}"] for k in range(3)], axis=1)
    np.testing.assert_allclose(p["damage"], sigmoids / sigmoids.sum(1, keepdims=True),
                               rtol=1e-5)
    # All sigmoids saturated to 0: still a distribution (uniform).
    zero = ConceptProbabilities()([np.zeros((2, 1), "float32")] * 4)
    np.testing.assert_allclose(np.asarray(zero), 0.25)


def test_concept_losses_by_hand_and_missing_labels_give_no_loss():
    model = _model(mtl="lsew")
    y = {"flood": np.array([1, 0, 1, 0]), "damage": np.array([2, -1, 0, -1])}
    s = np.array([[0.2, 0.6, 0.7, 0.1], [0.3, 0.5, 0.4, 0.9]], "float32").T  # [4, 2]
    rng = np.random.default_rng(0)
    y_pred = {"flood": np.full((4, 1), 0.5, "float32"),
              "damage.0": s[:, :1], "damage.1": s[:, 1:], "damage.2": rng.random((4, 1)),
              "damage": np.full((4, 3), 1 / 3, "float32")}
    y_pred["damage.2"] = y_pred["damage.2"].astype("float32")
    sums, counts = (np.asarray(v) for v in model.multitask_loss.terms(y, y_pred))
    # Rows 1 and 3 have no damage label: no concept counts them.
    np.testing.assert_allclose(counts, [4, 2, 2, 2])
    d = np.array([2, 0])  # the labelled rows 0 and 2
    for k in range(3):
        p = y_pred[f"damage.{k}"][[0, 2], 0].astype("float64")
        expected = -np.sum(np.where(d == k, np.log(p), np.log(1 - p)))
        np.testing.assert_allclose(sums[1 + k], expected, rtol=1e-5)
    # Whatever the predictions on the missing rows, the concept losses stay.
    changed = {k: v.copy() for k, v in y_pred.items()}
    for k in range(3):
        changed[f"damage.{k}"][[1, 3]] = 0.999
    np.testing.assert_allclose(np.asarray(model.multitask_loss.terms(y, changed)[0]), sums, rtol=1e-6)
    # A batch without any damage label: 0 loss and 0 count for every concept.
    none = {"flood": y["flood"], "damage": np.full(4, -1)}
    total, losses = model.compute_losses(none, y_pred)
    np.testing.assert_allclose(np.asarray(losses)[1:], 0.0)


def test_focal_beta_applies_per_concept():
    model = _model(mtl="lsew")
    model_focal = MultiTaskModel(model.network, list(TASKS), beta=2.0)
    y = {"flood": np.array([1, 0]), "damage": np.array([1, 2])}
    p = np.array([[0.8], [0.3]], "float32")
    y_pred = {"flood": p, "damage": np.full((2, 3), 1 / 3, "float32"),
              "damage.0": p, "damage.1": p, "damage.2": p}
    sums = np.asarray(model_focal.multitask_loss.terms(y, y_pred)[0])
    for k in range(3):
        label = np.array([1, 2]) == k
        pd = np.where(label, p[:, 0], 1 - p[:, 0]).astype("float64")
        np.testing.assert_allclose(sums[1 + k], np.sum(-(1 - pd) ** 2 * np.log(pd)), rtol=1e-5)


def test_n_f_per_concept_is_the_smaller_of_positives_and_negatives():
    # damage: 7 of class 0 (the majority), 2 of class 1, 1 of class 2, one missing.
    y = {"flood": np.array([1] * 8 + [0] * 3), "damage": np.array([0] * 7 + [1, 1, 2, -1])}
    num_samples, n_f = task_counts(list(TASKS), y)
    assert num_samples == 11
    assert n_f == [3, 3, 2, 1]  # flood min(8, 3); concept 0 min(7, 3); 1 min(2, 8); 2 min(1, 9)
    model = _model()
    model.set_task_counts(y)
    np.testing.assert_allclose(model.task_weighting.sample_ratios.numpy(),
                               11 / np.array([3, 3, 2, 1]), rtol=1e-6)


@pytest.mark.slow
def test_dmtl_weights_are_per_concept_and_the_csv_has_them(tmp_path):
    model = _model()
    x, y = _data()
    rebalancing = TaskRebalancing()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[rebalancing])
    weights = model.task_weights.numpy()
    assert weights.shape == (4,) and np.all(weights > 0)
    assert weights.sum() == pytest.approx(4.0, abs=1e-5)
    assert len(set(np.round(weights, 6))) > 1  # the concepts are weighed apart
    for name in LOSS_NAMES:
        assert f"{name}_weight" in history.history and f"{name}_loss" in history.history
    path = tmp_path / "task_weights.csv"
    recipe.write_task_weights(str(path), model.loss_names, rebalancing)
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert rows[0] == ["epoch", "phase", *LOSS_NAMES, *(f"loss_{n}" for n in LOSS_NAMES),
                       *(f"chance_{n}" for n in LOSS_NAMES)]
    assert [r[1] for r in rows[1:]] == ["tdb", "rebalanced"] * 2
    for tdb, rebalanced in (rows[1:3], rows[3:5]):
        losses = np.array([float(v) for v in rebalanced[6:10]])
        chance = np.array([float(v) for v in rebalanced[10:14]])
        # Every concept is binary: one chance loss, log 2, for all of them.
        np.testing.assert_allclose(chance, np.log(2.0), atol=1e-6)
        scalars = losses.max() / losses
        np.testing.assert_allclose([float(v) for v in rebalanced[2:6]],
                                   4 * scalars / scalars.sum(), atol=2e-6)
        assert sum(float(v) for v in tdb[2:6]) == pytest.approx(4.0, abs=1e-4)


@pytest.mark.slow
def test_save_load_keeps_the_concepts_and_the_dmtl_state(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = str(tmp_path / "ovr.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.tasks == list(TASKS) and loaded.loss_names == LOSS_NAMES
    assert list(loaded.head_layers) == LOSS_NAMES
    for name in ("task_weights", "sample_ratios", "initial_losses"):
        np.testing.assert_allclose(getattr(loaded.task_weighting, name).numpy(),
                                   getattr(model.task_weighting, name).numpy())
    expected, got = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-7)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)  # trains on, compiled


@pytest.mark.slow
def test_backup_and_restore_resumes_the_same_concept_weights(tmp_path):
    x, y = _data()
    check_backup_and_restore_resumes(_model, x, y, epochs=3, backup_dir=str(tmp_path / "backup"))


@pytest.mark.slow
def test_saved_model_returns_the_normalised_k_class_probabilities(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = export_saved_model(model, str(tmp_path / "export"), version=1)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    expected = model.predict(x, verbose=0)
    for rows in (1, 7):
        served = signature(**{k: tf.constant(v[:rows]) for k, v in x.items()},
                           modality_mask=tf.ones((rows, 2)))
        assert sorted(served) == ["damage", "flood"]  # the concepts stay inside
        np.testing.assert_allclose(served["damage"].numpy(), expected["damage"][:rows],
                                   atol=1e-6)
        np.testing.assert_allclose(served["flood"].numpy(), expected["flood"][:rows],
                                   atol=1e-6)
        np.testing.assert_allclose(served["damage"].numpy().sum(1), 1.0, atol=1e-6)


def test_a_network_without_the_concept_outputs_is_refused():
    plain = build_model(list(MODALITIES), [Task("flood", 2), Task("damage", 3)], mtl="lsew")
    with pytest.raises(ValueError, match=r"Task 'damage' is one-vs-rest.*Missing: "
                                         r"\['damage.0', 'damage.1', 'damage.2'\]"):
        MultiTaskModel(plain.network, list(TASKS))
    with pytest.raises(ValueError, match=r"MTI-Net.*one-vs-rest.*\['damage'\]"):
        build_model(list(MODALITIES), list(TASKS), heads="mtinet")


# --------------------------------------------------------------------- metrics


def test_metrics_keep_the_task_and_add_the_concepts():
    model = _model()
    x, y = _data()
    p = model.predict(x, verbose=0)
    metrics = multitask_metrics(model.tasks, y, p)
    assert list(metrics["tasks"]) == ["flood", "damage"]
    # The K-class task, recombined by argmax of the normalised probabilities.
    plain = multitask_metrics([Task("damage", 3)], {"damage": y["damage"]},
                              {"damage": p["damage"]})
    assert metrics["tasks"]["damage"] == plain["tasks"]["damage"]
    assert list(metrics["concepts"]) == LOSS_NAMES[1:]
    for k in range(3):
        labels = np.where(y["damage"] < 0, -1, (y["damage"] == k).astype(int))
        by_hand = multitask_metrics([Task("c", 2)], {"c": labels}, {"c": p[f"damage.{k}"]})
        assert metrics["concepts"][f"damage.{k}"] == by_hand["tasks"]["c"]
    # Without one-vs-rest tasks, no "concepts" key (metrics.json as before).
    assert "concepts" not in multitask_metrics([Task("damage", 3)], y, p)
    with pytest.raises(ValueError, match=r"Task 'damage' is one-vs-rest.*Missing 'damage.0'"):
        multitask_metrics(model.tasks, y, {"flood": p["flood"], "damage": p["damage"]})


# ---------------------------------------------------------- config and recipe


def test_config_applies_one_vs_rest_to_the_k_class_tasks_only():
    config = TrainConfig(one_vs_rest=True)
    assert TrainConfig.from_json(config.to_json()) == config
    tasks = recipe.model_tasks(config, [Task("flood", 2), Task("damage", 3)])
    assert tasks == [Task("flood", 2), Task("damage", 3, one_vs_rest=True)]
    assert recipe.model_tasks(TrainConfig(), tasks[:1]) == tasks[:1]
    with pytest.raises(ValueError, match=r"`one_vs_rest` must be True or False. "
                                         r"Received: one_vs_rest='yes'"):
        TrainConfig(one_vs_rest="yes")


def test_ablation_and_search_pass_it_on():
    from benchmarks.dmtl_ablation import variant_config
    from tuning.search import fixed_arguments, parse_args

    assert variant_config("clothing", "dmtl", 0, one_vs_rest=True).one_vs_rest is True
    assert variant_config("clothing", "lsew", 0).one_vs_rest is False
    args = parse_args(["--output-dir", "x", "--one-vs-rest"])
    assert fixed_arguments(args)["one_vs_rest"] is True
    assert "one_vs_rest" not in fixed_arguments(parse_args(["--output-dir", "x"]))


def _tiny_npz(path, rows=60):
    rng = np.random.default_rng(0)
    damage = np.arange(rows) % 3
    damage[[0, 7]] = -1
    np.savez(path, x_image=rng.normal(size=(rows, 5)).astype("float32"),
             x_audio=rng.normal(size=(rows, 3)).astype("float32"),
             y_flood=np.arange(rows) % 2, y_damage=damage)
    return path


@pytest.mark.slow
def test_recipe_run_writes_tasks_concepts_and_concept_columns(tmp_path):
    path = _tiny_npz(tmp_path / "floods.npz")
    config = TrainConfig(dataset=f"npz:{path}", one_vs_rest=True, epochs=2, head_units=4,
                         batch_size=16, patience=0)
    keras.utils.set_random_seed(0)
    dataset = load_dataset(config.dataset, seed=0)
    result = recipe.train_and_evaluate(config, dataset, str(tmp_path / "run"), verbose=0)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["tasks"]) == ["damage", "flood"]  # npz tasks: sorted by name
    assert list(metrics["concepts"]) == ["damage.0", "damage.1", "damage.2"]
    assert metrics["mean"] == result.metrics["mean"]
    header = (tmp_path / "run" / "task_weights.csv").read_text().splitlines()[0].split(",")
    names = ["damage.0", "damage.1", "damage.2", "flood"]
    assert header == ["epoch", "phase", *names, *(f"loss_{n}" for n in names),
                      *(f"chance_{n}" for n in names)]
    loaded = keras.saving.load_model(str(tmp_path / "run" / "model.keras"))
    assert loaded.loss_names == names


# ------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_flag_end_to_end(tmp_path):
    path = _tiny_npz(tmp_path / "floods.npz")
    out = tmp_path / "run"
    from tests.conftest import run_in_process
    from training import train

    result = run_in_process(train.main, "--dataset", f"npz:{path}", "--one-vs-rest",
                            "--epochs", "2", "--head-units", "4", "--batch-size", "16",
                            "--output-dir", out, "--export-dir", tmp_path / "export")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "damage.0=" in result.stdout  # the concept weights are printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"tasks", "mean", "mean_over", "concepts", "run",
                            "decision"}
    assert set(metrics["concepts"]) == {"damage.0", "damage.1", "damage.2"}
    assert json.loads((out / "config.json").read_text())["one_vs_rest"] is True
    rows = (out / "task_weights.csv").read_text().splitlines()
    assert rows[0].split(",")[2:5] == ["damage.0", "damage.1", "damage.2"]
    assert [r.split(",")[1] for r in rows[1:]] == ["tdb", "rebalanced"] * 2
    signature = tf.saved_model.load(str(tmp_path / "export" / "1")).signatures[
        "serving_default"]
    assert sorted(signature.structured_outputs) == ["damage", "flood", "modality_weights"]
