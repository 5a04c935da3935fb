"""`training.extract` reads media only under `--media-root`, unless told otherwise."""

import os
import wave

import numpy as np
import pytest

from training import extract


def _wav(path, seed):
    rng = np.random.default_rng(seed)
    samples = (rng.normal(size=800) * 3000).astype("<i2")
    with wave.open(os.fspath(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(8000)
        f.writeframes(samples.tobytes())
    return path


@pytest.fixture
def layout(tmp_path):
    """`root/` holds the manifest and a.wav; `elsewhere/` holds secret.wav."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    _wav(root / "a.wav", 0)
    _wav(root / "sub" / "b.wav", 1)
    _wav(tmp_path / "elsewhere" / "secret.wav", 2)
    os.symlink(tmp_path / "elsewhere" / "secret.wav", root / "link.wav")
    os.symlink(root / "a.wav", root / "inner_link.wav")
    return tmp_path, root


def _manifest(root, paths):
    lines = ["id,audio,y"] + [f"r{i},{p},{i % 2}" for i, p in enumerate(paths)]
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    return root / "m.csv"


def _args(manifest, output, *extra):
    return ["--manifest", os.fspath(manifest), "--audio", "audio", "--labels", "y",
            "--sample-rate", "8000", "--clip-seconds", "0.1", "--output", os.fspath(output),
            "--quiet", *extra]


@pytest.mark.parametrize("bad", ["dotdot", "absolute", "symlink"])
def test_a_path_outside_the_media_root_is_refused(layout, bad, capsys):
    tmp_path, root = layout
    secret = tmp_path / "elsewhere" / "secret.wav"
    path = {"dotdot": "../elsewhere/secret.wav", "absolute": os.fspath(secret),
            "symlink": "link.wav"}[bad]
    manifest = _manifest(root, ["a.wav", "sub/b.wav", path])
    output = tmp_path / "out.npz"
    assert extract.main(_args(manifest, output)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"error: --audio: the path {path!r} of id 'r2' (column 'audio') "
                             f"resolves to {os.path.realpath(secret)}, outside --media-root "
                             f"{os.path.realpath(root)}"), err
    assert "--allow-outside-root" in err[0]
    assert not output.exists() and not os.path.exists(os.fspath(output) + ".cache")


def test_paths_inside_the_root_and_the_escape_hatch(layout, capsys):
    tmp_path, root = layout
    # Inside: relative, "sub/../a.wav", an absolute path under the root, a symlink
    # inside the root.
    inside = ["a.wav", "sub/../sub/b.wav", os.fspath(root / "a.wav"), "inner_link.wav"]
    summary = extract.run(extract.parse_args(_args(_manifest(root, inside), tmp_path / "in.npz")))
    assert summary["modalities"]["audio"]["present"] == 4
    outside = inside + ["../elsewhere/secret.wav", "link.wav"]
    manifest = _manifest(root, outside)
    assert extract.main(_args(manifest, tmp_path / "out.npz")) == 2
    assert "(and 1 more)" in capsys.readouterr().err
    summary = extract.run(extract.parse_args(
        _args(manifest, tmp_path / "out.npz", "--allow-outside-root")))
    assert summary["modalities"]["audio"]["present"] == 6
    with np.load(tmp_path / "out.npz") as data:
        np.testing.assert_array_equal(data["x_audio"][4], data["x_audio"][5])  # one file
