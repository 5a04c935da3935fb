"""Damaged TFRecord datasets: short or cut shards, flipped bytes, incomplete headers, bad masks.

Each is refused with a `ValueError` that names the shard (or the header's field),
before training: never metrics over fewer rows than the header says, never a bare
`DataLossError` or `KeyError`.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras.data.tfrecord import HEADER, ShardWriter, StreamedDataset, write_tfrecord
from hgfn_keras.specs import Modality, Task
from tests.conftest import run_as_process


def _dataset(folder, n=60, shard_rows=6):
    rng = np.random.default_rng(0)
    writer = ShardWriter(folder, [Modality("image", width=3), Modality("meta", width=2)],
                         [Task("flood", 2)], shard_rows=shard_rows)
    for split, rows in (("train", n), ("validation", n // 3), ("test", n // 3)):
        writer.write(split, {"image": rng.normal(size=(rows, 3)),
                             "meta": rng.normal(size=(rows, 2))},
                     {"flood": np.arange(rows) % 2})
    return writer.close()


def _keep_records(path, count):
    """Rewrites a shard with its first `count` records (cut at a record boundary)."""
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    with tf.io.TFRecordWriter(path) as writer:
        for record in records[:count]:
            writer.write(record)


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_a_shard_cut_at_a_record_boundary_is_named(tmp_path, split):
    data = _dataset(tmp_path / "s")
    shard = [s for s in data.header["shards"] if s["split"] == split][0]
    _keep_records(os.path.join(data.directory, shard["file"]), shard["rows"] - 2)
    data = StreamedDataset(tmp_path / "s")  # the first record still reads: opening passes
    message = (rf"Shard '{shard['file']}' .* holds {shard['rows'] - 2} rows; the header says "
               rf"{shard['rows']}")
    # The pass that reads the split: the statistics pass (train), the labels (else).
    with pytest.raises(ValueError, match=message):
        data.statistics() if split == "train" else data.labels(split)
    with pytest.raises(ValueError, match=message):  # what the recipe calls before training
        StreamedDataset(tmp_path / "s").check(None, split)


def _flip_byte(path, offset_from_end):
    with open(path, "r+b") as f:
        f.seek(-offset_from_end, os.SEEK_END)
        byte = f.read(1)
        f.seek(-offset_from_end, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("damage", ["cut_mid_record", "flipped_byte"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_a_damaged_shard_is_named_not_a_bare_data_loss_error(tmp_path, damage, split):
    data = _dataset(tmp_path / "s")
    shard = [s for s in data.header["shards"] if s["split"] == split][0]
    path = os.path.join(data.directory, shard["file"])
    if damage == "cut_mid_record":
        os.truncate(path, os.path.getsize(path) - 7)
    else:  # inside the last record's data: its CRC no longer matches
        _flip_byte(path, 10)
    data = StreamedDataset(tmp_path / "s")
    with pytest.raises(ValueError, match=rf"Shard '{shard['file']}' .* is damaged"):
        data.statistics() if split == "train" else data.labels(split)


def test_a_damaged_first_record_is_named_when_opened(tmp_path):
    data = _dataset(tmp_path / "s")
    shard = data.header["shards"][0]
    path = os.path.join(data.directory, shard["file"])
    with open(path, "r+b") as f:  # the first record's data, past its 12-byte prefix
        f.seek(14)
        f.write(b"\xff\xff\xff\xff")
    with pytest.raises(ValueError, match=rf"Shard '{shard['file']}'"):
        StreamedDataset(tmp_path / "s")


@pytest.mark.parametrize("edit, field", [
    (lambda h: h.pop("modalities"), r"`modalities` is missing"),
    (lambda h: h.pop("shards"), r"`shards` is missing"),
    (lambda h: h["tasks"][0].pop("num_classes"), r"`tasks\[0\]\.num_classes` is missing"),
    (lambda h: h["shards"][3].pop("rows"), r"`shards\[3\]\.rows` is missing"),
    (lambda h: h["modalities"][1].update(width="3"), r"`modalities\[1\]\.width` must be int"),
    (lambda h: h["splits"].pop("test"), r"`splits\.test` is missing"),
    (lambda h: h.update(modalities={}), r"`modalities` must be list, not \{\}"),
])
def test_an_incomplete_header_is_named_field_by_field(tmp_path, edit, field):
    _dataset(tmp_path / "s")
    path = tmp_path / "s" / HEADER
    header = json.loads(path.read_text())
    edit(header)
    path.write_text(json.dumps(header))
    with pytest.raises(ValueError, match=rf"not a complete hgfn_keras.tfrecord header: .*{field}"):
        StreamedDataset(tmp_path / "s")


@pytest.mark.parametrize("bad", [-1.0, 0.5, 2.0])
def test_the_writer_refuses_mask_values_other_than_0_and_1(tmp_path, bad):
    writer = ShardWriter(tmp_path / "s", [Modality("image", width=3), Modality("meta", width=2)],
                         [Task("flood", 2)], masked=["meta"])
    mask = np.ones((4, 2))
    mask[2, 1] = bad
    with pytest.raises(ValueError, match=rf"`modality_mask` must hold only 0 .* \[{bad}\] in "
                                         r"1 row\(s\), the first \[2\]"):
        writer.write("train", {"image": np.zeros((4, 3)), "meta": np.zeros((4, 2)),
                               "modality_mask": mask}, {"flood": np.zeros(4, int)})
    with pytest.raises(ValueError, match=r"`modality_mask` must be \[rows, 2\]"):
        writer.write("train", {"image": np.zeros((4, 3)), "meta": np.zeros((4, 2)),
                               "modality_mask": np.ones((4, 3))}, {"flood": np.zeros(4, int)})


def test_cli_refuses_a_short_test_shard_before_training(tmp_path):
    """The issue's case: a test shard cut at a record boundary gave metrics over fewer
    rows than "Test split (N rows)" said."""
    data = _dataset(tmp_path / "s", n=60)
    shard = [s for s in data.header["shards"] if s["split"] == "test"][-1]
    _keep_records(os.path.join(data.directory, shard["file"]), 1)
    from training import train

    run = run_as_process(train.main, "--dataset", f"tfrecord:{tmp_path / 's'}", "--fusion",
                         "cfc", "--mtl", "lsew", "--epochs", "1", "--no-export",
                         "--output-dir", tmp_path / "o")
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "Epoch" not in run.stdout
    lines = [line for line in run.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and f"Shard '{shard['file']}'" in lines[0], run.stderr
    assert not (tmp_path / "o" / "metrics.json").exists()
