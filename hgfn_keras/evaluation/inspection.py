"""Which modalities mattered: a trained model's fusion weights, per sample.

- `fusion_inputs_model`: a model from the network's inputs to its fusion's inputs.
- `fusion_weights`: the per-sample vertex weights of every level of an HGFN.
"""

import keras
import numpy as np

from hgfn_keras.data.dataset import MASK_KEY, as_tf_dataset
from hgfn_keras.fusion import HierarchicalGraphFusion


def fusion_inputs_model(model, with_outputs=False):
    """A functional model from a `MultiTaskModel`'s inputs to its fusion's call inputs,
    `{"vectors": {modality name: [batch, width]}, "mask": ...}` ("mask" only when
    the fusion was called with one). It shares the network's layers (no new
    weights). With `with_outputs=True` it also returns the network's outputs as
    `"outputs"`, from the same pass (the encoders run once)."""
    fusion = model.fusion_layer
    if fusion is None:
        raise ValueError("The model has no fusion layer handle (`fusion_layer`).")
    # `Layer.input` is the flat list of the call's tensor arguments: the modality
    # vectors (a dict, flattened in sorted key order), then the mask.
    flat = fusion.input if isinstance(fusion.input, (list, tuple)) else [fusion.input]
    names = sorted(getattr(fusion, "modality_names", None)
                   or [n for n in model.input_names if n != MASK_KEY])
    outputs = {"vectors": dict(zip(names, flat[:len(names)]))}
    if len(flat) > len(names):
        outputs["mask"] = flat[len(names)]
    if with_outputs:
        outputs["outputs"] = model.network.output
    return keras.Model(model.network.inputs, outputs,
                       name=f"{model.network.name}_fusion_inputs")


def fusion_weights(model, x, batch_size=512):
    """The per-sample vertex weights of every level of a model's HGFN (or GFN) fusion.

    Args:
        model: a `MultiTaskModel` whose fusion layer (`model.fusion_layer`) is a
            `HierarchicalGraphFusion`.
        x: a dict of numpy inputs, as for `model.predict`.
        batch_size: rows per batch.

    Returns:
        `(weights, labels)`: `weights` is a list with one `[N, V_k]` array per
        level (level 1: the modality weights of eq. 1), `labels` the vertex names
        per level (`HierarchicalGraphFusion.vertex_labels`).
    """
    fusion = model.fusion_layer
    if not isinstance(fusion, HierarchicalGraphFusion):
        raise ValueError(
            "Fusion weights exist only for graph fusions (hgfn, gfn). "
            f"Received a {type(fusion).__name__}."
        )
    names = model.input_names
    # The fusion layer's inputs in the network (the encoded modality vectors and
    # the mask), then the trained layer itself called eagerly with
    # `return_weights=True`, batch by batch.
    fusion_inputs = fusion_inputs_model(model)
    completed = dict(x)
    if MASK_KEY in names and MASK_KEY not in completed:
        rows = len(next(iter(completed.values())))
        completed[MASK_KEY] = np.ones((rows, len(fusion.vertex_labels()[0])), "float32")
    data = as_tf_dataset({n: completed[n] for n in names}, None, batch_size)
    data = data.map(lambda features: [features[n] for n in names])
    levels = None
    for batch in data:
        encoded = fusion_inputs(batch, training=False)
        _, weights, _ = fusion(encoded["vectors"], modality_mask=encoded.get("mask"),
                               return_weights=True)
        if levels is None:
            levels = [[] for _ in weights]
        for level, w in zip(levels, weights):
            level.append(np.asarray(w))
    outputs = [np.concatenate(level) for level in levels]
    return [np.asarray(o) for o in outputs], fusion.vertex_labels()
