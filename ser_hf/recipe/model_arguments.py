"""The model section of a recipe (:class:`ModelArguments`): which model to train and how much of it, with the checks
that stop a recipe whose model settings cannot work before any data is loaded.

A recipe is a flat YAML file whose keys are the fields of the recipe dataclasses (this one, :mod:`.data_arguments`,
:mod:`.augmentation_arguments`, :mod:`.training_arguments`; alignment-handbook style); :mod:`ser_hf.recipe.parser`
fills them from the file and the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from huggingface_hub.dataclasses import type_validator

from ..errors import RecipeError, unknown_key_message
from ..models import BASELINES, SSL_MODEL_TYPES
from ..models.configuration_whisper import LAYER_STATISTICS
from ..models.pooling import POOLING_MODES
from ..models.runtime.baselines import default_feature_extractor
from ..models.runtime.model_settings import (
    check_config_values,
    check_model_settings,
    config_field_types,
    model_config_class,
)
from .fields import AT_LEAST_ONE, NumberRule
from .value_forms import as_list, as_mapping, type_name
from .values import check_numbers

MODEL_TYPES = tuple(BASELINES) + tuple(t for t in SSL_MODEL_TYPES if not t.startswith("ser_"))
#: The pooling modes a pretrained encoder's head takes (``pooling_mode``).
PRETRAINED_POOLING_MODES = (*POOLING_MODES, LAYER_STATISTICS)


@dataclass
class ModelArguments:
    """Which model to train and how much of it."""

    model_type: str = field(
        default="wav2vec2",
        metadata={
            "help": f"Model kind: a baseline ({', '.join(BASELINES)}) or a self-supervised encoder "
            f"({', '.join(t for t in MODEL_TYPES if t not in BASELINES)})."
        },
    )
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={
            "help": "Checkpoint of the encoder (Hub id or folder, e.g. facebook/wav2vec2-base). Without one an "
            "SSL encoder is built from `model_config` with random weights (for tests and smoke runs)."
        },
    )
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of the checkpoint."})
    reinitialize_head: bool = field(
        default=False,
        metadata={
            "help": "Train a new classification head on a checkpoint fine-tuned for other labels (without it, "
            "such a checkpoint is refused, naming both label sets)."
        },
    )
    match_head_labels: bool = field(
        default=False,
        metadata={
            "help": "Start from a fine-tuned emotion classifier (a trained ser-hf model) whose labels differ from "
            "the task's: keep its head's rows of the labels both have, start a new row for each task label it "
            "lacks, and drop its rows of labels the task does not hold, so the model chooses among the task's "
            "labels only (what ser-hf adapt does). Without it such a checkpoint is refused (or, with "
            "reinitialize_head, gets a whole new head)."
        },
    )
    allow_pickled_weights: bool = field(
        default=False,
        metadata={
            "help": "Load a checkpoint that has only pickled weights (pytorch_model.bin). Off by default: "
            "ser-hf loads safetensors only, since unpickling can run code."
        },
    )
    model_config: Optional[dict | str] = field(
        default=None,
        metadata={
            "help": "Config fields: a baseline's config (conv_channels, lstm_hidden_size, ...), or overrides of "
            "the encoder's config (layerdrop, hidden_dropout, ...); a whole tiny config without a "
            "checkpoint."
        },
    )
    feature_extractor_config: Optional[dict | str] = field(
        default=None,
        metadata={
            "help": "Fields of a baseline's feature extractor (n_mels, n_mfcc, hop_length, ...); for Whisper, "
            "`normalization` (none, global, speaker, corpus or utterance) of the frozen encoder's states (FAST "
            "mode), `trim_silence_db` (each clip's leading and trailing silence trimmed, e.g. 30), `dereverberation` "
            "(wpe: each clip's room reverberation taken out before the encoder, in training and inference; "
            "`dereverberation_taps`: its prediction filter's length in 8-ms frames, 10 by default) and, "
            "with speaker "
            "normalization, `speaker_statistics_check` (fall back to the statistics of all the clips classified "
            "together where the model's predictions say the speakers are heard in few emotions)."
        },
    )
    encoder_window_seconds: Optional[int] = field(
        default=None,
        metadata={
            "help": "Whisper only: the encoder's window in whole seconds (the checkpoint's 30 by default); a "
            "shorter one keeps the first positional embeddings and costs far less per clip. Saved with the "
            "model; longer clips are classified in windows by ser-hf predict, never cut."
        },
    )
    pooling_mode: Optional[str] = field(
        default=None,
        metadata={
            "help": "SSL head pooling: mean, max, mean_max, statistics, attention or attentive_statistics; "
            "for Whisper also layer_statistics (each layer's mean and standard deviation, concatenated)."
        },
    )
    use_weighted_layer_sum: bool = field(
        default=False, metadata={"help": "Classify a learned weighted sum of all encoder layers (SUPERB)."}
    )
    freeze_feature_encoder: bool = field(
        default=True, metadata={"help": "Freeze the convolutional feature encoder of an SSL model."}
    )
    num_frozen_layers: int = field(
        default=0, metadata={"help": "Freeze the lowest N transformer layers (and everything below them)."}
    )
    freeze_base_model: bool = field(default=False, metadata={"help": "Freeze the whole encoder: train the head only."})
    cache_encoder_outputs: bool = field(
        default=False,
        metadata={
            "help": "FAST mode (needs freeze_base_model and mean pooling): encode every clip once, cache the "
            "pooled layer outputs as a dataset column and train the head on them. The saved model is "
            "still the full classifier that runs on audio."
        },
    )
    finetune_top_layers: int = field(
        default=0,
        metadata={
            "help": "Whisper on CPU: fine-tune the encoder's top N layers (and its final layer norm) with the head, "
            "on the lower layers' outputs cached once (N may be every layer: the cache then holds the input "
            "embeddings; with cache_encoder_outputs, freeze_base_model, "
            "layer_statistics pooling of every layer and model_config.trim_window: true; global or no statistics). "
            "With use_lora, LoRA adapters on those layers train instead of their weights."
        },
    )
    cache_feature_encoder: Optional[bool] = field(
        default=None,
        metadata={
            "help": "Run an SSL model's frozen convolutional feature encoder once per clip and train on its "
            "cached outputs instead of recomputing them every step. Unset (auto): when training on CPU, "
            "whenever that is exact (the feature encoder is frozen and the training clips are neither "
            "augmented nor cropped: none longer than max_duration_seconds); on a GPU it is recomputed, "
            "where the encoder may cost less than reading its cache (not measured yet: docs/results/LOG.md). "
            "true demands it on any device (the run stops naming what prevents it), false recomputes it."
        },
    )
    use_lora: bool = field(
        default=False,
        metadata={
            "help": "Train LoRA adapters (peft) on the frozen encoder; with finetune_top_layers, on the top layers "
            "only (their attention and feed-forward projections), on the lower layers' cached outputs."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank.", "range": AT_LEAST_ONE})
    lora_alpha: int = field(
        default=16,
        metadata={
            "help": "LoRA scaling numerator (update scaled by alpha / r).",
            "range": NumberRule("positive", greater_than=0),
        },
    )
    lora_dropout: float = field(
        default=0.05,
        metadata={
            "help": "Dropout on the LoRA adapters' input.",
            "range": NumberRule("in [0, 1)", at_least=0, below=1),
        },
    )
    lora_target_modules: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Modules that get adapters; defaults to the attention projections (with finetune_top_layers, "
            "also the feed-forward ones: fc1, fc2)."
        },
    )

    def __post_init__(self):
        check_numbers(self)
        self.model_config = as_mapping(self.model_config, "model_config") or {}
        self.feature_extractor_config = as_mapping(self.feature_extractor_config, "feature_extractor_config") or {}
        self.lora_target_modules = as_list(self.lora_target_modules)
        if self.model_type not in MODEL_TYPES:
            raise RecipeError(f"model_type {self.model_type!r} is not one of {', '.join(MODEL_TYPES)}.")
        if self.pooling_mode is not None and self.pooling_mode not in PRETRAINED_POOLING_MODES:
            raise RecipeError(
                f"pooling_mode {unknown_key_message(self.pooling_mode, PRETRAINED_POOLING_MODES)} is not one of "
                f"{', '.join(PRETRAINED_POOLING_MODES)} ({LAYER_STATISTICS}: Whisper only)."
            )
        config_class = model_config_class(self.model_type)
        _check_known_keys("model_config", self.model_config, config_class())
        if self.is_baseline:
            _check_known_keys(
                "feature_extractor_config", self.feature_extractor_config, default_feature_extractor(self.model_type)
            )
        _check_config_types("model_config", self.model_config, config_class)
        if self.is_baseline or self.model_name_or_path is None:
            # The whole config is built from model_config (no checkpoint under it): its own checks run here.
            # An encoder's config is built with the head's regime (build_model), which some fields need.
            head = {} if self.is_baseline else self.head_config_fields()
            check_config_values("model_config", {**head, **self.model_config}, config_class)
        check_model_settings(self)

    @property
    def is_baseline(self) -> bool:
        return self.model_type in BASELINES

    def head_config_fields(self) -> dict[str, Any]:
        """The head's regime as config fields (``pooling_mode``, ``use_weighted_layer_sum``), those the recipe sets."""
        fields = {"pooling_mode": self.pooling_mode, "use_weighted_layer_sum": self.use_weighted_layer_sum}
        return {key: value for key, value in fields.items() if value is not None}


def _check_config_types(name: str, values: dict, config_class: type) -> None:
    """Stop on a config value of the wrong type (``conv_channels: 16`` for a list), naming the key, the value and the
    type, with ``huggingface_hub``'s own type check of strict dataclasses."""
    field_types = config_field_types(config_class)
    for key, value in values.items():
        expected = field_types.get(key)
        if expected is None:
            continue
        try:
            type_validator(key, value, expected)
        except (TypeError, ValueError):
            raise RecipeError(f"{name}.{key}: {value!r} is not a valid {type_name(expected)}.") from None


def _check_known_keys(name: str, values: dict, defaults) -> None:
    """Configs and feature extractors accept any keyword silently; a misspelt key must stop the run instead."""
    known = set(defaults.to_dict())
    unknown = [key for key in values if key not in known]
    if unknown:
        hints = ", ".join(unknown_key_message(key, known) for key in unknown)
        raise RecipeError(f"{name}: {hints} is not a field of {type(defaults).__name__}.")


__all__ = ["MODEL_TYPES", "ModelArguments", "PRETRAINED_POOLING_MODES"]
