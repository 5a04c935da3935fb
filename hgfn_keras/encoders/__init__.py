"""Encoders: raw inputs to one vector per modality."""

from hgfn_keras.encoders.text_encoder import TextEncoder, build_vocabulary, tokenize
