"""Tiny TF-Hub-style SavedModels, written by the tests and loaded as hub handles.

Each is saved by `tf.saved_model.save` and read back by `hub.load`, the code path of a
real TF-Hub handle (a handle is downloaded to a SavedModel folder and loaded the same way).
`conftest.hub_handles` writes them once per session."""

import os

import numpy as np
import tensorflow as tf


class TextModule(tf.Module):
    """Strings -> the mean of hashed-token embeddings [batch, 4] (0 for an empty text)."""

    def __init__(self):
        super().__init__()
        self.table = tf.Variable(np.random.default_rng(0).normal(size=(32, 4)), dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        ids = tf.strings.to_hash_bucket_fast(tf.strings.split(texts), 32)
        total = tf.reduce_sum(tf.gather(self.table, ids), axis=1)
        count = tf.cast(tf.maximum(ids.row_lengths(), 1), tf.float32)[:, tf.newaxis]
        return total / count


class ElmoLikeModule(tf.Module):
    """A TF1-hub-style module: not callable, a 'default' signature returning a dict."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed(self, strings):
        length = tf.cast(tf.strings.length(strings), tf.float32)[:, tf.newaxis]
        words = tf.tile(length[:, tf.newaxis, :], [1, 3, 2])
        return {"default": tf.concat([length, 2 * length], axis=1), "elmo": words}


class ImageModule(tf.Module):
    """Images [batch, H, W, 3] in [0, 1] -> [batch, 5]."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.random.default_rng(1).normal(size=(3, 5)), dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def __call__(self, images):
        return tf.reduce_mean(images, axis=[1, 2]) @ self.w


class AudioModule(tf.Module):
    """Waveforms [batch, samples] -> mean, std, max |x| [batch, 3]."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def __call__(self, waves):
        mean, variance = tf.nn.moments(waves, axes=[1])
        return tf.stack([mean, tf.sqrt(variance), tf.reduce_max(tf.abs(waves), 1)], axis=1)


class SequenceModule(tf.Module):
    """Returns [batch, 2, 3]: not one vector per item."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        return tf.zeros([tf.shape(texts)[0], 2, 3])


def save_hub_modules(base):
    """Saves the five modules under `base`; returns `{name: handle}` for "text", "image",
    "audio", "elmo" (a TF1-hub-style 'default' signature) and "sequence" (not one vector
    per item)."""
    handles = {name: os.fspath(base / name) for name in ("text", "image", "audio", "elmo",
                                                         "sequence")}
    tf.saved_model.save(TextModule(), handles["text"])
    tf.saved_model.save(ImageModule(), handles["image"])
    tf.saved_model.save(AudioModule(), handles["audio"])
    elmo = ElmoLikeModule()
    tf.saved_model.save(elmo, handles["elmo"], signatures={"default": elmo.embed})
    tf.saved_model.save(SequenceModule(), handles["sequence"])
    return handles
