"""`FeatureNormalization`: a modality's raw features standardised inside the model."""

import warnings

import keras
import numpy as np

from hgfn_keras.feature_checks import MASK_KEY

#: A feature whose training variance is at or below this is constant: it is centred
#: but not scaled (variance taken as 1), so that it can never divide by ~0.
VARIANCE_FLOOR = 1e-12


@keras.saving.register_keras_serializable(package="hgfn_keras")
class FeatureNormalization(keras.layers.Normalization):
    """Standardises one modality's raw features with training-split statistics.

    `keras.layers.Normalization` over the last axis, with three differences that
    a multimodal model needs, which is why this subclass exists:

    - `adapt(values, present=...)` leaves out the rows where the modality is
      missing (`modality_mask` 0): their placeholder values are not data;
    - a constant feature (training variance ≤ 1e-12) is centred and not scaled,
      so it gives finite outputs for any input rather than dividing by ~0;
    - it computes in float32 under a mixed-precision policy (raw features of
      any scale overflow float16);
    - `call` reads the statistics' variables each time (Keras' layer caches a
      copy that `set_weights` and a traced function would not see change).

    The statistics are non-trainable weights, so `model.keras`, checkpoints and
    the exported SavedModel carry them: serving clients send raw features.
    `build_model` puts one in front of every vector and sequence modality's
    encoder; `MultiTaskModel.adapt(x_train)` (called by `fit` on numpy inputs
    when the statistics are not yet set) adapts them.

    Args:
        modality: the name of the modality it standardises.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> layer = FeatureNormalization("metadata")
    >>> x = np.array([[20.0, 5.0], [40.0, 5.0], [99.0, 5.0]], "float32")
    >>> layer.adapt(x, present=np.array([1, 1, 0]))  # the third row is missing
    >>> layer(np.array([[30.0, 7.0]], "float32")).numpy().round(3).tolist()
    [[0.0, 2.0]]
    """

    def __init__(self, modality, **kwargs):
        kwargs.setdefault("dtype", "float32")
        kwargs.pop("axis", None)
        kwargs.pop("mean", None)
        kwargs.pop("variance", None)
        kwargs.pop("invert", None)
        super().__init__(axis=-1, **kwargs)
        if not isinstance(modality, str) or not modality:
            raise ValueError(
                f"`modality` must be a non-empty string. Received: modality={modality!r}")
        self.modality = modality

    @property
    def adapted(self):
        """Whether training statistics have been set (by `adapt` or `set_statistics`)."""
        return self.built and int(keras.ops.convert_to_numpy(self.count)) > 0

    def set_statistics(self, mean, variance, count):
        """Sets the mean and variance per feature (e.g. from a streamed pass).

        Args:
            mean: `[width]` feature means over the present training rows.
            variance: `[width]` their variances; values ≤ 1e-12 are taken as 1.
            count: the number of rows (or steps) they were taken over.
        """
        mean = np.asarray(mean, "float64").reshape(-1)
        variance = np.asarray(variance, "float64").reshape(-1)
        width = self._mean_and_var_shape[-1] if self.built else None
        if width is not None and (mean.shape != (width,) or variance.shape != (width,)):
            raise ValueError(
                f"Modality {self.modality!r}: the statistics must have width {width}. "
                f"Received: mean {mean.shape}, variance {variance.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(variance))):
            raise ValueError(f"Modality {self.modality!r}: the statistics hold NaN or inf.")
        variance = np.where(variance > VARIANCE_FLOOR, variance, 1.0)
        self.adapt_mean.assign(mean.astype("float32"))
        self.adapt_variance.assign(variance.astype("float32"))
        self.count.assign(int(count))
        self.finalize_state()

    def adapt(self, data, present=None):
        """Takes the mean and variance of `data`'s present rows.

        Args:
            data: the modality's training values, `[N, width]` or `[N, steps,
                width]` (every step of a present row counts).
            present: optional `[N]` of 0/1, 1 where the modality is present.
        """
        values = np.asarray(data, "float64")
        if values.ndim < 2:
            raise ValueError(
                f"Modality {self.modality!r}: `adapt` needs [N, width] or [N, steps, width] "
                f"values. Received: shape={values.shape}")
        if present is not None:
            present = np.asarray(present).reshape(-1)
            if present.shape[0] != values.shape[0]:
                raise ValueError(
                    f"Modality {self.modality!r}: `present` has {present.shape[0]} rows, the "
                    f"values {values.shape[0]}.")
            values = values[present > 0]
        if not self.built:
            self.build((None,) + values.shape[1:])
        values = values.reshape(-1, values.shape[-1])
        if len(values) == 0:
            warnings.warn(
                f"Modality {self.modality!r} is missing in every training row: its features "
                "are left unscaled.", stacklevel=2)
            self.set_statistics(np.zeros(values.shape[-1]), np.ones(values.shape[-1]), 0)
            return
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"Modality {self.modality!r}: the training values hold NaN or inf.")
        self.set_statistics(values.mean(axis=0), values.var(axis=0), len(values))

    def call(self, inputs):
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        mean = keras.ops.cast(self.adapt_mean, self.compute_dtype)
        variance = keras.ops.cast(self.adapt_variance, self.compute_dtype)
        return (inputs - mean) / keras.ops.maximum(keras.ops.sqrt(variance),
                                                   keras.config.epsilon())

    def get_config(self):
        config = super().get_config()
        for key in ("axis", "mean", "variance", "invert"):
            config.pop(key, None)
        config["modality"] = self.modality
        return config


def normalization_layers(network):
    """A network's `FeatureNormalization` layers, `{modality name: layer}`."""
    return {layer.modality: layer for layer in network.layers
            if isinstance(layer, FeatureNormalization)}


def adapt_normalization(network, x):
    """Sets every modality's normalisation statistics in `network` from the training inputs.

    Args:
        network: a model whose inputs are the modalities (then `modality_mask`).
        x: the training inputs, a dict `{modality name: array}`; rows whose
            `modality_mask` entry is 0 are left out of that modality's statistics.
            Pass the training split only: validation or test rows would leak into
            the model.
    """
    if not isinstance(x, dict):
        raise TypeError(
            "`adapt` needs the training inputs as a dict {modality name: array}. "
            f"Received: {type(x).__name__}")
    layers = normalization_layers(network)
    missing = [name for name in layers if name not in x]
    if missing:
        raise ValueError(f"`adapt`: the inputs lack the modality(ies) {missing}. "
                         f"Received keys: {sorted(x)}")
    modality_names = [t.name for t in network.inputs if t.name != MASK_KEY]
    mask = x.get(MASK_KEY)
    for name, layer in layers.items():
        present = None if mask is None else np.asarray(mask)[:, modality_names.index(name)]
        layer.adapt(x[name], present=present)
