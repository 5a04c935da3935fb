"""SavedModel export for TF Serving, written atomically into `<base>/<name>/<version>/`."""

import errno
import inspect
import json
import os

import keras
import tensorflow as tf

from hgfn_keras.evaluation.inspection import fusion_inputs_model
from hgfn_keras.feature_checks import MASK_KEY
from hgfn_keras.utils.arguments import positive_int
from hgfn_keras.utils.io_utils import StagedOutput

MODALITY_WEIGHTS_KEY = "modality_weights"
# A second signature for requests without `modality_mask` (every modality present).
ALL_PRESENT_SIGNATURE = "serving_all_present"
# `<task>_decision`: the 0/1 decision of a task with a stored decision threshold.
DECISION_SUFFIX = "_decision"
# Each task's class names, beside the SavedModel (`assets.extra/tasks.json`).
TASKS_FILE_FOLDER = "assets.extra"
TASKS_FILE = "tasks.json"


def serving_signature(model):
    """One named `tf.TensorSpec` per input of the model's network, in order.

    Args:
        model: a `MultiTaskModel`.

    Returns:
        A list of `tf.TensorSpec`, named after the inputs (the modalities, then
        `modality_mask`), with a free batch dimension.
    """
    specs = []
    for tensor in model.network.inputs:
        name = tensor.name
        dtype = tf.string if tensor.dtype == "string" else tf.as_dtype(tensor.dtype)
        specs.append(tf.TensorSpec(tuple(tensor.shape), dtype, name=name))
    return specs


class _VersionTaken(Exception):
    """The version asked for was taken by another export meanwhile (internal)."""


def next_version(model_dir):
    """1 + the largest integer folder name in `model_dir` (1 if there is none).

    Args:
        model_dir: the model's folder, `saved_models/<name>`.

    Returns:
        The next free version number, an int >= 1.
    """
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    return max(versions, default=0) + 1


def _weighted_fusion(model):
    """The model's fusion layer (its handle) if it can return its weights, and its call inputs.

    Returns `(layer, probe)`: `probe` is `inspection.fusion_inputs_model(model, with_outputs=True)`,
    a functional model from the network's inputs to `{"vectors": what the fusion
    was called on, "mask": its modality_mask or None, "outputs": the network's
    outputs}`, all from one pass. It shares the network's layers (no new
    weights, no new node on the fusion layer).
    """
    fusion = model.fusion_layer
    if fusion is None or "return_weights" not in inspect.signature(fusion.call).parameters:
        kind = "no fusion layer" if fusion is None else f"a {type(fusion).__name__}"
        raise ValueError(
            "`return_modality_weights=True` needs a fusion layer that can return its "
            "modality weights (`call(..., return_weights=True)`, e.g. "
            f"HierarchicalGraphFusion). Received: a model with {kind}."
        )
    return fusion, fusion_inputs_model(model, with_outputs=True)


def has_modality_weights(model):
    """Whether `export_saved_model(model, ..., return_modality_weights=True)` works.

    Args:
        model: a `MultiTaskModel`.

    Returns:
        True when the model's fusion layer (its handle) can return its
        modality weights (e.g. `HierarchicalGraphFusion`; not `ConcatFusion`).
    """
    fusion = model.fusion_layer
    return fusion is not None and "return_weights" in inspect.signature(fusion.call).parameters


def _describe(spec):
    """`"float32 [N, 3]"` for a `TensorSpec`."""
    dims = ", ".join(["N"] + [str(d) for d in spec.shape[1:]])
    return f"{spec.dtype.name} [{dims}]"


def _masked_rows(mask, column, width, rows):
    """`[rows]` bool: where `mask[:, column]` is 0; all False when the mask's shape does
    not fit (`[rows, width]`), which its own checks report."""
    shape = tf.shape(mask)
    fits = tf.logical_and(tf.equal(tf.size(shape), 2), tf.reduce_all(tf.equal(
        tf.concat([shape, [0, 0]], 0)[:2], tf.stack([rows, width]))))
    return tf.cond(fits, lambda: tf.equal(tf.reshape(mask, [-1, width])[:, column], 0.0),
                   lambda: tf.zeros([rows], tf.bool))


def _input_checks(inputs, specs):
    """`tf.debugging.Assert`s on the shapes of the served inputs.

    A loaded signature checks the dtypes of its inputs but not their shapes, so
    a wrong width would otherwise fail deep inside the model with a message
    about an internal op. These name the input and the expected shape, and
    check that every input has the same number of rows, that every float value
    of a present modality is finite (NaN or inf would give NaN modality weights
    and meaningless probabilities; `fit` refuses them too; a masked modality's
    values are ignored, see `_masked_to_zero`), that `modality_mask` holds only 0
    and 1 and that no row's `modality_mask` is all 0; the row checks list the
    offending rows.
    """
    shape_checks = [_shape_check(inputs[spec.name], spec) for spec in specs]
    # Every other check only after every input's shape is right: a text of shape
    # [1, 2] or a vector of rank 3 is named with its shape, not reported as a row
    # count that differs or a failure of an internal op.
    with tf.control_dependencies(shape_checks):
        return shape_checks + _value_checks(inputs, specs)


def _shape_check(value, spec):
    """The `Assert` that `value` has `spec`'s rank and fixed dimensions; it names the
    input, the shape expected and the shape received."""
    # The shape read at run time: the signature's static shape ([None] for a text,
    # [None, 2] for a vector) would let TensorFlow fold the rank check to "true" and
    # a text of shape [1, 2] reach the tokeniser ("input must be a vector").
    unknown = tf.raw_ops.PlaceholderWithDefault(input=value, shape=tf.TensorShape(None))
    shape = tf.shape(unknown)
    expected = [-1 if d is None else d for d in spec.shape[1:]]
    same_rank = tf.equal(tf.size(shape), len(spec.shape))
    # Padded so that indexing cannot fail when the rank is wrong.
    padded = tf.concat([shape, tf.zeros([len(spec.shape)], tf.int32)], 0)
    if expected:
        dims = padded[1:len(spec.shape)]
        known = tf.constant([d >= 0 for d in expected])
        same_dims = tf.reduce_all(tf.logical_or(tf.logical_not(known),
                                                tf.equal(dims, expected)))
        ok = tf.logical_and(same_rank, same_dims)
    else:
        ok = same_rank
    return tf.debugging.Assert(
        ok,
        [f"Bad input {spec.name!r}: expected {_describe(spec)}. Received shape:", shape],
        name=f"check_{spec.name}",
    )


def _value_checks(inputs, specs):
    """The checks of `_input_checks` that read the values (run after the shapes')."""
    checks = []
    rows = None
    modalities = [s.name for s in specs if s.name != MASK_KEY]
    for spec in specs:
        value = inputs[spec.name]
        shape = tf.shape(value)
        padded = tf.concat([shape, tf.zeros([len(spec.shape)], tf.int32)], 0)
        if spec.dtype.is_floating:
            # The shapes are checked already: the per-row reduction sees the right rank.
            finite = tf.math.is_finite(value)
            if len(spec.shape) > 1:
                finite = tf.reduce_all(finite, axis=list(range(1, len(spec.shape))))
            if MASK_KEY in inputs and spec.name in modalities:
                # A masked modality's values are never read: any value is fine there.
                finite = tf.logical_or(finite, _masked_rows(
                    inputs[MASK_KEY], modalities.index(spec.name), len(modalities),
                    tf.shape(finite)[0]))
            bad_rows = tf.reshape(tf.where(tf.logical_not(finite)), [-1])
            checks.append(tf.debugging.Assert(
                tf.reduce_all(finite),
                [f"Bad input {spec.name!r}: NaN or inf in the row(s) of the batch "
                 "listed next; every value of a present modality must be finite (a "
                 "modality missing in a row, 0 in modality_mask, may hold any values). "
                 "Rows:", bad_rows],
                summarize=32,
                name=f"check_{spec.name}_finite",
            ))
        rows = padded[0] if rows is None else rows
        checks.append(tf.debugging.Assert(
            tf.equal(padded[0], rows),
            [f"Bad input {spec.name!r}: every input must have the same number of rows "
             f"(N); {specs[0].name!r} has", rows, f"and {spec.name!r} has", padded[0]],
            name=f"check_{spec.name}_rows",
        ))
    if MASK_KEY in inputs:
        mask = inputs[MASK_KEY]
        # 0 (missing) and 1 (present) only: a mask of -1 or 2 scales the modality's
        # vector and weight and gives confident nonsense (weights outside [0, 1]).
        binary = tf.reduce_all(tf.logical_or(tf.equal(mask, 0.0), tf.equal(mask, 1.0)), axis=1)
        not_binary = tf.reshape(tf.where(tf.logical_not(binary)), [-1])
        checks.append(tf.debugging.Assert(
            tf.reduce_all(binary),
            [
                f"Bad input {MASK_KEY!r}: every value must be 0 (modality missing) or 1 "
                "(present); the row(s) of the batch listed next hold other values. Rows:",
                not_binary,
                "Values:",
                tf.gather(mask, not_binary),
            ],
            summarize=32,
            name=f"check_{MASK_KEY}_binary",
        ))
        present = tf.reduce_any(mask > 0, axis=1)
        empty_rows = tf.reshape(tf.where(tf.logical_not(present)), [-1])
        checks.append(tf.debugging.Assert(
            tf.reduce_all(present),
            [
                f"Bad input {MASK_KEY!r}: every modality is missing (the mask is all 0) "
                "in the row(s) of the batch listed next; each row needs at least one "
                "present modality (a 1 in modality_mask). Rows:",
                empty_rows,
            ],
            summarize=32,
            name=f"check_{MASK_KEY}",
        ))
    return checks


def _write_task_file(model, folder):
    """`assets.extra/tasks.json`: each task's class names (null where it has none).

    A SavedModel's outputs say how many classes a task has, not their names; a client
    (`training.predict`) reads them here. TF Serving ignores `assets.extra`.
    """
    extra = os.path.join(folder, TASKS_FILE_FOLDER)
    os.makedirs(extra, exist_ok=True)
    tasks = {t.name: {"num_classes": int(t.num_classes),
                      "class_names": list(t.class_names) if t.class_names else None}
             for t in model.tasks}
    with open(os.path.join(extra, TASKS_FILE), "w", encoding="utf-8") as f:
        json.dump(tasks, f, indent=1)


def _masked_to_zero(inputs, specs):
    """The float inputs with every masked modality's values set to 0 (NaN or inf there,
    which the checks let through, would otherwise turn into NaN: NaN * 0 is NaN)."""
    if MASK_KEY not in inputs:
        return inputs
    modalities = [s.name for s in specs if s.name != MASK_KEY]
    out = dict(inputs)
    for j, name in enumerate(modalities):
        value = inputs[name]
        if not value.dtype.is_floating:
            continue
        present = tf.reshape(tf.not_equal(inputs[MASK_KEY][:, j], 0.0),
                             [-1] + [1] * (len(value.shape) - 1))
        out[name] = tf.where(present, value, tf.zeros_like(value))
    return out


def _with_a_row_if_empty(inputs, specs):
    """`(inputs, rows)`: a request of 0 rows gets one placeholder row (zeros, empty
    strings, every modality present), since some kernels (a convolution over an empty
    batch) fail on 0 rows; the caller keeps the first `rows` rows of each output."""
    rows = tf.shape(inputs[specs[0].name])[0]
    pad = tf.cast(tf.equal(rows, 0), tf.int32)
    out = {}
    for spec in specs:
        value = inputs[spec.name]
        shape = tf.concat([[pad], tf.shape(value)[1:]], 0)
        if spec.dtype == tf.string:
            filler = tf.fill(shape, "")
        else:
            filler = tf.fill(shape, tf.constant(1 if spec.name == MASK_KEY else 0, value.dtype))
        out[spec.name] = tf.concat([value, filler], 0)
    return out, rows


def export_saved_model(model, export_dir, version=None, return_modality_weights=False):
    """Exports a `MultiTaskModel` as a SavedModel version that TF Serving can load.

    The `serving_default` signature takes one named input per modality (raw
    strings for text; the tokenisation is inside the model) and `modality_mask`,
    and returns one named output per task: its probabilities. With
    `return_modality_weights=True` it also returns `modality_weights`, float32
    `[N, M]`: the fusion's per-sample weight of each modality (HGFN: the
    dynamic attention unit's weights, eq. 1; 0 for a masked modality), in the
    order of the model's modality inputs. Every binary task with a stored
    decision threshold (`model.set_decision_thresholds`) also gets the output
    `<task>_decision`, int32 `[N, 1]`: 1 where `prob >= threshold` (compared in
    float32, as `model.predict(x)[task] >= threshold` compares in numpy).

    A second signature, `serving_all_present`, takes the same inputs without
    `modality_mask` (every modality present in every row) and returns the same
    outputs: a client that never masks can leave the mask out by naming it.

    A request of 0 rows is answered with outputs of 0 rows. NaN or inf in a
    modality that the row's `modality_mask` marks missing (0) is ignored, as any
    value there is.

    Inputs are checked by the signature: a wrong width for an input, NaN or inf
    in a float input of a present modality, a `modality_mask` value other than 0
    and 1, or a row whose
    `modality_mask` is all 0 fails a `tf.debugging.Assert` (`InvalidArgumentError`)
    naming the input (and the rows) before the model runs. Numbers sent as JSON
    (TF Serving's REST API), Python lists or numpy arrays of any numeric dtype
    (int, float64) are cast to the signature's float32 on the way in; a `tf.Tensor` of another dtype is
    refused by TensorFlow's own check of the signature, which names the input by
    its position. The process that serves stays up either way.

    Each task's class names (null where it has none) are written to
    `assets.extra/tasks.json` in the version folder, for clients that print them.

    The version is written to a temporary folder beside the target and renamed
    into place, so a reader (TF Serving polls the folder) never sees half of one.
    Its folders and files follow the umask (0755 and 0644 under the usual 022), so
    a server running as another user can read them. Exports running at once to
    one `export_dir` with `version=None` each take the next free version: one that
    finds its version taken by another when it renames takes the next.

    Args:
        model: a built `MultiTaskModel`.
        export_dir: the model's folder, `saved_models/<name>`; versions go below.
        version: a positive integer (None: the next free one).
        return_modality_weights: also return the fusion's modality weights as the
            output `modality_weights` (needs a fusion that has them, e.g. HGFN).

    Returns:
        The path of the version folder.

    Raises:
        ValueError: if the model is not built, `version` is not a positive
            integer, or `return_modality_weights=True` and the fusion has no
            modality weights.
        FileExistsError: if the version folder given as `version` exists already.
    """
    if not model.built:
        raise ValueError(
            "The model has not been called yet, so it has no weights to export: train it "
            "or call `model.predict` on a batch first."
        )
    if not isinstance(return_modality_weights, bool):
        raise ValueError(
            "`return_modality_weights` must be True or False. "
            f"Received: return_modality_weights={return_modality_weights!r}"
        )
    auto_version = version is None
    if auto_version:
        version = next_version(export_dir)
    version = positive_int("version", version)
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(
            f"{target} exists already: TF Serving versions are immutable. "
            "Pick another `version` or leave it out to take the next one."
        )
    if MODALITY_WEIGHTS_KEY in model.task_names and return_modality_weights:
        raise ValueError(
            f"A task is named {MODALITY_WEIGHTS_KEY!r}, the name of the modality-weights "
            f"output. Received: tasks={model.task_names}"
        )
    thresholds = model.decision_thresholds
    clashes = [n + DECISION_SUFFIX for n in thresholds if n + DECISION_SUFFIX in model.task_names]
    if clashes:
        raise ValueError(
            f"The decision output(s) {clashes} would take the name of a task. Received: "
            f"tasks={model.task_names}, decision thresholds for {sorted(thresholds)}")
    fusion, probe = _weighted_fusion(model) if return_modality_weights else (None, None)
    specs = serving_signature(model)
    names = [s.name for s in specs]

    def serve(*tensors):
        with tf.control_dependencies(_input_checks(dict(zip(names, tensors)), specs)):
            inputs = {n: tf.identity(t) for n, t in zip(names, tensors)}
        inputs, rows = _with_a_row_if_empty(_masked_to_zero(inputs, specs), specs)
        return {k: v[:rows] for k, v in _serve_checked(inputs).items()}

    # The model is traced once for both signatures (it was four times): the archive
    # gets traced functions (a Python function with an `input_signature` is traced
    # again by `tf.saved_model.save` for the signature), and `serve_all_present`
    # calls `serve`'s concrete function (a `tf.function` called inside another is
    # traced again when the outer one is saved).
    serve = tf.function(serve, input_signature=specs, autograph=False)

    @tf.function(input_signature=specs[:-1], autograph=False)
    def serve_all_present(*tensors):
        # `modality_mask` left out: every modality is present in every row.
        rows = tf.shape(tensors[0])[0]
        mask = tf.ones(tf.stack([rows, specs[-1].shape[1]]), specs[-1].dtype)
        return serve_traced(*tensors, mask)

    def _serve_checked(inputs):
        if fusion is None:
            outputs = model(inputs, training=False)
        else:
            # One pass for the outputs and the fusion's inputs: the encoders (a text
            # encoder's tokenisation) run once, not once more for the weights.
            found = probe([inputs[n] for n in names], training=False)
            outputs = found["outputs"]
            _, weights, _ = fusion(found["vectors"], modality_mask=found.get("mask"),
                                   return_weights=True, training=False)
        served = {name: outputs[name] for name in model.task_names}
        for name, threshold in thresholds.items():
            probability = outputs[name]
            served[name + DECISION_SUFFIX] = tf.cast(
                probability >= tf.constant(threshold, probability.dtype), tf.int32)
        if fusion is not None:
            served[MODALITY_WEIGHTS_KEY] = weights[0]  # the first level: one per modality
        return served

    os.makedirs(export_dir, exist_ok=True)
    archive = keras.export.ExportArchive()
    archive.track(model)
    serve_traced = serve.get_concrete_function()
    archive.add_endpoint("serving_default", serve)
    if names[-1] == MASK_KEY:
        serve_all_present.get_concrete_function()
        archive.add_endpoint(ALL_PRESENT_SIGNATURE, serve_all_present)
    # The version is written under a staging folder of its own and renamed when
    # whole (`StagedOutput`, which makes it with `os.mkdir`: it follows the umask, as
    # the files TensorFlow writes inside do, so TF Serving running as another user can
    # read it; mkdtemp's 0700 could not). A failed write (a full disk, a file-size
    # limit) gives one line and leaves no staging folder; earlier versions are kept.
    # A staging folder left by an export killed meanwhile (SIGKILL, SIGTERM) goes now.
    StagedOutput.remove_stale(export_dir)
    placed = {}

    def place(staging):
        nonlocal version, target
        while True:
            try:
                os.rename(staging, target)
                placed["target"] = target
                return
            except OSError as error:
                # Another export to the same folder took this version first (the rename
                # onto its non-empty folder fails): take the next free one, unless the
                # caller asked for this one.
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if not auto_version:
                    raise _VersionTaken(target) from error
                version = max(version + 1, next_version(export_dir))
                target = os.path.join(export_dir, str(version))

    staged = StagedOutput(target, "the SavedModel", folder=True, commit=place,
                          errors=(OSError, tf.errors.OpError))
    try:
        with staged as staging:
            archive.write_out(staging, verbose=False)
            _write_task_file(model, staging)
    except _VersionTaken as taken:
        raise FileExistsError(
            f"{taken.args[0]} exists already: TF Serving versions are immutable. "
            "Pick another `version` or leave it out to take the next one."
        ) from taken.__cause__
    return placed["target"]


__all__ = [
    "ALL_PRESENT_SIGNATURE",
    "DECISION_SUFFIX",
    "MODALITY_WEIGHTS_KEY",
    "export_saved_model",
    "has_modality_weights",
    "next_version",
    "serving_signature",
]
