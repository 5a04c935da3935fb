"""Encoders: hub modules (tiny SavedModels, `tests/hub_modules.py`), images, audio, the
temporal encoder, video frame sampling. Everything offline: no model or weights is downloaded."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from hgfn_keras import Modality, Task, build_model
from hgfn_keras import encoders as encoders_module
from hgfn_keras.data import load_dataset
from hgfn_keras.data.media import frame_indices, read_wav, sample_frames
from hgfn_keras.encoders import (
    AudioEncoder,
    HubEncoder,
    ImageEncoder,
    TemporalEncoder,
    TextEncoder,
    TfidfTextEncoder,
    load_hub_module,
    log_mel_spectrogram,
    tokenize,
)
from tests.layer_checks import run_encoder_layer_test

TEXTS = np.array(["flood in the city", "", "bridge damage", "rescue team"], dtype=object)


# ---------------------------------------------------------------------- HubEncoder


def test_hub_encoder_matches_the_saved_model(hub_handles):
    encoder = HubEncoder(hub_handles["text"])
    vectors = np.asarray(encoder(TEXTS))
    expected = tf.saved_model.load(hub_handles["text"])(tf.constant(TEXTS)).numpy()
    assert vectors.shape == (4, 4)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    np.testing.assert_array_equal(vectors[1], 0.0)  # an empty text
    assert encoder.trainable is False and encoder.trainable_weights == []


def test_hub_encoder_in_a_keras_model_saves_and_reloads(hub_handles, tmp_path):
    inputs = keras.Input(shape=(), dtype="string", name="text")
    encoder = HubEncoder(hub_handles["text"], name="hub_text")
    outputs = keras.layers.Dense(1)(encoder(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(TEXTS, np.ones((4, 1)), epochs=1, verbose=0)
    path = os.fspath(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0),
                               atol=1e-6)
    config = encoder.get_config()
    assert HubEncoder.from_config(config).get_config() == config


def test_hub_encoder_signature_with_dict_outputs(hub_handles):
    vectors = np.asarray(HubEncoder(hub_handles["elmo"])(np.array(["ab", "abcd"])))
    np.testing.assert_allclose(vectors, [[2, 4], [4, 8]])
    with pytest.raises(ValueError, match=r"no output 'nope'.*\['default', 'elmo'\]"):
        HubEncoder(hub_handles["elmo"], output_key="nope")(np.array(["a"]))
    with pytest.raises(ValueError, match="one vector per item.*shape=\\(1, 3, 2\\)"):
        HubEncoder(hub_handles["elmo"], output_key="elmo")(np.array(["a"]))
    with pytest.raises(ValueError, match="no signature 'serve'"):
        HubEncoder(hub_handles["elmo"], signature="serve")


def test_hub_encoder_bad_handles(hub_handles, tmp_path):
    missing = os.fspath(tmp_path / "no_such_model")
    with pytest.raises(ValueError, match="handle='.*no_such_model'"):
        HubEncoder(missing)
    with pytest.raises(ValueError, match="no `saved_model.pb`"):
        load_hub_module(os.fspath(tmp_path))
    with pytest.raises(ValueError, match="handle=42"):
        load_hub_module(42)
    with pytest.raises(ValueError, match="sequence'.*one vector per item.*shape=\\(2, 2, 3\\)"):
        HubEncoder(hub_handles["sequence"])(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="module_dtype="):
        HubEncoder(hub_handles["text"], module_dtype="no_such_dtype")


# ---------------------------------------------------------------------- ImageEncoder


def _tiny_backbone(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, strides=2, activation="relu")],
        name="tiny",
    )


IMAGES = np.random.default_rng(0).integers(0, 256, (3, 20, 24, 3)).astype("uint8")


def test_image_encoder_with_a_keras_backbone(tmp_path):
    encoder = ImageEncoder(_tiny_backbone(), image_size=16)
    vectors = np.asarray(encoder(IMAGES))
    assert vectors.shape == (3, 4)
    resized = tf.image.resize(tf.cast(IMAGES, tf.float32), (16, 16)) / 127.5 - 1.0
    expected = tf.reduce_mean(encoder.backbone(resized), axis=[1, 2]).numpy()
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)

    # Trains with the model, and survives a .keras round trip.
    inputs = keras.Input((20, 24, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(encoder(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    before = [w.copy() for w in encoder.get_weights()]
    model.fit(IMAGES, np.ones((3, 1)), epochs=1, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, encoder.get_weights()))
    path = os.fspath(tmp_path / "image.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(IMAGES, verbose=0),
                               model.predict(IMAGES, verbose=0), atol=1e-5)


def test_image_encoder_loads_weights_from_a_local_file(tmp_path):
    source = _tiny_backbone(seed=1)
    path = os.fspath(tmp_path / "tiny.weights.h5")
    source.save_weights(path)
    loaded = ImageEncoder(_tiny_backbone(seed=2), weights=path, image_size=16)
    np.testing.assert_allclose(np.asarray(loaded(IMAGES)),
                               np.asarray(ImageEncoder(source, image_size=16, weights=None)(IMAGES)),
                               rtol=1e-5)


def test_image_encoder_inception_v3_without_downloading():
    encoder = ImageEncoder("inception_v3", weights=None, image_size=75)
    assert tuple(encoder(IMAGES[:1]).shape) == (1, 2048)
    assert encoder.get_config()["weights"] is None


def test_image_encoder_with_a_hub_module(hub_handles):
    encoder = ImageEncoder(hub_handles["image"], image_size=(8, 8))
    assert encoder.get_config()["preprocessing"] == "auto"
    resized = tf.image.resize(tf.cast(IMAGES, tf.float32), (8, 8)) / 255.0
    expected = tf.saved_model.load(hub_handles["image"])(resized).numpy()
    np.testing.assert_allclose(np.asarray(encoder(IMAGES)), expected, rtol=1e-5)


def test_image_encoder_bad_arguments(hub_handles, tmp_path):
    with pytest.raises(ValueError, match="backbone=42"):
        ImageEncoder(42)
    with pytest.raises(ValueError, match="pooling='mean'"):
        ImageEncoder(_tiny_backbone(), pooling="mean")
    with pytest.raises(ValueError, match="weights='.*missing.h5'"):
        ImageEncoder(_tiny_backbone(), weights=os.fspath(tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match="not to a TF-Hub handle"):
        ImageEncoder(hub_handles["image"], weights="imagenet")
    with pytest.raises(ValueError, match="handle='.*nowhere'"):
        ImageEncoder(os.fspath(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="image_size=0"):
        ImageEncoder(_tiny_backbone(), image_size=0)
    with pytest.raises(ValueError, match="images \\[batch, H, W, 3\\]"):
        ImageEncoder(_tiny_backbone(), image_size=16)(np.zeros((2, 16, 16)))


# ---------------------------------------------------------------------- AudioEncoder


def _tone(frequency, seconds=0.5, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype("float32")


def test_audio_encoder_log_mel_statistics():
    encoder = AudioEncoder(num_mel_bins=16)
    waves = np.stack([_tone(300), _tone(3000), np.zeros(8000, "float32")])
    vectors = np.asarray(encoder(waves))
    assert vectors.shape == (3, 32) and np.all(np.isfinite(vectors))
    # The mean log-mel energy peaks in a higher band for the higher tone.
    low, high = np.argmax(vectors[0, :16]), np.argmax(vectors[1, :16])
    assert low < high
    # The mean part is the time average of log_mel_spectrogram.
    np.testing.assert_allclose(
        vectors[:, :16], log_mel_spectrogram(waves, num_mel_bins=16).numpy().mean(axis=1),
        rtol=1e-4, atol=1e-4)
    config = encoder.get_config()
    assert AudioEncoder.from_config(config).get_config() == config


def test_audio_encoder_with_a_hub_module(hub_handles):
    waves = np.stack([_tone(440), _tone(880)])
    vectors = np.asarray(AudioEncoder(hub_handles["audio"])(waves))
    np.testing.assert_allclose(vectors[:, 2], np.abs(waves).max(axis=1), rtol=1e-5)
    with pytest.raises(ValueError, match="sample_rate=0"):
        AudioEncoder(sample_rate=0)
    with pytest.raises(ValueError, match="waveforms \\[batch, samples\\]"):
        AudioEncoder()(np.zeros((2, 3, 4), "float32"))


def test_read_wav_resamples_and_fits_the_clip(tmp_path):
    path = os.fspath(tmp_path / "tone.wav")
    wave = _tone(100, seconds=0.25, rate=8000)  # 2000 samples at 8 kHz
    tf.io.write_file(path, tf.audio.encode_wav(wave[:, np.newaxis], 8000))
    longer = read_wav(path, 16000, 6000).numpy()
    assert longer.shape == (6000,)
    assert np.abs(longer[:4000]).max() > 0.4 and np.all(longer[4001:] == 0)  # padded
    assert read_wav(path, 8000, 1000).numpy().shape == (1000,)  # cut


# ---------------------------------------------------------------------- TemporalEncoder


def test_temporal_encoder_attention_and_mask():
    keras.utils.set_random_seed(0)
    frames = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    encoder = TemporalEncoder(units=3, attention_units=4)
    vector, weights = encoder(frames, return_attention=True)
    assert tuple(vector.shape) == (3, 6) and tuple(weights.shape) == (3, 5)
    np.testing.assert_allclose(np.sum(weights, axis=1), 1.0, rtol=1e-6)
    assert len(encoder.recurrent) == 2
    # Masked steps get no attention, and their values do not matter.
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    changed = frames.copy()
    changed[0, 3:] = 100.0
    a, wa = encoder(frames, mask=mask, return_attention=True)
    b = encoder(changed, mask=mask)
    np.testing.assert_allclose(np.asarray(a)[0], np.asarray(b)[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(wa)[0, 3:], 0.0)
    np.testing.assert_array_equal(np.asarray(a)[2], 0.0)  # no real step: a zero vector
    with pytest.raises(ValueError, match="units=0"):
        TemporalEncoder(units=0)
    with pytest.raises(ValueError, match="dropout=1"):
        TemporalEncoder(dropout=1)


def test_temporal_encoders_build_inside_keras_object_sharing_scope():
    """`load_model` builds layers inside Keras' `ObjectSharingScope`, whose maps key
    objects by id(): a Bi-GRU made after a freed one could be handed the freed one's
    shared copy and be refused ("... different `go_backwards` value"), at random.
    Forty encoders of two Bi-GRU layers each, built in one scope, all build, with a
    forward and a backward GRU each; nothing of theirs is left in the scope's maps."""
    from keras.src.backend.common import global_state
    from keras.src.saving.serialization_lib import ObjectSharingScope

    with ObjectSharingScope():
        for _ in range(40):
            encoder = TemporalEncoder(units=2)
            encoder.build((None, 3, 4))
            for layer in encoder.recurrent:
                assert not layer.forward_layer.go_backwards
                assert layer.backward_layer.go_backwards
        assert global_state.get_global_attribute("shared_objects/id_to_config_map") == {}


@pytest.mark.slow
def test_temporal_encoder_trains_inside_the_hgfn_model(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = {"video": rng.normal(size=(12, 4, 3)).astype("float32"),
         "text": rng.normal(size=(12, 5)).astype("float32"),
         "modality_mask": np.ones((12, 2), "float32")}
    y = {"damage": rng.integers(0, 2, 12)}
    encoder = TemporalEncoder(units=2, name="video_encoder")
    model = build_model([Modality("video", "sequence", width=3, steps=4),
                         Modality("text", width=5)], [Task("damage", 2)],
                        encoders={"video": encoder}, head_units=4, mtl="lsew")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [w.copy() for w in encoder.get_weights()]
    model.fit(x, y, epochs=1, batch_size=6, verbose=0)
    assert all(not np.allclose(a, b) for a, b in zip(before, encoder.get_weights()))
    path = os.fspath(tmp_path / "temporal.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0)["damage"],
                               model.predict(x, verbose=0)["damage"], atol=1e-5)
    config = encoder.get_config()
    assert TemporalEncoder.from_config(config).get_config() == config


def test_text_encoder_still_works():
    encoder = TextEncoder(["flood", "damage"], embedding_dim=3)
    assert tuple(encoder(TEXTS).shape) == (4, 3)


def test_tokenize_gives_the_tokens_of_tensorflow_texts_tokenizer():
    """`tokenize` runs the UnicodeScriptTokenizer's op without the byte offsets that
    `UnicodeScriptTokenizer.tokenize` computes and drops: the tokens must be the same, on
    edge cases and on every review and title of the embedded dataset's training split."""
    edge_cases = ["Great dress!", "", "   ", "\t\n", "累計7239人", "xy.,z de", "abαβ",
                  "ÉCOLE école Straße", "emoji 😀😀 ok", "a" * 300, b"\xff\xfe broken utf-8",
                  "zero\u200bwidth", "مرحبا بالعالم", "don't-stop 3.5/5"]
    x_train, _ = load_dataset("clothing", seed=0).splits["train"]
    tokenizer = tf_text.UnicodeScriptTokenizer()
    for texts in (edge_cases, x_train["review"], x_train["title"]):
        expected = tokenizer.tokenize(tf_text.case_fold_utf8(texts))
        tokens = tokenize(texts)
        assert tokens.to_list() == expected.to_list()
        np.testing.assert_array_equal(tokens.row_splits, expected.row_splits)


def test_tokenize_falls_back_to_the_public_tokenizer(monkeypatch):
    from hgfn_keras.encoders import text_encoder

    monkeypatch.setattr(text_encoder, "_SCRIPT_TOKENIZE_OP", None)  # a tensorflow-text without it
    assert tokenize(["Great dress!", "", "abαβ x"]).to_list() == [
        [b"great", b"dress", b"!"], [], [b"ab", "αβ".encode(), b"x"]]


# ---------------------------------------------------------------------- the standard checks

WAVES = np.stack([_tone(300, seconds=0.1), _tone(3000, seconds=0.1), _tone(440, seconds=0.1)])
FRAMES = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")

# name: (make(hub_handles, **layer_kwargs), inputs, output width, trainable weight count).
# Every backbone kind but a Keras application (InceptionV3 is too big to save here; its
# build is tested above).
ENCODER_CASES = {
    "hub": (lambda m, **kw: HubEncoder(m["text"], **kw), TEXTS, 4, 0),
    "image_keras_model": (lambda m, **kw: ImageEncoder(_tiny_backbone(), image_size=16, **kw),
                          IMAGES, 4, 2),
    "image_hub": (lambda m, **kw: ImageEncoder(m["image"], image_size=(8, 8), **kw),
                  IMAGES, 5, 0),
    "audio_log_mel": (lambda m, **kw: AudioEncoder(num_mel_bins=8, **kw), WAVES, 16, 0),
    "audio_hub": (lambda m, **kw: AudioEncoder(m["audio"], **kw), WAVES, 3, 0),
    # 2 Bi-GRU layers (2 x 2 x 3 weights), the attention's Dense (2) and score (1).
    "temporal": (lambda m, **kw: TemporalEncoder(units=3, attention_units=4, **kw),
                 FRAMES, 6, 15),
    "text": (lambda m, **kw: TextEncoder(["flood", "damage"], embedding_dim=3, **kw),
             TEXTS, 3, 1),
    "tfidf_text": (lambda m, **kw: TfidfTextEncoder.from_texts(TEXTS, units=4, max_tokens=50,
                                                               **kw), TEXTS, 4, 2),
}


@pytest.mark.parametrize("name", sorted(ENCODER_CASES))
@pytest.mark.slow
def test_every_encoder_passes_the_standard_checks(name, hub_handles, tmp_path):
    make, inputs, width, num_trainable = ENCODER_CASES[name]
    run_encoder_layer_test(lambda **kwargs: make(hub_handles, **kwargs), inputs, width, tmp_path,
                           expected_num_trainable_weights=num_trainable)


def test_every_encoder_is_tested(hub_handles):
    encoder_classes = {
        value for value in vars(encoders_module).values()
        if isinstance(value, type) and issubclass(value, keras.layers.Layer)
    }
    tested = {type(make(hub_handles)) for make, *_ in ENCODER_CASES.values()}
    assert tested == encoder_classes


# ---------------------------------------------------------------------- video frames


def _write_frames(folder, levels, size=(12, 16)):
    os.makedirs(folder, exist_ok=True)
    for i, level in enumerate(levels):
        image = tf.fill([*size, 3], tf.constant(level, tf.uint8))
        tf.io.write_file(os.path.join(folder, f"frame_{i + 1}.jpg"), tf.io.encode_jpeg(image))


def test_sample_frames_from_a_folder(tmp_path):
    levels = [0, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250]  # frame_10 after frame_9
    _write_frames(tmp_path / "clip", levels)
    frames = sample_frames(tmp_path / "clip", num_frames=3, image_size=8)
    assert frames.shape == (3, 8, 8, 3) and frames.dtype == np.uint8
    np.testing.assert_allclose(frames.reshape(3, -1).mean(axis=1), [0, 125, 250], atol=3)
    repeated = sample_frames(tmp_path / "clip", num_frames=20, image_size=8)
    assert repeated.shape == (20, 8, 8, 3)
    assert frame_indices(3, 5).tolist() == [0, 0, 1, 1, 2]


def test_sample_frames_from_a_gif(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    images = [image_module.new("RGB", (10, 6), (v, v, v)) for v in (0, 120, 240)]
    path = os.fspath(tmp_path / "clip.gif")
    images[0].save(path, save_all=True, append_images=images[1:])
    frames = sample_frames(path, num_frames=2, image_size=(6, 6))
    np.testing.assert_allclose(frames.reshape(2, -1).mean(axis=1), [0, 240], atol=4)


def test_sample_frames_bad_sources(tmp_path):
    with pytest.raises(ValueError, match="source='.*nowhere'"):
        sample_frames(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image"):
        sample_frames(tmp_path / "empty")
    with pytest.raises(ValueError, match="num_frames=0"):
        sample_frames(tmp_path / "empty", num_frames=0)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 64)
    try:
        import cv2  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install opencv-python-headless"):
            sample_frames(video)
