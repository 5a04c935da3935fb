"""What a resumed run needs besides the model's and the optimizer's variables: the
state the callbacks keep in Python attributes, and the model's random states.

Keras' `BackupAndRestore` saves the variables and the epoch. The callbacks that
remember earlier epochs keep that memory in attributes, which a new process starts
empty: `EarlyStopping` forgets its best value, its wait, its best epoch and its best
weights (a run killed in its last epoch and resumed ended with that epoch's weights,
not the best epoch's; issue 23: mean F1 0.920 where the unbroken run ends with 0.938),
`ReduceLROnPlateau` its wait and best value, `History`,
`TaskRebalancing` and `ValidationMetrics` hold only the resumed epochs (`history.json`,
`epochs_run` and `task_weights.csv` lost the earlier ones), and the
`keras.random.SeedGenerator` states that draw dropout masks are not variables that
`save_weights` writes. Keras has no state protocol for callbacks, so a callback of this
package declares its state in a class attribute, `backup_state` (the names of the public
attributes it resets in `on_train_begin`; an optional `restored()` method is called after
they are set), and `KERAS_CALLBACK_STATE` names them for Keras' own callbacks;
`snapshot` reads those attributes and `restore` writes them back; `AtomicBackupAndRestore` keeps the snapshot in one file per backup,
named by the backup's metadata, so that the variables, the epoch and this state always
come from the same epoch.

A snapshot is a `.npz` file: arrays (the best weights, the random states) under
`"<callback>/<i>"` and `"random/<i>"`, everything else as one JSON document
under `"state"` (Python's `json`, which writes NaN and infinity: a loss may be NaN
before `TerminateOnNaN` stops the run; never pickled objects).
"""

import json

import keras
import numpy as np

#: `(Keras callback class, the attributes that make its state)` (JSON values), for the
#: callbacks that cannot declare `backup_state` themselves. A
#: `keras.callbacks.EarlyStopping`'s `best_weights` are arrays, kept apart.
KERAS_CALLBACK_STATE = (
    (keras.callbacks.EarlyStopping, ("wait", "stopped_epoch", "best", "best_epoch")),
    (keras.callbacks.ReduceLROnPlateau, ("wait", "cooldown_counter", "best")),
    (keras.callbacks.History, ("history", "epoch")),
)


def _attributes(callback):
    """The state attributes of `callback` (its `backup_state`), or None when it keeps no
    state across epochs."""
    declared = getattr(callback, "backup_state", None)
    if declared is not None:
        return tuple(declared)
    for cls, names in KERAS_CALLBACK_STATE:
        if isinstance(callback, cls):
            return names
    return None


def _plain(value):
    """`value` with numpy scalars and arrays as Python numbers and lists, tuples as
    lists (what JSON holds)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def _keys(callbacks):
    """A name per callback of `callbacks` that keeps state: its class name, with
    `_<n>` from the second of a class on (the same list gives the same names)."""
    keys, seen = {}, {}
    for index, callback in enumerate(callbacks):
        if _attributes(callback) is None:
            continue
        name = type(callback).__name__
        seen[name] = seen.get(name, 0) + 1
        keys[index] = name if seen[name] == 1 else f"{name}_{seen[name]}"
    return keys


def random_state_variables(model):
    """The model's `SeedGenerator` state variables, in the model's order.

    Kept by position, not by path: a path holds a name made unique in the process
    (`seed_generator_3/...` for a model built after another), so a model built anew
    in the same process has other paths; its layers, and their order, are the same
    (the backup's fingerprint ensures the same settings).
    """
    return [v for v in model.variables if "seed_generator_state" in v.path]


def snapshot(path, model, callbacks, stopped=False):
    """Writes the state of `callbacks` and `model`'s random states to `path` (a
    `.npz` file; the caller makes the write atomic).

    Args:
        path: the file to write.
        model: the model being trained.
        callbacks: the callbacks whose state to keep; ones that declare no
            `backup_state` (and are not `EarlyStopping`, `ReduceLROnPlateau` or
            `History`) are skipped.
        stopped: whether the run has been told to stop (`model.stop_training`):
            a resumed run then trains no further epoch.
    """
    state, arrays = {"stopped": bool(stopped), "callbacks": {}}, {}
    for index, key in _keys(callbacks).items():
        callback = callbacks[index]
        state["callbacks"][key] = {name: _plain(getattr(callback, name, None))
                                   for name in _attributes(callback)}
        best_weights = getattr(callback, "best_weights", None)
        if isinstance(callback, keras.callbacks.EarlyStopping) and best_weights is not None:
            state["callbacks"][key]["best_weights"] = len(best_weights)
            for i, value in enumerate(best_weights):
                arrays[f"{key}/{i}"] = np.asarray(value)
    for i, variable in enumerate(random_state_variables(model)):
        arrays[f"random/{i}"] = np.asarray(keras.ops.convert_to_numpy(variable))
    with open(path, "wb") as f:
        np.savez(f, state=np.array(json.dumps(state)), **arrays)


def restore(path, model, callbacks):
    """Sets the state of `callbacks` and `model`'s random states from a `snapshot`
    file. A callback the snapshot does not name (one added since) keeps the state
    its `on_train_begin` gave it.

    Returns:
        Whether the snapshot's run had been told to stop.
    """
    with np.load(path) as saved:
        state = json.loads(str(saved["state"]))
        arrays = {k: saved[k] for k in saved.files if k != "state"}
    for index, key in _keys(callbacks).items():
        callback, values = callbacks[index], state["callbacks"].get(key)
        if values is None:
            continue
        count = values.pop("best_weights", None)
        for name, value in values.items():
            setattr(callback, name, value)
        if isinstance(callback, keras.callbacks.EarlyStopping):
            callback.best_weights = (None if count is None
                                     else [arrays[f"{key}/{i}"] for i in range(count)])
        if hasattr(callback, "restored"):
            callback.restored()
    variables = random_state_variables(model)
    saved = sorted((k for k in arrays if k.startswith("random/")),
                   key=lambda k: int(k.split("/")[1]))
    if len(saved) != len(variables):
        raise ValueError(
            f"The backup's {path} holds {len(saved)} random states; the model has "
            f"{len(variables)}: it is the backup of another model.")
    for variable, name in zip(variables, saved):
        variable.assign(arrays[name])
    return state["stopped"]


__all__ = ["KERAS_CALLBACK_STATE", "random_state_variables", "restore", "snapshot"]
