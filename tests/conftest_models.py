"""Shared builders for the model tests: tiny models of every kind, and real clips from the shipped RAVDESS sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
from datasets import ClassLabel
from transformers import Data2VecAudioConfig, HubertConfig, Wav2Vec2Config, WavLMConfig, WhisperConfig

from ser_hf.models import (
    LogMelFeatureExtractor,
    MFCCFeatureExtractor,
    build_baseline,
    build_ssl_classifier,
    build_ssl_feature_extractor,
)

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "ravdess_sample"
LABELS = ClassLabel(names=["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"])

# transformers' Wav2Vec2ModelTester geometry. Layer norm in the feature encoder (as in the large checkpoints and
# data2vec-audio) because the group-norm variant normalises over the padded time axis: no mask can make it exact.
_SSL_COMMON = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    conv_dim=(32, 32, 32),
    conv_stride=(4, 4, 4),
    conv_kernel=(8, 8, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    classifier_proj_size=8,
    layerdrop=0.0,
    mask_time_prob=0.0,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
)

SSL_FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
BASELINE_KINDS = ("cnn2d", "crnn", "cnn1d", "mfcc", "mfcc-cnn", "parallel_cnn_transformer", "cnn_attention_lstm")
SSL_KINDS = tuple(f"{family}-{pooling}" for family in SSL_FAMILIES for pooling in ("mean", "attentive_statistics"))
MODEL_KINDS = BASELINE_KINDS + SSL_KINDS


#: A tiny wav2vec2 geometry for recipes' model_config (lists, as YAML gives them), shared by the training tests.
TINY_SSL = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=[32, 32, 32],
    conv_stride=[4, 4, 4],
    conv_kernel=[8, 8, 8],
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    classifier_proj_size=8,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    layerdrop=0.0,
    mask_time_prob=0.0,
)


#: A tiny Whisper geometry for recipes' model_config: 16 mel bins, a 10-s window (recipes may shorten it).
TINY_WHISPER = dict(
    d_model=16,
    encoder_layers=2,
    encoder_attention_heads=2,
    encoder_ffn_dim=32,
    decoder_layers=1,
    decoder_attention_heads=2,
    decoder_ffn_dim=32,
    num_mel_bins=16,
    max_source_positions=500,
    classifier_proj_size=8,
    vocab_size=64,
)


def tiny_ssl_config(family: str, **overrides):
    """A tiny randomly initialised encoder config of `family`."""
    settings = {**_SSL_COMMON, **overrides}
    if family == "wav2vec2":
        return Wav2Vec2Config(feat_extract_norm="layer", **settings)
    if family == "hubert":
        return HubertConfig(feat_extract_norm="layer", **settings)
    if family == "wavlm":
        return WavLMConfig(feat_extract_norm="layer", num_buckets=8, max_bucket_distance=20, **settings)
    if family == "data2vec-audio":
        settings["num_conv_pos_embeddings"] = 2
        return Data2VecAudioConfig(conv_pos_kernel_size=5, **settings)
    raise ValueError(family)


_TINY_BASELINES = {
    "cnn2d": dict(conv_channels=(4, 8), attention_hidden_size=8),
    "cnn2d-flatten": dict(conv_channels=(4, 8), frequency_pooling="flatten", pooling_mode="mean_max"),
    "crnn": dict(conv_channels=(4, 8), lstm_hidden_size=8, lstm_num_layers=2, attention_hidden_size=8),
    "cnn1d": dict(conv_channels=(4, 8, 8), conv_kernel_sizes=(40, 3, 3), conv_strides=(4, 1, 1), pool_sizes=(4, 4, 4)),
    "mfcc": dict(hidden_sizes=(16,)),
    "mfcc-cnn": dict(head_type="cnn", conv_channels=(8, 8), hidden_sizes=(16,)),
    "parallel_cnn_transformer": dict(
        conv_channels=(4, 8),
        transformer_hidden_size=16,
        transformer_num_heads=2,
        transformer_intermediate_size=32,
        transformer_time_pool=3,
        pooling_mode="attentive_statistics",
        attention_hidden_size=8,
        transformer_dropout=0.0,
    ),
    "cnn_attention_lstm": dict(
        conv_channels=(8, 8), lstm_hidden_size=8, num_attention_heads=2, attention_dropout=0.0, attention_hidden_size=8
    ),
}


def build_tiny(kind: str, feature_extractor=None, **options):
    """A tiny model of `kind` (see `MODEL_KINDS`) and its feature extractor (a baseline's may be given), with the
    RAVDESS labels."""
    if kind in _TINY_BASELINES:
        baseline = kind.split("-")[0]
        feature_extractor = feature_extractor or {
            "cnn2d": LogMelFeatureExtractor(n_mels=32),
            "crnn": LogMelFeatureExtractor(n_mels=32),
            "parallel_cnn_transformer": LogMelFeatureExtractor(n_mels=32),
            "cnn_attention_lstm": LogMelFeatureExtractor(n_mels=32),
            "mfcc": MFCCFeatureExtractor(n_mfcc=20, n_mels=32),
        }.get(baseline)
        settings = {**_TINY_BASELINES[kind], **options}
        return build_baseline(baseline, LABELS, feature_extractor=feature_extractor, **settings)
    for pooling in ("mean", "attentive_statistics"):
        if kind.endswith(f"-{pooling}"):
            family = kind[: -len(pooling) - 1]
            break
    else:
        raise ValueError(f"Unknown model kind {kind!r}")
    config = tiny_ssl_config(family, **options.pop("config_overrides", {}))
    model = build_ssl_classifier(config, LABELS, pooling_mode=pooling, **options)
    return model, build_ssl_feature_extractor(config)


def tiny_whisper_fast(seed: int = 0):
    """A tiny frozen Whisper classifier pooling every layer's statistics, as FAST mode caches them (seeded: another
    `seed`, other weights), in eval mode, and its feature extractor."""
    import torch

    torch.manual_seed(seed)
    model = build_ssl_classifier(
        WhisperConfig(**TINY_WHISPER),
        LABELS,
        freeze_base_model=True,
        use_weighted_layer_sum=True,
        pooling_mode="layer_statistics",
    ).eval()
    return model, build_ssl_feature_extractor(model.config)


def load_clip(index: int = 0, seconds: float | None = None) -> np.ndarray:
    """The `index`-th shipped RAVDESS clip (16 kHz mono float32), optionally cut to its first `seconds`."""
    path = sorted(SAMPLE_DIR.glob("Actor_0*/*.flac"))[index]
    audio, sampling_rate = soundfile.read(path, dtype="float32")
    assert sampling_rate == 16000 and audio.ndim == 1, (path, sampling_rate, audio.shape)
    return audio if seconds is None else audio[: int(seconds * sampling_rate)]


def featurize(feature_extractor, clips):
    """A padded `pt` batch of `clips` as the model's feature extractor prepares it."""
    return feature_extractor(clips, sampling_rate=16000, padding=True, return_tensors="pt")
