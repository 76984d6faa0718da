"""``ser-hf predict`` says when the recordings it classifies sit far from a globally standardised model's training
statistics (issue 40, item 5), from the states the model computes anyway."""

from __future__ import annotations

import logging

import numpy as np
import torch
from transformers import WhisperConfig

from ser_hf.cli import main as cli_main
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
from tests.conftest import RAVDESS_LABELS, RAVDESS_SAMPLE
from tests.conftest_models import TINY_WHISPER


def _model_folder(tmp_path, offset: float):
    torch.manual_seed(0)
    config = WhisperConfig(**{**TINY_WHISPER, "max_source_positions": 300})
    model = build_ssl_classifier(config, RAVDESS_LABELS, use_weighted_layer_sum=True, pooling_mode="layer_statistics")
    extractor = build_ssl_feature_extractor(model.config, normalization="global")
    width = (config.encoder_layers + 1) * 2 * config.d_model
    clips = [
        extractor(np.zeros(16000, np.float32), sampling_rate=16000, return_tensors="pt", return_state_statistics=False)
    ]
    with torch.no_grad():
        pooled = model.pooled_encoder_states(clips[0]["input_features"], clips[0]["attention_mask"]).flatten(1)
    extractor.set_global_statistics(pooled.numpy()[0] + offset, np.ones(width, np.float32))
    extractor.setup_shifts = {"corpora": {"ravdess": 0.1}, "speakers_median": 0.2, "speakers_max": 0.3}
    folder = tmp_path / f"model{offset}"
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


def test_predict_warns_when_the_recordings_sit_far_from_the_training_statistics(tmp_path, caplog):
    far = _model_folder(tmp_path, offset=5.0)
    folder = RAVDESS_SAMPLE / "Actor_08"
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert cli_main(["predict", str(far), str(folder), "--output", str(tmp_path / "far.csv")]) == 0
    assert "These recordings sit far from the model's training statistics" in caplog.text
    assert "against 0.30 for the farthest training speaker (training corpora: ravdess 0.10)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ser_hf"):  # a few clips: too few to judge a set-up by
        clips = sorted(folder.glob("*.flac"))[:3]
        assert cli_main(["predict", str(far), *map(str, clips), "--output", str(tmp_path / "few.csv")]) == 0
    assert "sit far" not in caplog.text
