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


def test_whisper_extractors_always_return_the_mask_so_raw_audio_runs_are_batched(caplog):
    """OpenAI's preprocessor_config.json says return_attention_mask: false (kept: it is part of the FAST cache's key);
    ser-hf's extractor returns the mask all the same, so training on raw audio (LoRA) evaluates in batches rather than
    one clip at a time."""
    import logging
    from types import SimpleNamespace

    from ser_hf.inputs.raw_audio import RawAudioMode

    extractor = build_ssl_feature_extractor(str(ENCODER), encoder_window_seconds=10)
    assert "attention_mask" in extractor([load_clip(0, 1.0)], sampling_rate=16000)
    mode = RawAudioMode(SimpleNamespace(is_baseline=False, model_type="whisper"), None, None, None)
    arguments = SimpleNamespace(per_device_eval_batch_size=8)
    with caplog.at_level(logging.INFO):
        assert mode.fold_training_args(arguments, extractor, None) is arguments
    assert "one clip per batch" not in caplog.text


def test_building_on_an_encoder_prints_no_load_report_and_logs_the_new_head_at_debug(caplog, capfd):
    import logging

    with caplog.at_level(logging.DEBUG, logger="ser_hf.models.runtime.ssl"):
        build_ssl_classifier(str(ENCODER), LABELS, freeze_base_model=True, pooling_mode="mean")
    assert "LOAD REPORT" not in capfd.readouterr().err
    (record,) = [r for r in caplog.records if "a new head" in r.getMessage()]
    assert record.levelno == logging.DEBUG and "classifier.weight" in record.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
