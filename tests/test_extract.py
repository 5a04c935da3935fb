"""`python -m training.extract` and the CrisisMMD reader, on media the tests write: JPEGs
(`tf.io.encode_jpeg`), WAVs (`tf.audio.encode_wav`), folders of frames, tiny SavedModels
loaded as hub handles. The extracted file then trains through `training.train`."""

import os
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras.data import load_npz
from hgfn_keras.data.crisismmd import read_crisismmd, write_crisismmd_manifest
from tests.conftest import run_as_process
from tests.media_files import TWEETS, crisismmd_args, write_media_manifest
from training import extract

# ---------------------------------------------------------------------- CrisisMMD reader


def test_read_crisismmd_labels_and_paths(crisismmd):
    root, tsv = crisismmd
    rows = read_crisismmd(tsv)  # image_root: the folder above annotations/
    assert len(rows) == 12 and rows[0]["id"] == "900_0" and rows[0]["event"] == "quake"
    assert rows[0]["image"] == os.path.join(str(root), "data_image/quake/0_0.jpg")
    assert [r["informative"] for r in rows[:4]] == [0, 1, 1, 0]
    assert rows[1]["humanitarian"] == 1 and rows[1]["damage"] == 1
    assert rows[2]["damage"] == -1  # no damage annotation
    assert rows[7]["humanitarian"] == -1  # text and image disagree
    assert read_crisismmd(tsv, label_source="text")[7]["humanitarian"] == 7
    assert read_crisismmd(tsv, label_source="image")[7]["humanitarian"] == 4


def test_read_crisismmd_bad_input(tmp_path, crisismmd):
    _, tsv = crisismmd
    lines = tsv.read_text().splitlines()
    bad = tmp_path / "bad.tsv"
    bad.write_text("\n".join(lines[:3] + [lines[3].replace("informative", "very_informative",
                                                            1)]) + "\n")
    with pytest.raises(ValueError, match="row 4: unknown informative label in column "
                                         "`text_info`. Received: 'very_informative'"):
        read_crisismmd(bad, image_root=str(tmp_path))
    header = lines[0].replace("image_damage", "damage_level")
    (tmp_path / "cols.tsv").write_text("\n".join([header] + lines[1:]) + "\n")
    with pytest.raises(ValueError, match=r"lacks the CrisisMMD column\(s\) \['image_damage'\]"):
        read_crisismmd(tmp_path / "cols.tsv")
    with pytest.raises(ValueError, match="label_source='both'"):
        read_crisismmd(tsv, label_source="both")
    with pytest.raises(ValueError, match="does not exist"):
        read_crisismmd(tmp_path / "none.tsv")
    assert write_crisismmd_manifest(tsv, tmp_path / "manifest.tsv") == 12


# ---------------------------------------------------------------------- extraction


@pytest.fixture(scope="module")
def crisismmd_features(hub_handles, crisismmd, tmp_path_factory):
    _, tsv = crisismmd
    output = tmp_path_factory.mktemp("features") / "crisismmd.npz"
    summary = extract.run(extract.parse_args(crisismmd_args(hub_handles, tsv, output)))
    return output, summary


def test_crisismmd_extraction_masks_the_broken_image(crisismmd_features, hub_handles):
    output, summary = crisismmd_features
    with np.load(output) as data:
        arrays = dict(data)
    assert sorted(arrays) == ["mask_image", "mask_text", "x_image", "x_text", "y_damage",
                              "y_humanitarian", "y_informative"]
    assert arrays["x_image"].shape == (12, 5) and arrays["x_text"].shape == (12, 4)
    np.testing.assert_array_equal(np.flatnonzero(arrays["mask_image"] == 0), [4])
    np.testing.assert_array_equal(np.flatnonzero(arrays["mask_text"] == 0), [11])  # empty tweet
    np.testing.assert_array_equal(arrays["x_image"][4], 0.0)
    assert arrays["y_damage"][2] == -1 and arrays["y_humanitarian"][7] == -1
    # The text vectors are the module's own outputs.
    expected = tf.saved_model.load(hub_handles["text"])(tf.constant(TWEETS[:11])).numpy()
    np.testing.assert_allclose(arrays["x_text"][:11], expected, rtol=1e-6)
    assert summary["modalities"]["image"]["missing"] == 1
    missing = pathlib.Path(summary["missing_file"]).read_text()
    assert "image\t904_0\tnot found:" in missing and "gone.jpg" in missing
    dataset = load_npz(output)
    assert dataset.modality_names == ["image", "text"]
    assert dataset.task_names == ["damage", "humanitarian", "informative"]


@pytest.mark.slow
def test_extraction_trains_through_the_train_cli(crisismmd_features, tmp_path):
    output, _ = crisismmd_features
    from training import train

    result = run_as_process(train.main, "--dataset", f"npz:{output}", "--epochs", "1",
                            "--no-export", "--output-dir", tmp_path / "run", "--batch-size", "4",
                            "--verbose", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_an_interrupted_run_resumes_from_the_cache(hub_handles, crisismmd, tmp_path, monkeypatch,
                                                   capsys):
    _, tsv = crisismmd
    output = tmp_path / "resume.npz"
    args = crisismmd_args(hub_handles, tsv, output)
    real_put, calls = extract._Cache.put, []

    def put_then_stop(self, key, vector):
        if len(calls) == 7:  # during the second batch of images
            raise KeyboardInterrupt
        calls.append(key)
        real_put(self, key, vector)

    monkeypatch.setattr(extract._Cache, "put", put_then_stop)
    assert extract.main(args) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert not output.exists()
    monkeypatch.setattr(extract._Cache, "put", real_put)

    summary = extract.run(extract.parse_args(args))
    image, text = summary["modalities"]["image"], summary["modalities"]["text"]
    # 11 readable images: 7 cached before the stop (+ the broken one, known missing).
    assert (image["from_cache"], image["encoded"]) == (8, 4)
    assert (text["from_cache"], text["encoded"]) == (0, 11)  # never reached; 1 empty
    again = extract.run(extract.parse_args(args))
    assert again["modalities"]["image"]["encoded"] == 0
    assert again["modalities"]["text"]["from_cache"] == 12


def test_audio_video_and_text_extraction(hub_handles, tmp_path):
    manifest = write_media_manifest(tmp_path)
    output = tmp_path / "media.npz"
    summary = extract.run(extract.parse_args([
        "--manifest", os.fspath(manifest), "--id-column", "item", "--audio", "audio",
        "--video", "video=clip", "--text", "caption", "--labels", "flood", "victims",
        "--text-encoder", hub_handles["text"], "--image-encoder", hub_handles["image"],
        "--image-size", "8", "--frames", "3", "--frame-size", "8", "--sample-rate", "8000",
        "--clip-seconds", "0.1", "--batch-size", "4", "--output", os.fspath(output), "--quiet",
    ]))
    with np.load(output) as data:
        arrays = dict(data)
    assert arrays["x_audio"].shape == (6, 128)  # log-mel mean and std, 64 bands
    assert arrays["x_video"].shape == (6, 3, 5)
    np.testing.assert_array_equal(arrays["mask_audio"], [1, 1, 0, 1, 1, 1])  # corrupt WAV
    np.testing.assert_array_equal(arrays["mask_video"], [1, 1, 1, 0, 1, 1])  # no folder
    np.testing.assert_array_equal(arrays["split"], [0, 0, 0, 0, 1, 2])
    np.testing.assert_array_equal(arrays["y_victims"], [-1, 1, 2, 0, 1, 2])
    assert "could not be read or decoded" in pathlib.Path(summary["missing_file"]).read_text()
    dataset = load_npz(output)
    video = dataset.modalities[dataset.modality_names.index("video")]
    assert (video.kind, video.steps, video.width) == ("sequence", 3, 5)

    # A hub audio encoder instead of the log-mel front end.
    summary = extract.run(extract.parse_args([
        "--manifest", os.fspath(manifest), "--id-column", "item", "--audio", "audio",
        "--text", "caption", "--labels", "flood", "--text-encoder", hub_handles["text"],
        "--audio-encoder", hub_handles["audio"], "--sample-rate", "8000", "--clip-seconds", "0.1",
        "--output", os.fspath(tmp_path / "hub_audio.npz"), "--quiet",
    ]))
    assert summary["modalities"]["audio"]["shape"] == [6, 3]


@pytest.mark.parametrize(
    "change, message",
    [
        (["--labels", "urgency"], r"no column 'urgency' \(declared by --labels\)"),
        (["--id-column", "key"], r"no column 'key' \(declared by --id-column\)"),
        (["--text-encoder", "/no/such/encoder"], r"handle='/no/such/encoder'"),
        (["--text-encoder", "SEQUENCE"], r"one vector per item.*shape=\(None, 2, 3\)"),
    ],
)
def test_bad_input_is_a_clear_error(hub_handles, crisismmd, tmp_path, capsys, change, message):
    _, tsv = crisismmd
    manifest = tmp_path / "manifest.tsv"
    write_crisismmd_manifest(tsv, manifest)
    change = [hub_handles["sequence"] if c == "SEQUENCE" else c for c in change]
    args = ["--manifest", os.fspath(manifest), "--text", "text", "--labels", "informative",
            "--text-encoder", hub_handles["text"], "--output", os.fspath(tmp_path / "out.npz"),
            "--quiet"]
    code = extract.main(args + change)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ")
    assert re.search(message, err), err


def test_video_files_need_opencv(hub_handles, tmp_path, capsys):
    try:
        import cv2  # noqa: F401
        pytest.skip("OpenCV is installed")
    except ImportError:
        pass
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 32)
    (tmp_path / "m.csv").write_text("id,clip,caption,y\n1,clip.mp4,hello,1\n")
    code = extract.main(["--manifest", os.fspath(tmp_path / "m.csv"), "--video", "clip",
                         "--text", "caption", "--labels", "y", "--text-encoder",
                         hub_handles["text"], "--image-encoder", hub_handles["image"], "--output",
                         os.fspath(tmp_path / "v.npz"), "--quiet"])
    assert code == 2
    assert "pip install opencv-python-headless" in capsys.readouterr().err


def test_an_unwritable_output_is_found_before_encoding(hub_handles, tmp_path, capsys,
                                                       monkeypatch):
    (tmp_path / "m.csv").write_text("id,caption,y\n1,hello,1\n2,world,0\n")
    (tmp_path / "blocker").write_text("")  # a file where the output folder should be
    encoded = []
    monkeypatch.setattr(extract, "_encode_modality", lambda *a: encoded.append(a))
    code = extract.main(["--manifest", os.fspath(tmp_path / "m.csv"), "--text", "caption",
                         "--labels", "y", "--text-encoder", hub_handles["text"], "--output",
                         os.fspath(tmp_path / "blocker" / "out.npz"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and not encoded
    assert err.startswith("error: --output: cannot write into the folder") and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["blocker", "m.csv"]


def test_a_write_failing_at_the_end_leaves_no_partial_npz(hub_handles, tmp_path, capsys,
                                                          monkeypatch):
    (tmp_path / "m.csv").write_text("id,caption,y\n1,hello,1\n2,world,0\n")
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith("out.npz"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    code = extract.main(["--manifest", os.fspath(tmp_path / "m.csv"), "--text", "caption",
                         "--labels", "y", "--text-encoder", hub_handles["text"], "--output",
                         os.fspath(tmp_path / "out.npz"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert [p for p in os.listdir(tmp_path) if p.endswith(".npz") or ".tmp" in p] == []
