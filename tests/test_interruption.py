"""A training run killed with SIGKILL and started again ends where an unbroken run ends."""

import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

import hgfn_keras  # noqa: F401  (registers the classes a .keras file names)

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 4


def _npz(tmp_path, rows=1200):
    rng = np.random.default_rng(0)
    path = tmp_path / "features.npz"
    np.savez(path, x_image=rng.normal(size=(rows, 8)).astype("float32"),
             x_audio=rng.normal(size=(rows, 4)).astype("float32"),
             y_flood=rng.integers(0, 2, rows), y_damage=rng.integers(0, 3, rows))
    return path


def _command(npz, output_dir):
    return [sys.executable, "-m", "training.train", "--dataset", f"npz:{npz}", "--fusion",
            "hgfn", "--mtl", "dmtl", "--epochs", str(EPOCHS), "--patience", "0",
            "--batch-size", "8", "--seed", "0", "--no-export", "--verbose", "2",
            "--output-dir", str(output_dir)]


ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")


def test_sigkill_mid_epoch_then_resume_gives_the_same_model(tmp_path):
    npz = _npz(tmp_path)
    straight = subprocess.run(_command(npz, tmp_path / "straight"), cwd=ROOT, env=ENV,
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]

    resumed_dir = tmp_path / "resumed"
    process = subprocess.Popen(_command(npz, resumed_dir), cwd=ROOT, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:  # wait until epoch 3 has started, then kill
            if line.startswith(f"Epoch 3/{EPOCHS}"):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert (resumed_dir / "backup").is_dir()
    assert not (resumed_dir / "model.keras").exists()

    again = subprocess.run(_command(npz, resumed_dir), cwd=ROOT, env=ENV,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Epoch 1/{EPOCHS}" not in again.stdout  # it resumed, not restarted
    assert not (resumed_dir / "backup").exists()  # cleaned up after a finished run

    a = keras.saving.load_model(tmp_path / "straight" / "model.keras")
    b = keras.saving.load_model(resumed_dir / "model.keras")
    np.testing.assert_allclose(b.task_weights.numpy(), a.task_weights.numpy(), rtol=1e-5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-4, atol=1e-6)
