"""numpy integers are integers: `np.int64(3)` (what `len`, `.shape` arithmetic and npz
values give) is accepted wherever a Python int is, and kept as a Python int so that
configs stay JSON; a bool (`True`, `np.True_`) is still refused."""

import json

import keras
import numpy as np
import pytest

from hgfn_keras import Modality, Task, build_model
from hgfn_keras.encoders.audio_encoder import AudioEncoder
from hgfn_keras.encoders.temporal_encoder import TemporalEncoder
from hgfn_keras.encoders.text_encoder import TextEncoder
from hgfn_keras.fusion.alignment import ModalityAlignment
from hgfn_keras.fusion.concat_fusion import ConcatFusion
from hgfn_keras.fusion.dynamic_attention_unit import DynamicAttentionUnit
from hgfn_keras.fusion.hierarchical_graph_fusion import HierarchicalGraphFusion
from hgfn_keras.fusion.tensor_fusion import TensorFusion
from hgfn_keras.fusion.vertex_network import VertexNetwork
from hgfn_keras.multitask.loss_tracker import TaskLossTracker
from hgfn_keras.utils.arguments import is_integer, optional_positive_int, positive_int

I = np.int64


def test_the_helpers():
    assert all(is_integer(v) for v in (3, I(3), np.int32(3), np.uint8(3)))
    assert not any(is_integer(v) for v in (True, np.True_, 3.0, np.float64(3), "3", None))
    assert positive_int("units", I(8)) == 8 and type(positive_int("units", I(8))) is int
    assert optional_positive_int("units", None) is None
    assert type(optional_positive_int("units", np.int32(2))) is int
    for bad in (np.True_, True, I(0), 2.0):
        with pytest.raises(ValueError, match="`units` must be a positive integer"):
            positive_int("units", bad)


def test_specs_take_numpy_integers_and_keep_python_ints():
    task = Task("damage", num_classes=I(3))
    modality = Modality("image", width=I(8))
    sequence = Modality("clip", kind="sequence", width=np.int32(4), steps=I(5))
    assert type(task.num_classes) is int and type(modality.width) is int
    assert type(sequence.steps) is int
    json.dumps([task.to_config(), modality.to_config(), sequence.to_config()])
    with pytest.raises(ValueError, match="`num_classes` must be an integer >= 2"):
        Task("flood", num_classes=np.True_)
    with pytest.raises(ValueError, match="`width` must be a positive integer"):
        Modality("image", width=np.True_)
    with pytest.raises(ValueError, match="`steps` must be a positive integer or None"):
        Modality("clip", kind="sequence", width=4, steps=I(0))


@pytest.mark.parametrize("make", [
    lambda: HierarchicalGraphFusion(units=I(8), max_order=I(2), dau_filters=I(2),
                                    vertex_filters=I(2), vertex_kernel_size=I(3),
                                    max_vertices=I(100)),
    lambda: ConcatFusion(units=I(4)),
    lambda: TensorFusion(units=I(4), rank=I(2)),
    lambda: DynamicAttentionUnit(filters=I(2), kernel_size=I(3)),
    lambda: VertexNetwork(units=I(4), filters=I(2), kernel_size=I(3)),
    lambda: ModalityAlignment("project", units=I(4)),
    lambda: TemporalEncoder(units=I(4), num_layers=I(1), attention_units=I(2)),
    lambda: TextEncoder(["a", "b"], embedding_dim=I(4), max_tokens=I(8)),
    lambda: AudioEncoder(sample_rate=I(8000), num_mel_bins=I(8), frame_length=I(64),
                         frame_step=I(32), fft_length=I(64)),
], ids=["hgfn", "concat", "tensor", "dau", "vertex", "alignment", "temporal", "text", "audio"])
def test_layers_take_numpy_integers_and_serialise_as_json(make):
    layer = make()
    config = layer.get_config()
    json.dumps(config)  # np.int64 is not JSON serialisable: every value came back an int
    assert type(layer).from_config(config).get_config() == config


@pytest.mark.parametrize("make, message", [
    (lambda: ConcatFusion(units=np.True_), "`units` must be a positive integer"),
    (lambda: TensorFusion(units=4, rank=np.True_), "`rank` must be None, 'auto' or an integer"),
    (lambda: HierarchicalGraphFusion(max_order=np.True_), "`max_order` must be an integer >= 2"),
    (lambda: DynamicAttentionUnit(filters=np.True_), "`filters` must be a positive integer"),
    (lambda: TemporalEncoder(attention_units=np.True_), "`attention_units` must be a positive"),
    (lambda: TaskLossTracker(np.True_), "`num_tasks` must be a positive integer"),
])
def test_a_numpy_bool_is_still_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_model_built_from_numpy_sizes_saves_and_loads(tmp_path):
    assert TaskLossTracker(I(2)).num_tasks == 2
    model = build_model([Modality("a", width=I(3)), Modality("b", width=I(2))],
                        [Task("t", I(2)), Task("u", I(3))], fusion="hgfn",
                        fusion_kwargs={"units": I(4), "max_order": I(2)}, head_units=4)
    x = {"a": np.zeros((4, 3), "float32"), "b": np.ones((4, 2), "float32")}
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["u"], expected["u"], atol=1e-6)


def test_build_model_takes_a_numpy_modality_dropout():
    modalities = [Modality("a", width=3), Modality("b", width=2)]
    for rate in (np.float32(0.25), np.int64(0)):
        build_model(modalities, [Task("t", 2)], fusion="cfc", head_units=2, mtl="lsew",
                    modality_dropout=rate)
    with pytest.raises(ValueError, match="`modality_dropout` must be a number in"):
        build_model(modalities, [Task("t", 2)], fusion="cfc", head_units=2, mtl="lsew",
                    modality_dropout=np.True_)
