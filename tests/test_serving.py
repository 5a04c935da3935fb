"""Serving: the exported SavedModel in a fresh process, its named signature, bad
input, the client request (gRPC PredictRequest and REST JSON body) and the
`training.export` CLI. Tiny sizes: 3 vector modalities of width 2-4, 24 rows."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras import build_model
from hgfn_keras.data.dataset import MASK_KEY
from hgfn_keras.serving.export import (
    MODALITY_WEIGHTS_KEY,
    export_saved_model,
    has_modality_weights,
)
from tests.conftest import FLOOD_DAMAGE, IMAGE_AUDIO_SENSOR, make_inputs, run_as_process

MODALITIES, TASKS = IMAGE_AUDIO_SENSOR, FLOOD_DAMAGE
NUM_ROWS = 24


def _data(seed=0, num_rows=NUM_ROWS):
    rng = np.random.default_rng(seed)
    x = make_inputs(MODALITIES, num_rows, rng,
                    missing=[(1, 0), (4, 0), (9, 0), (2, 2), (5, 2)])
    y = {"flood": rng.integers(0, 2, num_rows).astype("int32"),
         "damage": rng.integers(0, 3, num_rows).astype("int32")}
    return x, y


def _model(fusion="hgfn"):
    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), list(TASKS), fusion=fusion,
                        fusion_kwargs={"units": 4} if fusion == "cfc" else {"theta": 0.5},
                        head_units=4, mtl="dmtl")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


@pytest.fixture(scope="module")
def trained():
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    return export_saved_model(trained, str(base / "tiny"), return_modality_weights=True)


def _expected_weights(model, x):
    # Through the network (normalisation, then the fusion), as `fusion_weights` does.
    from hgfn_keras.evaluation.inspection import fusion_weights

    return np.asarray(fusion_weights(model, x)[0][0])


_FRESH = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    path, inputs_path, out_prefix = sys.argv[1:4]
    signature = tf.saved_model.load(path).signatures["serving_default"]
    x = dict(np.load(inputs_path))
    report = {"inputs": sorted(signature.structured_input_signature[1]),
              "outputs": sorted(signature.structured_outputs), "errors": {}}
    for batch in (1, 7):
        feed = {k: tf.constant(v[2:2 + batch]) for k, v in x.items()}
        np.savez(f"{out_prefix}_{batch}.npz",
                 **{k: v.numpy() for k, v in signature(**feed).items()})
    good = {k: tf.constant(v[:7]) for k, v in x.items()}
    bad_mask = x["modality_mask"][:7].copy()
    bad_mask[[2, 5]] = 0.0
    bad = {
        "dtype": dict(good, image=tf.constant(x["image"][:7].astype("float64"))),
        "width": dict(good, image=tf.constant(x["image"][:7, :3])),
        "rows": dict(good, audio=tf.constant(x["audio"][:5])),
        "mask": dict(good, modality_mask=tf.constant(bad_mask)),
    }
    for name, feed in bad.items():
        try:
            signature(**feed)
            report["errors"][name] = None
        except Exception as error:  # the process must survive a bad request
            report["errors"][name] = [type(error).__name__, str(error)]
    report["after_errors"] = signature(**good)["flood"].shape.as_list()
    print(json.dumps(report))
    """
)


@pytest.mark.slow
def test_fresh_process_serving_matches_keras_and_refuses_bad_input(trained, exported, tmp_path):
    x, _ = _data(seed=3)
    inputs_path = str(tmp_path / "inputs.npz")
    np.savez(inputs_path, **x)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _FRESH, exported, inputs_path, str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["inputs"] == sorted(["image", "audio", "sensor", MASK_KEY])
    assert report["outputs"] == sorted(["flood", "damage", MODALITY_WEIGHTS_KEY])
    for batch in (1, 7):
        rows = {k: v[2:2 + batch] for k, v in x.items()}
        served = dict(np.load(str(tmp_path / f"out_{batch}.npz")))
        expected = trained.predict(rows, verbose=0)
        for name in ("flood", "damage"):
            np.testing.assert_allclose(served[name], expected[name], atol=1e-5, rtol=0)
        weights = served[MODALITY_WEIGHTS_KEY]
        assert weights.shape == (batch, len(MODALITIES))
        np.testing.assert_allclose(weights, _expected_weights(trained, rows), atol=1e-5)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
        assert np.all(weights[rows[MASK_KEY] == 0] == 0)  # a masked modality weighs 0
    errors = report["errors"]
    # dtype: TensorFlow's own check of the signature, before the model runs.
    assert errors["dtype"][0] == "InvalidArgumentError"
    assert "expected to be a float tensor but is a double tensor" in errors["dtype"][1]
    assert "Bad input 'image': expected float32 [N, 4]. Received shape:] [7 3]" in (
        errors["width"][1].replace("\\'", "'"))
    assert "Bad input 'audio': every input must have the same number of rows" in (
        errors["rows"][1].replace("\\'", "'"))
    mask_error = errors["mask"][1].replace("\\'", "'")
    assert "Bad input 'modality_mask': every modality is missing" in mask_error
    assert "Rows:] [2 5]" in mask_error
    assert report["after_errors"] == [7, 1]  # still serving


@pytest.mark.slow
def test_saved_model_cli_lists_named_inputs_and_outputs(exported):
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run([str(cli), "show", "--dir", exported, "--all"],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    section = result.stdout.split("signature_def['serving_default']")[1]
    for name in ("image", "audio", "sensor", MASK_KEY):
        assert f"inputs['{name}'] tensor_info" in section
    for name in ("flood", "damage", MODALITY_WEIGHTS_KEY):
        assert f"outputs['{name}'] tensor_info" in section


def _client_rows():
    x, _ = _data(seed=5)
    x = {k: v[:3] for k, v in x.items()}  # row 1 has a masked modality
    return {k: v.tolist() for k, v in x.items()}


def test_predict_request_client_example(trained, exported):
    """The README's gRPC client example, run against the loaded signature."""
    predict_pb2 = pytest.importorskip(
        "tensorflow_serving.apis.predict_pb2",
        reason="tensorflow-serving-api==2.21.0 (test extra) is not installed")
    rows = _client_rows()
    # --- as in the README
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = "serving_default"
    for name, value in rows.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=tf.float32))
    # --- what TF Serving does with it
    signature = tf.saved_model.load(exported).signatures[request.model_spec.signature_name]
    served = signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
    expected = trained.predict({k: np.asarray(v, "float32") for k, v in rows.items()}, verbose=0)
    for name in ("flood", "damage"):
        np.testing.assert_allclose(served[name].numpy(), expected[name], atol=1e-5)


def test_rest_json_body_example(trained, exported):
    """The README's REST body (columnar "inputs"), fed as TF Serving's REST API does."""
    rows = _client_rows()
    body = json.dumps({"signature_name": "serving_default", "inputs": rows})
    request = json.loads(body)
    signature = tf.saved_model.load(exported).signatures[request["signature_name"]]
    specs = signature.structured_input_signature[1]
    served = signature(**{k: tf.constant(v, dtype=specs[k].dtype)
                          for k, v in request["inputs"].items()})
    expected = trained.predict({k: np.asarray(v, "float32") for k, v in rows.items()}, verbose=0)
    for name in ("flood", "damage"):
        np.testing.assert_allclose(served[name].numpy(), expected[name], atol=1e-5)
    assert served[MODALITY_WEIGHTS_KEY].shape == (3, len(MODALITIES))


def test_modality_weights_need_a_fusion_that_has_them(tmp_path):
    model = _model("cfc")
    assert not has_modality_weights(model)
    with pytest.raises(ValueError, match="return_modality_weights=True.*ConcatFusion"):
        export_saved_model(model, str(tmp_path / "cfc"), return_modality_weights=True)
    assert not os.path.exists(tmp_path / "cfc" / "1")


def _export_cli(*args):
    """`training.export`'s `main(argv)` in this process (`test_wheel.py` starts its console
    script in a process of its own; `test_model.py` loads a saved file in a fresh one)."""
    from training import export

    return run_as_process(export.main, *args)


@pytest.mark.slow
def test_training_export_cli(trained, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trained.save(str(run_dir / "model.keras"))
    result = _export_cli("--model", run_dir, "--name", "tiny", "--version", 3,
                         "--base-dir", tmp_path / "models")
    assert result.returncode == 0, result.stderr[-3000:]
    target = tmp_path / "models" / "tiny" / "3"
    assert (target / "saved_model.pb").is_file()
    signature = tf.saved_model.load(str(target)).signatures["serving_default"]
    assert MODALITY_WEIGHTS_KEY in signature.structured_outputs
    again = _export_cli("--model", run_dir / "model.keras", "--name", "tiny", "--version", 3,
                        "--base-dir", tmp_path / "models")
    assert again.returncode == 2
    assert "Traceback" not in again.stderr and "exists already" in again.stderr
    missing = _export_cli("--model", tmp_path / "nowhere", "--name", "tiny")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "--model must be a .keras file" in missing.stderr
