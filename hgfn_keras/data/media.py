"""Reading raw media for the encoders: images, WAV audio, and frames sampled from a video.

The image and audio readers are TensorFlow ops, so that `tf.data` runs them in parallel;
`sample_frames` is plain Python (a folder of frames, an animated GIF, or a video file
through OpenCV when it is installed).
"""

import os
import re

import numpy as np
import tensorflow as tf

from hgfn_keras.encoders.image_encoder import resize_and_center_crop

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
OPENCV_PACKAGE = "opencv-python-headless"


def read_image(path, image_size):
    """Reads one image file (JPEG, PNG, BMP, GIF's first frame) as `[height, width, 3]`.

    Args:
        path: a string (tensor) naming the file.
        image_size: an int or a `(height, width)` pair; the image is resized (shorter
            side) and centre-cropped to it.

    Returns:
        float32 `[height, width, 3]`, values 0..255.
    """
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return resize_and_center_crop(image, image_size)


def read_wav(path, sample_rate, num_samples):
    """Reads one WAV file as a mono waveform of `num_samples` samples at `sample_rate`.

    Channels are averaged; another sample rate is converted by linear interpolation; the
    clip is cut or zero-padded at the end to `num_samples`.

    Args:
        path: a string (tensor) naming a 16-bit PCM WAV file.
        sample_rate: the rate the encoder expects.
        num_samples: the fixed clip length (so that clips batch together).

    Returns:
        float32 `[num_samples]` in [-1, 1].
    """
    audio, rate = tf.audio.decode_wav(tf.io.read_file(path))
    wave = tf.reduce_mean(audio, axis=-1)
    length = tf.shape(wave)[0]
    target = tf.cast(
        tf.math.round(tf.cast(length, tf.float64) * sample_rate / tf.cast(rate, tf.float64)),
        tf.int32,
    )

    def resample():
        resized = tf.image.resize(wave[tf.newaxis, :, tf.newaxis, tf.newaxis],
                                  tf.stack([tf.maximum(target, 1), 1]))
        return tf.reshape(resized, [-1])

    wave = tf.cond(tf.equal(rate, sample_rate), lambda: wave, resample)
    wave = wave[:num_samples]
    wave = tf.pad(wave, [[0, num_samples - tf.shape(wave)[0]]])
    return tf.ensure_shape(wave, [num_samples])


def frame_indices(num_available, num_frames):
    """`num_frames` indices spread evenly over `num_available` frames (first and last kept).

    With fewer frames than asked for, some repeat.

    >>> frame_indices(10, 4).tolist()
    [0, 3, 6, 9]
    >>> frame_indices(2, 3).tolist()
    [0, 0, 1]
    """
    if num_available < 1:
        raise ValueError(f"There is no frame to sample. Received: num_available={num_available}")
    return np.floor(np.linspace(0, num_available - 1, num_frames) + 1e-9).astype(int)


def _natural_key(name):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _folder_frames(folder):
    names = sorted(
        (n for n in os.listdir(folder) if n.lower().endswith(FRAME_EXTENSIONS)), key=_natural_key
    )
    if not names:
        raise ValueError(
            f"The frame folder holds no image ({', '.join(FRAME_EXTENSIONS)}). "
            f"Received: source={folder!r}"
        )
    return [os.path.join(folder, n) for n in names]


def _decode_file(path):
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def _video_frames_opencv(path, num_frames):
    try:
        import cv2
    except ImportError:
        raise ImportError(
            f"Decoding the video file {path!r} needs OpenCV, which is not installed: "
            f"`pip install {OPENCV_PACKAGE}`. Or extract its frames into a folder (e.g. "
            "`ffmpeg -i clip.mp4 frames/%05d.jpg`) and give the folder instead."
        ) from None
    capture = cv2.VideoCapture(path)
    try:
        frames = []
        ok, frame = capture.read()
        while ok:
            frames.append(frame[..., ::-1])  # BGR -> RGB
            ok, frame = capture.read()
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"OpenCV read no frame from the video file. Received: source={path!r}")
    return [frames[i] for i in frame_indices(len(frames), num_frames)]


def sample_frames(source, num_frames=40, image_size=224):
    """Samples `num_frames` frames evenly from a video, resized and centre-cropped.

    The paper subsamples each clip to 40 frames of 224x224 pixels.

    Args:
        source: a folder of frame images (ordered by name, numbers compared as numbers:
            `frame_2.jpg` before `frame_10.jpg`), an animated GIF, or a video file (any
            format OpenCV reads; OpenCV, `pip install opencv-python-headless`, is needed
            for those and is not a dependency of this package).
        num_frames: frames to return; with fewer in the video, frames repeat.
        image_size: an int or a `(height, width)` pair.

    Returns:
        uint8 numpy array `[num_frames, height, width, 3]`.

    Raises:
        ValueError: if `source` does not exist or holds no frame, or `num_frames` < 1.
        ImportError: for a video file when OpenCV is not installed (says what to install).
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(
            f"`num_frames` must be a positive integer. Received: num_frames={num_frames!r}"
        )
    source = os.fspath(source)
    if os.path.isdir(source):
        paths = _folder_frames(source)
        frames = [_decode_file(paths[i]) for i in frame_indices(len(paths), num_frames)]
    elif os.path.isfile(source):
        if source.lower().endswith(".gif"):
            video = tf.io.decode_gif(tf.io.read_file(source))
            frames = tf.gather(video, frame_indices(int(video.shape[0]), num_frames))
        else:
            frames = _video_frames_opencv(source, num_frames)
    else:
        raise ValueError(
            f"The video source is neither a folder of frames nor a file. Received: source={source!r}"
        )
    frames = [resize_and_center_crop(frame, image_size) for frame in frames]
    return np.clip(np.round(np.stack([f.numpy() for f in frames])), 0, 255).astype(np.uint8)
