"""Modality dropout: masks whole modalities at random during training."""

import keras
from keras import ops

from hgfn_keras.utils.arguments import is_number


@keras.saving.register_keras_serializable(package="hgfn_keras")
class ModalityDropout(keras.layers.Layer):
    """Drops whole modalities of a row at random, in training only.

    It acts on the `modality_mask` `[batch, M]` (1 = present) that every fusion
    takes: during training each present modality of a row is set to 0 with
    probability `rate`, independently; a row whose draw would leave it with no
    modality keeps one of its present modalities, chosen at random, so no row
    ever loses all of its modalities (and a row with one modality keeps it).
    Outside training (`predict`, `evaluate`, a SavedModel) the mask passes
    through unchanged. The fusion then treats a dropped modality exactly
    as a missing one (a zero vector, weight 0 in every level), so the model
    learns to answer from the modalities it still has: what a graph of
    per-sample modality weights is for when a sensor fails.

    Args:
        rate: the probability in [0, 1) that a present modality is dropped.
        seed: optional seed of the random draws.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: the modality mask `[batch, M]`, 1 where the modality is present.
        training: whether to drop (Keras passes it).

    Returns:
        The mask `[batch, M]`, with dropped modalities at 0 when training.

    >>> import numpy as np
    >>> layer = ModalityDropout(0.5, seed=1)
    >>> mask = np.ones((1000, 2), "float32")
    >>> bool(np.all(layer(mask, training=False) == mask))
    True
    >>> dropped = np.asarray(layer(mask, training=True))
    >>> bool(dropped.sum(axis=1).min() >= 1), 0.2 < float(1 - dropped.mean()) < 0.45
    (True, True)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not is_number(rate) or not 0 <= rate < 1:
            raise ValueError(f"`rate` must be a number in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def call(self, inputs, training=False):
        # Named `inputs`, not `mask`: Keras reserves a call argument named `mask`.
        mask = ops.convert_to_tensor(inputs, "float32")
        if not training or self.rate == 0:
            return mask
        keep = ops.cast(
            keras.random.uniform(ops.shape(mask), seed=self.seed_generator) >= self.rate,
            mask.dtype)
        dropped = mask * keep
        empty = ops.sum(dropped, axis=-1, keepdims=True) <= 0
        # One present modality at random: the largest of uniform draws among them.
        scores = keras.random.uniform(ops.shape(mask), minval=0.5, maxval=1.0,
                                      seed=self.seed_generator) * mask
        one = ops.one_hot(ops.argmax(scores, axis=-1), ops.shape(mask)[-1], dtype=mask.dtype)
        return ops.where(empty, one * mask, dropped)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
