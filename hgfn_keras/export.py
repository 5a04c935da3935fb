"""SavedModel export for TF Serving, written atomically into `<base>/<name>/<version>/`."""

import os
import shutil
import tempfile

import keras
import tensorflow as tf



def serving_signature(model):
    """One named `tf.TensorSpec` per input of the model's network, in order."""
    specs = []
    for tensor in model.network.inputs:
        name = tensor.name
        dtype = tf.string if tensor.dtype == "string" else tf.as_dtype(tensor.dtype)
        specs.append(tf.TensorSpec(tuple(tensor.shape), dtype, name=name))
    return specs


def next_version(model_dir):
    """1 + the largest integer folder name in `model_dir` (1 if there is none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(model, export_dir, version=None):
    """Exports a `MultiTaskModel` as a SavedModel version that TF Serving can load.

    The `serving_default` signature takes one named input per modality (raw
    strings for text; the tokenisation is inside the model) and `modality_mask`,
    and returns one named output per task: its probabilities. The version is
    written to a temporary folder beside the target and renamed into place, so a
    reader (TF Serving polls the folder) never sees half of one.

    Args:
        model: a built `MultiTaskModel`.
        export_dir: the model's folder, `saved_models/<name>`; versions go below.
        version: a positive integer (None: the next free one).

    Returns:
        The path of the version folder.
    """
    if not model.built:
        raise ValueError(
            "The model has not been called yet, so it has no weights to export: train it "
            "or call `model.predict` on a batch first."
        )
    if version is None:
        version = next_version(export_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive integer. Received: version={version!r}")
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(
            f"{target} exists already: TF Serving versions are immutable. "
            "Pick another `version` or leave it out to take the next one."
        )
    os.makedirs(export_dir, exist_ok=True)
    specs = serving_signature(model)
    names = [s.name for s in specs]

    def serve(*tensors):
        outputs = model(dict(zip(names, tensors)), training=False)
        return {name: outputs[name] for name in model.task_names}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=specs)
    staging = tempfile.mkdtemp(prefix=f".{version}.partial-", dir=export_dir)
    try:
        archive.write_out(staging, verbose=False)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


__all__ = ["export_saved_model", "next_version", "serving_signature"]
