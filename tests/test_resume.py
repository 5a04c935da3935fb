"""A run interrupted at any point and started again ends where the unbroken run ends:
the same weights, test metrics, history (`history.json`, `epochs_run`) and task-weight
records (`task_weights.csv`), early stopping included.

In process: a callback raising `Killed` stands for a SIGKILL at that point (the slow
subprocess test, `test_interruption.py`, sends a real one); the resumed run is a new
`train_and_evaluate` (a new model, seeded and built as a new process builds it), so
what it keeps is only what `AtomicBackupAndRestore` wrote. A run killed after
training (while it evaluates, writes its files or exports) resumes its finished
backup: no epoch trained again. The settings make early
stopping matter: with a high learning rate the validation loss is best at the third
epoch and the run stops after the fifth of eight, restoring the third epoch's weights.
"""

import json

import keras
import numpy as np
import pytest

from hgfn_keras import TrainConfig, load_npz, recipe

EPOCHS = 8


class Killed(Exception):
    """Stands for a SIGKILL."""


class Kill(keras.callbacks.Callback):
    """Records the epochs a fit runs; raises `Killed` at batch `batch` of epoch `epoch`
    (mid-epoch: that epoch is not backed up) or, with `at_train_end`, when training
    has ended but before the backup is removed and the best weights restored."""

    def __init__(self, epoch=None, batch=1, at_train_end=False):
        super().__init__()
        self.epoch, self.batch, self.at_train_end = epoch, batch, at_train_end
        self.seen, self.current = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise Killed

    def on_train_end(self, logs=None):
        if self.at_train_end:
            raise Killed


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 60
    path = tmp_path_factory.mktemp("resume") / "tiny.npz"
    np.savez(path, x_audio=rng.normal(size=(n, 3)).astype("float32"),
             x_video=rng.normal(size=(n, 4)).astype("float32"),
             y_happy=rng.integers(0, 2, n), y_mood=rng.integers(0, 3, n))
    return path


def _config(npz):
    # monitor="val_loss": the premise below is stated on the validation loss (the
    # size-aware default monitors the validation MAP).
    return TrainConfig(dataset=f"npz:{npz}", epochs=EPOCHS, patience=2, learning_rate=0.05,
                       batch_size=8, head_units=4, monitor="val_loss")


def _run(npz, output_dir, kill=None, config=None):
    keras.utils.set_random_seed(0)
    kill = kill or Kill()
    result = recipe.train_and_evaluate(config or _config(npz), load_npz(npz), str(output_dir),
                                       verbose=0, callbacks=[kill])
    return result, kill.seen


def _outcome(result, output_dir):
    """What must not depend on an interruption: the weights, the test metrics
    (the wall time aside), history.json, task_weights.csv and the task weights."""
    metrics = dict(result.metrics, run={k: v for k, v in result.metrics["run"].items()
                                        if k != "fit_seconds"})
    return {"weights": result.fit.model.get_weights(), "metrics": metrics,
            "history": json.loads((output_dir / "history.json").read_text()),
            "task_weights": (output_dir / "task_weights.csv").read_text(),
            "task_weight_history": result.fit.rebalancing.history}


def _assert_same(outcome, unbroken):
    assert outcome["metrics"] == unbroken["metrics"]
    assert outcome["history"] == unbroken["history"]
    assert outcome["task_weights"] == unbroken["task_weights"]
    assert outcome["task_weight_history"] == unbroken["task_weight_history"]
    assert len(outcome["weights"]) == len(unbroken["weights"])
    for a, b in zip(outcome["weights"], unbroken["weights"]):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def unbroken(npz, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("unbroken")
    result, seen = _run(npz, output_dir)
    outcome = _outcome(result, output_dir)
    # The premise: early stopping stopped the run before its last epoch, and its best
    # epoch is not its last, so its state decides the weights.
    assert seen == [0, 1, 2, 3, 4]
    assert outcome["metrics"]["run"]["epochs_run"] == 5
    val_loss = outcome["history"]["val_loss"]
    assert int(np.argmin(val_loss)) == 2 < len(val_loss) - 1
    assert not (output_dir / "backup").exists()
    return outcome


@pytest.mark.parametrize("kill, resumed_epochs", [
    pytest.param(dict(epoch=2), [2, 3, 4], id="mid-epoch"),
    # Killed in the epoch after which early stopping stops the run.
    pytest.param(dict(epoch=4), [4], id="last-epoch"),
    # Killed when the last epoch is backed up (early stopping has told the run to
    # stop) but before its best weights are restored.
    pytest.param(dict(at_train_end=True), [], id="after-last-backup"),
])
@pytest.mark.slow
def test_a_run_interrupted_and_resumed_ends_as_the_unbroken_run(npz, unbroken, tmp_path,
                                                                 kill, resumed_epochs):
    output_dir = tmp_path / "run"
    with pytest.raises(Killed):
        _run(npz, output_dir, Kill(**kill))
    assert (output_dir / "backup" / "training_metadata.json").is_file()
    assert not (output_dir / "metrics.json").exists()
    result, seen = _run(npz, output_dir)
    assert seen == resumed_epochs  # resumed from the backup, not started afresh
    assert not (output_dir / "backup").exists()
    _assert_same(_outcome(result, output_dir), unbroken)


@pytest.mark.slow
def test_a_resumed_run_keeps_the_reduced_learning_rate_and_its_plateau_count(npz, tmp_path):
    """`ReduceLROnPlateau` halves the learning rate at an epoch's end: the backup,
    written after it, holds the halved rate and the callback's wait and best value."""
    config = _config(npz).replace(patience=0, reduce_lr_patience=1, epochs=6)
    result, _ = _run(npz, tmp_path / "unbroken", config=config)
    unbroken = _outcome(result, tmp_path / "unbroken")
    rates = unbroken["history"]["learning_rate"]
    assert rates[4] < rates[3]  # the premise: halved at the end of epoch 4 (index 3)
    output_dir = tmp_path / "run"
    with pytest.raises(Killed):
        _run(npz, output_dir, Kill(epoch=4), config=config)
    result, seen = _run(npz, output_dir, config=config)
    assert seen == [4, 5]
    _assert_same(_outcome(result, output_dir), unbroken)


@pytest.mark.slow
def test_a_run_killed_during_export_ends_as_the_unbroken_run(npz, unbroken, tmp_path,
                                                             monkeypatch, capsys):
    from hgfn_keras.serving import export
    from training import train

    output_dir, export_dir = tmp_path / "run", tmp_path / "exported"
    argv = ["--dataset", f"npz:{npz}", "--epochs", str(EPOCHS), "--patience", "2",
            "--learning-rate", "0.05", "--batch-size", "8", "--head-units", "4",
            "--seed", "0", "--monitor", "val_loss", "--verbose", "2", "--output-dir", str(output_dir),
            "--export-dir", str(export_dir)]
    assert train.train_config(train.parse_args(argv)) == _config(npz)  # the same run
    real_export = export.export_saved_model

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(export, "export_saved_model", killed)
    with pytest.raises(Killed):
        train.main(argv)
    assert f"Epoch 5/{EPOCHS}" in capsys.readouterr().out
    # The results are written and the backup kept until the export is done.
    assert (output_dir / "metrics.json").is_file()
    assert (output_dir / "backup" / "training_metadata.json").is_file()
    monkeypatch.setattr(export, "export_saved_model", real_export)
    assert train.main(argv) == 0
    out = capsys.readouterr().out
    assert "Epoch " not in out and "Exported the SavedModel" in out  # resumed, not retrained
    assert not (output_dir / "backup").exists()
    assert sorted(p.name for p in export_dir.iterdir()) == ["1"]
    model = keras.saving.load_model(output_dir / "model.keras")
    metrics = json.loads((output_dir / "metrics.json").read_text())
    metrics["run"].pop("fit_seconds")
    outcome = {"weights": model.get_weights(), "metrics": metrics,
               "history": json.loads((output_dir / "history.json").read_text()),
               "task_weights": (output_dir / "task_weights.csv").read_text(),
               "task_weight_history": unbroken["task_weight_history"]}
    _assert_same(outcome, unbroken)


def test_snapshot_restores_each_kept_callback_and_the_random_states(tmp_path):
    """`resume_state` round trip, no training: every kept attribute comes back equal
    (NaN and infinity included), a callback it does not know is left alone, and the
    random states are set by position in a model built later (other variable paths)."""
    from hgfn_keras import ValidationMetrics, build_model, resume_state
    from hgfn_keras.multitask import TaskRebalancing
    from tests.conftest import TINY_MODALITIES, TINY_TASKS, tiny_xy

    def model():
        return build_model(list(TINY_MODALITIES), list(TINY_TASKS), head_units=4,
                           modality_dropout=0.2)

    def callbacks():
        x, y = tiny_xy()
        return [keras.callbacks.EarlyStopping(restore_best_weights=True),
                keras.callbacks.ReduceLROnPlateau(), keras.callbacks.History(),
                TaskRebalancing(), ValidationMetrics(x, y, list(TINY_TASKS)),
                keras.callbacks.TerminateOnNaN()]

    saved_model, saved = model(), callbacks()
    states = resume_state.random_state_variables(saved_model)
    assert states  # dropout and modality dropout draw from seed generators
    for i, variable in enumerate(states):
        variable.assign(np.asarray(variable.numpy()) + 7 + i)
    stopping, plateau, history, rebalancing, validation, _ = saved
    stopping.wait, stopping.stopped_epoch, stopping.best, stopping.best_epoch = 1, 0, 0.25, 2
    stopping.best_weights = [np.arange(3, dtype="float32"), np.ones((2, 2))]
    plateau.wait, plateau.cooldown_counter, plateau.best = 2, 1, float("inf")
    history.history, history.epoch = {"loss": [1.5, float("nan")]}, [0, 1]
    rebalancing.history = [(0, [1.0, 1.0]), (1, [0.5, 1.5])]
    rebalancing.records = [{"epoch": 0, "losses": [0.1, 0.2], "tdb": [1.0, 1.0]}]
    validation.history = [{"mean": {"f1": np.float64(0.5)}}]
    path = str(tmp_path / "state.npz")
    resume_state.snapshot(path, saved_model, saved, stopped=True)

    restored_model, restored = model(), callbacks()
    assert resume_state.restore(path, restored_model, restored) is True
    stopping2, plateau2, history2, rebalancing2, validation2, _ = restored
    assert (stopping2.wait, stopping2.stopped_epoch, stopping2.best, stopping2.best_epoch) == (
        1, 0, 0.25, 2)
    for a, b in zip(stopping2.best_weights, stopping.best_weights, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert (plateau2.wait, plateau2.cooldown_counter, plateau2.best) == (2, 1, float("inf"))
    assert history2.epoch == [0, 1] and history2.history["loss"][0] == 1.5
    assert np.isnan(history2.history["loss"][1])
    assert rebalancing2.history == rebalancing.history
    assert rebalancing2.records == rebalancing.records
    assert validation2.history == [{"mean": {"f1": 0.5}}]
    for a, b in zip(resume_state.random_state_variables(restored_model), states, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
