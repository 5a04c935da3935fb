"""The wheel as a user installs it: console scripts, top-level `training`/`tuning`, predict.

Builds the wheel from a copy of the working tree, installs it with `--no-deps` into a
fresh virtual environment that reuses this environment's installed packages (a `.pth`
line, so nothing is downloaded), and runs the console scripts from outside the repo.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ("hgfn-train", "hgfn-predict", "hgfn-export", "hgfn-extract", "hgfn-convert",
           "hgfn-experiments", "hgfn-search", "hgfn-plot-task-weights")


def _run(args, cwd, env=None, timeout=600):
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("hgfn_keras", "training", "tuning"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE", "hgfn_quiet.py"):
        shutil.copy(REPO_ROOT / name, source / name)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--wheel-dir", dist, source], cwd=root)
    wheel = next(dist.glob("hgfn_keras-*.whl"))
    with zipfile.ZipFile(wheel) as archive:  # the programs import it before TensorFlow
        assert "hgfn_quiet.py" in archive.namelist()

    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # Reuse the installed dependencies of this environment (not its hgfn_keras).
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    pathlib.Path(site, "reuse_test_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
          "--no-index", wheel], cwd=root)
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    environment["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    return env_dir, root, environment


@pytest.mark.slow
def test_console_scripts_answer_help(installed):
    env_dir, root, environment = installed
    for script in SCRIPTS:
        assert (env_dir / "bin" / script).exists(), script
    result = _run(["hgfn-train", "--help"], cwd=root, env=environment)
    assert "--dataset" in result.stdout
    where = _run([env_dir / "bin" / "python", "-c",
                  "import hgfn_keras, training, tuning; print(hgfn_keras.__file__)"],
                 cwd=root, env=environment)
    assert str(env_dir) in where.stdout, where.stdout  # the wheel's copy, not the repo's


@pytest.mark.slow
def test_predict_console_script_scores_a_tiny_model(installed):
    env_dir, root, environment = installed
    script = r"""
import numpy as np, keras
from hgfn_keras import Modality, Task, build_model
keras.utils.set_random_seed(0)
modalities = [Modality("image", width=3), Modality("audio", width=2)]
model = build_model(modalities, [Task("flood", 2)], fusion="hgfn",
                    fusion_kwargs={"theta": 0.5}, head_units=4, mtl="dmtl")
model.compile(optimizer="adam")
rng = np.random.default_rng(0)
x = {"image": rng.normal(size=(8, 3)).astype("float32"),
     "audio": rng.normal(size=(8, 2)).astype("float32"),
     "modality_mask": np.ones((8, 2), "float32")}
model.fit(x, {"flood": np.arange(8) % 2}, epochs=1, verbose=0)
model.save("model.keras")
np.savez("in.npz", x_image=x["image"], x_audio=x["audio"])
"""
    _run([env_dir / "bin" / "python", "-c", script], cwd=root, env=environment)
    result = _run(["hgfn-predict", "--model", "model.keras", "--input", "in.npz",
                   "--output", "p.csv"], cwd=root, env=environment)
    assert "Scored 8 row(s)" in result.stdout
    header = (root / "p.csv").read_text().splitlines()[0]
    assert header == ("row,flood_prob_0,flood_prob_1,flood_pred,flood_pred_index,weight_image,"
                      "weight_audio")
