"""Edge and vertex weights from the similarity of the joined vectors (eqs. 4-5)."""

import keras
from keras import ops

from hgfn_keras.fusion.masked_softmax import masked_softmax
from hgfn_keras.utils.arguments import is_number

SIMILARITIES = ("cosine", "dot")


@keras.saving.register_keras_serializable(package="hgfn_keras")
class SimilarityEdgeWeights(keras.layers.Layer):
    """The normalised vertex weights of one level (eqs. 4 and 5).

    For a vertex joining x and y:

    - S_xy = COS(softmax(V_x), softmax(V_y))            (eq. 4)
    - q_xy = (w_x + w_y) / (S_xy + θ)                   (eq. 5)
    - the level's weights are the softmax of q over the level's vertices.

    Two similar constituents carry less new information, so their vertex gets a
    smaller weight. `similarity="dot"` replaces the cosine by the dot product of
    the softmaxes, as the reference GFN code does. Vertices whose mask is 0
    (they include a missing modality) get weight 0; a sample with no vertex
    present gets all-zero weights.

    Args:
        theta: θ in (0, 1], the growth-rate term (0.5 in the paper).
        similarity: `"cosine"` (default, the paper) or `"dot"`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        left, right: `[batch, V, D]`, the constituent vectors of each vertex.
        left_weights, right_weights: `[batch, V]`, their weights from the level
            below (the DAU's w_i for unimodal constituents).
        vertex_mask: optional `[batch, V]`, 1 where the vertex is present.

    Returns:
        The vertex weights `[batch, V]`, summing to 1 over present vertices.

    >>> import numpy as np
    >>> layer = SimilarityEdgeWeights(theta=0.5)
    >>> v = np.random.rand(2, 3, 4).astype("float32")
    >>> w = np.full((2, 3), 0.5, "float32")
    >>> np.asarray(layer(v, v[:, ::-1], w, w)).sum(axis=1).round(5).tolist()
    [1.0, 1.0]
    """

    def __init__(self, theta=0.5, similarity="cosine", **kwargs):
        super().__init__(**kwargs)
        validate_theta(theta)
        if similarity not in SIMILARITIES:
            raise ValueError(
                f"`similarity` must be one of {SIMILARITIES}. Received: similarity={similarity!r}"
            )
        self.theta = float(theta)
        self.similarity = similarity

    def similarity_scores(self, left, right):
        """S_xy of eq. 4 (or the dot product), `[batch, V]`, in float32."""
        return self._pair_scores(ops.stack([left, right], axis=2))

    def _pair_scores(self, pairs):
        # `pairs`: [batch, V, 2, D]. One softmax for both constituents, in float32
        # under mixed precision too: the softmaxes of wide vectors and their cosine
        # lose most of their digits in float16.
        soft = masked_softmax(ops.cast(pairs, "float32"))  # width 1: softmax 1, no warning
        # `unstack`, not `soft[:, :, 0]`: on CPU the backward of a strided slice
        # across the pair axis costs more than the rest of the similarity.
        left, right = ops.unstack(soft, 2, axis=2)
        dot = ops.sum(left * right, axis=-1)
        if self.similarity == "dot":
            return dot
        # Softmax outputs are positive, so the norms are never 0.
        norms = ops.sqrt(ops.sum(left * left, axis=-1) * ops.sum(right * right, axis=-1))
        return dot / norms

    def call(self, left, right, left_weights, right_weights, vertex_mask=None):
        weight_sums = ops.cast(left_weights, "float32") + ops.cast(right_weights, "float32")
        return self.join_weights(ops.stack([left, right], axis=2), weight_sums, vertex_mask)

    def join_weights(self, pairs, weight_sums, vertex_mask=None):
        """`call` on the constituents stacked on axis 2, given w_x + w_y.

        Args:
            pairs: `[batch, V, 2, D]`, the two constituent vectors of each vertex.
            weight_sums: `[batch, V]`, w_x + w_y.
            vertex_mask: optional `[batch, V]`.

        Returns:
            The vertex weights `[batch, V]`.
        """
        q = ops.cast(weight_sums, "float32") / (self._pair_scores(pairs) + self.theta)  # eq. 5
        return ops.cast(masked_softmax(q, vertex_mask), self.compute_dtype)

    def compute_output_shape(self, left_shape, *args, **kwargs):
        return tuple(left_shape[:2])

    def get_config(self):
        config = super().get_config()
        config.update({"theta": self.theta, "similarity": self.similarity})
        return config


def validate_theta(theta):
    if not is_number(theta) or not 0 < theta <= 1:
        raise ValueError(f"`theta` must be in (0, 1]. Received: theta={theta!r}")

