"""The pretrained encoder the repository embeds (pretrained/whisper-tiny.en-encoder): whole, and real weights that
turn into a classifier, on every clone (no Hub, no ../shared)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ser_hf.models import SerWhisperForAudioClassification, build_ssl_classifier, build_ssl_feature_extractor
from tests.conftest import REPO
from tests.conftest_models import LABELS, load_clip

ENCODER = REPO / "pretrained" / "whisper-tiny.en-encoder"


def test_the_embedded_encoder_is_whole_and_licensed():
    for line in (ENCODER / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((ENCODER / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (ENCODER / "LICENSE").read_text()
    assert "Where it comes from" in (ENCODER / "README.md").read_text()


def test_the_embedded_encoder_loads_every_weight_and_trimmed_clips_match_the_window():
    model = build_ssl_classifier(
        str(ENCODER),
        LABELS,
        freeze_base_model=True,
        use_weighted_layer_sum=True,
        pooling_mode="layer_statistics",
        encoder_window_seconds=10,
    )
    assert isinstance(model, SerWhisperForAudioClassification) and model.config.num_hidden_layers == 4
    feature_extractor = build_ssl_feature_extractor(str(ENCODER), encoder_window_seconds=10)
    clip = load_clip(0, 2.0)
    inputs = feature_extractor([clip], sampling_rate=16000, return_tensors="pt")
    windowed = model.pooled_encoder_states(inputs["input_features"], inputs["attention_mask"])
    model.config.trim_window = True
    trimmed = model.pooled_encoder_states(inputs["input_features"], inputs["attention_mask"])
    # Real weights: the input embeddings are the same frames, the layers' states close to the windowed ones.
    torch.testing.assert_close(trimmed[:, 0], windowed[:, 0], atol=1e-4, rtol=1e-4)
    cosine = torch.nn.functional.cosine_similarity(trimmed[:, 1:].flatten(1), windowed[:, 1:].flatten(1))
    assert float(cosine) > 0.9 and np.isfinite(trimmed.numpy()).all()
