"""Models of ser-hf: self-supervised encoders and baselines, all genuine transformers models.

The modules here are the model definitions (``configuration_*``, ``modeling_*``, ``feature_extraction_*`` and the
helpers they import): the files a saved model carries, copied next to its weights. What builds, loads and runs them
(the registry of kinds, the builders, the loader, the ONNX runtime model) is :mod:`ser_hf.models.runtime`.

Importing this package registers every ser-hf model type (the one list is :mod:`ser_hf.models.runtime.registry`) with
`AutoConfig`, `AutoModelForAudioClassification` and `AutoFeatureExtractor`, by calling
:func:`~ser_hf.register_auto_classes` (idempotent), so saved models load through the Auto classes and
`pipeline("audio-classification")`; ser-hf's loaders call it themselves before they load a model, and ``import
ser_hf`` calls it once transformers' Auto classes are loaded. Registration needs the class objects (transformers' Auto
classes take the config and model classes themselves; their lazy mapping by module name is for transformers' own
models only), and a config class alone already costs the import of torch through transformers' `PreTrainedConfig`.
Each custom class is also registered for its auto class: `save_pretrained` copies its code and writes `auto_map`. So a
user who loads a saved model with transformers' Auto classes either imports `ser_hf` first, or passes
`trust_remote_code=True`, as where ser-hf is not installed: the saved folder carries the code.
"""

from .configuration_cnn1d import CNN1DConfig
from .configuration_cnn2d import CNN2DConfig
from .configuration_cnn_attention_lstm import CNNAttentionLSTMConfig
from .configuration_crnn import CRNNConfig
from .configuration_ensemble import EnsembleConfig
from .configuration_mfcc import MFCCConfig
from .configuration_opensmile import OpenSmileConfig
from .configuration_parallel_cnn_transformer import ParallelCNNTransformerConfig
from .configuration_ssl_pooling import SerData2VecAudioConfig, SerHubertConfig, SerWav2Vec2Config, SerWavLMConfig
from .configuration_whisper import SerWhisperConfig
from .feature_extraction_ensemble import EnsembleFeatureExtractor
from .feature_extraction_framed import FramedAudioFeatureExtractor
from .feature_extraction_log_mel import LogMelFeatureExtractor
from .feature_extraction_mfcc import FRAME_FEATURE_NAMES, MFCCFeatureExtractor
from .feature_extraction_opensmile import OpenSmileFeatureExtractor
from .feature_extraction_whisper import ClipLongerThanWindowError, SerWhisperFeatureExtractor
from .modeling_cnn1d import CNN1DForAudioClassification
from .modeling_cnn2d import CNN2DForAudioClassification
from .modeling_cnn_attention_lstm import CNNAttentionLSTMForAudioClassification
from .modeling_crnn import CRNNForAudioClassification
from .modeling_ensemble import EnsembleForAudioClassification
from .modeling_mfcc import MFCCForAudioClassification
from .modeling_opensmile import OpenSmileForAudioClassification
from .modeling_parallel_cnn_transformer import ParallelCNNTransformerForAudioClassification
from .modeling_ssl_pooling import (
    SerData2VecAudioForSequenceClassification,
    SerHubertForSequenceClassification,
    SerWav2Vec2ForSequenceClassification,
    SerWavLMForSequenceClassification,
)
from .modeling_whisper import SerWhisperForAudioClassification
from .pooling import POOLING_MODES, TemporalPooling
from .runtime.baselines import BASELINES, build_baseline, default_feature_extractor
from .runtime.ensemble import build_ensemble, ensemble_from_models
from .runtime.feature_extraction_auto import MissingFeatureExtractorError, load_feature_extractor
from .runtime.labels import label_maps
from .runtime.parameters import ParameterCount, count_parameters
from .runtime.registry import register_auto_classes
from .runtime.ssl import (
    DEFAULT_LORA_TARGET_MODULES,
    SSL_MODEL_TYPES,
    apply_lora,
    build_ssl_classifier,
    build_ssl_feature_extractor,
    check_feature_extractor,
    freeze_encoder_layers,
    merge_lora,
    set_encoder_window,
    ssl_lora_config,
)

register_auto_classes()  # the types this package defines, for whoever imports it

__all__ = [
    "BASELINES",
    "CNN1DConfig",
    "CNN1DForAudioClassification",
    "CNN2DConfig",
    "CNN2DForAudioClassification",
    "CNNAttentionLSTMConfig",
    "CNNAttentionLSTMForAudioClassification",
    "CRNNConfig",
    "CRNNForAudioClassification",
    "DEFAULT_LORA_TARGET_MODULES",
    "EnsembleConfig",
    "EnsembleFeatureExtractor",
    "EnsembleForAudioClassification",
    "FRAME_FEATURE_NAMES",
    "FramedAudioFeatureExtractor",
    "LogMelFeatureExtractor",
    "MFCCConfig",
    "MFCCFeatureExtractor",
    "MFCCForAudioClassification",
    "OpenSmileConfig",
    "OpenSmileFeatureExtractor",
    "OpenSmileForAudioClassification",
    "MissingFeatureExtractorError",
    "POOLING_MODES",
    "ParallelCNNTransformerConfig",
    "ParallelCNNTransformerForAudioClassification",
    "ParameterCount",
    "SSL_MODEL_TYPES",
    "SerData2VecAudioConfig",
    "SerData2VecAudioForSequenceClassification",
    "SerHubertConfig",
    "SerHubertForSequenceClassification",
    "SerWav2Vec2Config",
    "SerWav2Vec2ForSequenceClassification",
    "SerWavLMConfig",
    "SerWavLMForSequenceClassification",
    "SerWhisperConfig",
    "SerWhisperFeatureExtractor",
    "SerWhisperForAudioClassification",
    "ClipLongerThanWindowError",
    "TemporalPooling",
    "apply_lora",
    "build_baseline",
    "build_ensemble",
    "build_ssl_classifier",
    "build_ssl_feature_extractor",
    "check_feature_extractor",
    "count_parameters",
    "default_feature_extractor",
    "ensemble_from_models",
    "freeze_encoder_layers",
    "label_maps",
    "load_feature_extractor",
    "merge_lora",
    "set_encoder_window",
    "ssl_lora_config",
]
