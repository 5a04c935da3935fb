"""A quiet terminal: no TensorFlow start-up block, no C++ E/W lines, unless asked for."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
NOISE = re.compile(r"^[EWI]0000 |absl::InitializeLog|ran out of data", re.MULTILINE)


def _run(args, env=None, timeout=600):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("TF_CPP_MIN_LOG_LEVEL", "HGFN_VERBOSE")}
    environment.update(env or {})
    environment["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable] + args, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env=environment)


def test_import_is_quiet_and_verbose_brings_the_logs_back():
    quiet = _run(["-c", "import hgfn_keras"])
    assert quiet.returncode == 0, quiet.stderr
    assert not NOISE.search(quiet.stderr), quiet.stderr
    # TensorFlow prints its start-up block on every import on a machine without a GPU
    # driver; with HGFN_VERBOSE=1 (what --verbose sets) it is left alone.
    verbose = _run(["-c", "import hgfn_keras"], env={"HGFN_VERBOSE": "1"})
    assert verbose.returncode == 0, verbose.stderr
    if not NOISE.search(verbose.stderr):
        pytest.skip("this TensorFlow build prints no start-up lines here")


def test_other_lines_printed_during_the_import_are_kept():
    # A line on fd 2 while TensorFlow is imported that is not known noise passes through.
    code = ("import os, sys\n"
            "from hgfn_keras import _quiet\n"
            "with _quiet._filtered_stderr():\n"
            "    os.write(2, b'W0000 00:00 1 port.cc:1] noise\\nkeep me\\n')\n")
    result = _run(["-c", code])
    assert result.stderr == "keep me\n"


@pytest.mark.slow
def test_main_command_prints_only_our_lines(tmp_path):
    result = _run(["-m", "training.train", "--dataset", "clothing", "--fusion", "hgfn",
                   "--mtl", "dmtl", "--limit", "300", "--epochs", "1", "--no-export",
                   "--output-dir", str(tmp_path / "run")])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not NOISE.search(output), output


def test_verbose_flag_counts_on_our_command_lines_only():
    code = "import os, training; print(os.environ.get('HGFN_VERBOSE'))"
    # `python -c`: argv[0] is "-c", not one of our programs, so --verbose is left alone.
    assert _run(["-c", code, "--verbose"]).stdout.strip() == "None"
    script = "import runpy, sys; sys.argv = ['-m', '--verbose']; " + code
    assert _run(["-c", script]).stdout.strip() == "1"
