"""The README's examples, run as written.

Which snippets run, and which do not (and why):

- "Use it on your own data" (build, fit, predict, save): run in a fresh process.
- Loading a `.keras` file in a new process (`import hgfn_keras` first): run in another
  fresh process, on the file the first one saved.
- The recipe from Python (`TrainConfig`, `recipe.fit`): run, on a tiny `features.npz`
  written where the snippet reads it.
- The gRPC request: compiled only (it needs `tensorflow-serving-api` and a running
  TF Serving); its `metadata` must be the REST example's.
- The TensorBoard snippet: compiled only (a fragment: `x_val`, `y_val` and `tasks` are the
  reader's; `test_tensorboard.py` runs the same callbacks).
- The REST body: sent, as TF Serving's REST API does, to a tiny exported model with the
  clothing model's inputs; its `metadata` must be a raw row ([age, positive feedback
  count] within the embedded data), not standardised values.
"""

import csv
import gzip
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _snippet(marker):
    found = [s for s in SNIPPETS if marker in s]
    assert len(found) == 1, f"{len(found)} README snippets hold {marker!r}"
    return found[0]


def _run(code, cwd, timeout=240):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_every_python_snippet_compiles():
    assert len(SNIPPETS) >= 5
    for i, snippet in enumerate(SNIPPETS):
        compile(snippet, f"README.md python snippet {i}", "exec")


@pytest.mark.slow  # two fresh processes and a fit at the README's widths (2048, 1024)
def test_own_data_snippet_then_loading_in_a_new_process(tmp_path):
    own = _snippet("model.save(\"model.keras\")")
    # The snippet as written, then what it computed, for the check below.
    _run(own + "\nimport numpy as np\nnp.save('expected.npy', model.predict(x, verbose=0)"
         "['humanitarian'])\nnp.savez('x.npz', **x)\n", tmp_path)
    load = _snippet("keras.models.load_model(")
    assert "import hgfn_keras" in load
    _run(load + "\nimport numpy as np\nx = dict(np.load('x.npz'))\n"
         "np.testing.assert_allclose(model.predict(x, verbose=0)['humanitarian'], "
         "np.load('expected.npy'), atol=1e-5)\n", tmp_path)
    # The README's reason: without the import, Keras does not know the classes.
    without = "\n".join(line for line in load.splitlines() if "import hgfn_keras" not in line)
    result = subprocess.run([sys.executable, "-c", without], cwd=tmp_path, capture_output=True,
                            text=True, timeout=240,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                                     PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode != 0
    assert "Could not locate class 'MultiTaskModel'" in result.stderr


@pytest.mark.slow  # a fresh process that trains (12 epochs of 24 rows)
def test_recipe_snippet(tiny_npz_file, tmp_path):
    recipe = _snippet("recipe.build_and_compile(")
    (tmp_path / "features.npz").write_bytes(pathlib.Path(tiny_npz_file).read_bytes())
    result = _run(recipe + "\nprint('EPOCHS', len(result.history.history['val_loss']))\n",
                  tmp_path)
    epochs = int(re.search(r"EPOCHS (\d+)", result.stdout).group(1))
    assert 1 <= epochs <= 12
    assert (tmp_path / "runs" / "x").is_dir()  # backup_dir="runs/x/backup", relative


def _rest_body():
    found = re.search(r"`(\{\"signature_name\": \"serving_default\".*?\})`", README, flags=re.S)
    assert found, "the README's REST body"
    return json.loads(found.group(1))


def test_the_metadata_examples_are_raw_rows():
    from hgfn_keras.data.clothing import AGE_COLUMN, FEEDBACK_COLUMN, clothing_path

    metadata = _rest_body()["inputs"]["metadata"]
    grpc = _snippet("predict_pb2.PredictRequest()")
    assert f"tf.make_tensor_proto({metadata}" in grpc  # the same row in both examples
    with gzip.open(clothing_path(), "rt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ages = {int(r[AGE_COLUMN]) for r in rows}
    feedback = {int(r[FEEDBACK_COLUMN]) for r in rows}
    for age, count in metadata:
        assert age in ages and count in feedback, (age, count)
    assert any((str(a), str(c)) == (r[AGE_COLUMN], r[FEEDBACK_COLUMN])
               for a, c in metadata for r in rows)  # a row of the data itself


def test_the_rest_body_is_served_by_a_clothing_shaped_model(tmp_path):
    import keras
    import tensorflow as tf

    from hgfn_keras import Modality, Task, TextEncoder, build_model
    from hgfn_keras.serving.export import export_saved_model

    body = json.loads(json.dumps(_rest_body()))  # as it travels
    keras.utils.set_random_seed(0)
    vocabulary = ["lovely", "dress", "great", "small", "fit"]
    model = build_model(
        [Modality("review", kind="text"), Modality("title", kind="text"),
         Modality("metadata", width=2)],
        [Task("recommended", 2), Task("rating", 5)], fusion="hgfn", head_units=4,
        encoders={"review": TextEncoder(vocabulary, embedding_dim=4),
                  "title": TextEncoder(vocabulary, embedding_dim=4)})
    raw = np.array([[34, 4], [60, 0], [50, 0], [33, 0], [41, 12]], "float32")  # data rows
    model.adapt({"review": np.array(["lovely dress"] * 5), "title": np.array(["great"] * 5),
                 "metadata": raw, "modality_mask": np.ones((5, 3), "float32")})
    signature = tf.saved_model.load(export_saved_model(model, str(tmp_path / "clothing"))) \
        .signatures[body["signature_name"]]
    specs = signature.structured_input_signature[1]
    assert sorted(body["inputs"]) == sorted(specs)
    served = signature(**{k: tf.constant(v, dtype=specs[k].dtype)
                          for k, v in body["inputs"].items()})
    expected = model.predict({k: np.asarray(v, "float32" if k != "review" and k != "title"
                                            else object) for k, v in body["inputs"].items()},
                             verbose=0)
    for task in ("recommended", "rating"):
        assert np.isfinite(served[task].numpy()).all()
        np.testing.assert_allclose(served[task].numpy(), expected[task], atol=1e-5)
