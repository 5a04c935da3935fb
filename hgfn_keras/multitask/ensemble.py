"""Parameter-efficient ensembles of the task heads (TabM-style): `build_model(ensemble=k)`.

k members share the fusion and the heads' hidden layers; each member sees the
fused vector through its own multiplicative adapter (`EnsembleAdapter`, TabM's
first adapter, initialised with random signs) and has its own last layer per
task (`EnsembleDense`, k linear heads as in TabM). Training minimises the mean
of the k members' losses (`MultiTaskLoss` reads the members' outputs,
`<output>_members`); the model's output is the mean of the members'
probabilities (`MemberMean`), so `predict`, the metrics, the thresholds and the
SavedModel see one prediction per task, as without an ensemble.

Why only the heads: the members run on k times the rows from the adapter on,
so an ensemble that started before the fusion would multiply the fusion's cost
(the dominant part of a step) by k; after it, the extra cost is the heads'.
TabM's own "mini" form shares everything behind its first adapter in the same
way. docs/QUALITY.md ("Ensembles of the heads") has what each k costs and gains,
and why the package's default is no ensemble (k = 1).

Reference: Gorishniy, Kotelnikov & Babenko, "TabM: Advancing Tabular Deep
Learning with Parameter-Efficient Ensembling", ICLR 2025; Wen, Tran & Ba,
"BatchEnsemble", ICLR 2020.
"""

import math

import keras
from keras import ops

#: The suffix of a member output: `<output>_members`, `[batch, k, units]`.
MEMBERS_SUFFIX = "_members"


@keras.saving.register_keras_serializable(package="hgfn_keras")
class RandomSigns(keras.initializers.Initializer):
    """Each value -1 or +1 with probability 1/2 (TabM's initialisation of the first adapter).

    >>> values = RandomSigns(seed=0)((4, 3))
    >>> sorted(set(float(v) for v in keras.ops.convert_to_numpy(values).ravel())) in (
    ...     [-1.0, 1.0], [-1.0], [1.0])
    True
    """

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        dtype = dtype or "float32"
        uniform = keras.initializers.RandomUniform(-1.0, 1.0, seed=self.seed)(shape, dtype)
        return ops.cast(ops.where(uniform < 0, -1.0, 1.0), dtype)

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="hgfn_keras")
class EnsembleAdapter(keras.layers.Layer):
    """`[batch, width]` → `[batch, members, width]`: member i sees x ⊙ r_i.

    The scales r `[members, width]` are trained, initialised with random signs
    (`RandomSigns`) so that the members start different although the layers
    after them are shared.

    Args:
        members: the number of members k ≥ 2.
        seed: seeds the signs.

    >>> import numpy as np
    >>> adapter = EnsembleAdapter(4, seed=0)
    >>> tuple(adapter(np.ones((2, 3), "float32")).shape)
    (2, 4, 3)
    """

    def __init__(self, members, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.members = check_members(members)
        self.seed = seed

    def build(self, input_shape):
        self.scales = self.add_weight(shape=(self.members, input_shape[-1]),
                                      initializer=RandomSigns(self.seed), name="scales")

    def call(self, inputs):
        return ops.expand_dims(inputs, 1) * ops.cast(self.scales, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.members, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "members": self.members, "seed": self.seed}


@keras.saving.register_keras_serializable(package="hgfn_keras")
class EnsembleDense(keras.layers.Layer):
    """k independent Dense layers, one per member: `[batch, k, h]` → `[batch, k, units]`.

    Member i computes activation(x_i W_i + b_i) with its own `kernel[i]`
    `[h, units]` (Glorot-uniform per member) and `bias[i]`. It is a task's last
    task-specific layer in an ensemble: DMTL and GradNorm take their gradient
    norms on its `kernel`, all k members' together.

    >>> import numpy as np
    >>> layer = EnsembleDense(3, activation="softmax")
    >>> tuple(layer(np.ones((2, 4, 5), "float32")).shape)
    (2, 4, 3)
    """

    def __init__(self, units, activation=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.seed = seed

    def build(self, input_shape):
        members, width = input_shape[-2], input_shape[-1]
        limit = math.sqrt(6.0 / (width + self.units))  # Glorot-uniform of one member's kernel
        self.kernel = self.add_weight(
            shape=(members, width, self.units), name="kernel",
            initializer=keras.initializers.RandomUniform(-limit, limit, seed=self.seed))
        self.bias = self.add_weight(shape=(members, self.units), name="bias",
                                    initializer="zeros")

    def call(self, inputs):
        outputs = ops.einsum("bkh,khu->bku", inputs, ops.cast(self.kernel, inputs.dtype))
        return self.activation(outputs + ops.cast(self.bias, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "seed": self.seed,
                "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package="hgfn_keras")
class MemberMean(keras.layers.Layer):
    """The mean over the members: `[batch, k, units]` → `[batch, units]`."""

    def call(self, inputs):
        return ops.mean(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


def check_members(members):
    """`members` as an int ≥ 2, or a clear error."""
    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise ValueError(f"An ensemble needs an integer number of members >= 2. "
                         f"Received: members={members!r}")
    return members


def check_ensemble(ensemble, heads):
    """`ensemble` (the `build_model` argument) as an int ≥ 1, or a clear error."""
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise ValueError(f"`ensemble` must be a positive integer (1: no ensemble). "
                         f"Received: ensemble={ensemble!r}")
    if ensemble > 1 and heads != "dense":
        raise ValueError(f"`ensemble` works with the dense heads only (MTI-Net's "
                         f"distillation couples the tasks' heads). Received: "
                         f"ensemble={ensemble}, heads={heads!r}")
    return ensemble


def member_output_name(output_name):
    """The name of an output's members: `<output>_members`."""
    return f"{output_name}{MEMBERS_SUFFIX}"
