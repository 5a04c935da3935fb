"""Waveforms to one vector each: a TF-Hub module, or log-mel statistics from `tf.signal`."""

import keras
import tensorflow as tf

from hgfn_keras.utils.arguments import positive_int
from hgfn_keras.encoders.hub_encoder import (
    HubEncoder,
    check_handle_trusted,
    check_vector_per_item,
)


def log_mel_spectrogram(waveforms, sample_rate: int = 16000, num_mel_bins: int = 64,
                        frame_length: int = 400, frame_step: int = 160, fft_length: int = 512,
                        lower_edge_hertz: float = 20.0,
                        upper_edge_hertz: "float | None" = None):
    """The log-mel spectrogram of waveforms, with `tf.signal`.

    Args:
        waveforms: float `[batch, samples]` in [-1, 1].
        sample_rate: samples per second.
        num_mel_bins: mel bands.
        frame_length, frame_step, fft_length: the STFT's window, hop and FFT size in
            samples (defaults: 25 ms windows every 10 ms at 16 kHz).
        lower_edge_hertz, upper_edge_hertz: the mel filter bank's range (upper: None =
            the Nyquist frequency).

    Returns:
        float32 `[batch, frames, num_mel_bins]`: log(mel power + 1e-6).

    >>> log_mel_spectrogram(tf.zeros([2, 16000])).shape
    TensorShape([2, 100, 64])
    """
    waveforms = tf.cast(waveforms, tf.float32)
    stft = tf.signal.stft(waveforms, frame_length, frame_step, fft_length, pad_end=True)
    power = tf.math.square(tf.abs(stft))
    matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins, fft_length // 2 + 1, sample_rate, lower_edge_hertz,
        upper_edge_hertz if upper_edge_hertz is not None else sample_rate / 2,
    )
    return tf.math.log(tf.tensordot(power, matrix, 1) + 1e-6)


@keras.saving.register_keras_serializable(package="hgfn_keras")
class AudioEncoder(keras.layers.Layer):
    """Waveforms in, one vector per clip out.

    With a `handle` (a TF-Hub URL or SavedModel folder such as a SoundNet-like
    encoder, the paper's choice), the module loaded by `hub.load` is fed float32
    waveforms `[batch, samples]` at `sample_rate` and must return `[batch, D]` (see
    `HubEncoder`). Without one, the front end is a log-mel spectrogram
    (`log_mel_spectrogram`, `tf.signal`) summarised by its mean and standard
    deviation over frames: `2 * num_mel_bins` values per clip, no weights. (The
    paper uses SoundNet; no SoundNet SavedModel ships with TensorFlow, so the
    log-mel statistics are the project's offline default.)

    Args:
        handle: a TF-Hub URL or SavedModel folder, or None for log-mel statistics.
        sample_rate: the waveforms' samples per second.
        num_mel_bins: mel bands of the log-mel front end.
        frame_length, frame_step, fft_length: its STFT settings in samples.
        output_key: for a hub module returning a dict, the output to take.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float waveforms `[batch, samples]` in [-1, 1].

    Returns:
        `[batch, D]` (log-mel: `D = 2 * num_mel_bins`).

    >>> AudioEncoder(num_mel_bins=8)(tf.zeros([3, 4000])).shape
    TensorShape([3, 16])
    """

    def __init__(self, handle: "str | None" = None, sample_rate: int = 16000,
                 num_mel_bins: int = 64, frame_length: int = 400, frame_step: int = 160,
                 fft_length: int = 512, output_key: "str | None" = None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        for arg, value in (("sample_rate", sample_rate), ("num_mel_bins", num_mel_bins),
                           ("frame_length", frame_length), ("frame_step", frame_step),
                           ("fft_length", fft_length)):
            positive_int(arg, value)
        sample_rate, num_mel_bins, frame_length, frame_step, fft_length = (
            int(sample_rate), int(num_mel_bins), int(frame_length), int(frame_step),
            int(fft_length))
        if fft_length < frame_length:
            raise ValueError(
                f"`fft_length` must be >= `frame_length`. Received: fft_length={fft_length}, "
                f"frame_length={frame_length}"
            )
        self.handle = handle
        self.sample_rate = sample_rate
        self.num_mel_bins = num_mel_bins
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.fft_length = fft_length
        self.output_key = output_key
        self.hub = None
        if handle is not None:
            self.hub = HubEncoder(handle, module_dtype="float32", output_key=output_key,
                                  name="hub", dtype=self.dtype_policy)

    def build(self, input_shape):
        if self.hub is not None:
            self.hub.build(input_shape)

    def call(self, inputs):
        waveforms = tf.cast(tf.convert_to_tensor(inputs), tf.float32)
        if waveforms.shape.rank != 2:
            raise ValueError(
                f"`AudioEncoder` takes waveforms [batch, samples]. Received: shape={waveforms.shape}"
            )
        if self.hub is not None:
            return self.hub(waveforms)
        log_mel = log_mel_spectrogram(waveforms, self.sample_rate, self.num_mel_bins,
                                      self.frame_length, self.frame_step, self.fft_length)
        mean, variance = tf.nn.moments(log_mel, axes=[1])
        features = tf.concat([mean, tf.sqrt(variance + 1e-12)], axis=-1)
        return check_vector_per_item(features, "The log-mel front end")

    def compute_output_shape(self, input_shape):
        if self.hub is None:
            return (input_shape[0], 2 * self.num_mel_bins)
        # The module's width is known only by tracing it.
        return self.hub.compute_output_spec(keras.KerasTensor(input_shape)).shape

    @classmethod
    def from_config(cls, config):
        check_handle_trusted(config.get("handle"), cls.__name__)  # before any fetch
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "sample_rate": self.sample_rate,
                "num_mel_bins": self.num_mel_bins,
                "frame_length": self.frame_length,
                "frame_step": self.frame_step,
                "fft_length": self.fft_length,
                "output_key": self.output_key,
            }
        )
        return config
