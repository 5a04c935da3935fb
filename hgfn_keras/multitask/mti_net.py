"""MTI-Net adapted to vector features: the heads of the paper's MTI-NET baseline (IV-C).

An architecture, not a weighting: `build_model(heads="mtinet")`; the paper's row
trains it with equal weights (LSEW).
"""

import keras

INTERMEDIATE_SUFFIX = "_intermediate"


def mtinet_heads(fused, tasks, head_units=64, dropout=0.1):
    """Task heads with intermediate predictions and a distillation unit.

    MTI-Net (Vandenhende et al. 2020) predicts every task at intermediate scales
    and lets each task gather information from the others through a multi-modal
    distillation unit before its final prediction. This adaptation keeps those
    two ideas for one fused vector instead of feature maps at several scales (a
    documented adaptation, not the original architecture):

    - per task f: h_f = Dense(head_units, relu)(F) and an intermediate
      prediction `<f>_intermediate` from h_f, trained on the same labels;
    - distillation: h'_f = h_f + Σ_{g≠f} sigmoid(Dense(h_f)) ⊙ Dense(h_g), each
      task gating the messages from the others;
    - the final prediction `<f>` from Dropout(h'_f).

    Args:
        fused: the fused representation (a Keras tensor).
        tasks: the `Task` list.
        head_units: width of each task's features.
        dropout: dropout before the final predictions.

    Returns:
        `(outputs, heads, auxiliary)`: the dict of outputs (`<task>` and
        `<task>_intermediate` for every task), `{task name: its last Dense}`,
        and `{intermediate output name: task name}` (the model's
        `auxiliary_outputs`: each intermediate loss adds to its task's loss).

    Reference: Vandenhende, Georgoulis & Van Gool, "MTI-Net: Multi-Scale Task
    Interaction Networks for Multi-Task Learning", ECCV 2020.
    """
    features, outputs, heads = {}, {}, {}
    for t in tasks:
        h = keras.layers.Dense(head_units, activation="relu", name=f"{t.name}_features")(fused)
        features[t.name] = h
        outputs[t.name + INTERMEDIATE_SUFFIX] = keras.layers.Dense(
            t.output_units, activation="sigmoid" if t.is_binary else "softmax",
            name=t.name + INTERMEDIATE_SUFFIX, dtype="float32")(h)
    for t in tasks:
        h = features[t.name]
        messages = []
        for other in tasks:
            if other.name == t.name:
                continue
            gate = keras.layers.Dense(head_units, activation="sigmoid",
                                      name=f"{t.name}_gate_from_{other.name}")(h)
            message = keras.layers.Dense(head_units,
                                         name=f"{t.name}_message_from_{other.name}")(
                features[other.name])
            messages.append(keras.layers.Multiply()([gate, message]))
        if messages:
            h = keras.layers.Add(name=f"{t.name}_distilled")([h, *messages])
        if dropout:
            h = keras.layers.Dropout(dropout, name=f"{t.name}_dropout")(h)
        heads[t.name] = keras.layers.Dense(
            t.output_units, activation="sigmoid" if t.is_binary else "softmax", name=t.name,
            dtype="float32")  # float32 under a mixed policy, as `build_model`'s heads
        outputs[t.name] = heads[t.name](h)
    auxiliary = {t.name + INTERMEDIATE_SUFFIX: t.name for t in tasks}
    return outputs, heads, auxiliary
