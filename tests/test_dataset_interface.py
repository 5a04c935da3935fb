"""The one dataset interface: `MultimodalDataset` and `StreamedDataset` answer the
recipe's questions alike, and the in-memory answers keep the numbers of before."""

import warnings

import keras
import numpy as np
import pytest

from hgfn_keras import TrainConfig, recipe
from hgfn_keras.data.dataset import MASK_KEY, SPLITS, Dataset
from hgfn_keras.data.npz import load_npz
from hgfn_keras.data.tfrecord import write_tfrecord
from hgfn_keras.encoders import TextEncoder


def _npz(path, n=60):
    rng = np.random.default_rng(0)
    np.savez(path, x_image=rng.normal(size=(n, 5)) * 3 + 1, x_audio=rng.normal(size=(n, 4, 3)),
             y_flood=rng.integers(0, 2, n), y_damage=np.where(rng.random(n) < 0.2, -1,
                                                              rng.integers(0, 3, n)),
             mask_audio=(rng.random(n) > 0.3).astype("int64"))
    return path


@pytest.fixture
def both(tmp_path):
    path = _npz(tmp_path / "a.npz")
    return load_npz(path), write_tfrecord(str(path), tmp_path / "s", shard_rows=7)


def test_both_kinds_answer_alike(both):
    memory, streamed = both
    for data in both:
        assert isinstance(data, Dataset)
    for split in SPLITS:
        assert memory.size(split) == streamed.size(split)
        expected = memory.labels(split)
        got = streamed.labels(split)
        for task in memory.task_names:
            np.testing.assert_array_equal(got[task], expected[task])
        # Unshuffled pipelines give the rows in the order `labels` gives them.
        for data in both:
            inputs, callbacks = data.pipeline(split, 8, shuffle=False, labels=False)
            assert callbacks == []
            rows = np.concatenate([np.asarray(x[MASK_KEY]) for x in inputs])
            np.testing.assert_array_equal(rows, memory.splits[split][0][MASK_KEY])
    a, b = memory.statistics(), streamed.statistics()
    for name in ("image", "audio"):
        for key in ("mean", "variance"):
            np.testing.assert_allclose(a.modalities[name][key], b.modalities[name][key],
                                       rtol=1e-10, atol=1e-12)
        assert a.modalities[name]["count"] == b.modalities[name]["count"]
    for task in memory.task_names:
        np.testing.assert_array_equal(a.class_counts[task], b.class_counts[task])
        assert a.missing_labels[task] == b.missing_labels[task]
        assert sorted(memory.training_labels()[task]) == sorted(streamed.training_labels()[task])
    # The in-memory training split comes with its epoch-keyed order's callback.
    assert len(memory.pipeline("train", 8, seed=0).callbacks) == 1
    assert streamed.pipeline("train", 8, seed=0).callbacks == []


def test_in_memory_statistics_give_exactly_adapts_normalisation(both):
    """The recipe sets the statistics on both kinds; in memory they are the very
    numbers `model.adapt(x_train)` set before (same seeds, same metrics)."""
    memory, _ = both
    config = TrainConfig(fusion="cfc", mtl="lsew", head_units=4)
    keras.utils.set_random_seed(0)
    model = recipe.build(config, memory)
    keras.utils.set_random_seed(0)
    adapted = recipe.build(config, memory)
    adapted.adapt(memory.splits["train"][0])
    for name, layer in model.normalization_layers.items():
        other = adapted.normalization_layers[name]
        for a, b in zip(layer.weights, other.weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


def test_a_modality_missing_in_every_training_row_warns_on_both_kinds(tmp_path):
    rng = np.random.default_rng(0)
    n = 30
    np.savez(tmp_path / "m.npz", x_a=rng.normal(size=(n, 3)), x_b=rng.normal(size=(n, 2)),
             y_t=np.arange(n) % 2, mask_b=np.zeros(n, "int64"),
             split=np.repeat([0, 1, 2], [18, 6, 6]))
    memory = load_npz(tmp_path / "m.npz")
    streamed = write_tfrecord(str(tmp_path / "m.npz"), tmp_path / "s", shard_rows=5)
    for data in (memory, streamed):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            recipe.build(TrainConfig(fusion="cfc", mtl="lsew", head_units=4), data)
        assert any("Modality 'b' is missing in every training row" in str(w.message)
                   for w in caught), [str(w.message) for w in caught]


def test_text_encoder_from_counts_without_a_frequent_token_is_named():
    with pytest.raises(ValueError, match=r"No token occurs at least 2 times in the training "
                                         r"texts \(2 distinct tokens counted\)"):
        TextEncoder.from_token_counts({"a": 1, "b": 1})
    assert (TextEncoder.from_token_counts({"b": 2, "a": 2, "c": 5}).vocabulary
            == TextEncoder.from_texts(["c c c c c a a b b"]).vocabulary == ["c", "a", "b"])
