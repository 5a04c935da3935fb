"""The exported SavedModel served to many callers at once, and the requests it refuses.

A fresh process loads the SavedModel and calls `serving_default` from 8 threads (320
requests, a quarter of them bad); every good request must get the answer of a sequential
call, every bad one a clear error, and the good ones after a bad one still work. The same
process checks the request forms: NaN / inf named with the input and the row, ints and
float64 cast, `modality_mask` left out (`serving_all_present`). Tiny model: 3 vector
modalities of width 2-4, HGFN, 2 tasks; unfitted (the weights need not be trained).
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from hgfn_keras import build_model
from hgfn_keras.serving.export import ALL_PRESENT_SIGNATURE, export_saved_model
from tests.conftest import FLOOD_DAMAGE, IMAGE_AUDIO_SENSOR, make_inputs

MODALITIES, TASKS = IMAGE_AUDIO_SENSOR, FLOOD_DAMAGE


def _inputs(seed, rows):
    return make_inputs(MODALITIES, rows, np.random.default_rng(seed),
                       missing=[(row, 1) for row in range(0, rows, 3)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_model(list(MODALITIES), list(TASKS), fusion="hgfn",
                        fusion_kwargs={"theta": 0.5}, head_units=4, mtl="lsew")
    model.predict(_inputs(0, 4), verbose=0)  # builds it
    return export_saved_model(model, str(tmp_path_factory.mktemp("conc") / "tiny"),
                              return_modality_weights=True)


_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    import tensorflow as tf

    path, inputs_path = sys.argv[1:3]
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]
    x = dict(np.load(inputs_path))
    names = sorted(x)

    def call(feed, signature=serve):
        try:
            return {k: v.numpy() for k, v in signature(**feed).items()}
        except Exception as error:
            return error

    def message(result):
        if not isinstance(result, Exception):
            return None
        return [type(result).__name__, str(result).replace("\\\\'", "'")]

    def good(i):
        rows = slice(i % 20, i % 20 + 1 + i % 5)
        return {k: tf.constant(v[rows]) for k, v in x.items()}

    def bad(i):
        feed = {k: v.numpy().copy() for k, v in good(i).items()}
        kind = i // 4 % 4
        if kind == 0:  # in a row where audio is present (a masked slot's NaN is ignored)
            feed["modality_mask"][-1, 1] = 1.0
            feed["audio"][-1, 0] = np.nan
        elif kind == 1:
            feed["image"] = feed["image"][:, :3]
        elif kind == 2:
            feed["modality_mask"][0] = 0.0
        else:
            feed["sensor"][0, 2] = np.inf
        return {k: tf.constant(v) for k, v in feed.items()}

    jobs = [(i, i % 4 == 3) for i in range(320)]  # every fourth request is bad
    expected = {i: call(good(i)) for i, is_bad in jobs if not is_bad}
    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda job: call(bad(job[0]) if job[1] else good(job[0])),
                                jobs))
    report = {"seconds": time.time() - started, "mismatches": [], "bad": {},
              "unexpected": [], "threads": 8}
    for (i, is_bad), result in zip(jobs, results):
        if is_bad:
            if not isinstance(result, Exception):
                report["unexpected"].append(i)
            else:
                report["bad"].setdefault(str(i // 4 % 4), message(result))
        elif isinstance(result, Exception) or any(
                not np.array_equal(result[k], expected[i][k]) for k in expected[i]):
            report["mismatches"].append(i)

    # Request forms.
    base = {k: v[:6] for k, v in x.items()}
    reference = call({k: tf.constant(v) for k, v in base.items()})
    forms = {}
    nan = dict(base, sensor=base["sensor"].copy())
    nan["sensor"][4, 1] = np.nan
    forms["nan"] = message(call({k: tf.constant(v) for k, v in nan.items()}))
    as_lists = {k: v.tolist() for k, v in base.items()}
    as_lists["modality_mask"] = base["modality_mask"].astype(int).tolist()  # a JSON client
    forms["lists_with_int_mask"] = call(as_lists)
    forms["float64_numpy"] = call({k: v.astype("float64") for k, v in base.items()})
    forms["int32_tensor"] = message(call(dict(
        {k: tf.constant(v) for k, v in base.items()},
        modality_mask=tf.constant(base["modality_mask"].astype("int32")))))
    all_present = loaded.signatures["ALL_PRESENT"]
    no_mask = {k: tf.constant(v) for k, v in base.items() if k != "modality_mask"}
    forms["no_mask"] = call(no_mask, all_present)
    forms["ones_mask"] = call(dict(no_mask, modality_mask=tf.ones((6, 3))))
    report["forms"] = {}
    for name, result in forms.items():
        if isinstance(result, dict):
            same = (reference if name != "no_mask" else forms["ones_mask"])
            report["forms"][name] = all(
                np.allclose(result[k], same[k], atol=1e-6) for k in same)
        else:
            report["forms"][name] = result
    report["signatures"] = sorted(loaded.signatures)
    print(json.dumps(report))
    """
).replace("ALL_PRESENT", ALL_PRESENT_SIGNATURE)


@pytest.mark.slow
def test_concurrent_callers_get_sequential_answers_and_bad_requests_clear_errors(
        exported, tmp_path):
    inputs_path = str(tmp_path / "inputs.npz")
    np.savez(inputs_path, **_inputs(1, 30))
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, exported, inputs_path], capture_output=True,
        text=True, timeout=240, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["mismatches"] == [] and report["unexpected"] == []
    assert report["seconds"] < 120
    bad = report["bad"]
    assert set(bad) == {"0", "1", "2", "3"}
    assert all(kind == "InvalidArgumentError" for kind, _ in bad.values())
    assert "Bad input 'audio': NaN or inf in the row(s)" in bad["0"][1]
    assert "Bad input 'image': expected float32 [N, 4]" in bad["1"][1]
    assert "Bad input 'modality_mask': every modality is missing" in bad["2"][1]
    assert "Bad input 'sensor': NaN or inf" in bad["3"][1] and "Rows:] [0]" in bad["3"][1]

    forms = report["forms"]
    assert "Bad input 'sensor': NaN or inf" in forms["nan"][1] and "Rows:] [4]" in forms["nan"][1]
    assert forms["lists_with_int_mask"] is True  # cast to float32 by the signature
    assert forms["float64_numpy"] is True
    # A tf.Tensor of another dtype: TensorFlow's own check refuses it before the model runs.
    assert forms["int32_tensor"][0] == "InvalidArgumentError"
    assert "int32" in forms["int32_tensor"][1]
    assert forms["no_mask"] is True  # the mask left out = every modality present
    assert report["signatures"] == sorted(["serving_default", ALL_PRESENT_SIGNATURE])
