"""The programs' one error policy (`training/_cli.py`, issue 29): a user error is an
`error:` line and exit status 2, Ctrl-C one line and 130, anything else a bug whose
traceback stays; and every program's `main()` goes through it. In-process."""

import csv

import pytest
import tensorflow as tf

from training import (
    _cli,
    convert,
    experiments,
    export,
    extract,
    plot_task_weights,
    predict,
    train,
)
from tuning import search


def _raising(error):
    def work(*args, **kwargs):
        raise error

    return work


def _stderr_lines(capsys):
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("error, line", [
    (ValueError("`epochs` must be >= 1. Received: epochs=0"),
     "error: `epochs` must be >= 1. Received: epochs=0"),
    (FileNotFoundError(2, "No such file or directory", "x.npz"),
     "error: [Errno 2] No such file or directory: 'x.npz'"),
    (ImportError("Plotting needs matplotlib: pip install matplotlib"),
     "error: Plotting needs matplotlib: pip install matplotlib"),
    (csv.Error("field larger than field limit (131072)"),
     "error: field larger than field limit (131072)"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
     "error: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    # The message as it is, up to a traceback a library appended to it.
    (ValueError("3 trials failed.\nTraceback (most recent call last):\n  File ..."),
     "error: 3 trials failed."),
    (ValueError(""), "error: ValueError"),
    # TensorFlow's file and data errors: their `message`, not the op's name before it.
    (tf.errors.DataLossError(None, None, "corrupted record at 12"),
     "error: corrupted record at 12"),
    (tf.errors.NotFoundError(None, None, "/no/such/shard; No such file or directory"),
     "error: /no/such/shard; No such file or directory"),
])
def test_a_user_error_is_one_line_and_status_2(error, line, capsys):
    assert _cli.run_main(_raising(error)) == 2
    assert _stderr_lines(capsys) == [line]


def test_a_message_of_several_lines_is_kept(capsys):
    # Keras wraps an error raised while tracing: "in user code:", the frames, then the
    # message (test_extract.py's encoder of the wrong shape). A first line alone lost it.
    error = ValueError("in user code:\n\n    File \"m.py\", line 3\n\n"
                       "    ValueError: The encoder must return one vector per item")
    assert _cli.run_main(_raising(error)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: in user code:\n") and err.endswith("one vector per item\n")


@pytest.mark.parametrize("error", [
    TypeError("unsupported operand"), KeyError("flood"), RuntimeError("a bug"),
    AttributeError("no attribute"), tf.errors.InvalidArgumentError(None, None, "shape"),
])
def test_anything_else_is_a_bug_and_keeps_its_traceback(error, capsys):
    with pytest.raises(type(error)):
        _cli.run_main(_raising(error))
    assert capsys.readouterr().err == ""


def test_a_program_may_add_a_library_s_errors(capsys):
    failing = _raising(RuntimeError("Number of consecutive failures exceeded the limit of 3.\n"
                                    "Traceback (most recent call last):\n  ..."))
    assert _cli.run_main(failing, extra_errors=(RuntimeError,)) == 2
    assert _stderr_lines(capsys) == [
        "error: Number of consecutive failures exceeded the limit of 3."]


def test_ctrl_c_is_one_line_and_status_130(capsys):
    assert _cli.run_main(_raising(KeyboardInterrupt())) == 130
    assert _stderr_lines(capsys) == ["error: interrupted (Ctrl-C)."]
    assert _cli.run_main(_raising(KeyboardInterrupt()), interrupted="Run it again.") == 130
    assert _stderr_lines(capsys) == ["error: interrupted (Ctrl-C). Run it again."]


def test_the_work_s_arguments_pass_through_and_its_return_value_is_not_a_status(capsys):
    # `training.train.run` returns the metrics: given to `sys.exit`, a dict printed itself
    # on stderr and made the status 1.
    assert _cli.run_main(lambda a, b: {"a": a, "b": b}, 1, 2) == 0
    assert _cli.run_main(lambda: 3) == 0
    assert _cli.run_main(print, "done") == 0
    assert capsys.readouterr() == ("done\n", "")


# Each program: the name of its work in its module, and arguments that parse.
PROGRAMS = [
    (train, "run", ["--dataset", "clothing"]),
    (predict, "predict", ["--model", "m", "--input", "i.csv", "--output", "o.csv"]),
    (export, "run", ["--model", "m", "--export-dir", "e"]),
    (convert, "run", ["--input", "x.npz", "--output", "o"]),
    (extract, "run", ["--manifest", "m.csv", "--output", "o.npz"]),
    (experiments, "run", ["--output-dir", "o"]),
    (plot_task_weights, "plot_task_weights", ["task_weights.csv"]),
    (search, "run", ["--output-dir", "o"]),
]


@pytest.mark.parametrize("program, work, argv", PROGRAMS,
                         ids=[p[0].__name__ for p in PROGRAMS])
def test_every_program_follows_the_policy(program, work, argv, monkeypatch, capsys):
    monkeypatch.setattr(program, work, _raising(ValueError("bad value")))
    assert program.main(argv) == 2
    assert _stderr_lines(capsys) == ["error: bad value"]
    monkeypatch.setattr(program, work, _raising(KeyboardInterrupt()))
    assert program.main(argv) == 130
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: interrupted (Ctrl-C)."), lines
    monkeypatch.setattr(program, work, _raising(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        program.main(argv)
