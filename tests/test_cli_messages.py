"""CLI messages of issue 30's probe: Ctrl-C gives one line (not a KeyboardInterrupt
traceback) and exit code 130; a key given twice in a `--config` file is refused (Python's
`json` kept the last one silently)."""

import json

import pytest

from training import convert, export, predict, train


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("cli, function, argv", [
    (train, "run", ["--dataset", "clothing"]),
    (predict, "predict", ["--model", "m", "--input", "i.csv", "--output", "o.csv"]),
    (export, "run", ["--model", "m", "--export-dir", "e"]),
    (convert, "run", ["--input", "x.npz", "--output", "o"]),
])
def test_ctrl_c_prints_one_line(cli, function, argv, monkeypatch, capsys):
    monkeypatch.setattr(cli, function, _interrupt)
    assert cli.main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: interrupted (Ctrl-C)"), err


def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path, capsys):
    path = tmp_path / "config.json"
    # (A dataset that does not exist: without the check nothing would train either.)
    path.write_text('{"dataset": "npz:no_such.npz", "epochs": 1, "epochs": 50}')
    with pytest.raises(SystemExit) as caught:
        train.main(["--config", str(path)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert (f"--config: cannot read {str(path)!r} as JSON (the key 'epochs' is given twice "
            "(values 1 and 50))") in err
    path.write_text(json.dumps({"dataset": "npz:no_such.npz", "epochs": 1}))
    assert train.parse_args(["--config", str(path)]).epochs == 1
