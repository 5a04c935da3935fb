"""The CONV network that makes a vertex from two vectors (eq. 3)."""

import keras
from keras import ops

from hgfn_keras.utils.arguments import positive_int


@keras.saving.register_keras_serializable(package="hgfn_keras")
class VertexNetwork(keras.layers.Layer):
    """V_(x,y) = CONV(V_x ⊕ V_y) for every vertex of a level at once (eq. 3).

    The two vectors are stacked as 2 channels of a length-D signal; one Conv1D
    ('same') with LeakyReLU, then one Dense(units) with LeakyReLU. One network is
    shared by all vertices of a level (as in the reference GFN code), and all the
    vertices of a level run at once: the input is `[batch, V, D]` twice, the
    output `[batch, V, units]`, with no loop over vertices (docs/DESIGN.md,
    "HGFN (paper III-B)", item 4).
    `join(pairs)` takes the two inputs stacked on axis 2, `[batch, V, 2, D]`.

    Args:
        units: the vertex width (the HGFN uses its aligned width D).
        filters: channels of the Conv1D (the paper does not say; 4).
        kernel_size: the Conv1D kernel (3).
        negative_slope: the LeakyReLU slope.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        left, right: `[batch, V, D]`, the two vectors each vertex joins.

    Returns:
        `[batch, V, units]`.

    >>> import numpy as np
    >>> net = VertexNetwork(units=6)
    >>> tuple(net(np.ones((2, 3, 6)), np.ones((2, 3, 6))).shape)
    (2, 3, 6)
    """

    def __init__(self, units, filters=4, kernel_size=3, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int("units", units)
        self.filters = positive_int("filters", filters)
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.negative_slope = negative_slope

    def build(self, left_shape, right_shape=None):
        d = int(left_shape[-1])
        self.width = d
        self.conv = keras.layers.Conv1D(
            self.filters, self.kernel_size, padding="same", name="conv1d",
            dtype=self.dtype_policy,
        )
        self.conv.build((None, d, 2))
        self.dense = keras.layers.Dense(self.units, name="dense", dtype=self.dtype_policy)
        self.dense.build((None, d * self.filters))

    def call(self, left, right):
        return self._vertices(ops.stack([left, right], axis=-1))

    def join(self, pairs):
        """`call` on the constituents stacked on axis 2, `[batch, V, 2, D]`.

        The HGFN gathers both constituents of a level with one matmul, which
        gives this layout.
        """
        return self._vertices(ops.transpose(pairs, (0, 1, 3, 2)))

    def _vertices(self, pairs):
        # `pairs`: [batch, V, D, 2], the two vectors as the 2 channels of a length-D
        # signal. The Conv1D runs as a Conv2D with a (1, kernel_size) kernel over the
        # (V, D) plane: the Conv1D along D of every vertex, without folding the
        # vertices into the batch; the Dense runs as one 2-D matmul. Same weights and
        # results as calling the two sub-layers, with fewer and cheaper ops.
        num_vertices = pairs.shape[1]
        kernel = ops.cast(ops.expand_dims(self.conv.kernel, 0), pairs.dtype)  # (1, k, 2, F)
        x = ops.conv(pairs, kernel, padding="same")
        # `+ bias`, not BiasAdd: the backward of a broadcast add is a cheaper sum on CPU.
        x = ops.leaky_relu(x + ops.cast(self.conv.bias, x.dtype), self.negative_slope)
        x = ops.reshape(x, (-1, self.width * self.filters))
        x = ops.matmul(x, ops.cast(self.dense.kernel, x.dtype)) + ops.cast(self.dense.bias,
                                                                            x.dtype)
        x = ops.leaky_relu(x, self.negative_slope)
        return ops.reshape(x, (-1, num_vertices, self.units))

    def compute_output_shape(self, left_shape, right_shape=None):
        return (left_shape[0], left_shape[1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "negative_slope": self.negative_slope,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="hgfn_keras")
class VertexMLP(keras.layers.Layer):
    """V_(x,y) = LeakyReLU(Dense(units)(V_x ⊕ V_y)), shared by a level's vertices.

    The GFN preset's vertex network (Mai et al. 2020 fuse a pair with a shared
    fully connected layer); same call signature as `VertexNetwork`.

    >>> import numpy as np
    >>> tuple(VertexMLP(units=6)(np.ones((2, 3, 6)), np.ones((2, 3, 6))).shape)
    (2, 3, 6)
    """

    def __init__(self, units, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int("units", units)
        self.negative_slope = negative_slope

    def build(self, left_shape, right_shape=None):
        self.dense = keras.layers.Dense(self.units, name="dense", dtype=self.dtype_policy)
        self.dense.build((None, 2 * int(left_shape[-1])))

    def call(self, left, right):
        pair = ops.concatenate([left, right], axis=-1)
        return ops.leaky_relu(self.dense(pair), self.negative_slope)

    def join(self, pairs):
        """`call` on the constituents stacked on axis 2, `[batch, V, 2, D]`."""
        num_vertices, width = pairs.shape[1], pairs.shape[3]
        return ops.leaky_relu(self.dense(ops.reshape(pairs, (-1, num_vertices, 2 * width))),
                              self.negative_slope)

    def compute_output_shape(self, left_shape, right_shape=None):
        return (left_shape[0], left_shape[1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "negative_slope": self.negative_slope})
        return config
