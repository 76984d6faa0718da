"""The keys of the encoder caches: what cached encoder states depend on (the clips, the config fields the encoder
reads, its weights, the feature extractor's encoding settings, the cached depth and the storage precision), hashed
into the name of the Arrow file :func:`~ser_hf.inputs.encoder_states.encode_dataset` writes, and into the key of the
encoder alone that each file's clip index is filed under. The feature-encoder cache keys its files the same way
(:func:`model_state_key`)."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedModel
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..models.configuration_whisper import LAYER_STATISTICS

#: Bump when what is cached changes, so cache files written by older code are not reused.
ENCODER_CACHE_VERSION = 1
#: The column of each clip's input to the first fine-tuned encoder layer (`encode_dataset`'s `lower_layer`).
LOWER_STATES_COLUMN = "lower_states"

# Fields of the feature extractor that only standardise the cached states: the key leaves them out, so the global and
# speaker-normalised recipes of one encoder share its states, and the statistics fitted later do not change the key.
_NORMALIZATION_KEYS = ("normalization", "feature_mean", "feature_std", "setup_shifts", "speaker_statistics_check")
# The config fields the cache key reads are an allow-list: those the encoder family's transformers config declares (the
# encoder's geometry, window and masking), less the fields of its classification head, plus ser-hf's own fields that
# change what the encoder computes. Every other field (labels, the head's pooling, dropout and projection, the fitted
# `calibration_temperature`, and any field added later) belongs to the head or the calibration, so it can never
# invalidate a cache nor fail a split's check of its encoder.
_TRANSFORMERS_HEAD_CONFIG_KEYS = ("classifier_proj_size", "use_weighted_layer_sum", "use_cache")
#: ser-hf's own config fields that change the encoder's states (Whisper's window trimming).
SER_HF_ENCODING_CONFIG_KEYS = ("trim_window",)


def pools_layer_statistics(model: Any) -> bool:
    """Whether `model` pools every layer's mean and deviation (``layer_statistics``): what it caches depends on it."""
    return bool(getattr(model.config, "pools_layer_statistics", False))


def encoder_cache_key(
    model: PreTrainedModel,
    feature_extractor: SequenceFeatureExtractor,
    dataset: Dataset,
    precision: str = "float32",
    lower_layer: Optional[int] = None,
) -> str:
    """A hash of what cached encoder states depend on: the clips (the dataset's fingerprint), the config fields the
    encoder reads (:func:`encoding_config_keys`: never the head's nor the calibration's), the encoder's weights, the
    feature extractor's encoding settings, whether every layer is kept (`use_weighted_layer_sum`), the cached depth
    and the storage precision."""
    parts = (
        ENCODER_CACHE_VERSION,
        dataset._fingerprint,
        *_encoder_key_parts(model, feature_extractor, precision, lower_layer),
    )
    return model_state_key(parts, model.base_model.state_dict())


def encoder_key(
    model: PreTrainedModel,
    feature_extractor: SequenceFeatureExtractor,
    precision: str = "float32",
    lower_layer: Optional[int] = None,
) -> str:
    """:func:`encoder_cache_key` without the clips: the key of the encoder alone, which the index of each cache file
    is filed under (:mod:`~ser_hf.data.clip_index`)."""
    parts = (ENCODER_CACHE_VERSION, "encoder", *_encoder_key_parts(model, feature_extractor, precision, lower_layer))
    return model_state_key(parts, model.base_model.state_dict())


def _encoder_key_parts(
    model: PreTrainedModel, feature_extractor: SequenceFeatureExtractor, precision: str, lower_layer: Optional[int]
) -> tuple:
    keyed = encoding_config_keys(type(model.config))
    config = {key: value for key, value in model.config.to_dict().items() if key in keyed}
    extractor = feature_extractor.to_dict()
    for key in _NORMALIZATION_KEYS:
        extractor.pop(key, None)
    # Untrimmed clips keep the keys their caches had before trimming was an option.
    # So do clips as recorded (no `dereverberation`): the key changes only where the extractor dereverberates; and
    # WPE's default filter (no `dereverberation_taps`) keeps the key it had before the length was an option.
    for key in ("trim_silence_db", "dereverberation", "dereverberation_taps"):
        if extractor.get(key) is None:
            extractor.pop(key, None)
    # Added to the extractor once a checkpoint has saved it with its class registered: says nothing of the encoding.
    extractor.pop("auto_map", None)
    parts = (
        json.dumps(config, sort_keys=True, default=str),
        # As `to_json_string` wrote it while the extractors had no normalisation fields: the keys of existing caches.
        json.dumps(extractor, indent=2, sort_keys=True, default=np.ndarray.tolist) + "\n",
        bool(model.config.use_weighted_layer_sum),
    )
    # float32 caches keep the key they had before the precision was an option; float16 ones hash its name.
    if precision != "float32":
        parts += (precision,)
    # The pooling is a head field, but what is cached depends on it: mean caches keep the key they had.
    if pools_layer_statistics(model):
        parts += (LAYER_STATISTICS,)
    if lower_layer is not None:
        parts += (f"{LOWER_STATES_COLUMN}:{lower_layer}",)
    return parts


@functools.lru_cache(maxsize=None)
def encoding_config_keys(config_class: type) -> frozenset[str]:
    """The fields of `config_class` that the encoder's outputs depend on: those its transformers ancestor (e.g.
    `WhisperConfig` for ser-hf's `SerWhisperConfig`) declares beyond `PreTrainedConfig`'s own, less the
    classification head's, plus :data:`SER_HF_ENCODING_CONFIG_KEYS`."""
    from transformers import PreTrainedConfig

    family_config = next(
        (cls for cls in config_class.__mro__ if cls.__module__.startswith("transformers.models.")), config_class
    )
    declared = set(family_config().to_dict()) - set(PreTrainedConfig().to_dict())
    return frozenset((declared - set(_TRANSFORMERS_HEAD_CONFIG_KEYS)) | set(SER_HF_ENCODING_CONFIG_KEYS))


def model_state_key(parts: Sequence[Any], state_dict: Mapping[str, torch.Tensor]) -> str:
    """A hash of `parts` (by their `str`) and of every tensor of `state_dict` (name, dtype, shape and bytes): the key
    of a cache of what a module computes from a dataset."""
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(str(part).encode())
        hasher.update(b"\0")
    for name, tensor in state_dict.items():
        hasher.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        # Raw bytes through a uint8 view: works for every dtype (bfloat16 has no numpy counterpart).
        hasher.update(tensor.detach().reshape(-1).contiguous().view(torch.uint8).cpu().numpy().tobytes())
    return hasher.hexdigest()


__all__ = [
    "ENCODER_CACHE_VERSION",
    "LOWER_STATES_COLUMN",
    "SER_HF_ENCODING_CONFIG_KEYS",
    "encoder_cache_key",
    "encoder_key",
    "encoding_config_keys",
    "model_state_key",
    "pools_layer_statistics",
]
