"""`--tensorboard` without the tensorboard package: one `error:` line, not a traceback."""

import os
import pathlib
import subprocess
import sys

import pytest

from hgfn_keras.recipe.tensorboard_logging import MissingTensorBoardError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_error_is_an_import_error_and_a_value_error():
    assert issubclass(MissingTensorBoardError, ImportError)
    assert issubclass(MissingTensorBoardError, ValueError)


@pytest.mark.slow
def test_tensorboard_flag_without_the_package_is_one_error_line(tiny_npz_file, tmp_path):
    # A `tensorboard` package that cannot be imported, first on the path.
    blocked = tmp_path / "blocked" / "tensorboard"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text(
        "raise ImportError(\"No module named 'tensorboard' (hidden by the test)\")\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(blocked.parent), str(REPO_ROOT)]))
    result = subprocess.run(
        [sys.executable, "-m", "training.train", "--dataset", f"npz:{tiny_npz_file}",
         "--epochs", "1", "--tensorboard", "--no-export", "--output-dir", str(tmp_path / "run")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "tensorboard package" in errors[0]
    assert "pip install 'hgfn-keras[tensorboard]'" in errors[0]
    assert not (tmp_path / "run" / "model.keras").exists()
