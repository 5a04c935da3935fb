"""A cut or damaged `.keras` file is named as such (issue 30): Keras said "File not found"
for a truncated file that is there, and a bare `BadZipFile` for changed bytes."""

import os

import keras
import pytest

from hgfn_keras import Modality, Task, build_model
from hgfn_keras.serving.model_file import DamagedModelFileError, load_model_file
from training import export, predict


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    model = build_model([Modality("a", width=3), Modality("b", width=2)], [Task("t", 2)],
                        fusion="cfc", fusion_kwargs={"units": 4}, head_units=2, mtl="lsew")
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path.read_bytes()


def _damaged(tmp_path, data, how):
    if how == "truncated":
        data = data[: len(data) // 2]
    else:  # bytes flipped inside the first member (config.json)
        data = bytearray(data)
        for i in range(200, 240):
            data[i] ^= 0xFF
        data = bytes(data)
    path = tmp_path / f"{how}.keras"
    path.write_bytes(data)
    return path


MESSAGES = {"truncated": r"is not a complete \.keras file: its zip directory is missing, so "
                         r"it was cut short",
            "flipped": r"is a damaged \.keras file: its member 'config\.json' fails its "
                       r"CRC-32 check"}


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_cut_or_damaged_keras_file_is_named(model_bytes, tmp_path, how, capsys):
    path = _damaged(tmp_path, model_bytes, how)
    with pytest.raises(DamagedModelFileError, match=MESSAGES[how]):
        load_model_file(path)
    source = tmp_path / "in.csv"
    source.write_text("id,a,b\n1,1 2 3,1 2\n")
    assert predict.main(["--model", str(path), "--input", str(source),
                         "--output", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "File not found" not in err[0] and "BadZipFile" not in err[0]
    assert f"error: --model: {str(path)!r}" in err[0]
    assert export.main(["--model", str(path), "--export-dir", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "File not found" not in err[0], err
    assert not os.path.exists(tmp_path / "e")


def test_an_intact_file_loads(model_bytes, tmp_path):
    path = tmp_path / "ok.keras"
    path.write_bytes(model_bytes)
    assert isinstance(load_model_file(path), keras.Model)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model_file(tmp_path / "missing.keras")
