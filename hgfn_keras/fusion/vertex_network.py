"""The CONV network that makes a vertex from two vectors (eq. 3)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hgfn_keras")
class VertexNetwork(keras.layers.Layer):
    """V_(x,y) = CONV(V_x ⊕ V_y) for every vertex of a level at once (eq. 3).

    The two vectors are stacked as 2 channels of a length-D signal; one Conv1D
    ('same') with LeakyReLU, then one Dense(units) with LeakyReLU. One network is
    shared by all vertices of a level (as in the reference GFN code), and the
    vertices are the batch: the input is `[batch, V, D]` twice, the output
    `[batch, V, units]`, with no loop over vertices (DESIGN.md item 4).

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
        for arg, value in (("units", units), ("filters", filters), ("kernel_size", kernel_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
        self.units = units
        self.filters = filters
        self.kernel_size = kernel_size
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
        num_vertices = left.shape[1]
        pair = ops.stack([left, right], axis=-1)  # (batch, V, D, 2)
        x = ops.reshape(pair, (-1, self.width, 2))  # vertices join the batch
        x = ops.leaky_relu(self.conv(x), self.negative_slope)
        x = ops.reshape(x, (-1, num_vertices, self.width * self.filters))
        return ops.leaky_relu(self.dense(x), self.negative_slope)

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
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"`units` must be a positive integer. Received: units={units!r}")
        self.units = units
        self.negative_slope = negative_slope

    def build(self, left_shape, right_shape=None):
        self.dense = keras.layers.Dense(self.units, name="dense", dtype=self.dtype_policy)
        self.dense.build((None, 2 * int(left_shape[-1])))

    def call(self, left, right):
        pair = ops.concatenate([left, right], axis=-1)
        return ops.leaky_relu(self.dense(pair), self.negative_slope)

    def compute_output_shape(self, left_shape, right_shape=None):
        return (left_shape[0], left_shape[1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "negative_slope": self.negative_slope})
        return config
