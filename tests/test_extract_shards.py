"""`training.extract --format tfrecord`: shards written from the per-item cache, a shard
at a time, with the rows, splits and order of the npz that `--format npz` writes."""

import os

import numpy as np

from hgfn_keras.data import load_npz
from hgfn_keras.data.dataset import MASK_KEY, SPLITS
from hgfn_keras.data.tfrecord import HEADER, ShardWriter, StreamedDataset
from tests.media_files import crisismmd_args, write_media_manifest
from training import extract


def _assert_same(npz_path, folder, seed=0):
    expected, got = load_npz(npz_path, seed=seed), StreamedDataset(folder).to_memory()
    assert got.modality_names == expected.modality_names
    assert [(t.name, t.num_classes) for t in got.tasks] == [
        (t.name, t.num_classes) for t in expected.tasks]
    for split in SPLITS:
        (x0, y0), (x1, y1) = expected.splits[split], got.splits[split]
        assert sorted(x0) == sorted(x1)
        for key in x0:
            np.testing.assert_array_equal(x1[key], x0[key], err_msg=f"{split} {key}")
        for key in y0:
            np.testing.assert_array_equal(y1[key], y0[key], err_msg=f"{split} {key}")
    return got


def test_shards_hold_the_npzs_rows(hub_handles, crisismmd, tmp_path):
    _, tsv = crisismmd
    cache = str(tmp_path / "cache")
    extract.run(extract.parse_args(crisismmd_args(hub_handles, tsv, tmp_path / "f.npz",
                                                  "--cache-dir", cache)))
    summary = extract.run(extract.parse_args(crisismmd_args(
        hub_handles, tsv, tmp_path / "shards", "--cache-dir", cache, "--format", "tfrecord",
        "--shard-rows", "3")))
    assert summary["modalities"]["image"]["encoded"] == 0  # all from the cache
    data = _assert_same(tmp_path / "f.npz", tmp_path / "shards")
    assert MASK_KEY in data.splits["train"][0]
    assert all(s["rows"] <= 3 for s in StreamedDataset(tmp_path / "shards").header["shards"])


def test_an_interrupted_shard_write_resumes_without_duplicate_rows(hub_handles, crisismmd,
                                                                   tmp_path, monkeypatch, capsys):
    _, tsv = crisismmd
    args = crisismmd_args(hub_handles, tsv, tmp_path / "shards", "--format", "tfrecord",
                          "--shard-rows", "2")
    real_write, calls = ShardWriter.write, []

    def write_then_stop(self, split, x, y):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(split)
        real_write(self, split, x, y)

    monkeypatch.setattr(ShardWriter, "write", write_then_stop)
    assert extract.main(args) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert not (tmp_path / "shards" / HEADER).exists()  # not a dataset: no half of one
    monkeypatch.setattr(ShardWriter, "write", real_write)
    summary = extract.run(extract.parse_args(args))
    assert summary["modalities"]["text"]["encoded"] == 0  # the encoding was cached
    extract.run(extract.parse_args(crisismmd_args(
        hub_handles, tsv, tmp_path / "f.npz", "--cache-dir", str(tmp_path / "shards") + ".cache")))
    data = _assert_same(tmp_path / "f.npz", tmp_path / "shards")
    assert sum(data.size(s) for s in SPLITS) == summary["rows"]  # every row once
    assert not [f for f in os.listdir(tmp_path / "shards")
                if ".partial" in f or f.startswith(".tmp")]


def test_a_split_column_and_sequences_reach_the_shards(hub_handles, tmp_path):
    manifest = write_media_manifest(tmp_path)
    common = ["--manifest", os.fspath(manifest), "--id-column", "item", "--audio", "audio",
              "--video", "video=clip", "--text", "caption", "--labels", "flood", "victims",
              "--text-encoder", hub_handles["text"], "--image-encoder", hub_handles["image"],
              "--image-size", "8", "--frames", "3", "--frame-size", "8", "--sample-rate",
              "8000", "--clip-seconds", "0.1", "--batch-size", "4", "--quiet",
              "--cache-dir", os.fspath(tmp_path / "cache")]
    extract.run(extract.parse_args(common + ["--output", os.fspath(tmp_path / "m.npz")]))
    extract.run(extract.parse_args(common + ["--output", os.fspath(tmp_path / "shards"),
                                             "--format", "tfrecord", "--shard-rows", "3"]))
    data = _assert_same(tmp_path / "m.npz", tmp_path / "shards")
    assert {s: data.size(s) for s in SPLITS} == {"train": 4, "validation": 1, "test": 1}
    assert [m.kind for m in data.modalities] == ["vector", "vector", "sequence"]
