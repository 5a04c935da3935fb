"""Tuning: the HyperModel, the validation-metrics callback, `training.train --config`,
`python -m tuning.search` (2 trials on a tiny npz) and a chief + one worker on 127.0.0.1."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import keras_tuner
import numpy as np
import pytest

from hgfn_keras import load_npz
from hgfn_keras.evaluation.metrics import multitask_metrics
from hgfn_keras.evaluation.validation_metrics import ValidationMetrics
from tests.conftest import run_as_process, run_in_process
from training import train
from tuning import HGFNHyperModel, search

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _env(**extra):
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **extra)


def _search(*args, env=None, timeout=300):
    return subprocess.Popen(
        [sys.executable, "-m", "tuning.search", *map(str, args)], cwd=REPO_ROOT,
        env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_hypermodel_space_builds_the_training_model(tiny_npz_file):
    dataset = load_npz(tiny_npz_file)
    hypermodel = HGFNHyperModel(dataset, objective="val_mean_f1",
                                fixed={"head_units": 4, "epochs": 1, "batch_size": 16})
    assert hypermodel.keras_tuner_objective == keras_tuner.Objective("val_mean_f1", "max")
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert set(hp.values) == {"theta", "beta", "alpha", "tdb_learning_rate", "learning_rate",
                              "dropout"}
    assert 0 < hp.values["theta"] <= 1 and hp.values["beta"] >= 0
    assert model.fusion_layer.theta == hp.values["theta"]
    assert model.beta == hp.values["beta"]
    assert model.task_weighting.alpha == hp.values["alpha"]
    assert model.task_weighting.learning_rate == hp.values["tdb_learning_rate"]
    assert model.network.get_layer("happy_hidden").units == 4  # fixed, not searched
    history = hypermodel.fit(hp, model, verbose=0)
    assert set(history.history) >= {"loss", "val_loss", "val_mean_f1", "happy_weight"}
    lsew = HGFNHyperModel(dataset, fixed={"mtl": "lsew", "fusion": "cfc"})
    hp = keras_tuner.HyperParameters()
    lsew.build(hp)
    assert "alpha" not in hp.values and "theta" not in hp.values and "cfc_units" in hp.values
    with pytest.raises(ValueError, match="Unknown TrainConfig field.*thetta"):
        HGFNHyperModel(dataset, fixed={"thetta": 0.5})
    with pytest.raises(ValueError, match="`objective` must be one of"):
        HGFNHyperModel(dataset, objective="val_f1")


def test_validation_metrics_matches_multitask_metrics(tiny_npz_file):
    dataset = load_npz(tiny_npz_file)
    hypermodel = HGFNHyperModel(dataset, fixed={"head_units": 4})
    model = hypermodel.build(keras_tuner.HyperParameters())
    x_val, y_val = dataset.splits["validation"]
    callback = ValidationMetrics(x_val, y_val, dataset.tasks, per_task=True)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    expected = multitask_metrics(dataset.tasks, y_val, model.predict(x_val, verbose=0))
    assert logs["val_mean_f1"] == pytest.approx(expected["mean"]["f1"])
    assert logs["val_mood_map"] == pytest.approx(expected["tasks"]["mood"]["map"])
    with pytest.raises(ValueError, match="lacks the labels of task"):
        ValidationMetrics(x_val, {"happy": y_val["happy"]}, dataset.tasks)
    empty = {k: np.full_like(v, -1) for k, v in y_val.items()}
    callback = ValidationMetrics(x_val, empty, dataset.tasks)
    callback.set_model(model)
    with pytest.raises(ValueError, match="val_mean_f1 is NaN"):
        callback.on_epoch_end(0, {})


def test_train_config_file_and_cli_flags(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"theta": 0.25, "epochs": 5, "no_export": True,
                                "max_order": None, "config": "ignored.json"}))
    args = train.parse_args(["--config", str(path), "--epochs", "2"])
    assert (args.theta, args.epochs, args.no_export, args.max_order) == (0.25, 2, True, None)
    for bad, message in (({"thetta": 1}, "unknown key(s) ['thetta']"),
                         ({"theta": 1.5}, "`theta` must be in (0, 1]"),
                         ({"epochs": [1]}, "'epochs' must be a number or a string"),
                         ({"no_export": "yes"}, "'no_export' must be true or false")):
        path.write_text(json.dumps(bad))
        with pytest.raises(SystemExit) as exit_info:
            train.parse_args(["--config", str(path)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.parse_args(["--config", str(tmp_path / "missing.json")])
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.slow
def test_search_writes_config_that_training_accepts(tiny_npz_file, tmp_path):
    out = tmp_path / "search"
    # `main(argv)` in this process (the distributed search below starts processes).
    process = run_as_process(search.main, "--dataset", f"npz:{tiny_npz_file}", "--tuner",
                             "random", "--max-trials", 2, "--epochs", 1, "--batch-size", 16,
                             "--output-dir", out, "--verbose", 2)
    stdout, stderr = process.stdout, process.stderr
    assert process.returncode == 0, stderr[-3000:]
    assert "Best val_mean_f1" in stdout  # the default objective
    best = json.loads((out / "best_hyperparameters.json").read_text())
    searched = {"theta", "beta", "alpha", "tdb_learning_rate", "learning_rate", "head_units",
                "dropout", "embedding_dim"}
    assert {"theta", "beta", "alpha", "learning_rate"} <= set(best)
    # Only the searched values and the architecture choices: never how the search ran.
    assert set(best) - searched == {"fusion", "mtl"}, best
    summary = json.loads((out / "search_summary.json").read_text())
    assert len(summary["trials"]) == 2
    # The trial numbers are the ones the log shows.
    logged = [int(n) for n in re.findall(r"Running Trial #(\d+)", stdout)]
    assert [t["trial"] for t in summary["trials"]] == logged == [1, 2]
    assert f"(trial #{summary['best_trial']})" in stdout
    assert summary["searched_with"]["epochs"] == 1 and summary["searched_with"]["batch_size"] == 16
    # Resuming with other arguments is refused in one line (in this process: the
    # refusal comes before any training).
    again = run_in_process(search.main, "--dataset", f"npz:{tiny_npz_file}", "--tuner",
                           "bayesian", "--output-dir", out)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "holds a search made with other arguments" in again.stderr
    run_dir = tmp_path / "run"
    result = run_in_process(train.main, "--dataset", f"npz:{tiny_npz_file}",
                            "--config", out / "best_hyperparameters.json", "--epochs", "1",
                            "--output-dir", run_dir, "--no-export", "--verbose", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run_dir / "config.json").read_text())
    for key in ("theta", "beta", "alpha", "learning_rate", "head_units"):
        assert config[key] == best[key]
    assert (run_dir / "model.keras").is_file()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_search_chief_and_one_worker(tiny_npz_file, tmp_path):
    out = tmp_path / "distributed"
    args = ("--dataset", f"npz:{tiny_npz_file}", "--tuner", "random", "--max-trials", 2,
            "--epochs", 1, "--batch-size", 16, "--output-dir", out, "--verbose", 0)
    oracle = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
    chief = _search(*args, env=_env(KERASTUNER_TUNER_ID="chief", **oracle))
    worker = _search(*args, env=_env(KERASTUNER_TUNER_ID="worker0", **oracle))
    try:
        worker_out, worker_err = worker.communicate(timeout=300)
        chief_out, chief_err = chief.communicate(timeout=120)
    finally:
        for process in (chief, worker):
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert worker.returncode == 0, worker_err[-3000:]
    assert chief.returncode == 0, chief_err[-3000:]
    assert "Worker worker0: no trial left" in worker_out
    summary = json.loads((out / "search_summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["COMPLETED", "COMPLETED"]
    assert "theta" in json.loads((out / "best_hyperparameters.json").read_text())


def test_resume_compares_one_vs_rest_and_reads_older_records(tmp_path):
    from tuning import search

    path = tmp_path / "search_arguments.json"
    args = search.parse_args(["--dataset", "clothing", "--output-dir", str(tmp_path)])
    older = {k: getattr(args, k) for k in search.RESUME_KEYS if k != "one_vs_rest"}
    path.write_text(json.dumps(older))
    search._check_resume(args, str(path))  # a record without the key: it was off
    args.one_vs_rest = True
    with pytest.raises(ValueError, match="'one_vs_rest': \\(False, True\\)"):
        search._check_resume(args, str(path))



@pytest.mark.parametrize("flag, value", [("--epochs", "2"), ("--batch-size", "64"),
                                         ("--patience", "5")])
def test_a_search_resumed_with_other_epochs_is_refused(tmp_path, flag, value):
    # Issue 30: resumed with another --epochs, trials scored after 1 and 2 epochs were
    # ranked together.
    from tuning import search

    path = tmp_path / "search_config.json"
    base = ["--dataset", "clothing", "--output-dir", str(tmp_path), "--epochs", "1"]
    search._check_resume(search.parse_args(base), str(path))  # the first run records
    search._check_resume(search.parse_args(base), str(path))  # the same: resumes
    other = search.parse_args(base + [flag, value])
    name = flag[2:].replace("-", "_")
    with pytest.raises(ValueError, match=rf"'{name}': \(.*, {value}\)\}}; its trials would be "
                       "ranked with ones scored otherwise.*--overwrite"):
        search._check_resume(other, str(path))
    other.overwrite = True
    search._check_resume(other, str(path))
