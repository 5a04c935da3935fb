"""A sequence of per-frame vectors to one vector: 2 Bi-GRU layers with attention pooling."""

import contextlib

import keras
import tensorflow as tf

from hgfn_keras.utils.arguments import is_integer, positive_int

#: The maps of Keras' `ObjectSharingScope` (`keras.src.saving.serialization_lib`), which
#: `keras.saving.load_model` keeps open while it builds the layers.
_SHARING_MAPS = ("shared_objects/id_to_obj_map", "shared_objects/id_to_config_map")


@contextlib.contextmanager
def _outside_object_sharing():
    """Builds what is inside with Keras' object-sharing maps switched off.

    `keras.layers.Bidirectional` makes its forward and backward layers by
    serialising the GRU it is given and deserialising the configs. Inside
    `load_model`'s `ObjectSharingScope` the maps key objects by `id()`, and a
    GRU made here after an earlier, freed one may get the freed one's id: the
    "backward" layer is then deserialised as the shared earlier object, and
    Keras refuses it ("Forward layer and backward layer should have different
    `go_backwards` value"), so that loading a model with this encoder failed
    at random (keras 3.15.1; 25 `Bidirectional(GRU(...))` in one scope are
    enough to see it). Nothing made here is shared with anything else, so the
    maps are left out while the Bi-GRUs are made, and put back after. Keras'
    public API has no switch for it; the names are keras 3's private ones.
    """
    from keras.src.backend.common import global_state

    saved = [global_state.get_global_attribute(name) for name in _SHARING_MAPS]
    for name in _SHARING_MAPS:
        global_state.set_global_attribute(name, None)
    try:
        yield
    finally:
        for name, value in zip(_SHARING_MAPS, saved):
            global_state.set_global_attribute(name, value)


@keras.saving.register_keras_serializable(package="hgfn_keras")
class TemporalEncoder(keras.layers.Layer):
    """Bidirectional GRUs over the steps, then attention pooling to one vector.

    The paper (IV-B) feeds the per-frame features of a video to "a small neural
    network with 2 Bidirectional Gated Recurrent Unit (Bi-GRU) layers with
    attention enabled" before HGFN. The paper does not give the attention's form;
    this layer uses additive attention pooling (Bahdanau-style, the usual reading):
    with h_t the last Bi-GRU layer's output at step t,

        e_t = u^T tanh(W h_t + b),  a = softmax_t(e),  v = sum_t a_t h_t.

    Pass it in `build_model(..., encoders={"video": TemporalEncoder()})` for a
    `"sequence"` modality: it then trains with the fusion and the heads.

    Args:
        units: GRU units per direction; the output width is `2 * units`.
        num_layers: stacked Bi-GRU layers (2, the paper's).
        attention_units: width of the attention's hidden layer (None: `2 * units`).
        dropout: dropout on the GRU inputs during training.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, steps, width]`.
        mask: optional boolean `[batch, steps]` (True = a real step); padded steps get
            no attention. A Keras mask (e.g. from `keras.layers.Masking`) is used too.
        return_attention: also return the attention weights `[batch, steps]`.

    Returns:
        `[batch, 2 * units]` (and the weights if `return_attention`).

    >>> import numpy as np
    >>> encoder = TemporalEncoder(units=3)
    >>> tuple(encoder(np.zeros((2, 5, 4), "float32")).shape)
    (2, 6)
    """

    def __init__(self, units: int = 64, num_layers: int = 2,
                 attention_units: "int | None" = None, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("units", units), ("num_layers", num_layers)):
            positive_int(arg, value)
        if attention_units is not None and (not is_integer(attention_units)
                                            or attention_units < 1):
            raise ValueError(
                "`attention_units` must be a positive integer or None. "
                f"Received: attention_units={attention_units!r}"
            )
        if isinstance(dropout, bool) or not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.attention_units = None if attention_units is None else int(attention_units)
        self.dropout = float(dropout)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "`TemporalEncoder` takes [batch, steps, width] with a known width. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        shape = tuple(input_shape)
        self.recurrent = []
        for i in range(self.num_layers):
            with _outside_object_sharing():
                layer = keras.layers.Bidirectional(
                    keras.layers.GRU(self.units, return_sequences=True, dropout=self.dropout,
                                     dtype=self.dtype_policy),
                    name=f"bi_gru_{i}", dtype=self.dtype_policy,
                )
            layer.build(shape)
            shape = (shape[0], shape[1], 2 * self.units)
            self.recurrent.append(layer)
        self.attention_hidden = keras.layers.Dense(
            self.attention_units or 2 * self.units, activation="tanh", name="attention_hidden",
            dtype=self.dtype_policy,
        )
        self.attention_hidden.build(shape)
        self.attention_score = keras.layers.Dense(
            1, use_bias=False, name="attention_score", dtype=self.dtype_policy
        )
        self.attention_score.build((*shape[:2], self.attention_units or 2 * self.units))

    def call(self, inputs, mask=None, training=False, return_attention=False):
        hidden = inputs
        for layer in self.recurrent:
            hidden = layer(hidden, mask=mask, training=training)
        scores = tf.squeeze(self.attention_score(self.attention_hidden(hidden)), axis=-1)
        if mask is not None:
            mask = tf.cast(mask, tf.bool)
            scores = tf.where(mask, scores, tf.fill(tf.shape(scores), scores.dtype.min))
        weights = tf.nn.softmax(scores, axis=-1)
        if mask is not None:
            # A row with no real step gets zero weights (and a zero vector), not NaN.
            weights = weights * tf.cast(tf.reduce_any(mask, axis=-1, keepdims=True),
                                        weights.dtype)
        vector = tf.reduce_sum(hidden * weights[..., tf.newaxis], axis=1)
        if return_attention:
            return vector, weights
        return vector

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_layers": self.num_layers,
                "attention_units": self.attention_units,
                "dropout": self.dropout,
            }
        )
        return config
