"""Encoders: raw inputs to one vector per modality.

- `TextEncoder`: a trainable bag of embeddings over tensorflow-text tokens (inside the model).
- `TfidfTextEncoder`: TF-IDF word n-grams (`TextVectorization`) and a Dense (inside the model).
- `HubEncoder`: a frozen TF-Hub handle or SavedModel folder (`hub.load`), e.g. ELMo.
- `ImageEncoder`: a Keras backbone (InceptionV3 by default) or a hub module, for images.
- `AudioEncoder`: a hub module, or log-mel statistics computed with `tf.signal`.
- `TemporalEncoder`: 2 Bi-GRU layers + attention pooling over per-frame vectors.
"""

from hgfn_keras.encoders.audio_encoder import AudioEncoder, log_mel_spectrogram
from hgfn_keras.encoders.hub_encoder import HubEncoder, load_hub_module, trust_handles
from hgfn_keras.encoders.image_encoder import (
    ImageEncoder,
    application_names,
    resize_and_center_crop,
)
from hgfn_keras.encoders.temporal_encoder import TemporalEncoder
from hgfn_keras.encoders.tfidf_text_encoder import TfidfTextEncoder
from hgfn_keras.encoders.text_encoder import TextEncoder, build_vocabulary, tokenize
