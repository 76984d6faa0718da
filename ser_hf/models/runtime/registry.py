"""The one list of ser-hf's model kinds: every baseline and self-supervised encoder family a recipe can name, with the
classes that make it up.

:data:`BASELINES` and :data:`ENCODER_FAMILIES` are read by :func:`register_auto_classes` (called by every loader, when
:mod:`ser_hf.models` is imported, and by ``import ser_hf`` once transformers' Auto classes are), by
:func:`~ser_hf.models.build_baseline` and :func:`~ser_hf.models.default_feature_extractor`, and by
:mod:`ser_hf.models.runtime.ssl`, whose :data:`~ser_hf.models.SSL_MODEL_TYPES` they give. A new model is one entry here
beside its ``configuration_*.py`` and ``modeling_*.py`` files.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Optional

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Data2VecAudioConfig,
    Data2VecAudioForSequenceClassification,
    HubertConfig,
    HubertForSequenceClassification,
    PreTrainedConfig,
    PreTrainedModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
    WavLMConfig,
    WavLMForSequenceClassification,
)
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..configuration_cnn1d import CNN1DConfig
from ..configuration_cnn2d import CNN2DConfig
from ..configuration_cnn_attention_lstm import CNNAttentionLSTMConfig
from ..configuration_crnn import CRNNConfig
from ..configuration_ensemble import EnsembleConfig
from ..configuration_mfcc import MFCCConfig
from ..configuration_opensmile import OpenSmileConfig
from ..configuration_parallel_cnn_transformer import ParallelCNNTransformerConfig
from ..configuration_ssl_pooling import SerData2VecAudioConfig, SerHubertConfig, SerWav2Vec2Config, SerWavLMConfig
from ..configuration_whisper import SerWhisperConfig
from ..feature_extraction_ensemble import EnsembleFeatureExtractor
from ..feature_extraction_log_mel import LogMelFeatureExtractor
from ..feature_extraction_mfcc import MFCCFeatureExtractor
from ..feature_extraction_opensmile import OpenSmileFeatureExtractor
from ..feature_extraction_whisper import SerWhisperFeatureExtractor
from ..modeling_cnn1d import CNN1DForAudioClassification
from ..modeling_cnn2d import CNN2DForAudioClassification
from ..modeling_cnn_attention_lstm import CNNAttentionLSTMForAudioClassification
from ..modeling_crnn import CRNNForAudioClassification
from ..modeling_ensemble import EnsembleForAudioClassification
from ..modeling_mfcc import MFCCForAudioClassification
from ..modeling_opensmile import OpenSmileForAudioClassification
from ..modeling_parallel_cnn_transformer import ParallelCNNTransformerForAudioClassification
from ..modeling_ssl_pooling import (
    SerData2VecAudioForSequenceClassification,
    SerHubertForSequenceClassification,
    SerWav2Vec2ForSequenceClassification,
    SerWavLMForSequenceClassification,
)
from ..modeling_whisper import SerWhisperForAudioClassification


class Baseline(NamedTuple):
    """A baseline model: its config, model and feature extractor classes, the config field that must equal the
    feature extractor's `feature_size` (features per frame), `None` for a model that reads the waveform, and how model
    cards name its architecture."""

    config_class: type[PreTrainedConfig]
    model_class: type[PreTrainedModel]
    feature_extractor_class: type[SequenceFeatureExtractor]
    input_size_field: Optional[str]
    description: str


class EncoderFamily(NamedTuple):
    """A pretrained speech encoder family: the config and classifier of mean pooling (transformers' own where they
    pool only the clip's frames), ser-hf's subclasses with a configurable pooling head, saved under their own
    `model_type`, how model cards name it, and the feature extractor class its models read audio through."""

    config_class: type[PreTrainedConfig]
    model_class: type[PreTrainedModel]
    pooling_config_class: type[PreTrainedConfig]
    pooling_model_class: type[PreTrainedModel]
    description: str
    feature_extractor_class: type[SequenceFeatureExtractor] = Wav2Vec2FeatureExtractor


#: Baseline name (the recipe's `model_type`) -> its classes.
BASELINES: dict[str, Baseline] = {
    "cnn2d": Baseline(
        CNN2DConfig, CNN2DForAudioClassification, LogMelFeatureExtractor, "num_mel_bins", "log-mel 2-D CNN"
    ),
    "crnn": Baseline(
        CRNNConfig, CRNNForAudioClassification, LogMelFeatureExtractor, "num_mel_bins", "log-mel CRNN (CNN + BiLSTM)"
    ),
    "cnn1d": Baseline(
        CNN1DConfig, CNN1DForAudioClassification, Wav2Vec2FeatureExtractor, None, "raw-waveform 1-D CNN"
    ),
    "mfcc": Baseline(
        MFCCConfig, MFCCForAudioClassification, MFCCFeatureExtractor, "num_features", "MFCC frame-feature"
    ),
    "parallel_cnn_transformer": Baseline(
        ParallelCNNTransformerConfig,
        ParallelCNNTransformerForAudioClassification,
        LogMelFeatureExtractor,
        "num_mel_bins",
        "log-mel parallel CNN + Transformer",
    ),
    "cnn_attention_lstm": Baseline(
        CNNAttentionLSTMConfig,
        CNNAttentionLSTMForAudioClassification,
        LogMelFeatureExtractor,
        "num_mel_bins",
        "log-mel CNN + attention LSTM",
    ),
    "opensmile": Baseline(
        OpenSmileConfig,
        OpenSmileForAudioClassification,
        OpenSmileFeatureExtractor,
        "num_features",
        "openSMILE functionals, linear or MLP",
    ),
}

#: Encoder family (transformers' `model_type` of its checkpoints) -> its classes.
ENCODER_FAMILIES: dict[str, EncoderFamily] = {
    "wav2vec2": EncoderFamily(
        Wav2Vec2Config,
        Wav2Vec2ForSequenceClassification,
        SerWav2Vec2Config,
        SerWav2Vec2ForSequenceClassification,
        "wav2vec 2.0",
    ),
    "hubert": EncoderFamily(
        HubertConfig, HubertForSequenceClassification, SerHubertConfig, SerHubertForSequenceClassification, "HuBERT"
    ),
    "wavlm": EncoderFamily(
        WavLMConfig, WavLMForSequenceClassification, SerWavLMConfig, SerWavLMForSequenceClassification, "WavLM"
    ),
    "data2vec-audio": EncoderFamily(
        Data2VecAudioConfig,
        Data2VecAudioForSequenceClassification,
        SerData2VecAudioConfig,
        SerData2VecAudioForSequenceClassification,
        "data2vec-audio",
    ),
    # transformers' WhisperForAudioClassification averages the whole 30-s window, padding included: ser-hf's class
    # serves mean pooling too. Checkpoints are `whisper` (any of OpenAI's, or an encoder-only folder).
    "whisper": EncoderFamily(
        SerWhisperConfig,
        SerWhisperForAudioClassification,
        SerWhisperConfig,
        SerWhisperForAudioClassification,
        "Whisper encoder",
        SerWhisperFeatureExtractor,
    ),
}


def ser_model_types() -> Iterator[
    tuple[type[PreTrainedConfig], type[PreTrainedModel], type[SequenceFeatureExtractor]]
]:
    """(config, model, feature extractor) classes of every model type ser-hf itself defines: the baselines, the
    pooling-head encoders and the ensemble of trained models."""
    for baseline in BASELINES.values():
        yield baseline.config_class, baseline.model_class, baseline.feature_extractor_class
    for family in ENCODER_FAMILIES.values():
        yield family.pooling_config_class, family.pooling_model_class, family.feature_extractor_class
    yield EnsembleConfig, EnsembleForAudioClassification, EnsembleFeatureExtractor


def register_auto_classes() -> None:
    """Register every ser-hf model type with `AutoConfig`, `AutoModelForAudioClassification` and
    `AutoFeatureExtractor`, and each ser-hf class for its auto class, so that `save_pretrained` copies its code and
    writes `auto_map` (transformers' own `Wav2Vec2FeatureExtractor` needs no code in the saved folder)."""
    for config_class, model_class, feature_extractor_class in ser_model_types():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModelForAudioClassification.register(config_class, model_class, exist_ok=True)
        AutoFeatureExtractor.register(config_class, feature_extractor_class, exist_ok=True)
        config_class.register_for_auto_class()
        model_class.register_for_auto_class("AutoModelForAudioClassification")
        if not feature_extractor_class.__module__.startswith("transformers."):
            feature_extractor_class.register_for_auto_class("AutoFeatureExtractor")


def architecture_name(model_type: str) -> str:
    """How model cards name a recipe's ``model_type`` (a baseline, an encoder family or ser-hf's pooling-head type of
    one); an unknown type as it is."""
    families = {**ENCODER_FAMILIES, **{f.pooling_config_class.model_type: f for f in ENCODER_FAMILIES.values()}}
    entry = BASELINES.get(model_type) or families.get(model_type)
    return entry.description if entry is not None else model_type


__all__ = [
    "BASELINES",
    "ENCODER_FAMILIES",
    "Baseline",
    "EncoderFamily",
    "architecture_name",
    "register_auto_classes",
    "ser_model_types",
]
