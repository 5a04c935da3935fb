"""A trainable text encoder that reads raw strings (tokenised with tensorflow-text)."""

import collections

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops import unicode_script_tokenizer as _script_tokenizer

from hgfn_keras.utils.arguments import positive_int

# The op `tf_text.UnicodeScriptTokenizer` calls (see `tokenize`); None if a version of
# tensorflow-text stops exposing it, and then `tokenize` takes the public tokenizer.
_SCRIPT_TOKENIZE_OP = getattr(_script_tokenizer, "gen_unicode_script_tokenizer", None)


def tokenize(strings) -> "tf.RaggedTensor":
    """Case-folds and splits strings into words and punctuation with tensorflow-text.

    Args:
        strings: a string tensor or array `[batch]`.

    Returns:
        A `tf.RaggedTensor` of tokens `[batch, None]`.

    >>> tokenize(["Great dress!", ""]).to_list()
    [[b'great', b'dress', b'!'], []]
    """
    folded = tf_text.case_fold_utf8(tf.convert_to_tensor(strings, dtype=tf.string))
    if _SCRIPT_TOKENIZE_OP is None:
        return tf_text.UnicodeScriptTokenizer().tokenize(folded)
    # `tf_text.UnicodeScriptTokenizer().tokenize` also computes every token's byte
    # offsets and throws them away: ragged gathers and shape checks that cost about
    # 0.8 s each time a model with a text encoder is traced (the main job traced it
    # 16 times: training, validation, prediction, export) and half its run time.
    # The same op without them: the same tokens (tests/test_encoders.py compares).
    codepoints = tf.strings.unicode_decode(folded, "UTF-8")
    values, inner_splits, _, _, outer_splits = (
        _SCRIPT_TOKENIZE_OP.unicode_script_tokenize_with_offsets(
            input_values=codepoints.flat_values, input_splits=codepoints.row_splits,
            keep_whitespace=False))
    tokens = tf.RaggedTensor.from_nested_row_splits(values, [outer_splits, inner_splits],
                                                    validate=False)
    return tf.strings.unicode_encode(tokens, "UTF-8")


def count_tokens(texts, batch_size: int = 4096) -> "collections.Counter":
    """`{token: count}` of `texts` (Python strings, "" for a missing text), tokenised by
    `tokenize`, a batch of `batch_size` texts at a time.

    >>> sorted(count_tokens(["a b b", "b c"]).items())
    [('a', 1), ('b', 3), ('c', 1)]
    """
    texts = [str(t) for t in texts]
    counts = collections.Counter()
    for start in range(0, len(texts), batch_size):
        for row in tokenize(texts[start : start + batch_size]).to_list():
            counts.update(token.decode("utf-8") for token in row)
    return counts


def rank_vocabulary(counts, max_size: int = 20000, min_count: int = 2) -> "list[str]":
    """The tokens of `counts` (`{token: count}`) seen at least `min_count` times, most
    frequent first (ties: alphabetical), at most `max_size` of them.

    >>> rank_vocabulary({"b": 3, "a": 1, "c": 1}, min_count=1)
    ['b', 'a', 'c']
    """
    ranked = sorted((c for c in counts.items() if c[1] >= min_count and c[0]),
                    key=lambda item: (-item[1], item[0]))
    return [token for token, _ in ranked[:max_size]]


def build_vocabulary(texts, max_size: int = 20000, min_count: int = 2,
                     batch_size: int = 4096) -> "list[str]":
    """The most frequent tokens of `texts`, most frequent first (ties: alphabetical).

    Build it from the training split only, so no validation or test text leaks in.
    `rank_vocabulary(count_tokens(texts))`: a streamed dataset ranks its streamed
    counts the same way.

    Args:
        texts: an iterable of Python strings ("" for a missing text).
        max_size: keep at most this many tokens.
        min_count: drop tokens seen fewer times.

    >>> build_vocabulary(["a b b", "b c"], min_count=1)
    ['b', 'a', 'c']
    """
    return rank_vocabulary(count_tokens(texts, batch_size), max_size, min_count)


@keras.saving.register_keras_serializable(package="hgfn_keras")
class TextEncoder(keras.layers.Layer):
    """Raw strings in, one vector per string out: a trainable bag of embeddings.

    Tokenises with tensorflow-text (`tokenize`), looks tokens up in a vocabulary
    built from the training split (`keras.layers.StringLookup`; unknown tokens
    share one index), embeds them and averages the embeddings of the first
    `max_tokens` tokens. An empty string (a missing text) gives a zero vector.
    Because the tokenisation is inside the layer, an exported model takes raw
    strings.

    Args:
        vocabulary: a list of tokens (see `build_vocabulary`).
        embedding_dim: the output width (64).
        max_tokens: tokens read per string (128).
        token_dropout: in training, the fraction of tokens dropped at random
            before averaging (word dropout; 0 = off).
        seed: seeds the token dropout.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a string tensor `[batch]`.

    Returns:
        `[batch, embedding_dim]`.

    >>> import numpy as np
    >>> encoder = TextEncoder(["good", "bad"], embedding_dim=4)
    >>> tuple(encoder(np.array(["good shoes", ""])).shape)
    (2, 4)
    """

    def __init__(self, vocabulary: "list[str]", embedding_dim: int = 64, max_tokens: int = 128,
                 token_dropout: float = 0.0, seed: "int | None" = None, **kwargs):
        super().__init__(**kwargs)
        vocabulary = [str(t) for t in vocabulary]
        if not vocabulary:
            raise ValueError("`vocabulary` is empty: build it from non-empty training texts.")
        if "" in vocabulary or len(set(vocabulary)) != len(vocabulary):
            raise ValueError("`vocabulary` must hold distinct non-empty tokens.")
        for arg, value in (("embedding_dim", embedding_dim), ("max_tokens", max_tokens)):
            positive_int(arg, value)
        self.vocabulary = vocabulary
        self.embedding_dim = int(embedding_dim)
        self.max_tokens = int(max_tokens)
        if isinstance(token_dropout, bool) or not 0 <= token_dropout < 1:
            raise ValueError(
                f"`token_dropout` must be in [0, 1). Received: token_dropout={token_dropout!r}"
            )
        self.token_dropout = float(token_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # "" is the padding token (index 0); unknown tokens get index 1.
        self.lookup = keras.layers.StringLookup(
            vocabulary=vocabulary, mask_token="", num_oov_indices=1, name="lookup"
        )

    def build(self, input_shape):
        self.embedding = keras.layers.Embedding(
            len(self.vocabulary) + 2, self.embedding_dim, name="embedding",
            dtype=self.dtype_policy,
        )
        self.embedding.build((None, self.max_tokens))

    def call(self, inputs, training=False):
        strings = tf.reshape(tf.convert_to_tensor(inputs, dtype=tf.string), [-1])
        tokens = tokenize(strings)[:, : self.max_tokens].to_tensor(default_value="")
        ids = self.lookup(tokens)  # (batch, tokens), 0 = padding
        vectors = self.embedding(ids)
        present = tf.cast(ids > 0, vectors.dtype)[..., tf.newaxis]
        if training and self.token_dropout > 0:
            # Word dropout: drop whole tokens, then average over those kept.
            draw = keras.random.uniform(tf.shape(present), seed=self.seed_generator)
            keep = draw >= self.token_dropout
            present = present * tf.cast(keep, present.dtype)
        count = tf.maximum(tf.reduce_sum(present, axis=1), 1.0)
        return tf.reduce_sum(vectors * present, axis=1) / count

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self.vocabulary),
                "embedding_dim": self.embedding_dim,
                "max_tokens": self.max_tokens,
                "token_dropout": self.token_dropout,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_texts(cls, texts, max_vocabulary: int = 20000, min_count: int = 2,
                   **kwargs) -> "TextEncoder":
        """Builds the vocabulary from `texts` (the training split) and the encoder.

        >>> TextEncoder.from_texts(["red dress", "red"], min_count=1).vocabulary
        ['red', 'dress']
        """
        vocabulary = build_vocabulary(texts, max_vocabulary, min_count)
        if not vocabulary:
            texts = np.asarray(list(texts), dtype=object)
            raise ValueError(
                f"No token occurs at least {min_count} times in the {len(texts)} texts "
                "given, so there is no vocabulary to build."
            )
        return cls(vocabulary, **kwargs)

    @classmethod
    def from_token_counts(cls, counts, max_vocabulary: int = 20000, min_count: int = 2,
                          **kwargs) -> "TextEncoder":
        """The encoder of the vocabulary ranked from token counts (`rank_vocabulary`).

        `counts`: `{token: count}` or a `hgfn_keras.data.token_counts.TokenCounts`
        (e.g. of a streamed pass over TFRecord shards). From exact counts of the
        same texts it equals `from_texts(texts, ...)`.

        >>> TextEncoder.from_token_counts({"red": 2, "dress": 1}, min_count=1).vocabulary
        ['red', 'dress']
        """
        counts = getattr(counts, "counts", counts)
        vocabulary = rank_vocabulary(counts, max_vocabulary, min_count)
        if not vocabulary:
            raise ValueError(
                f"No token occurs at least {min_count} times in the training texts "
                f"({len(counts)} distinct tokens counted), so there is no vocabulary to build.")
        return cls(vocabulary, **kwargs)
