"""Names and paths from files cannot leave their root (issue 30): a `name` of
`../../../x` in a `--config` file wrote the run and the SavedModel outside `runs/` and
`saved_models/`; a shard path with `..` in `dataset.json` was followed."""

import json
import os
import shutil

import numpy as np
import pytest

from hgfn_keras.data import load_dataset
from training import train


@pytest.mark.parametrize("name", ["../../../x", "a/b", "..", "/tmp/abs", "a\\b"])
def test_a_name_from_a_config_file_cannot_leave_runs(tiny_npz_file, tmp_path, monkeypatch,
                                                     capsys, name):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    config = tmp_path / "hostile.json"
    config.write_text(json.dumps({"name": name, "dataset": f"npz:{tiny_npz_file}",
                                  "epochs": 1, "verbose": 0}))
    assert train.main(["--config", str(config)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert errors == [(f"error: --name must be a plain folder name (no '/', '\\', '..'), as it "
                       f"goes under runs/ and saved_models/. Received: name={name!r}")]
    assert os.listdir(work) == [] and sorted(os.listdir(tmp_path)) == ["hostile.json", "work"]


def test_a_shard_path_with_dotdot_in_dataset_json_is_refused(tiny_npz_file, tmp_path):
    from hgfn_keras.data.tfrecord import write_tfrecord

    folder = tmp_path / "shards"
    write_tfrecord(str(tiny_npz_file), str(folder), shard_rows=100)
    header = json.loads((folder / "dataset.json").read_text())
    first = header["shards"][0]["file"]
    shutil.move(str(folder / first), str(tmp_path / first))  # a real file, outside
    header["shards"][0]["file"] = f"../{first}"
    (folder / "dataset.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match=r"a shard's `file` must be a file name in the "
                       r"dataset's folder \(no folder part, no '\.\.'\)\. Received: "
                       rf"file='\.\./{first}'"):
        load_dataset(f"tfrecord:{folder}")
    assert np.all([os.path.isfile(tmp_path / first)])
