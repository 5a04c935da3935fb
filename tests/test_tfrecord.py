"""The streamed form of the npz contract: TFRecord shards, their header, the reader."""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras.data.dataset import MASK_KEY, SPLITS, as_tf_dataset
from hgfn_keras.data.npz import load_npz
from hgfn_keras.data.tfrecord import (
    HEADER,
    ShardWriter,
    StreamedDataset,
    write_tfrecord,
)
from hgfn_keras.multitask.task_weighting import task_counts
from hgfn_keras.specs import Modality, Task
from tests.conftest import run_as_process, run_in_process
from training import convert

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _npz(path, n=40, split=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "x_image": rng.normal(size=(n, 5)).astype("float32") * 3 + 1,
        "x_audio": rng.normal(size=(n, 4, 3)).astype("float32"),
        "x_meta": rng.integers(1, 10, size=(n, 2)),  # integers are cast to float32; no all-zero row
        "y_flood": rng.integers(0, 2, n),
        "y_damage": np.where(rng.random(n) < 0.2, -1, rng.integers(0, 3, n)),
        "mask_audio": (rng.random(n) > 0.3).astype("int64"),
    }
    if split:
        arrays["split"] = rng.integers(0, 3, n)
        arrays["split"][:3] = [0, 1, 2]
    np.savez(path, **arrays)
    return path


def _assert_same_dataset(expected, streamed):
    assert [m.to_config() for m in streamed.modalities] == [
        m.to_config() for m in expected.modalities]
    assert [t.to_config() for t in streamed.tasks] == [t.to_config() for t in expected.tasks]
    for split in SPLITS:
        (x0, y0), (x1, y1) = expected.splits[split], streamed.splits[split]
        assert sorted(x0) == sorted(x1) and sorted(y0) == sorted(y1)
        for key in x0:
            assert x1[key].dtype == np.asarray(x0[key]).dtype, key
            np.testing.assert_array_equal(x1[key], x0[key], err_msg=f"{split} {key}")
        for key in y0:
            assert y1[key].dtype == np.int32
            np.testing.assert_array_equal(y1[key], y0[key], err_msg=f"{split} {key}")


@pytest.mark.parametrize("split", [True, False])
def test_npz_round_trip_gives_the_same_arrays(tmp_path, split):
    path = _npz(tmp_path / "crisis.npz", split=split)
    data = write_tfrecord(str(path), tmp_path / "shards", shard_rows=6, seed=3)
    expected = load_npz(path, seed=3)  # the same permutation split when there is no `split`
    assert data.name == "crisis"
    assert {s: data.size(s) for s in SPLITS} == {s: expected.size(s) for s in SPLITS}
    assert all(s["rows"] <= 6 for s in data.header["shards"])
    assert [m["name"] for m in data.header["modalities"] if m["has_mask"]] == ["audio"]
    _assert_same_dataset(expected, StreamedDataset(tmp_path / "shards").to_memory())
    # A pipeline without shuffling yields the rows in the npz's order, batch by batch.
    x, y = next(iter(data.splits_ds("test", batch_size=4, shuffle=False)))
    np.testing.assert_array_equal(x["audio"].numpy(), expected.splits["test"][0]["audio"][:4])
    np.testing.assert_array_equal(y["damage"].numpy(), expected.splits["test"][1]["damage"][:4])


def test_records_are_standard_examples(tmp_path):
    """The hand-encoded records read back through the protocol buffer's own parser."""
    data = write_tfrecord(str(_npz(tmp_path / "a.npz")), tmp_path / "s", shard_rows=100)
    expected = load_npz(tmp_path / "a.npz").splits["train"]
    record = next(iter(tf.data.TFRecordDataset(data.files("train")))).numpy()
    feature = tf.train.Example.FromString(record).features.feature
    np.testing.assert_array_equal(feature["x_audio"].float_list.value,
                                  expected[0]["audio"][0].reshape(-1))
    assert feature["mask_audio"].float_list.value == [expected[0][MASK_KEY][0, 0]]
    assert feature["y_damage"].int64_list.value == [expected[1]["damage"][0]]
    assert feature["split"].int64_list.value == [0]
    assert "mask_image" not in feature


def test_text_modalities_and_missing_labels_survive(tmp_path):
    modalities = [Modality("review", kind="text"), Modality("meta", width=2)]
    writer = ShardWriter(tmp_path / "t", modalities, [Task("rating", 5)], shard_rows=2)
    for split in SPLITS:
        writer.write(split, {"review": np.array(["gut", "très bien", ""], object),
                             "meta": np.arange(6).reshape(3, 2)},
                     {"rating": np.array([4, -1, 0])})
    x, y = writer.close().to_memory().splits["validation"]
    assert x["review"].tolist() == ["gut", "très bien", ""]
    assert y["rating"].tolist() == [4, -1, 0]
    np.testing.assert_array_equal(x[MASK_KEY], np.ones((3, 2)))


def test_statistics_equal_numpys(tmp_path):
    path = _npz(tmp_path / "s.npz", n=90)
    data = write_tfrecord(str(path), tmp_path / "shards", shard_rows=7)
    stats = data.statistics(batch_size=5)  # many batches and shards: the merge is exercised
    x, y = load_npz(path).splits["train"]
    names = data.modality_names
    for name in ("image", "audio", "meta"):
        present = x[MASK_KEY][:, names.index(name)] > 0
        values = x[name][present].astype("float64").reshape(-1, x[name].shape[-1])
        np.testing.assert_allclose(stats.modalities[name]["mean"], values.mean(axis=0),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(stats.modalities[name]["variance"], values.var(axis=0),
                                   rtol=1e-10, atol=1e-12)
        assert stats.modalities[name]["count"] == len(values)
    assert stats.num_rows == len(y["flood"])
    for task in data.tasks:
        labels = y[task.name]
        np.testing.assert_array_equal(stats.class_counts[task.name],
                                      np.bincount(labels[labels >= 0], minlength=task.num_classes))
        assert stats.missing_labels[task.name] == int(np.sum(labels == -1))
    assert task_counts(data.tasks, stats.sorted_labels()) == task_counts(data.tasks, y)


def _copy_dataset(source, target):
    shutil.copytree(source, target)
    with open(os.path.join(target, HEADER)) as f:
        return json.load(f)


def _write_header(folder, header):
    with open(os.path.join(folder, HEADER), "w") as f:
        json.dump(header, f)


def test_shards_that_disagree_are_refused_naming_the_shard(tmp_path):
    data = write_tfrecord(str(_npz(tmp_path / "a.npz")), tmp_path / "good", shard_rows=6)
    bad_shard = data.header["shards"][1]["file"]

    header = _copy_dataset(tmp_path / "good", tmp_path / "width")
    header["shards"][1]["modalities"]["image"] = [6]
    _write_header(tmp_path / "width", header)
    with pytest.raises(ValueError, match=rf"Shard '{bad_shard}'.*modality 'image'.*\[6\]"):
        StreamedDataset(tmp_path / "width")

    header = _copy_dataset(tmp_path / "good", tmp_path / "classes")
    header["shards"][1]["tasks"]["damage"] = 4
    _write_header(tmp_path / "classes", header)
    with pytest.raises(ValueError, match=rf"Shard '{bad_shard}'.*task 'damage' with 4 classes"):
        StreamedDataset(tmp_path / "classes")

    # A shard whose records do not match its header entry (copied from another dataset).
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "wide.npz", x_image=rng.normal(size=(20, 7)),
             x_audio=rng.normal(size=(20, 4, 3)), x_meta=rng.normal(size=(20, 2)),
             y_flood=np.arange(20) % 2, y_damage=np.arange(20) % 3)
    wide = write_tfrecord(str(tmp_path / "wide.npz"), tmp_path / "wide", shard_rows=6)
    _copy_dataset(tmp_path / "good", tmp_path / "records")
    shutil.copy(wide.files("train")[0], tmp_path / "records" / bad_shard)
    with pytest.raises(ValueError, match=rf"Shard '{bad_shard}'.*7 values of modality 'image'"):
        StreamedDataset(tmp_path / "records")

    # Labels beyond the header's classes: found by the one pass, naming the shard.
    writer = ShardWriter(tmp_path / "k5", data.modalities,
                         [Task("damage", 5), Task("flood", 2)], shard_rows=100, masked=["audio"])
    x, y = load_npz(tmp_path / "a.npz").splits["train"]
    for split in SPLITS:
        writer.write(split, x, dict(y, damage=np.full(len(y["damage"]), 4)))
    writer.close()
    header = _copy_dataset(tmp_path / "good", tmp_path / "labels")
    shutil.copy(tmp_path / "k5" / "train-00000.tfrecord", tmp_path / "labels" / bad_shard)
    _write_header(tmp_path / "labels", header)
    with pytest.raises(ValueError, match=rf"Shard '{bad_shard}'.*Task 'damage'.*\[4\] at row"):
        StreamedDataset(tmp_path / "labels").statistics()


def test_bad_folders_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="No dataset.json"):
        StreamedDataset(tmp_path)
    data = write_tfrecord(str(_npz(tmp_path / "a.npz")), tmp_path / "s", shard_rows=50)
    with pytest.raises(ValueError, match="holds a dataset already"):
        write_tfrecord(str(tmp_path / "a.npz"), tmp_path / "s")
    with pytest.raises(ValueError, match="shard_rows"):
        write_tfrecord(str(tmp_path / "a.npz"), tmp_path / "t", shard_rows=0)
    with pytest.raises(ValueError, match="split"):
        data.splits_ds("dev", 4)
    writer = ShardWriter(tmp_path / "w", data.modalities, data.tasks)
    with pytest.raises(ValueError, match=r"Task 'flood': labels must be in \[0, 2\)"):
        writer.write("train", {"audio": np.zeros((1, 4, 3)), "image": np.zeros((1, 5)),
                               "meta": np.zeros((1, 2))}, {"damage": [0], "flood": [2]})
    with pytest.raises(ValueError, match=r"Task 'flood': `y_true` must hold integer"):
        writer.write("train", {"audio": np.zeros((1, 4, 3)), "image": np.zeros((1, 5)),
                               "meta": np.zeros((1, 2))}, {"damage": [0], "flood": [0.5]})


def test_training_from_shards_equals_training_from_the_npz(tmp_path):
    """Same rows in the same order and the same seed: the same weights."""
    path = _npz(tmp_path / "a.npz", n=60)
    data = write_tfrecord(str(path), tmp_path / "s", shard_rows=7)
    x, y = load_npz(path).splits["train"]
    import keras

    def train(dataset):
        keras.utils.set_random_seed(0)
        inputs = {m.name: keras.Input(shape=(5,) if m.name == "image" else
                                      (4, 3) if m.name == "audio" else (2,), name=m.name)
                  for m in data.modalities}
        inputs[MASK_KEY] = keras.Input(shape=(3,), name=MASK_KEY)
        flat = [keras.layers.Flatten()(v) for v in inputs.values()]
        hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()(flat))
        outputs = {"damage": keras.layers.Dense(3, name="damage")(hidden),
                   "flood": keras.layers.Dense(2, name="flood")(hidden)}
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(0.01),
                      loss={k: keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True, ignore_class=-1) for k in outputs})
        model.fit(dataset, epochs=2, verbose=0, shuffle=False)
        return model.get_weights()

    from_npz = train(as_tf_dataset(x, y, batch_size=8))
    from_shards = train(data.splits_ds("train", batch_size=8, shuffle=False))
    for a, b in zip(from_npz, from_shards):
        np.testing.assert_array_equal(a, b)


def test_shuffled_training_pipeline_sees_every_row_once_per_epoch(tmp_path):
    data = write_tfrecord(str(_npz(tmp_path / "a.npz", n=80)), tmp_path / "s", shard_rows=5)
    ds = data.splits_ds("train", batch_size=7, seed=1, shuffle_buffer=10)
    expected = np.sort(load_npz(tmp_path / "a.npz").splits["train"][0]["image"][:, 0])
    orders = []
    for _ in range(2):
        seen = np.concatenate([x["image"][:, 0].numpy() for x, _ in ds])
        np.testing.assert_array_equal(np.sort(seen), expected)
        orders.append(seen)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
    again = np.concatenate([x["image"][:, 0].numpy() for x, _ in
                            data.splits_ds("train", batch_size=7, seed=1, shuffle_buffer=10)])
    np.testing.assert_array_equal(again, orders[0])  # the seed fixes the order
    options = ds.options().experimental_distribute.auto_shard_policy
    assert options == tf.data.experimental.AutoShardPolicy.FILE


def test_convert_cli(tmp_path):
    path = _npz(tmp_path / "a.npz")
    # In this process too: `test_wheel.py` starts the console script in one of its own.
    run = run_as_process(convert.main, "--input", path, "--output", tmp_path / "out",
                         "--shard-rows", "9")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Wrote 40 rows of 'a'" in run.stdout
    _assert_same_dataset(load_npz(path), StreamedDataset(tmp_path / "out").to_memory())
    for argv, message in [
        (["--input", str(tmp_path / "missing.npz"), "--output", str(tmp_path / "o2")],
         "The feature file does not exist"),
        (["--input", str(path), "--output", str(tmp_path / "out")], "holds a dataset already"),
        (["--input", str(path), "--output", str(tmp_path / "o3"), "--limit", "20"],
         "--limit applies only to --input clothing"),
        (["--input", "clothing", "--output", str(tmp_path / "o4"), "--limit", "5"],
         "`limit` must be None or an integer >= 10"),
    ]:
        # Refusals come before any work: `main(argv)` in this process.
        bad = run_in_process(convert.main, *argv)
        assert bad.returncode == 2
        assert "Traceback" not in bad.stderr
        # One error line.
        lines = [line for line in bad.stderr.splitlines() if line.startswith("error")]
        assert len(lines) == 1 and message in lines[0], bad.stderr


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import keras
    from hgfn_keras.data.tfrecord import StreamedDataset

    data = StreamedDataset(sys.argv[1])
    ds = data.splits_ds("train", batch_size=8, seed=0)
    seen = []
    for x, _ in strategy.experimental_distribute_dataset(ds):
        for part in strategy.experimental_local_results(x["image"]):
            seen.extend(part.numpy()[:, 0].tolist())
    # A small custom loop: the data path is what is tested (Keras' own `fit` under
    # this strategy needs the workaround in hgfn_keras/utils/distribute.py).
    keras.utils.set_random_seed(0)
    with strategy.scope():
        dense = keras.layers.Dense(2)
        dense.build((None, 7))
        optimizer = keras.optimizers.SGD(0.1)

    @tf.function
    def step(x, y):
        def replica(x, y):
            with tf.GradientTape() as tape:
                logits = dense(tf.concat([x["image"], x["meta"]], axis=1))
                loss = tf.nn.compute_average_loss(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y["flood"], logits),
                    global_batch_size=8)
            optimizer.apply_gradients(zip(tape.gradient(loss, dense.trainable_variables),
                                          dense.trainable_variables))
        strategy.run(replica, args=(x, y))

    for _ in range(2):
        for x, y in strategy.experimental_distribute_dataset(ds):
            step(x, y)
    model = dense
    print(json.dumps({"seen": seen, "weights": [w.tolist() for w in model.get_weights()]}))
""")


@pytest.mark.slow
def test_two_workers_on_localhost_read_their_own_shards(tmp_path):
    """Under MultiWorkerMirroredStrategy each worker reads its own files (FILE
    auto-sharding): together they read every training row once, and train to the
    same weights."""
    data = write_tfrecord(str(_npz(tmp_path / "a.npz", n=80)), tmp_path / "s", shard_rows=6)
    assert len(data.files("train")) >= 2
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "s")],
                                        cwd=REPO, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=300))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for index, (worker, (out, err)) in enumerate(zip(workers, outputs)):
        assert worker.returncode == 0, f"worker {index}:\n{err[-3000:]}"
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    first, second = (np.asarray(r["seen"]) for r in reports)
    assert len(first) and len(second)
    assert not set(first.tolist()) & set(second.tolist())  # disjoint: their own shards
    expected = load_npz(tmp_path / "a.npz").splits["train"][0]["image"][:, 0]
    np.testing.assert_array_equal(np.sort(np.concatenate([first, second])), np.sort(expected))
    for a, b in zip(reports[0]["weights"], reports[1]["weights"]):
        np.testing.assert_array_equal(a, b)
