"""tf.distribute: the custom train step under MirroredStrategy and MultiWorkerMirroredStrategy.

The two slow tests run in subprocesses (the logical CPUs and the collective ops
must be configured before TensorFlow starts) with timeouts, so a hung collective
fails the test instead of the suite.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import hgfn_keras  # noqa: F401  (registers the classes a saved model names)
from hgfn_keras.utils import distribute

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    env.update(extra)
    return env


def test_get_strategy_by_name(monkeypatch):
    assert distribute.get_strategy(None).num_replicas_in_sync == 1
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.get_strategy("multi-worker")
    with pytest.raises(ValueError, match="Received: 'ring'"):
        distribute.get_strategy("ring")


MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from hgfn_keras import Modality, Task, build_model

    mtl = sys.argv[1]
    modalities = [Modality("a", width=6), Modality("b", width=4), Modality("c", width=3)]
    tasks = [Task("t1", 2), Task("t2", 3)]
    rng = np.random.default_rng(0)
    x = {m.name: rng.normal(size=(32, m.width)).astype("float32") for m in modalities}
    y = {t.name: rng.integers(0, t.num_classes, 32).astype("int32") for t in tasks}

    def train(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            # No random masks (modality dropout), so that the runs can be compared.
            model = build_model(modalities, tasks, mtl=mtl, dropout=0.0, head_units=8,
                                modality_dropout=0.0,
                                shared_units=8 if mtl == "gradnorm" else None,
                                mtl_kwargs={"learning_rate": 0.05} if mtl == "dmtl" else None)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.set_task_counts(y)
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        model.fit(data, epochs=2, verbose=0, shuffle=False)
        replicas = [np.asarray(v).tolist() for v in
                    strategy.experimental_local_results(model.task_weights.value)]
        return model, replicas

    one, _ = train(tf.distribute.get_strategy())
    two, replicas = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print(json.dumps({
        "replicas": two.distribute_strategy.num_replicas_in_sync,
        "task_weights_one": one.task_weights.numpy().tolist(),
        "task_weights_per_replica": replicas,
        "max_weight_difference": max(float(np.max(np.abs(a.numpy() - b.numpy())))
                                     for a, b in zip(one.weights, two.weights)),
    }))
""")


@pytest.mark.slow
@pytest.mark.parametrize("mtl", ["dmtl", "gradnorm", "moo"])
def test_mirrored_two_replicas_train_like_one(mtl):
    """Two replicas on one global batch give the single-replica step: losses,
    gradients and the task-weight update are reduced across replicas."""
    done = subprocess.run([sys.executable, "-c", MIRRORED, mtl], capture_output=True,
                          text=True, timeout=300, env=_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    first, second = result["task_weights_per_replica"]
    assert first == second  # identical on every replica
    np.testing.assert_allclose(first, result["task_weights_one"], rtol=1e-4, atol=1e-5)
    assert result["task_weights_one"] != [1.0, 1.0]  # the weights did move
    assert result["max_weight_difference"] < 1e-4


MIRRORED_TEXT = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from hgfn_keras import Modality, Task, TextEncoder, build_model

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["good", "bad", "café", "shirt"], 3)) for _ in range(32)]
    x = {"review": np.array(texts), "b": rng.normal(size=(32, 3)).astype("float32")}
    y = {"t1": rng.integers(0, 2, 32).astype("int32"), "t2": rng.integers(0, 3, 32)}

    def train(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            encoder = TextEncoder.from_texts(texts, min_count=1, embedding_dim=4, max_tokens=8)
            model = build_model([Modality("review", kind="text"), Modality("b", width=3)],
                                [Task("t1", 2), Task("t2", 3)], mtl="dmtl", dropout=0.0,
                                head_units=4, modality_dropout=0.0,
                                encoders={"review": encoder},
                                mtl_kwargs={"learning_rate": 0.05})
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=16, verbose=0,
                  shuffle=False)
        return model, model.predict(x, batch_size=16, verbose=0)["t2"]

    one, p_one = train(tf.distribute.get_strategy())
    two, p_two = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print(json.dumps({
        "replicas": two.distribute_strategy.num_replicas_in_sync,
        "task_weights_one": one.task_weights.numpy().tolist(),
        "task_weights_two": two.task_weights.numpy().tolist(),
        "max_weight_difference": max(float(np.max(np.abs(a.numpy() - b.numpy())))
                                     for a, b in zip(one.weights, two.weights)),
        "max_prediction_difference": float(np.max(np.abs(p_one - p_two))),
    }))
""")


@pytest.mark.slow
def test_mirrored_two_replicas_train_a_text_model_like_one():
    """A raw-text model under MirroredStrategy with 2 replicas (Keras' symbolic build
    summed the batch's strings across replicas: "Value for attr 'T' of string ... AddN")
    trains, validates and predicts as on one replica (`distribute.symbolic_build`)."""
    done = subprocess.run([sys.executable, "-c", MIRRORED_TEXT], capture_output=True,
                          text=True, timeout=300, env=_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    np.testing.assert_allclose(result["task_weights_two"], result["task_weights_one"],
                               rtol=1e-4, atol=1e-5)
    assert result["task_weights_one"] != [1.0, 1.0]  # DMTL moved them
    assert result["max_weight_difference"] < 1e-4
    assert result["max_prediction_difference"] < 1e-4


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _two_workers(tmp_path, dataset, *extra):
    """Runs two `training.train --strategy multi-worker` processes on `dataset`;
    returns each one's saved weights (`{name: array}`)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        command = [sys.executable, "-m", "training.train", "--dataset", dataset,
                   "--fusion", "hgfn", "--mtl", "dmtl",
                   "--distribution", "multi-worker", "--epochs", "2", "--batch-size", "8",
                   "--head-units", "8", "--tdb-learning-rate", "0.05", "--no-export",
                   "--verbose", "0", "--output-dir", str(tmp_path / f"worker{index}"), *extra]
        workers.append(subprocess.Popen(command, cwd=REPO, env=_env(TF_CONFIG=tf_config),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=420)[0])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for index, (worker, output) in enumerate(zip(workers, outputs)):
        assert worker.returncode == 0, f"worker {index}:\n{output[-3000:]}"
    saved = []
    for index in range(2):  # read here: loading a saved model needs no process of its own
        model = keras.saving.load_model(tmp_path / f"worker{index}" / "model.keras",
                                        compile=False)
        saved.append({"task_weights": model.task_weights.numpy(),
                      **{f"w{i}": w.numpy() for i, w in enumerate(model.weights)}})
    return saved


def _assert_identical(saved):
    first, second = saved
    assert sorted(first) == sorted(second)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    weights = first["task_weights"]
    assert not np.allclose(weights, 1.0)  # DMTL moved them, identically on both workers
    np.testing.assert_allclose(weights.sum(), 2.0, rtol=1e-5)


@pytest.mark.slow
def test_two_workers_on_localhost_end_with_the_same_weights(tmp_path):
    """Two `training.train --strategy multi-worker` processes (keras#20585's
    workaround in hgfn_keras/utils/distribute.py) train to identical weights."""
    rng = np.random.default_rng(0)
    n = 48
    np.savez(
        tmp_path / "tiny.npz",
        x_a=rng.normal(size=(n, 6)).astype("float32"),
        x_b=rng.normal(size=(n, 4)).astype("float32"),
        y_t1=rng.integers(0, 2, n), y_t2=rng.integers(0, 3, n),
        split=np.repeat([0, 1, 2], [32, 8, 8]),
    )
    _assert_identical(_two_workers(tmp_path, f"npz:{tmp_path / 'tiny.npz'}"))


@pytest.mark.slow
def test_two_workers_on_text_shards_end_with_the_same_weights(tmp_path):
    """The same from TFRecord shards with a raw-text modality: each worker reads its
    own shards, both build the vocabulary from the one streamed pass."""
    from hgfn_keras.data.tfrecord import ShardWriter
    from hgfn_keras.specs import Modality, Task

    rng = np.random.default_rng(0)
    words = np.array(["red", "blue", "dress", "fits", "small", "large", "love", "bad"])
    writer = ShardWriter(tmp_path / "shards", [Modality("review", kind="text"),
                                               Modality("b", width=4)],
                         [Task("t1", 2), Task("t2", 3)], shard_rows=8)
    for split, n in (("train", 32), ("validation", 16), ("test", 16)):
        texts = np.array([" ".join(rng.choice(words, rng.integers(2, 7))) for _ in range(n)],
                         object)
        writer.write(split, {"review": texts, "b": rng.normal(size=(n, 4))},
                     {"t1": rng.integers(0, 2, n), "t2": rng.integers(0, 3, n)})
    writer.close()
    saved = _two_workers(tmp_path, f"tfrecord:{tmp_path / 'shards'}", "--embedding-dim", "4")
    _assert_identical(saved)
    assert any(key.startswith("w") and saved[0][key].shape[-1:] == (4,)
               and saved[0][key].shape[0] > 8 for key in saved[0])  # an embedding table
