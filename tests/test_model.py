"""Tests of `build_model`, `MultiTaskModel`, `task_loss` and `export_saved_model`.

Everything here is tiny (a dozen to 64 rows, widths 2-8, head_units 4) so that the
file runs in seconds on a CPU.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import (
    Modality,
    MultiTaskModel,
    Task,
    TextEncoder,
    build_model,
    export_saved_model,
    task_loss,
)
from hgfn_keras.data.dataset import MASK_KEY, as_tf_dataset
from tests.conftest import FLOOD_DAMAGE

NUM_ROWS = 24
HEAD_UNITS = 4
TASKS = FLOOD_DAMAGE
VECTOR_MODALITIES = (
    Modality("image", width=6),
    Modality("audio", width=3),
    Modality("sensor", width=4),
)
TEXTS = (
    "great dress",
    "bad fit, too small",
    "love it!",
    "meh",
    "nice colour and fit",
    "",
    "runs small",
    "perfect for summer",
    "the fabric is thin",
    "would buy again",
    "too long for me",
    "great colour",
)


def _fusion_kwargs(fusion):
    return {"units": 8} if fusion == "cfc" else {"theta": 0.5}


def _vector_model(fusion="hgfn", beta=0.0, seed=0, mtl="lsew"):
    keras.utils.set_random_seed(seed)
    model = build_model(
        list(VECTOR_MODALITIES),
        list(TASKS),
        fusion=fusion,
        fusion_kwargs=_fusion_kwargs(fusion),
        head_units=HEAD_UNITS,
        mtl=mtl,
        beta=beta,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _vector_data(num_rows=NUM_ROWS, seed=0):
    rng = np.random.default_rng(seed)
    x = {m.name: rng.normal(size=(num_rows, m.width)).astype("float32") for m in VECTOR_MODALITIES}
    y = {
        "flood": rng.integers(0, 2, num_rows).astype("int32"),
        "damage": rng.integers(0, 3, num_rows).astype("int32"),
    }
    y["damage"][::5] = -1  # some missing labels
    return x, y


def _text_data(seed=0):
    rng = np.random.default_rng(seed)
    n = len(TEXTS)
    mask = np.ones((n, 2), "float32")
    mask[5, 0] = 0.0  # the empty review is a missing modality
    x = {
        "review": np.array(TEXTS, dtype=object),
        "meta": rng.normal(size=(n, 3)).astype("float32"),
        MASK_KEY: mask,
    }
    y = {
        "flood": rng.integers(0, 2, n).astype("int32"),
        "damage": np.array([0, 1, 2, -1, 0, 1, 2, 0, -1, 1, 2, 0], "int32"),
    }
    return x, y


def _text_model(seed=0):
    keras.utils.set_random_seed(seed)
    encoder = TextEncoder.from_texts(TEXTS, min_count=1, embedding_dim=4, name="review_encoder")
    model = build_model(
        [Modality("review", kind="text"), Modality("meta", width=3)],
        list(TASKS),
        fusion="hgfn",
        encoders={"review": encoder},
        head_units=HEAD_UNITS,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _assert_predictions_close(a, b, atol):
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), atol=atol, rtol=0)


@pytest.fixture(scope="module")
def trained_vector_model():
    model = _vector_model("hgfn")
    x, y = _vector_data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def trained_text_model():
    model = _text_model()
    x, y = _text_data()
    model.fit(as_tf_dataset(x, y, batch_size=4), epochs=1, verbose=0, shuffle=False)
    return model


# ---------------------------------------------------------------- build and predict


@pytest.mark.parametrize("fusion", ["hgfn", "cfc"])
def test_outputs_shapes_and_probabilities(fusion):
    model = _vector_model(fusion)
    x, _ = _vector_data()
    predictions = model.predict(x, verbose=0)
    assert sorted(predictions) == sorted(t.name for t in TASKS)
    assert predictions["flood"].shape == (NUM_ROWS, 1)
    assert predictions["damage"].shape == (NUM_ROWS, 3)
    for values in predictions.values():
        assert np.all(np.isfinite(values))
        assert np.all((values >= 0.0) & (values <= 1.0))
    np.testing.assert_allclose(predictions["damage"].sum(axis=1), 1.0, atol=1e-5)
    assert model.task_names == ["flood", "damage"]
    assert model.input_names == ["image", "audio", "sensor", MASK_KEY]


@pytest.mark.parametrize("fusion", ["hgfn", "cfc"])
@pytest.mark.slow
def test_fit_step_logs_task_losses_and_updates_weights(fusion):
    model = _vector_model(fusion)
    x, y = _vector_data()
    before = [v.numpy().copy() for v in model.trainable_variables]
    history = model.fit(x, y, epochs=1, batch_size=NUM_ROWS, verbose=0)  # one step
    logs = history.history
    assert set(logs) == {"loss", "flood_loss", "damage_loss", "flood_weight", "damage_weight"}
    for values in logs.values():
        assert len(values) == 1 and np.isfinite(values[0])
    # The task weights are ones, so the logged total is the sum of the task losses.
    np.testing.assert_allclose(
        logs["loss"][0], logs["flood_loss"][0] + logs["damage_loss"][0], rtol=1e-5
    )
    changed = [
        v.path
        for b, v in zip(before, model.trainable_variables)
        if not np.array_equal(b, v.numpy())
    ]
    assert changed, "no trainable weight changed after a fit step"
    for task in TASKS:  # the last task-specific layer of every head moved
        assert any(p.startswith(f"{task.name}/") for p in changed), changed
    assert not model.task_weights.trainable
    assert all(model.task_weights is not v for v in model.trainable_variables)
    np.testing.assert_array_equal(model.task_weights.numpy(), np.ones(len(TASKS)))


# ---------------------------------------------------------------------- task loss


def _focal_by_hand(p_d, beta):
    return -((1.0 - p_d) ** beta) * np.log(p_d)


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_task_loss_binary_matches_formula(beta):
    rng = np.random.default_rng(1)
    probs = rng.uniform(0.05, 0.95, size=(12, 1)).astype("float32")
    labels = np.array([0, 1, 1, -1, 0, 1, -1, 0, 0, 1, 1, -1], "int32")
    valid = labels != -1
    p = probs[:, 0].astype("float64")
    p_d = np.where(labels == 1, p, 1.0 - p)[valid]
    expected = _focal_by_hand(p_d, beta).mean()
    got = float(task_loss(Task("flood", 2), labels, probs, beta))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # Labels of shape [batch, 1] give the same number.
    got_column = float(task_loss(Task("flood", 2), labels[:, None], probs, beta))
    np.testing.assert_allclose(got_column, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_task_loss_multiclass_matches_formula(beta):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(12, 3))
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype("float32")
    labels = np.array([0, 1, 2, -1, 2, 1, -1, 0, 0, 2, 1, -1], "int32")
    valid = labels != -1
    p_d = probs.astype("float64")[np.flatnonzero(valid), labels[valid]]
    expected = _focal_by_hand(p_d, beta).mean()
    got = float(task_loss(Task("damage", 3), labels, probs, beta))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("task", [Task("flood", 2), Task("damage", 3)], ids=lambda t: t.name)
@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_task_loss_all_missing_is_zero(task, beta):
    rng = np.random.default_rng(3)
    probs = rng.uniform(0.05, 0.95, size=(6, task.output_units)).astype("float32")
    labels = np.full(6, -1, "int32")
    value = float(task_loss(task, labels, probs, beta))
    assert value == 0.0 and not np.isnan(value)


@pytest.mark.parametrize("task", [Task("flood", 2), Task("damage", 3)], ids=lambda t: t.name)
def test_missing_labels_add_no_loss(task):
    rng = np.random.default_rng(4)
    labels = np.array([0, -1, 1, -1, 1, 0, -1, 1], "int32")
    units = task.output_units

    def probabilities():
        if units == 1:
            return rng.uniform(0.05, 0.95, size=(8, 1)).astype("float32")
        logits = rng.normal(size=(8, units))
        return (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype("float32")

    probs = probabilities()
    changed = probs.copy()
    missing = labels == -1
    changed[missing] = probabilities()[missing]
    assert not np.allclose(probs[missing], changed[missing])
    for beta in (0.0, 2.0):
        np.testing.assert_allclose(
            float(task_loss(task, labels, probs, beta)),
            float(task_loss(task, labels, changed, beta)),
            atol=1e-7,
            rtol=0,
        )


# ------------------------------------------------------------------ save and load


@pytest.mark.slow
def test_keras_save_load_round_trip(trained_vector_model, tmp_path):
    model = trained_vector_model
    x, _ = _vector_data(seed=5)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, MultiTaskModel)
    assert reloaded.tasks == model.tasks
    assert reloaded.get_config()["tasks"] == model.get_config()["tasks"]
    assert reloaded.beta == model.beta
    _assert_predictions_close(
        model.predict(x, verbose=0), reloaded.predict(x, verbose=0), atol=1e-6
    )


def test_get_config_from_config_round_trip(trained_vector_model):
    model = trained_vector_model
    config = model.get_config()
    json.dumps(config)  # a plain JSON structure
    rebuilt = MultiTaskModel.from_config(config)
    assert isinstance(rebuilt, MultiTaskModel)
    assert rebuilt.tasks == model.tasks
    assert rebuilt.beta == model.beta
    assert rebuilt.input_names == model.input_names
    assert rebuilt.get_config()["tasks"] == config["tasks"]
    rebuilt.set_weights(model.get_weights())
    x, _ = _vector_data(seed=6)
    _assert_predictions_close(model.predict(x, verbose=0), rebuilt.predict(x, verbose=0), 1e-6)


def test_beta_survives_round_trip():
    model = _vector_model("cfc", beta=2.0)
    rebuilt = MultiTaskModel.from_config(model.get_config())
    assert rebuilt.beta == 2.0


# ------------------------------------------------------------------------- text


@pytest.mark.slow
def test_text_modality_fit_predict_save_load(trained_text_model, tmp_path):
    model = trained_text_model
    x, y = _text_data()
    history = model.fit(as_tf_dataset(x, y, batch_size=4), epochs=1, verbose=0, shuffle=False)
    assert set(history.history) == {"loss", "flood_loss", "damage_loss", "flood_weight",
                                    "damage_weight"}
    assert all(np.isfinite(v[0]) for v in history.history.values())
    predictions = model.predict(as_tf_dataset(x, None, batch_size=5), verbose=0)
    assert predictions["flood"].shape == (len(TEXTS), 1)
    assert predictions["damage"].shape == (len(TEXTS), 3)
    np.testing.assert_allclose(predictions["damage"].sum(axis=1), 1.0, atol=1e-5)
    # numpy string input gives the same numbers as the tf.data path
    _assert_predictions_close(predictions, model.predict(x, verbose=0), atol=1e-6)
    path = str(tmp_path / "text_model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.tasks == model.tasks
    _assert_predictions_close(
        predictions, reloaded.predict(as_tf_dataset(x, None, batch_size=5), verbose=0), 1e-6
    )


# ----------------------------------------------------------------------- export

_SERVING_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # registers the TF Text ops the SavedModel tokenises with

    jobs = json.loads(sys.argv[1])
    report = {}
    for job in jobs:
        loaded = tf.saved_model.load(job["model"])
        signature = loaded.signatures["serving_default"]
        inputs = dict(np.load(job["inputs"]))
        feed = {}
        for name, value in inputs.items():
            if value.dtype.kind in "US":
                feed[name] = tf.constant(value.astype(str).tolist(), dtype=tf.string)
            else:
                feed[name] = tf.constant(value, dtype=tf.float32)
        outputs = signature(**feed)
        np.savez(job["outputs"], **{k: v.numpy() for k, v in outputs.items()})
        report[job["outputs"]] = {
            "inputs": sorted(signature.structured_input_signature[1]),
            "outputs": sorted(signature.structured_outputs),
        }
    print(json.dumps(report))
    """
)


def _serve_in_fresh_process(jobs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _SERVING_SCRIPT, json.dumps(jobs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _rows(x, rows):
    out = {}
    for name, value in x.items():
        value = np.asarray(value)[rows]
        out[name] = value.astype(str) if value.dtype == object else value
    return out


@pytest.mark.slow
def test_export_serves_in_fresh_process(trained_text_model, trained_vector_model, tmp_path):
    text_x, _ = _text_data()
    text_x[MASK_KEY][2, 1] = 0.0  # one masked-out vector modality, too
    vector_x, _ = _vector_data(seed=7)
    vector_x[MASK_KEY] = np.ones((NUM_ROWS, 3), "float32")
    vector_x[MASK_KEY][[1, 4], 0] = 0.0
    cases = {
        "text": (trained_text_model, text_x),
        "vector": (trained_vector_model, vector_x),
    }
    jobs, expected = [], {}
    for label, (model, x) in cases.items():
        path = export_saved_model(model, str(tmp_path / label))
        assert path == str(tmp_path / label / "1")
        for batch in (1, 7):
            rows = np.arange(batch) + 2
            inputs = _rows(x, rows)
            inputs_path = str(tmp_path / f"{label}_in_{batch}.npz")
            outputs_path = str(tmp_path / f"{label}_out_{batch}.npz")
            np.savez(inputs_path, **inputs)
            jobs.append({"model": path, "inputs": inputs_path, "outputs": outputs_path})
            expected[outputs_path] = (model, inputs)
    report = _serve_in_fresh_process(jobs)
    for outputs_path, (model, inputs) in expected.items():
        assert report[outputs_path]["inputs"] == sorted(model.input_names)
        assert report[outputs_path]["outputs"] == sorted(model.task_names)
        served = dict(np.load(outputs_path))
        keras_inputs = {
            k: (v.astype(object) if v.dtype.kind == "U" else v) for k, v in inputs.items()
        }
        _assert_predictions_close(served, model.predict(keras_inputs, verbose=0), atol=1e-5)


def test_export_versions(tmp_path):
    model = _vector_model("cfc")
    x, _ = _vector_data()
    model.predict(x, verbose=0)  # export needs a model that has been called
    export_dir = str(tmp_path / "models" / "cfc")
    first = export_saved_model(model, export_dir)
    second = export_saved_model(model, export_dir)
    assert first == os.path.join(export_dir, "1")
    assert second == os.path.join(export_dir, "2")
    assert os.path.isfile(os.path.join(second, "saved_model.pb"))
    with pytest.raises(FileExistsError, match="exists already"):
        export_saved_model(model, export_dir, version=2)
    assert sorted(os.listdir(export_dir)) == ["1", "2"]  # no `.partial` folder left behind
    assert not any("partial" in name for name in os.listdir(export_dir))


# -------------------------------------------------------------------- bad input


def test_fit_missing_modality(trained_vector_model):
    x, y = _vector_data()
    del x["audio"]
    with pytest.raises(ValueError, match=r"Missing: \['audio'\]"):
        trained_vector_model.fit(x, y, epochs=1, verbose=0)


def test_fit_unexpected_modality(trained_vector_model):
    x, y = _vector_data()
    x["video"] = x["audio"]
    with pytest.raises(ValueError, match=r"unexpected: \['video'\]"):
        trained_vector_model.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "task, bad",
    [("damage", 5), ("damage", 3), ("damage", -2), ("flood", 2), ("flood", -2)],
)
def test_fit_labels_out_of_range(trained_vector_model, task, bad):
    x, y = _vector_data()
    y[task] = y[task].copy()
    y[task][3] = bad
    with pytest.raises(ValueError, match=rf"Task '{task}'.*Received: labels \[{bad}\]"):
        trained_vector_model.fit(x, y, epochs=1, verbose=0)


def test_fit_missing_task(trained_vector_model):
    x, y = _vector_data()
    del y["damage"]
    with pytest.raises(ValueError, match=r"Missing: \['damage'\]"):
        trained_vector_model.fit(x, y, epochs=1, verbose=0)


def test_build_model_one_modality():
    with pytest.raises(ValueError, match=r"at least 2 modalities.*\['image'\]"):
        build_model([Modality("image", width=4)], list(TASKS))


def test_build_model_duplicate_modalities():
    with pytest.raises(ValueError, match=r"distinct.*\['image', 'image'\]"):
        build_model([Modality("image", width=4), Modality("image", width=3)], list(TASKS))


def test_build_model_text_without_encoder():
    with pytest.raises(ValueError, match=r"Text modality 'review' needs an encoder"):
        build_model([Modality("review", kind="text"), Modality("meta", width=3)], list(TASKS))


def test_build_model_encoder_returns_3d():
    with pytest.raises(ValueError, match=r"encoder of modality 'image'.*\(None, 3, 2\)"):
        build_model(
            list(VECTOR_MODALITIES),
            list(TASKS),
            encoders={"image": keras.layers.Reshape((3, 2))},
        )


def test_build_model_unknown_fusion():
    with pytest.raises(ValueError, match=r"Unknown fusion 'nope'"):
        build_model(list(VECTOR_MODALITIES), list(TASKS), fusion="nope")


def test_task_with_one_class():
    with pytest.raises(ValueError, match=r"Task 'x'.*num_classes.*1"):
        Task("x", 1)


def test_modality_with_bad_name():
    with pytest.raises(ValueError, match=r"name='bad name'"):
        Modality("bad name")


# ------------------------------------------------------------------ modality mask


@pytest.mark.parametrize("fusion", ["hgfn", "cfc"])
@pytest.mark.parametrize("column", [0, 1])
def test_masked_modality_does_not_change_output(fusion, column):
    model = _vector_model(fusion)
    x, _ = _vector_data()
    names = [m.name for m in VECTOR_MODALITIES]
    mask = np.ones((NUM_ROWS, len(names)), "float32")
    masked = np.zeros(NUM_ROWS, bool)
    masked[::3] = True
    mask[masked, column] = 0.0
    x[MASK_KEY] = mask
    before = model.predict(x, verbose=0)

    changed = dict(x)
    values = x[names[column]].copy()
    values += np.random.default_rng(8).normal(scale=5.0, size=values.shape).astype("float32")
    changed[names[column]] = values  # every row changes, masked or not
    after = model.predict(changed, verbose=0)
    for task in before:
        np.testing.assert_allclose(after[task][masked], before[task][masked], atol=1e-6, rtol=0)
    # not vacuous: the unmasked rows do see the change
    assert any(
        not np.allclose(after[t][~masked], before[t][~masked], atol=1e-6) for t in before
    )


def test_labels_out_of_range_through_tf_data_are_refused():
    model = _vector_model("cfc")
    x, y = _vector_data()
    y["damage"] = np.full_like(y["damage"], 7)
    with pytest.raises(tf.errors.InvalidArgumentError, match="damage.*labels must be < num_classes=3"):
        model.fit(as_tf_dataset(x, y, 8), epochs=1, verbose=0, shuffle=False)


def test_feature_width_mismatch_is_named(trained_vector_model):
    x, y = _vector_data()
    x["audio"] = x["audio"][:, :2]
    with pytest.raises(ValueError, match=r"modality .audio. must have shape \[N, 3\]. "
                                         r"Received: shape=\(24, 2\)"):
        trained_vector_model.fit(x, y, epochs=1, verbose=0)


def test_export_right_after_build_model(tmp_path):
    model = build_model(list(VECTOR_MODALITIES), list(TASKS), fusion="cfc")
    path = export_saved_model(model, str(tmp_path / "m"))
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
