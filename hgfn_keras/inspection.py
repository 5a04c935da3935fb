"""Which modalities mattered: a trained model's fusion weights, per sample."""

import numpy as np

from hgfn_keras.data.dataset import MASK_KEY, as_tf_dataset
from hgfn_keras.fusion import HierarchicalGraphFusion


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
    fusion_inputs = model.fusion_inputs_model()
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
