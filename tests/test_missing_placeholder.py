"""The learned placeholder of a missing modality (issue 31, item 4)."""

import keras
import numpy as np
import pytest

from hgfn_keras import Modality, Task, TrainConfig, build_model
from hgfn_keras.data.dataset import MASK_KEY
from hgfn_keras.fusion import MissingPlaceholder

MODALITIES = [Modality("image", width=4), Modality("audio", width=2)]
TASKS = [Task("flood", 2)]


def _data(rows=32):
    rng = np.random.default_rng(0)
    x = {m.name: rng.normal(size=(rows, m.width)).astype("float32") for m in MODALITIES}
    mask = np.ones((rows, 2), "float32")
    mask[::3, 1] = 0.0
    x["audio"][mask[:, 1] == 0] = 0.0
    x[MASK_KEY] = mask
    return x, {"flood": (x["image"][:, 0] > 0).astype("int32")}


def test_placeholder_replaces_only_the_missing_slots():
    layer = MissingPlaceholder(["a", "b"])
    x = {"a": np.arange(6, dtype="float32").reshape(2, 3), "b": np.ones((2, 2), "float32")}
    mask = np.array([[0, 1], [1, 0]], "float32")
    out = layer(x, modality_mask=mask)  # starts at zero: the zeroed slot
    np.testing.assert_array_equal(np.asarray(out["a"]), [[0, 0, 0], [3, 4, 5]])
    layer.placeholders["a"].assign([[7.0, 8.0, 9.0]])
    layer.placeholders["b"].assign([[-1.0, -2.0]])
    out = layer(x, modality_mask=mask)
    np.testing.assert_array_equal(np.asarray(out["a"]), [[7, 8, 9], [3, 4, 5]])
    np.testing.assert_array_equal(np.asarray(out["b"]), [[1, 1], [-1, -2]])
    again = MissingPlaceholder.from_config(layer.get_config())
    assert again.modality_names == ["a", "b"]


@pytest.mark.parametrize("names", ["ab", ["a", "a"], [], [1]])
def test_placeholder_bad_names_are_named(names):
    with pytest.raises(ValueError, match="`modality_names` must be a list of distinct"):
        MissingPlaceholder(names)


@pytest.mark.slow
def test_model_with_placeholder_trains_it_and_saves_it(tmp_path):
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = build_model(MODALITIES, TASKS, fusion="hgfn", head_units=4, mtl="lsew",
                        missing_placeholder=True)
    layer = model.network.get_layer("missing_placeholder")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    # Trained: the audio placeholder moved from zero (rows miss audio, and dropout).
    assert np.abs(np.asarray(layer.placeholders["audio"])).max() > 0
    # And used: a missing row's output depends on it.
    before = model.predict(x, verbose=0)["flood"]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["flood"], before, atol=1e-6)
    layer.placeholders["audio"].assign(layer.placeholders["audio"] + 3.0)
    after = model.predict(x, verbose=0)["flood"]
    missing = x[MASK_KEY][:, 1] == 0
    assert not np.allclose(after[missing], before[missing])
    np.testing.assert_allclose(after[~missing], before[~missing], atol=1e-6)


def test_placeholder_is_off_by_default_and_checked():
    model = build_model(MODALITIES, TASKS, head_units=4)
    assert "missing_placeholder" not in [layer.name for layer in model.network.layers]
    with pytest.raises(ValueError, match="needs use_modality_mask=True"):
        build_model(MODALITIES, TASKS, use_modality_mask=False, missing_placeholder=True)
    with pytest.raises(ValueError, match="missing_placeholder='yes'"):
        build_model(MODALITIES, TASKS, missing_placeholder="yes")
    assert TrainConfig().missing_placeholder is False
    assert TrainConfig.paper().missing_placeholder is False
    with pytest.raises(ValueError, match="missing_placeholder"):
        TrainConfig(missing_placeholder=1)
