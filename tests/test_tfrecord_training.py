"""Training from TFRecord shards (`--dataset tfrecord:DIR`) through the library's recipe."""

import json

import keras
import numpy as np
import pytest

from hgfn_keras import TrainConfig, recipe
from hgfn_keras.data import StreamedDataset, load_dataset
from hgfn_keras.data.npz import load_npz
from hgfn_keras.encoders import TextEncoder
from hgfn_keras.data.tfrecord import HEADER, ShardWriter, write_tfrecord
from hgfn_keras.specs import Modality, Task
from tests.conftest import run_as_process
#: How far the test metrics of the shard run may be from the npz run's. The rows are
#: the same, the seed and the initial weights too, but the batches differ (the
#: shards are interleaved and shuffled within a buffer, the npz rows by a seeded
#: permutation). On this learnable data both runs reach about 0.85 mean accuracy
#: and F1 on the 80 test rows (measured: npz 0.844 / 0.842, shards 0.850 / 0.849),
#: where one row is 0.0125 of a task's accuracy.
TOLERANCE = 0.1


def _learnable_npz(path, n=400, seed=0):
    """Two vector modalities and two tasks that the features decide."""
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, 6)).astype("float32") * 2 + 3
    meta = rng.normal(size=(n, 3)).astype("float32")
    np.savez(path, x_image=image, x_meta=meta,
             y_flood=(image[:, 0] + image[:, 1] > 6).astype("int64"),
             y_damage=np.argmax(meta, axis=1),
             mask_meta=(rng.random(n) > 0.1).astype("int64"))
    return path


def _run(argv):
    """`training.train`'s `main(argv)` in this process (the process is not the point)."""
    from training import train

    return run_as_process(train.main, *argv)


def test_load_dataset_opens_the_shards(tmp_path):
    write_tfrecord(str(_learnable_npz(tmp_path / "a.npz", n=60)), tmp_path / "s", shard_rows=9)
    data = load_dataset(f"tfrecord:{tmp_path / 's'}")
    assert isinstance(data, StreamedDataset) and data.size("train") == 36
    with pytest.raises(ValueError, match="`limit` does not apply to a TFRecord dataset"):
        load_dataset(f"tfrecord:{tmp_path / 's'}", limit=20)
    with pytest.raises(ValueError, match="'tfrecord:DIR'"):
        load_dataset("tfrecord:")


def test_build_from_shards_equals_build_from_the_npz(tmp_path):
    """Same seed: the same initial weights, normalisation statistics (streamed
    float64 merge vs numpy, to float32 rounding) and DMTL N / n_f."""
    path = _learnable_npz(tmp_path / "a.npz", n=80)
    streamed = write_tfrecord(str(path), tmp_path / "s", shard_rows=7)
    in_memory = load_npz(path)
    config = TrainConfig(fusion="hgfn", mtl="dmtl", head_units=4, batch_size=16)
    models, counts = [], []
    for dataset in (in_memory, streamed):
        keras.utils.set_random_seed(0)
        model = recipe.build_and_compile(config, dataset)
        weighting = model.task_weighting
        original = weighting.set_task_counts

        def spy(num_samples, positives, task_names=None, original=original):
            counts.append((float(num_samples), [float(p) for p in positives], task_names))
            return original(num_samples, positives, task_names)

        weighting.set_task_counts = spy
        _, _, callbacks = recipe.training._training_pipelines(model, config, dataset)
        assert len(callbacks) == (0 if dataset is streamed else 1)  # EpochOrder: npz only
        models.append(model)
    for a, b in zip(*(m.get_weights() for m in models)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert len(counts) == 2 and counts[0] == counts[1]
    stats = streamed.statistics()
    assert streamed.statistics() is stats  # one pass, shared by build and fit


def test_text_modalities_build_from_shards_like_from_memory(tmp_path):
    """The streamed pass counts the tokens as `TextEncoder` does: the same vocabulary
    (order and ties) and, with the same seed, the same initial weights."""
    texts = np.array(["Good dress!", "bad", "good, GOOD fit", "très bien", "", "fit bad",
                      "dress dress", "ok", "b a", "a b"] * 3, object)
    writer = ShardWriter(tmp_path / "s", [Modality("review", kind="text"),
                                          Modality("image", width=2)], [Task("flood", 2)],
                         shard_rows=4)
    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        writer.write(split, {"review": texts, "image": rng.normal(size=(len(texts), 2))},
                     {"flood": np.arange(len(texts)) % 2})
    streamed = writer.close()
    config = TrainConfig(fusion="cfc", mtl="lsew", head_units=4, embedding_dim=4)
    models = []
    for dataset in (streamed.to_memory(), streamed):
        keras.utils.set_random_seed(0)
        models.append(recipe.build(config, dataset))
    vocabularies = [[layer.vocabulary for layer in m.network.layers
                     if isinstance(layer, TextEncoder)][0] for m in models]
    assert vocabularies[0] == vocabularies[1]
    assert vocabularies[0][:3] == ["dress", "good", "a"]  # 9 each for the first two: a tie, alphabetical
    for a, b in zip(*(m.get_weights() for m in models)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_cli_trains_from_shards_like_from_the_npz(tmp_path):
    path = _learnable_npz(tmp_path / "a.npz")
    write_tfrecord(str(path), tmp_path / "shards", shard_rows=40)
    common = ["--fusion", "hgfn", "--mtl", "dmtl", "--epochs", "8", "--batch-size", "32",
              "--seed", "0", "--no-export", "--verbose", "0"]
    metrics = {}
    for kind, spec in [("npz", f"npz:{path}"), ("tfrecord", f"tfrecord:{tmp_path / 'shards'}")]:
        out = tmp_path / kind
        run = _run(["--dataset", spec, "--output-dir", str(out), *common])
        assert run.returncode == 0, run.stderr[-3000:]
        assert "rows {'train': 240, 'validation': 80, 'test': 80}" in run.stdout
        metrics[kind] = json.loads((out / "metrics.json").read_text())
        assert (out / "model.keras").exists() and (out / "task_weights.csv").exists()
    assert metrics["npz"]["run"]["test_rows"] == metrics["tfrecord"]["run"]["test_rows"] == 80
    for key in ("accuracy", "f1"):
        a, b = metrics["npz"]["mean"][key], metrics["tfrecord"]["mean"][key]
        assert a > 0.8 and b > 0.8, (key, a, b)  # both learnt
        assert abs(a - b) <= TOLERANCE, (key, a, b)


def test_cli_refuses_shards_that_disagree(tmp_path):
    data = write_tfrecord(str(_learnable_npz(tmp_path / "a.npz", n=60)), tmp_path / "s",
                          shard_rows=9)
    bad = data.header["shards"][2]["file"]
    header = dict(data.header)
    header["shards"][2]["modalities"]["image"] = [8]
    with open(tmp_path / "s" / HEADER, "w", encoding="utf-8") as f:
        json.dump(header, f)
    run = _run(["--dataset", f"tfrecord:{tmp_path / 's'}", "--no-export",
                "--output-dir", str(tmp_path / "out")])
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, run.stderr
    assert f"Shard '{bad}'" in lines[0] and "modality 'image'" in lines[0], lines[0]
