"""A text encoder over TF-IDF word n-grams (`keras.layers.TextVectorization`)."""

import keras
import numpy as np
import tensorflow as tf

from hgfn_keras.utils.arguments import positive_int


@keras.saving.register_keras_serializable(package="hgfn_keras")
class TfidfTextEncoder(keras.layers.Layer):
    """Raw strings in, one vector per string out: TF-IDF n-grams, then a Dense.

    `keras.layers.TextVectorization(output_mode="tf_idf", ngrams=...)` turns each
    string into TF-IDF weights of its words and word n-grams (vocabulary and
    inverse document frequencies from the training split, `adapt`); each row is
    scaled to unit L2 norm (as scikit-learn's `TfidfVectorizer` does, so long and
    short texts weigh alike), dropped out at `input_dropout` in training, and
    projected by a Dense layer to `units`. This is the strong linear text
    baseline (TF-IDF + logistic regression) as a trainable layer that feeds the
    fusion. An empty string (a missing text) gives the Dense's bias only; the
    model's modality mask is what marks the text missing.

    Everything is inside the layer, so an exported model takes raw strings.

    Args:
        max_tokens: vocabulary size (the most frequent n-grams).
        ngrams: the longest n-gram (2: words and word pairs).
        units: the output width.
        input_dropout: in training, the fraction of TF-IDF features dropped.
        activation: the Dense's activation (None: linear).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a string tensor `[batch]`.

    Returns:
        `[batch, units]`.

    >>> import numpy as np
    >>> encoder = TfidfTextEncoder.from_texts(["good dress", "bad shoes", "good"], units=4)
    >>> tuple(encoder(np.array(["good shoes", ""])).shape)
    (2, 4)
    """

    def __init__(self, max_tokens: int = 20000, ngrams: int = 2, units: int = 64,
                 input_dropout: float = 0.0, activation: "str | None" = None,
                 vocabulary_size: "int | None" = None, **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("max_tokens", max_tokens), ("ngrams", ngrams), ("units", units)):
            positive_int(arg, value)
        if isinstance(input_dropout, bool) or not 0 <= input_dropout < 1:
            raise ValueError(
                f"`input_dropout` must be in [0, 1). Received: input_dropout={input_dropout!r}")
        self.max_tokens = int(max_tokens)
        self.ngrams = int(ngrams)
        self.units = int(units)
        self.input_dropout = float(input_dropout)
        self.activation = activation
        self.vocabulary_size = vocabulary_size
        self.vectorizer = keras.layers.TextVectorization(
            max_tokens=max_tokens, ngrams=ngrams, output_mode="tf_idf", name="vectorizer")
        self.dropout = keras.layers.Dropout(self.input_dropout, name="input_dropout")
        self.projection = keras.layers.Dense(units, activation=activation, name="projection",
                                             dtype=self.dtype_policy)

    def adapt(self, texts):
        """Builds the vocabulary and the IDF weights from `texts` (the training split)."""
        texts = np.asarray([str(t) for t in texts], dtype=object)
        if not any(t.strip() for t in texts):
            raise ValueError(
                f"`adapt` needs some non-empty training texts. Received {len(texts)} empty ones.")
        self.vectorizer.adapt(tf.constant(texts.astype(str).tolist(), dtype=tf.string))
        self.vocabulary_size = int(self.vectorizer.vocabulary_size())

    def build(self, input_shape):
        # The width is kept in the config, so that a reloaded layer builds before its
        # vocabulary (an asset) is loaded.
        if self.vocabulary_size is None:
            self.vocabulary_size = int(self.vectorizer.vocabulary_size())
        self.projection.build((None, self.vocabulary_size))

    def call(self, inputs, training=False):
        strings = tf.reshape(tf.convert_to_tensor(inputs, dtype=tf.string), [-1])
        weights = tf.cast(self.vectorizer(strings), self.compute_dtype)
        weights = tf.math.l2_normalize(weights, axis=-1)  # 0 for an empty string
        return self.projection(self.dropout(weights, training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"max_tokens": self.max_tokens, "ngrams": self.ngrams,
                       "units": self.units, "input_dropout": self.input_dropout,
                       "activation": self.activation,
                       "vocabulary_size": self.vocabulary_size})
        return config

    @classmethod
    def from_texts(cls, texts, **kwargs) -> "TfidfTextEncoder":
        """The encoder adapted to `texts` (the training split).

        >>> TfidfTextEncoder.from_texts(["red dress", "red"]).vectorizer.vocabulary_size()
        4
        """
        encoder = cls(**kwargs)
        encoder.adapt(texts)
        return encoder
