"""Modality and task names are checked once, when the `Modality` or `Task` is made:
TensorFlow's scope-name rule, and the names the logs and the results already use."""

import numpy as np
import pytest

from hgfn_keras import Modality, Task
from hgfn_keras.data.dataset import MASK_KEY
from hgfn_keras.serving.export import MODALITY_WEIGHTS_KEY
from hgfn_keras.specs import RESERVED_MODALITY_NAMES, RESERVED_TASK_NAMES


@pytest.mark.parametrize("spec", [Modality, Task])
def test_a_non_ascii_name_is_refused_naming_the_rule(spec):
    # Was: a 30-line traceback from deep in Keras when the first weight was made
    # ("'x_größe/bias' is not a valid root scope name").
    with pytest.raises(ValueError, match=r"ASCII letters, digits and '_'.*"
                       r"Received: name='x_größe'"):
        spec("x_größe")


@pytest.mark.parametrize("spec", [Modality, Task])
def test_a_leading_underscore_is_refused_with_the_reason(spec):
    # An npz entry `x__meta` names the modality `_meta`; TensorFlow's scope names start
    # with a letter, a digit or '.': the model failed when it made its first weight.
    with pytest.raises(ValueError, match=r"must start with a letter.*TensorFlow.*"
                       r"Received: name='_meta'"):
        spec("_meta")


@pytest.mark.parametrize("name", ["loss", "mean", "val", "val_loss", "val_flood",
                                  "modality_weights"])
def test_reserved_task_names_are_refused_with_the_list(name):
    with pytest.raises(ValueError) as info:
        Task(name, 2)
    message = str(info.value)
    assert f"Received: name={name!r}" in message
    assert str(list(RESERVED_TASK_NAMES)) in message and "'val_'" in message


def test_the_reserved_names_are_the_ones_in_use():
    assert MODALITY_WEIGHTS_KEY in RESERVED_TASK_NAMES
    assert MASK_KEY in RESERVED_MODALITY_NAMES
    with pytest.raises(ValueError, match=r"reserved.*Received: name='modality_mask'"):
        Modality(MASK_KEY, width=2)


def test_ordinary_names_are_accepted():
    for name in ("flood", "x_meta", "A1", "validation", "means", "loss2", "interval"):
        assert Task(name, 2).name == name
        assert Modality(name, width=2).name == name


def test_an_npz_with_a_bad_name_is_refused_when_loaded(tmp_path):
    from hgfn_keras.data import load_npz

    path = tmp_path / "bad.npz"
    np.savez(path, x_audio=np.zeros((12, 2), "float32"), x__meta=np.zeros((12, 2), "float32"),
             y_flood=np.arange(12) % 2)
    with pytest.raises(ValueError, match="Received: name='_meta'"):
        load_npz(path)


@pytest.mark.parametrize("name", ["lambda", "class", "None"])
def test_a_python_keyword_as_a_modality_name_is_refused_upfront(name):
    # Was: accepted, trained, and refused only at export ("'lambda' is not a valid
    # parameter name": a modality is a parameter of the serving function).
    with pytest.raises(ValueError, match=rf"cannot be a Python keyword.*Received: name={name!r}"):
        Modality(name, width=2)
    assert Task(name, 2).name == name  # a task is an output key: a keyword is fine there


def test_a_keyword_task_name_exports(tmp_path):
    import keras
    import tensorflow as tf

    from hgfn_keras import build_model
    from hgfn_keras.serving.export import export_saved_model

    keras.utils.set_random_seed(0)
    model = build_model([Modality("a", width=2), Modality("b", width=2)], [Task("class", 2)],
                        fusion="cfc", head_units=2, mtl="lsew")
    x = {"a": np.ones((3, 2), "float32"), "b": np.zeros((3, 2), "float32"),
         "modality_mask": np.ones((3, 2), "float32")}
    expected = model.predict(x, verbose=0)["class"]
    serve = tf.saved_model.load(export_saved_model(model, str(tmp_path / "m"))) \
        .signatures["serving_default"]
    np.testing.assert_allclose(serve(**{k: tf.constant(v) for k, v in x.items()})["class"],
                               expected, atol=1e-6)
