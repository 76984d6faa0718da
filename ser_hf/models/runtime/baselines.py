"""Builders for the baseline models: each a transformers model with the feature extractor that feeds it."""

from __future__ import annotations

import logging
from typing import Mapping, Optional

from transformers import PreTrainedModel, Wav2Vec2FeatureExtractor
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from .labels import Labels, label_maps
from .parameters import count_parameters
from .registry import BASELINES, Baseline

logger = logging.getLogger(__name__)


def default_feature_extractor(kind: str) -> SequenceFeatureExtractor:
    """The feature extractor a baseline uses unless told otherwise (16 kHz, 25 ms frames, 10 ms hop)."""
    feature_extractor_class = _baseline(kind).feature_extractor_class
    if feature_extractor_class is Wav2Vec2FeatureExtractor:
        # The raw-waveform CNN masks padded samples, so it needs the sample-level attention mask.
        return Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
        )
    return feature_extractor_class()


def build_baseline(
    kind: str,
    labels: Optional[Labels] = None,
    *,
    id2label: Optional[Mapping[int, str]] = None,
    label2id: Optional[Mapping[str, int]] = None,
    feature_extractor: Optional[SequenceFeatureExtractor] = None,
    **config_kwargs,
) -> tuple[PreTrainedModel, SequenceFeatureExtractor]:
    """Build a randomly initialised baseline and its feature extractor, agreeing on the input size.

    Args:
        kind (`str`): `"cnn2d"`, `"crnn"`, `"cnn1d"`, `"mfcc"`, `"parallel_cnn_transformer"`,
            `"cnn_attention_lstm"` or `"opensmile"` (see :data:`BASELINES`).
        labels (`datasets.ClassLabel` or `Sequence[str]`, *optional*):
            The task's labels, usually `dataset.features["label"]`; or pass `id2label` (and `label2id`).
        feature_extractor (`SequenceFeatureExtractor`, *optional*):
            The front end; defaults to :func:`default_feature_extractor`. The model's input size (`num_mel_bins`,
            `num_features`) is taken from it.
        **config_kwargs: Fields of the model's config (`conv_channels`, `pooling_mode`, `head_type`, ...).

    Example:

    ```python
    >>> from ser_hf.models import build_baseline
    >>> model, feature_extractor = build_baseline("crnn", ["neutral", "happy", "sad", "angry"], lstm_hidden_size=64)
    >>> model.config.model_type, feature_extractor.n_mels
    ('ser_crnn', 64)
    ```
    """
    baseline = _baseline(kind)
    if feature_extractor is None:
        feature_extractor = default_feature_extractor(kind)
    elif not isinstance(feature_extractor, baseline.feature_extractor_class):
        raise TypeError(
            f"{kind} needs a {baseline.feature_extractor_class.__name__}, got {type(feature_extractor).__name__}."
        )
    if kind == "cnn1d" and not feature_extractor.return_attention_mask:
        raise ValueError("The cnn1d baseline masks padded samples: its extractor needs return_attention_mask=True.")

    if baseline.input_size_field is not None:
        given = config_kwargs.setdefault(baseline.input_size_field, feature_extractor.feature_size)
        if given != feature_extractor.feature_size:
            raise ValueError(
                f"{baseline.input_size_field}={given} does not match the feature extractor's "
                f"{feature_extractor.feature_size} features per frame."
            )
    config_kwargs["id2label"], config_kwargs["label2id"] = label_maps(labels, id2label, label2id)
    model = baseline.model_class(baseline.config_class(**config_kwargs))
    logger.info("Built %s: %s", type(model).__name__, count_parameters(model))
    return model, feature_extractor


def _baseline(kind: str) -> Baseline:
    try:
        return BASELINES[kind]
    except KeyError:
        raise ValueError(f"Unknown baseline {kind!r}; expected one of {', '.join(BASELINES)}.") from None


__all__ = ["BASELINES", "build_baseline", "default_feature_extractor"]
