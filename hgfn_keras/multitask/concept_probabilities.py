"""A one-vs-rest task's K-class probabilities from its K concept sigmoids."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hgfn_keras")
class ConceptProbabilities(keras.layers.Layer):
    """Normalises K concept sigmoids s_k ("class k or not") to sum to 1.

    p_k = (s_k + ε) / (Σ_j s_j + K ε), with ε = `keras.config.epsilon()`, so
    that the K probabilities sum to 1 even when every sigmoid has saturated
    to 0. A one-vs-rest task (`Task(..., one_vs_rest=True)`) is trained on
    the concepts' binary losses; this layer makes its public output read as
    a K-class task's, so that `argmax`, the metrics and the SavedModel stay
    as they are. It has no weights. The output is float32 under any
    precision policy (as Keras advises for a model's last layer).

    Call arguments:
        inputs: a list of K tensors `[batch, 1]`, the concept sigmoids.

    Returns:
        `[batch, K]`, each row summing to 1.

    Example:

    >>> import numpy as np
    >>> layer = ConceptProbabilities()
    >>> p = layer([np.array([[0.9]]), np.array([[0.3]]), np.array([[0.3]])])
    >>> [round(float(v), 3) for v in np.asarray(p)[0]]
    [0.6, 0.2, 0.2]
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        sigmoids = ops.concatenate([ops.cast(s, "float32") for s in inputs], axis=-1)
        epsilon = keras.config.epsilon()
        total = ops.sum(sigmoids, axis=-1, keepdims=True) + epsilon * len(inputs)
        return (sigmoids + epsilon) / total

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], len(input_shape))
