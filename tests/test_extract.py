"""`python -m training.extract` and the CrisisMMD reader, on media the tests write: JPEGs
(`tf.io.encode_jpeg`), WAVs (`tf.audio.encode_wav`), folders of frames, tiny SavedModels
loaded as hub handles. The extracted file then trains through `training.train`."""

import csv
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hgfn_keras.data import load_npz
from hgfn_keras.data.crisismmd import (
    CRISISMMD_COLUMNS,
    CRISISMMD_TASKS,
    read_crisismmd,
    write_crisismmd_manifest,
)
from tests.test_encoders import (
    _SequenceModule,
    save_audio_module,
    save_image_module,
    save_text_module,
)
from training import extract

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
HUMANITARIAN = CRISISMMD_TASKS["humanitarian"]
DAMAGE = CRISISMMD_TASKS["damage"]
TWEETS = ["Flood waters rising downtown", "Bridge collapsed near the river",
          "Volunteers hand out water", "Thoughts and prayers", "Roads closed after the storm",
          "Houses destroyed by the fire", "Donate to the relief fund", "Power lines down",
          "Evacuation ordered for the coast", "Cars swept away", "Shelter opens tonight",
          ""]


def _write_jpeg(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (10, 14, 3)).astype("uint8")
    tf.io.write_file(os.fspath(path), tf.io.encode_jpeg(pixels))


def _write_crisismmd(root, broken_row=4):
    """A CrisisMMD-shaped annotation TSV of 12 rows; row `broken_row` names no file."""
    (root / "annotations").mkdir(parents=True)
    header = list(CRISISMMD_COLUMNS) + ["text_info_conf", "image_url"]
    rows = []
    for i, tweet in enumerate(TWEETS):
        image_path = f"data_image/quake/{i}_0.jpg"
        if i == broken_row:
            image_path = "data_image/quake/gone.jpg"
        else:
            (root / "data_image" / "quake").mkdir(parents=True, exist_ok=True)
            _write_jpeg(root / image_path, i)
        info = "informative" if i % 3 else "not_informative"
        human = HUMANITARIAN[i % len(HUMANITARIAN)]
        record = {
            "tweet_id": str(900 + i), "image_id": f"{900 + i}_0", "tweet_text": tweet,
            "image_path": image_path, "text_info": info, "image_info": info,
            "text_human": human, "image_human": human if i != 7 else "not_humanitarian",
            "image_damage": DAMAGE[i % 3] if i != 2 else "", "text_info_conf": "1.0",
            "image_url": f"http://example.org/{i}.jpg",
        }
        rows.append("\t".join(record[c] for c in header))
    path = root / "annotations" / "quake_final_data.tsv"
    path.write_text("\t".join(header) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def handles(tmp_path_factory):
    base = tmp_path_factory.mktemp("handles")
    tf.saved_model.save(_SequenceModule(), os.fspath(base / "sequence"))
    return {"text": save_text_module(base / "text"), "image": save_image_module(base / "image"),
            "audio": save_audio_module(base / "audio"), "sequence": os.fspath(base / "sequence")}


@pytest.fixture(scope="module")
def crisismmd(tmp_path_factory):
    root = tmp_path_factory.mktemp("CrisisMMD_v2.0")
    return root, _write_crisismmd(root)


def _crisismmd_args(handles, tsv, output, *extra):
    return ["--crisismmd", os.fspath(tsv), "--text-encoder", handles["text"],
            "--image-encoder", handles["image"], "--image-size", "8", "--batch-size", "5",
            "--output", os.fspath(output), "--quiet", *extra]


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
def crisismmd_features(handles, crisismmd, tmp_path_factory):
    _, tsv = crisismmd
    output = tmp_path_factory.mktemp("features") / "crisismmd.npz"
    summary = extract.run(extract.parse_args(_crisismmd_args(handles, tsv, output)))
    return output, summary


def test_crisismmd_extraction_masks_the_broken_image(crisismmd_features, handles):
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
    expected = tf.saved_model.load(handles["text"])(tf.constant(TWEETS[:11])).numpy()
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
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "training.train", "--dataset", f"npz:{output}", "--epochs", "1",
         "--no-export", "--output-dir", os.fspath(tmp_path / "run"), "--batch-size", "4",
         "--verbose", "0"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_an_interrupted_run_resumes_from_the_cache(handles, crisismmd, tmp_path, monkeypatch,
                                                   capsys):
    _, tsv = crisismmd
    output = tmp_path / "resume.npz"
    args = _crisismmd_args(handles, tsv, output)
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


def _write_media_manifest(base):
    """6 rows of audio (one corrupt WAV), video (frame folders, one missing) and text."""
    rows = []
    for i in range(6):
        wave = np.sin(2 * np.pi * (200 + 100 * i) * np.arange(800) / 8000).astype("float32")
        tf.io.write_file(os.fspath(base / f"a{i}.wav"), tf.audio.encode_wav(wave[:, None], 8000))
        video = f"v{i}"
        if i == 3:
            video = "no_such_clip"
        else:
            (base / video).mkdir()
            for j in range(4):
                _write_jpeg(base / video / f"{j}.jpg", 10 * i + j)
        rows.append({"item": f"c{i}", "audio": f"a{i}.wav", "clip": video,
                     "caption": f"clip number {i}", "flood": str(i % 2),
                     "victims": "" if i == 0 else str(i % 3), "split": "train" if i < 4 else
                     ("validation" if i == 4 else "test")})
    (base / "a2.wav").write_bytes(b"RIFF not really a wav file")
    path = base / "media.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_audio_video_and_text_extraction(handles, tmp_path):
    manifest = _write_media_manifest(tmp_path)
    output = tmp_path / "media.npz"
    summary = extract.run(extract.parse_args([
        "--manifest", os.fspath(manifest), "--id-column", "item", "--audio", "audio",
        "--video", "video=clip", "--text", "caption", "--labels", "flood", "victims",
        "--text-encoder", handles["text"], "--image-encoder", handles["image"],
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
        "--text", "caption", "--labels", "flood", "--text-encoder", handles["text"],
        "--audio-encoder", handles["audio"], "--sample-rate", "8000", "--clip-seconds", "0.1",
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
def test_bad_input_is_a_clear_error(handles, crisismmd, tmp_path, capsys, change, message):
    _, tsv = crisismmd
    manifest = tmp_path / "manifest.tsv"
    write_crisismmd_manifest(tsv, manifest)
    change = [handles["sequence"] if c == "SEQUENCE" else c for c in change]
    args = ["--manifest", os.fspath(manifest), "--text", "text", "--labels", "informative",
            "--text-encoder", handles["text"], "--output", os.fspath(tmp_path / "out.npz"),
            "--quiet"]
    code = extract.main(args + change)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ")
    assert re.search(message, err), err


def test_video_files_need_opencv(handles, tmp_path, capsys):
    try:
        import cv2  # noqa: F401
        pytest.skip("OpenCV is installed")
    except ImportError:
        pass
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 32)
    (tmp_path / "m.csv").write_text("id,clip,caption,y\n1,clip.mp4,hello,1\n")
    code = extract.main(["--manifest", os.fspath(tmp_path / "m.csv"), "--video", "clip",
                         "--text", "caption", "--labels", "y", "--text-encoder", handles["text"],
                         "--image-encoder", handles["image"], "--output",
                         os.fspath(tmp_path / "v.npz"), "--quiet"])
    assert code == 2
    assert "pip install opencv-python-headless" in capsys.readouterr().err


def test_an_unwritable_output_is_found_before_encoding(handles, tmp_path, capsys, monkeypatch):
    (tmp_path / "m.csv").write_text("id,caption,y\n1,hello,1\n2,world,0\n")
    (tmp_path / "blocker").write_text("")  # a file where the output folder should be
    encoded = []
    monkeypatch.setattr(extract, "_encode_modality", lambda *a: encoded.append(a))
    code = extract.main(["--manifest", os.fspath(tmp_path / "m.csv"), "--text", "caption",
                         "--labels", "y", "--text-encoder", handles["text"], "--output",
                         os.fspath(tmp_path / "blocker" / "out.npz"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and not encoded
    assert err.startswith("error: --output: cannot write into the folder") and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["blocker", "m.csv"]


def test_a_write_failing_at_the_end_leaves_no_partial_npz(handles, tmp_path, capsys,
                                                          monkeypatch):
    (tmp_path / "m.csv").write_text("id,caption,y\n1,hello,1\n2,world,0\n")
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith("out.npz"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    code = extract.main(["--manifest", os.fspath(tmp_path / "m.csv"), "--text", "caption",
                         "--labels", "y", "--text-encoder", handles["text"], "--output",
                         os.fspath(tmp_path / "out.npz"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert [p for p in os.listdir(tmp_path) if p.endswith(".npz") or ".tmp" in p] == []
