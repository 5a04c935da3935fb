"""Loading a `.keras` never fetches a URL from a hub handle before the user asked (issue 30):
a model file whose `AudioEncoder` / `HubEncoder` names `https://...` fetched it as soon as
`load_model` read it, before any check. Now such a handle in a config is refused, naming
it and the way to allow it (`trust_handles()`); local SavedModel folders load as before."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras.encoders import AudioEncoder, HubEncoder, ImageEncoder, trust_handles

URL = "https://example.invalid/hostile/module"


class _Module(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def __call__(self, waves):
        return tf.stack([tf.reduce_mean(waves, 1), tf.reduce_max(waves, 1)], axis=1)


@pytest.fixture(scope="module")
def module_path(tmp_path_factory):
    path = os.fspath(tmp_path_factory.mktemp("hub") / "audio")
    tf.saved_model.save(_Module(), path)
    return path


@pytest.fixture
def fetches(monkeypatch, module_path):
    """Records every `hub.load`; a URL gets the local module (no network in tests)."""
    import tensorflow_hub as hub

    seen, real = [], hub.load

    def load(handle, *args, **kwargs):
        seen.append(handle)
        return real(module_path if "://" in handle else handle, *args, **kwargs)

    monkeypatch.setattr(hub, "load", load)
    return seen


def _model_file(tmp_path, module_path, handle):
    """A `.keras` model with an AudioEncoder whose saved handle is `handle`."""
    inputs = keras.Input((50,))
    model = keras.Model(inputs, keras.layers.Dense(1)(AudioEncoder(module_path)(inputs)))
    path = tmp_path / "model.keras"
    model.save(path)
    hostile = tmp_path / "hostile.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(hostile, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(json.loads(data)).replace(json.dumps(module_path)[1:-1],
                                                            handle).encode()
            target.writestr(item, data)
    return hostile


def test_a_model_file_naming_a_url_is_refused_before_any_fetch(tmp_path, module_path, fetches):
    path = _model_file(tmp_path, module_path, URL)
    fetches.clear()  # building the model loaded the local folder
    with pytest.raises(ValueError) as caught:
        keras.saving.load_model(path)
    assert (f"This model's AudioEncoder would fetch {URL!r} as it is loaded: a saved model "
            "never fetches a URL unasked") in str(caught.value)
    assert "trust_handles" in str(caught.value)
    assert fetches == []
    with trust_handles():  # asked for: fetched
        model = keras.saving.load_model(path)
    assert fetches == [URL]
    assert model.predict(np.ones((2, 50), "float32"), verbose=0).shape == (2, 1)


def test_each_hub_encoder_config_refuses_a_url_and_code_may_ask(fetches, module_path):
    with pytest.raises(ValueError, match="HubEncoder would fetch"):
        HubEncoder.from_config({"handle": URL, "module_dtype": "float32"})
    with pytest.raises(ValueError, match="ImageEncoder would fetch"):
        ImageEncoder.from_config({"backbone": URL, "weights": None})
    assert fetches == []
    HubEncoder(URL, module_dtype="float32")  # built in code: the caller's own request
    assert fetches == [URL]
    config = HubEncoder(module_path, module_dtype="float32").get_config()
    assert HubEncoder.from_config(config).handle == module_path  # a local folder loads


def test_training_predict_refuses_it_in_one_line_and_trust_handles_allows_it(
        tmp_path, module_path, fetches, capsys):
    from training import predict

    path = _model_file(tmp_path, module_path, URL)
    fetches.clear()
    source = tmp_path / "in.csv"
    source.write_text("id,audio\n1,0.5\n")
    argv = ["--model", str(path), "--input", str(source), "--output", str(tmp_path / "p.csv")]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would fetch" in err[0] and "--trust-handles" in err[0], err
    assert fetches == []
    assert predict.main([*argv, "--trust-handles"]) == 2  # loaded; not a MultiTaskModel
    assert "is not a hgfn_keras MultiTaskModel" in capsys.readouterr().err
    assert fetches == [URL]
