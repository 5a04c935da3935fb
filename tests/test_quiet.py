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


@pytest.mark.slow
def test_programs_are_quiet_and_verbose_brings_the_logs_back():
    # What a program package does before TensorFlow's first import (training/__init__.py).
    quiet = _run(["-c", "import training, hgfn_keras"])
    assert quiet.returncode == 0, quiet.stderr
    assert not NOISE.search(quiet.stderr), quiet.stderr
    # TensorFlow prints its start-up block on every import on a machine without a GPU
    # driver; with HGFN_VERBOSE=1 (what --verbose sets) it is left alone.
    verbose = _run(["-c", "import training, hgfn_keras"], env={"HGFN_VERBOSE": "1"})
    assert verbose.returncode == 0, verbose.stderr
    if not NOISE.search(verbose.stderr):
        pytest.skip("this TensorFlow build prints no start-up lines here")


@pytest.mark.parametrize("program", ["training", "tuning", "benchmarks"])
@pytest.mark.slow
def test_each_program_package_sets_the_log_level(program):
    result = _run(["-c", f"import {program}, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


@pytest.mark.slow
def test_importing_the_library_leaves_the_process_as_it_was():
    # A notebook or a server that imports the library keeps its own log settings: no
    # environment variable set, no import hook left (issue 22).
    code = ("import os, sys, tensorflow, keras\n"
            "environ, meta_path = dict(os.environ), list(sys.meta_path)\n"
            "import hgfn_keras\n"
            "assert dict(os.environ) == environ, set(os.environ) ^ set(environ)\n"
            "assert list(sys.meta_path) == meta_path, sys.meta_path\n"
            "print('unchanged', os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n")
    result = _run(["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "unchanged None"


def test_two_program_packages_install_one_filter():
    code = ("import sys, training, benchmarks\n"
            "print(sum(type(f).__name__ == '_TensorFlowFinder' for f in sys.meta_path))\n")
    result = _run(["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_other_lines_printed_during_the_import_are_kept():
    # A line on fd 2 while TensorFlow is imported that is not known noise passes through.
    code = ("import os, sys, training\n"
            "import hgfn_quiet as _quiet\n"
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
