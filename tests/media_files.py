"""Media files the extraction tests write: a CrisisMMD-shaped annotation TSV with its
JPEGs, and a manifest of WAVs, frame folders and captions. `conftest.crisismmd` writes the
CrisisMMD one once per session."""

import csv
import os

import numpy as np
import tensorflow as tf

from hgfn_keras.data.crisismmd import CRISISMMD_COLUMNS, CRISISMMD_TASKS

HUMANITARIAN = CRISISMMD_TASKS["humanitarian"]
DAMAGE = CRISISMMD_TASKS["damage"]
TWEETS = ["Flood waters rising downtown", "Bridge collapsed near the river",
          "Volunteers hand out water", "Thoughts and prayers", "Roads closed after the storm",
          "Houses destroyed by the fire", "Donate to the relief fund", "Power lines down",
          "Evacuation ordered for the coast", "Cars swept away", "Shelter opens tonight",
          ""]


def write_jpeg(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (10, 14, 3)).astype("uint8")
    tf.io.write_file(os.fspath(path), tf.io.encode_jpeg(pixels))


def write_crisismmd(root, broken_row=4):
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
            write_jpeg(root / image_path, i)
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


def write_media_manifest(base):
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
                write_jpeg(base / video / f"{j}.jpg", 10 * i + j)
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


def crisismmd_args(handles, tsv, output, *extra):
    """`training.extract` arguments for the CrisisMMD TSV `tsv` with the tiny hub handles."""
    return ["--crisismmd", os.fspath(tsv), "--text-encoder", handles["text"],
            "--image-encoder", handles["image"], "--image-size", "8", "--batch-size", "5",
            "--output", os.fspath(output), "--quiet", *extra]
