"""Images to one vector each: a Keras backbone (InceptionV3 by default) or a TF-Hub module."""

import os

import keras
import tensorflow as tf

from hgfn_keras.utils.arguments import is_integer
from hgfn_keras.encoders.hub_encoder import (
    HubEncoder,
    check_handle_trusted,
    check_vector_per_item,
)

PREPROCESSING = ("auto", "inception", "unit", "none")
POOLING = ("avg", "max")


def application_names():
    """The names of the Keras applications usable as a backbone (`"InceptionV3"`, ...)."""
    return sorted(
        name for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
    )


def _application(name):
    """The `keras.applications` constructor called `name` (case and `_` ignored), or None."""
    wanted = name.replace("_", "").replace("-", "").lower()
    for candidate in application_names():
        if candidate.lower() == wanted:
            return getattr(keras.applications, candidate)
    return None


def _image_size(image_size):
    pair = image_size
    if is_integer(image_size):
        pair = (image_size, image_size)
    try:
        height, width = (int(v) for v in pair)
        if (height, width) != tuple(pair) or min(height, width) < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(
            "`image_size` must be a positive integer or a (height, width) pair. "
            f"Received: image_size={image_size!r}"
        ) from None
    return height, width


def resize_and_center_crop(image, size):
    """Resizes the shorter side of `image` to fit `size`, then crops the centre to `size`.

    This is how the paper prepares video frames ("resized and cropped into 224 by 224").

    Args:
        image: `[H, W, C]` or `[batch, H, W, C]`, any numeric dtype.
        size: an int or a `(height, width)` pair.

    Returns:
        float32 `[..., height, width, C]` with the input's value range.

    >>> resize_and_center_crop(tf.zeros([40, 80, 3]), 20).shape
    TensorShape([20, 20, 3])
    """
    height, width = _image_size(size)
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    shape = tf.shape(image)
    in_h = tf.cast(shape[-3], tf.float32)
    in_w = tf.cast(shape[-2], tf.float32)
    scale = tf.maximum(height / in_h, width / in_w)
    new_h = tf.maximum(height, tf.cast(tf.math.ceil(in_h * scale), tf.int32))
    new_w = tf.maximum(width, tf.cast(tf.math.ceil(in_w * scale), tf.int32))
    image = tf.image.resize(image, tf.stack([new_h, new_w]))
    top = (new_h - height) // 2
    left = (new_w - width) // 2
    return tf.image.crop_to_bounding_box(image, top, left, height, width)


@keras.saving.register_keras_serializable(package="hgfn_keras")
class ImageEncoder(keras.layers.Layer):
    """Images in (pixel values 0..255), one vector per image out.

    The backbone is one of:

    - the name of a Keras application (`"inception_v3"`, the paper's Inception V3, by
      default; any of `application_names()`), built without its top at `image_size`
      with global `pooling`, its weights from `weights`: `"imagenet"` (downloaded by
      Keras), the path of a local weights file, or None (random, for tests);
    - any `keras.Model` that maps `[batch, H, W, 3]` images to `[batch, D]` (or to a
      feature map `[batch, h, w, D]`, then pooled); it is trained with the model
      unless you set `trainable=False` on it; `weights` may name a weights file for it;
    - otherwise, a string is a TF-Hub handle or SavedModel folder loaded with
      `hub.load` (see `HubEncoder`), fed float32 images `[batch, H, W, 3]`.

    Images are resized to `image_size` and scaled by `preprocessing`: `"inception"`
    maps 0..255 to [-1, 1] (what InceptionV3, Xception and MobileNet expect),
    `"unit"` to [0, 1] (the TF-Hub image convention), `"none"` leaves them; `"auto"`
    is `"unit"` for a hub handle and `"inception"` otherwise. Other Keras
    applications (ResNet, VGG: "caffe" scaling; EfficientNet: built-in) need
    `"none"` with your own scaling.

    Args:
        backbone: a Keras application name, a `keras.Model`, or a hub handle.
        weights: `"imagenet"`, a weights file, or None; `"auto"`: `"imagenet"` for a
            Keras application name, None otherwise. `get_config` records None: the
            weights travel in the `.keras` file, not in the config.
        image_size: an int or a `(height, width)` pair (InceptionV3: at least 75).
        pooling: `"avg"` or `"max"` over the feature map.
        preprocessing: one of `"auto"`, `"inception"`, `"unit"`, `"none"`.
        output_key: for a hub module returning a dict, the output to take.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: images `[batch, H, W, 3]` (uint8 or float, 0..255).

    Returns:
        `[batch, D]`.

    Example (a tiny backbone instead of InceptionV3, which is big):

    >>> import numpy as np
    >>> tiny = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    >>> encoder = ImageEncoder(tiny, image_size=8)
    >>> tuple(encoder(np.zeros((2, 16, 16, 3), "uint8")).shape)
    (2, 4)
    """

    def __init__(self, backbone: str = "inception_v3", weights: "str | None" = "auto",
                 image_size: "int | tuple[int, int]" = 299, pooling: str = "avg",
                 preprocessing: str = "auto", output_key: "str | None" = None, **kwargs):
        super().__init__(**kwargs)
        self.image_size = _image_size(image_size)
        if pooling not in POOLING:
            raise ValueError(f"`pooling` must be one of {POOLING}. Received: pooling={pooling!r}")
        if preprocessing not in PREPROCESSING:
            raise ValueError(
                f"`preprocessing` must be one of {PREPROCESSING}. "
                f"Received: preprocessing={preprocessing!r}"
            )
        if isinstance(backbone, dict):  # from get_config
            backbone = keras.saving.deserialize_keras_object(backbone)
        is_application = isinstance(backbone, (str, os.PathLike)) and _application(
            os.fspath(backbone)) is not None
        if isinstance(weights, str) and weights == "auto":
            weights = "imagenet" if is_application else None
        if weights not in (None, "imagenet") and not (
            isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)
        ):
            raise ValueError(
                "`weights` must be 'auto', 'imagenet', None or the path of an existing "
                f"weights file. Received: weights={weights!r}"
            )
        self.pooling = pooling
        self.output_key = output_key
        self.weights_path = weights
        if isinstance(backbone, keras.Model):
            self.backbone_kind = "model"
            self.backbone = backbone
            if weights == "imagenet":
                raise ValueError(
                    "`weights='imagenet'` applies to Keras application names only; for a "
                    "`keras.Model` backbone pass a weights file or None. Received: "
                    f"backbone={backbone.name!r}, weights={weights!r}"
                )
            if weights is not None:
                backbone.load_weights(os.fspath(weights))
        elif is_application:
            self.backbone_kind = "application"
            self.backbone = os.fspath(backbone)
        elif isinstance(backbone, (str, os.PathLike)):
            if weights is not None:
                raise ValueError(
                    "`weights` applies to a Keras application or a `keras.Model` backbone, "
                    f"not to a TF-Hub handle. Received: backbone={backbone!r}, weights={weights!r}"
                )
            self.backbone_kind = "hub"
            self.backbone = os.fspath(backbone)
            self.hub = HubEncoder(self.backbone, module_dtype="float32", output_key=output_key,
                                  name="hub", dtype=self.dtype_policy)
        else:
            raise ValueError(
                "`backbone` must be a Keras application name (e.g. 'inception_v3'), a "
                f"`keras.Model` or a TF-Hub handle. Received: backbone={backbone!r}"
            )
        self.preprocessing = preprocessing
        if preprocessing == "auto":
            preprocessing = "unit" if self.backbone_kind == "hub" else "inception"
        self._scaling = preprocessing

    def build(self, input_shape):
        if self.backbone_kind == "application":
            constructor = _application(self.backbone)
            weights = self.weights_path
            self.network = constructor(
                include_top=False,
                weights=os.fspath(weights) if weights is not None else None,
                input_shape=(*self.image_size, 3),
                pooling=self.pooling,
            )
        elif self.backbone_kind == "model":
            self.network = self.backbone
        else:
            self.network = self.hub

    def call(self, inputs, training=False):
        images = tf.cast(tf.convert_to_tensor(inputs), tf.float32)
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"`ImageEncoder` takes images [batch, H, W, 3]. Received: shape={images.shape}"
            )
        images = tf.image.resize(images, self.image_size)
        if self._scaling == "inception":
            images = images / 127.5 - 1.0
        elif self._scaling == "unit":
            images = images / 255.0
        if self.backbone_kind == "hub":
            features = self.network(images)
        else:
            features = self.network(images, training=training)
        if len(features.shape) == 4:
            reduce = tf.reduce_mean if self.pooling == "avg" else tf.reduce_max
            features = reduce(features, axis=[1, 2])
        return check_vector_per_item(features, f"The image backbone {self._backbone_label()}")

    def _backbone_label(self):
        if self.backbone_kind == "model":
            return repr(self.backbone.name)
        return repr(self.backbone)

    @classmethod
    def from_config(cls, config):
        check_handle_trusted(config.get("backbone"), cls.__name__)  # before any fetch
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        backbone = self.backbone
        # The backbone's weights are saved with the layer (`.keras`), so the config does
        # not name them: a reload is offline and does not need the original file.
        weights = None
        if self.backbone_kind == "model":
            backbone = keras.saving.serialize_keras_object(backbone)
        config.update(
            {
                "backbone": backbone,
                "weights": os.fspath(weights) if weights is not None else None,
                "image_size": list(self.image_size),
                "pooling": self.pooling,
                "preprocessing": self.preprocessing,
                "output_key": self.output_key,
            }
        )
        return config
