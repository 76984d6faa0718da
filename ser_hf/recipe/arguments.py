"""The configuration of a training run: dataclasses for the model, the data, augmentation and training, with the checks
that stop a recipe whose values cannot work before any data is loaded.

A recipe is a flat YAML file whose keys are the fields of these dataclasses (alignment-handbook style);
:mod:`ser_hf.recipe.parser` fills them from the file and the command line.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Literal, Optional, Sequence

import torch
import yaml
from huggingface_hub.dataclasses import type_validator
from huggingface_hub.errors import StrictDataclassError
from transformers import TrainingArguments

from ..data.constants import CACHE_PRECISIONS, CORPUS_NAMES, PROTOCOLS, canonical_corpus_name
from ..errors import RecipeError
from ..models import BASELINES, SSL_MODEL_TYPES
from ..models.configuration_whisper import LAYER_STATISTICS
from ..models.feature_extraction_whisper import STATE_NORMALIZATIONS, UTTERANCE_NORMALIZATION, is_trim_silence_db
from ..models.feature_normalization import GROUP_NORMALIZATIONS
from ..models.pooling import POOLING_MODES
from ..models.runtime.registry import ENCODER_FAMILIES
from ..models.runtime.ssl import TOP_LAYERS_LORA_TARGET_MODULES
from .errors import unknown_key_message
from .fields import AT_LEAST_ONE, OFF_OR_POSITIVE, POSITIVE_RATE, CardRow, NumberRule
from .values import check_numbers, corpus_name_problem, options_of_each_corpus
from .yaml_io import DuplicateKeyError, load_yaml

logger = logging.getLogger(__name__)


def _mapping(value: Any, name: str) -> Optional[dict]:
    """A mapping field given in YAML (already a dict) or on the command line (a YAML/JSON string)."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = load_yaml(value)
        except DuplicateKeyError as error:
            raise RecipeError(f"{name} sets {error.key!r} twice: {value!r}.") from None
        except yaml.YAMLError as error:
            raise RecipeError(f"{name} is not valid YAML ({getattr(error, 'problem', error)}): {value!r}.") from None
        if parsed is None or isinstance(parsed, dict):
            return parsed
    raise RecipeError(f"{name} must be a mapping such as {{key: value}}, got {value!r}.")


def _as_list(value: Any) -> Optional[list]:
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, (tuple, set)):
        return list(value)
    return [value]


def _range(value: Sequence[float], name: str) -> tuple[float, float]:
    values = [float(v) for v in _as_list(value)]
    if len(values) != 2 or values[0] > values[1]:
        raise RecipeError(f"{name} must be a range [low, high] with low <= high, got {value!r}.")
    return values[0], values[1]


#: Models whose inputs have one size for every clip, so that two clips' inputs can be mixed (``mixup_alpha``).
MIXUP_MODEL_TYPES = ("opensmile",)
MODEL_TYPES = tuple(BASELINES) + tuple(t for t in SSL_MODEL_TYPES if not t.startswith("ser_"))
#: The encoder family whose feature extractor takes `normalization` and whose window can be shortened.
WHISPER_MODEL_TYPE = "whisper"


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
            "mode) and `trim_silence_db` (each clip's leading and trailing silence trimmed, e.g. 30)."
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
        self.model_config = _mapping(self.model_config, "model_config") or {}
        self.feature_extractor_config = _mapping(self.feature_extractor_config, "feature_extractor_config") or {}
        self.lora_target_modules = _as_list(self.lora_target_modules)
        if self.model_type not in MODEL_TYPES:
            raise RecipeError(f"model_type {self.model_type!r} is not one of {', '.join(MODEL_TYPES)}.")
        if self.pooling_mode is not None and self.pooling_mode not in PRETRAINED_POOLING_MODES:
            raise RecipeError(
                f"pooling_mode {unknown_key_message(self.pooling_mode, PRETRAINED_POOLING_MODES)} is not one of "
                f"{', '.join(PRETRAINED_POOLING_MODES)} ({LAYER_STATISTICS}: Whisper only)."
            )
        from transformers import AutoConfig

        from ..models import default_feature_extractor

        if self.is_baseline:
            config_class = BASELINES[self.model_type][0]
            _check_known_keys("model_config", self.model_config, config_class())
            _check_known_keys(
                "feature_extractor_config", self.feature_extractor_config, default_feature_extractor(self.model_type)
            )
        else:
            # ser-hf's config of the family (its pooling fields, Whisper's head_dropout) extends the checkpoint's.
            family = ENCODER_FAMILIES.get(self.model_type)
            config_class = family.pooling_config_class if family else type(AutoConfig.for_model(self.model_type))
            _check_known_keys("model_config", self.model_config, config_class())
        _check_config_types("model_config", self.model_config, config_class)
        if self.is_baseline or self.model_name_or_path is None:
            # The whole config is built from model_config (no checkpoint under it): its own checks run here.
            # An encoder's config is built with the head's regime (build_model), which some fields need.
            head = {} if self.is_baseline else self.head_config_fields()
            _check_config_values("model_config", {**head, **self.model_config}, config_class)
        if self.is_baseline:
            ssl_only = {
                "model_name_or_path": self.model_name_or_path,
                "pooling_mode": self.pooling_mode,
                "use_weighted_layer_sum": self.use_weighted_layer_sum,
                "num_frozen_layers": self.num_frozen_layers,
                "freeze_base_model": self.freeze_base_model,
                "use_lora": self.use_lora,
                "cache_encoder_outputs": self.cache_encoder_outputs,
                "cache_feature_encoder": self.cache_feature_encoder,
            }
            set_fields = [name for name, value in ssl_only.items() if value]
            if set_fields:
                raise RecipeError(
                    f"{', '.join(set_fields)} only apply to SSL encoders, not to the {self.model_type} "
                    "baseline (it trains from scratch)."
                )
        elif self.model_type == WHISPER_MODEL_TYPE:
            unknown = sorted(set(self.feature_extractor_config) - {"normalization", "trim_silence_db"})
            if unknown:
                raise RecipeError(
                    f"feature_extractor_config: {', '.join(unknown)} cannot be set for Whisper; it takes "
                    "`normalization` and `trim_silence_db` only (the rest is the checkpoint's "
                    "preprocessor_config.json)."
                )
            trim = self.feature_extractor_config.get("trim_silence_db")
            if not is_trim_silence_db(trim):
                raise RecipeError(
                    f"feature_extractor_config.trim_silence_db: {trim!r} is not a number of dB above 0 (e.g. 30: "
                    "frames quieter than 30 dB below the clip's loudest are trimmed from its ends), nor null."
                )
            normalization = self.feature_extractor_config.get("normalization", "none")
            if normalization not in STATE_NORMALIZATIONS:
                raise RecipeError(
                    f"feature_extractor_config.normalization: {normalization!r} is not one of "
                    f"{', '.join(STATE_NORMALIZATIONS)}."
                )
        elif self.feature_extractor_config:
            raise RecipeError(
                "feature_extractor_config applies to the baselines and Whisper; other SSL encoders use their "
                "checkpoint's."
            )
        if self.encoder_window_seconds is not None:
            if self.model_type != WHISPER_MODEL_TYPE:
                raise RecipeError(
                    f"encoder_window_seconds applies to Whisper encoders, not to model_type {self.model_type!r}."
                )
            if isinstance(self.encoder_window_seconds, bool) or not 1 <= self.encoder_window_seconds <= 30:
                raise RecipeError(
                    f"encoder_window_seconds: {self.encoder_window_seconds!r} must be a whole number of seconds "
                    "from 1 to 30 (Whisper's positional embeddings cover 30 s)."
                )
        conflicts = self._regime_conflicts()
        if len(conflicts) == 1:
            raise RecipeError(conflicts[0])
        if conflicts:
            raise RecipeError(
                f"{len(conflicts)} settings of the recipe conflict: "
                + " ".join(f"({number}) {text}" for number, text in enumerate(conflicts, start=1))
            )

    @property
    def is_baseline(self) -> bool:
        return self.model_type in BASELINES

    def _regime_conflicts(self) -> list[str]:
        """Every training-regime setting that conflicts with another, each in words with what to change: reported
        together, in one error, before anything is decoded."""
        conflicts = []
        normalization = self.feature_extractor_config.get("normalization", "none")
        if self.model_type == WHISPER_MODEL_TYPE and normalization != "none" and not self.cache_encoder_outputs:
            conflicts.append(
                f"feature_extractor_config.normalization: {normalization} standardises the frozen encoder's "
                "states with statistics of their cache: it needs cache_encoder_outputs: true and "
                "freeze_base_model: true."
            )
        if normalization == UTTERANCE_NORMALIZATION and self.pooling_mode != LAYER_STATISTICS:
            conflicts.append(
                f"feature_extractor_config.normalization: {UTTERANCE_NORMALIZATION} centres each clip's frames on "
                f"their own mean, which leaves only their spread to pool: it needs pooling_mode: {LAYER_STATISTICS} "
                f"(got {self.pooling_mode!r})."
            )
        # With finetune_top_layers, LoRA adapts the top layers only, on the cached lower ones (_check_top_layers).
        whole_encoder_lora = self.use_lora and not self.finetune_top_layers
        if whole_encoder_lora and self.use_weighted_layer_sum:
            conflicts.append(
                "use_lora with use_weighted_layer_sum is not supported: peft adapter checkpoints do not "
                "hold the layer weights, so best-model loading and resuming would lose them."
            )
        if whole_encoder_lora and (self.freeze_base_model or self.num_frozen_layers):
            conflicts.append(
                "use_lora already freezes the whole encoder: drop freeze_base_model and num_frozen_layers."
            )
        if self.num_frozen_layers and self.freeze_base_model:
            conflicts.append(
                "num_frozen_layers and freeze_base_model both set: freeze_base_model freezes every layer; keep one."
            )
        if self.cache_feature_encoder and not self.freeze_feature_encoder:
            conflicts.append(
                "cache_feature_encoder: true needs freeze_feature_encoder: true (a feature encoder that "
                "trains changes its outputs every step)."
            )
        if self.cache_feature_encoder and self.cache_encoder_outputs:
            conflicts.append(
                "cache_feature_encoder and cache_encoder_outputs (FAST mode) are both set: FAST mode "
                "already caches the whole encoder's outputs; leave cache_feature_encoder unset."
            )
        # Whisper's classifier reads SpecAugment's keys only on the cached frames of finetune_top_layers (wav2vec 2.0,
        # HuBERT and WavLM apply them to their own hidden states in training, as transformers does).
        if (
            self.model_type == WHISPER_MODEL_TYPE
            and self.model_config.get("apply_spec_augment")
            and not self.finetune_top_layers
        ):
            conflicts.append(
                "model_config.apply_spec_augment: true needs finetune_top_layers with Whisper (it masks the cached "
                "input of the first fine-tuned layer; FAST mode caches pooled statistics that no mask reaches, and "
                "the other Whisper regimes do not read it): set finetune_top_layers, or drop apply_spec_augment and "
                "augment the audio (cached_augmented_copies, augmentation probabilities)."
            )
        if self.finetune_top_layers:
            try:
                self._check_top_layers()
            except RecipeError as error:
                return conflicts + [str(error)]  # it names the FAST keys it needs itself
        if self.cache_encoder_outputs:
            if not self.freeze_base_model:
                conflicts.append(
                    "cache_encoder_outputs needs freeze_base_model: true (a trained encoder's outputs "
                    "change every step and cannot be cached; finetune_top_layers trains the top layers on them)."
                )
            if self.pooling_mode not in (None, "mean", LAYER_STATISTICS):
                conflicts.append(
                    f"cache_encoder_outputs needs mean pooling (or {LAYER_STATISTICS} for Whisper), not "
                    f"pooling_mode={self.pooling_mode!r}: only they can be computed from cached pooled layer "
                    "outputs."
                )
        return conflicts

    def head_config_fields(self) -> dict[str, Any]:
        """The head's regime as config fields (``pooling_mode``, ``use_weighted_layer_sum``), those the recipe sets."""
        fields = {"pooling_mode": self.pooling_mode, "use_weighted_layer_sum": self.use_weighted_layer_sum}
        return {key: value for key, value in fields.items() if value is not None}

    def _check_top_layers(self) -> None:
        """Every key that conflicts with ``finetune_top_layers``, in one error with the working form."""
        value = self.finetune_top_layers
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RecipeError(f"finetune_top_layers: {value!r} must be a whole number of layers (0: none).")
        wanted = {
            "model_type": (self.model_type, WHISPER_MODEL_TYPE),
            "cache_encoder_outputs": (self.cache_encoder_outputs, True),
            "freeze_base_model": (self.freeze_base_model, True),
            "use_weighted_layer_sum": (self.use_weighted_layer_sum, True),
            "pooling_mode": (self.pooling_mode, LAYER_STATISTICS),
            "model_config.trim_window": (self.model_config.get("trim_window", False), True),
            "num_frozen_layers": (self.num_frozen_layers, 0),
        }
        conflicts = [f"{key}: {have!r} (needs {need!r})" for key, (have, need) in wanted.items() if have != need]
        unknown = [name for name in self.lora_target_modules or () if name not in TOP_LAYERS_LORA_TARGET_MODULES]
        if self.use_lora and unknown:
            conflicts.append(
                f"lora_target_modules: {', '.join(map(str, unknown))} (a Whisper encoder layer's linear modules are "
                f"{', '.join(TOP_LAYERS_LORA_TARGET_MODULES)})"
            )
        normalization = self.feature_extractor_config.get("normalization", "none")
        if normalization not in ("none", "global", *GROUP_NORMALIZATIONS):
            conflicts.append(
                f"feature_extractor_config.normalization: {normalization!r} (needs 'global', 'speaker', 'corpus' or "
                "'none': the fine-tuned layers read each clip's cached frames as they are)"
            )
        if conflicts:
            raise RecipeError(
                f"finetune_top_layers: {value} conflicts with " + "; ".join(conflicts) + ". A recipe that works: "
                "model_type: whisper, cache_encoder_outputs: true, freeze_base_model: true, "
                "use_weighted_layer_sum: true, pooling_mode: layer_statistics, model_config: {trim_window: true}, "
                "feature_extractor_config: {normalization: global} (recipes/ravdess_whisper_tiny_en_top2.yaml)."
            )


def _config_field_types(config_class: type) -> dict[str, Any]:
    """The annotated type of each field of a config class. Annotations a module left as strings (``from __future__
    import annotations``, as ser-hf's baseline configs, whose ``@strict`` type checks then do not run) are evaluated;
    a class whose annotations do not evaluate (transformers' ``PreTrainedConfig``) leaves its fields unchecked."""
    field_types: dict[str, Any] = {}
    for klass in reversed(config_class.__mro__):
        try:
            field_types.update(inspect.get_annotations(klass, eval_str=True))
        except (NameError, TypeError, SyntaxError):
            continue
    return field_types


def _check_config_types(name: str, values: dict, config_class: type) -> None:
    """Stop on a config value of the wrong type (``conv_channels: 16`` for a list), naming the key, the value and the
    type, with ``huggingface_hub``'s own type check of strict dataclasses."""
    field_types = _config_field_types(config_class)
    for key, value in values.items():
        expected = field_types.get(key)
        if expected is None:
            continue
        try:
            type_validator(key, value, expected)
        except (TypeError, ValueError):
            raise RecipeError(f"{name}.{key}: {value!r} is not a valid {_type_name(expected)}.") from None


def _check_config_values(name: str, values: dict, config_class: type) -> None:
    """Build the config from ``values`` so that its own checks (``validate_architecture``) stop the run now, in one
    line, rather than as a ``StrictDataclassError`` once the data is loaded."""
    try:
        config_class(**values)
    except (StrictDataclassError, TypeError, ValueError) as error:
        cause = error.__cause__ if isinstance(error, StrictDataclassError) and error.__cause__ else error
        raise RecipeError(f"{name}: {cause}") from None


def _check_known_keys(name: str, values: dict, defaults) -> None:
    """Configs and feature extractors accept any keyword silently; a misspelt key must stop the run instead."""
    known = set(defaults.to_dict())
    unknown = [key for key in values if key not in known]
    if unknown:
        hints = ", ".join(unknown_key_message(key, known) for key in unknown)
        raise RecipeError(f"{name}: {hints} is not a field of {type(defaults).__name__}.")


@dataclass
class DataArguments:
    """Which corpora to train on, with which labels, and how to split them."""

    corpus: list[str] = field(
        default_factory=list,
        metadata={"help": f"Corpus name(s): {', '.join(CORPUS_NAMES)}. Several are merged."},
    )
    data_dir: list[str] = field(default_factory=list, metadata={"help": "Folder of each corpus, in order."})
    # Also a list of mappings (YAML, or YAML text on the command line), which argparse cannot type beside a mapping.
    corpus_options: Optional[dict | str] = field(
        default=None,
        metadata={
            "help": "Options of the corpus loaders, e.g. {demographics_csv: PATH}; with several corpora, "
            "one mapping per corpus name: {cremad: {demographics_csv: PATH}}, or a list of mappings, one per corpus "
            "in corpus order (two folder corpora: [{corpus_name: a, ...}, {corpus_name: b, ...}])."
        },
    )
    corpus_weights: Optional[dict | str] = field(
        default=None,
        metadata={
            "help": "Share of each corpus in the clips drawn for training, with several corpora: {ravdess: 1, tess: "
            "1} draws as many clips of each per epoch however large each is (a corpus drawn at half its size shows a "
            "different half each epoch, one drawn at twice its size each clip twice); a corpus not named "
            "weighs 1. Unset: every training clip once per epoch."
        },
    )
    train_only_corpora: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "With several corpora: corpora whose clips join every training split and are never validated "
            "or tested on; the split protocol splits the others, e.g. [tess] scores a RAVDESS+TESS model on the "
            "same RAVDESS folds as a RAVDESS-only one."
        },
    )
    label_map: Optional[dict | str] = field(
        default=None, metadata={"help": "Merge or drop labels, e.g. {calm: neutral} or {calm: null} to drop."}
    )
    labels: Optional[list[str]] = field(
        default=None, metadata={"help": "Label set to keep (others are dropped), e.g. [neutral, happy, sad, angry]."}
    )
    sampling_rate: int = field(default=16000, metadata={"help": "Rate clips are decoded to (mono)."})
    skip_invalid: bool = field(
        default=False, metadata={"help": "Skip (and list) clips that fail to decode instead of stopping."}
    )
    split_protocol: str = field(
        default="speaker",
        metadata={
            "help": "speaker (fixed lists or shares of speakers), kfold (speaker-grouped stratified k-fold), "
            "loso (leave one speaker out), or random (leaks speakers; only to measure the leak).",
            "choices": list(PROTOCOLS),
        },
    )
    train_speakers: Optional[list[str]] = field(default=None, metadata={"help": "Training speakers (speaker)."})
    validation_speakers: Optional[list[str]] = field(
        default=None, metadata={"help": "Validation speakers (speaker protocol)."}
    )
    test_speakers: Optional[list[str]] = field(default=None, metadata={"help": "Test speakers (speaker protocol)."})
    test_size: float = field(default=0.2, metadata={"help": "Share of speakers held out for test (no lists given)."})
    validation_size: float = field(
        default=0.1, metadata={"help": "Share of speakers held out for validation (0 for none)."}
    )
    num_folds: int = field(default=5, metadata={"help": "Folds of the kfold protocol."})
    folds: Optional[list[int]] = field(
        default=None,
        metadata={"help": "Run only these folds (0-based) of a kfold or loso protocol.", "outcome": False},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the split, kept apart from the training seed."})
    max_duration_seconds: Optional[float] = field(
        default=None,
        metadata={
            "help": "Crop training clips to a random window of this length; evaluation uses whole clips.",
            "range": NumberRule("a positive number of seconds", greater_than=0),
            "card": CardRow(20, "max_duration_seconds (random training crops)"),
        },
    )
    preprocessing_num_workers: Optional[int] = field(
        default=None,
        metadata={"help": "Processes decoding the audio (defaults to one per core, at most 8).", "outcome": False},
    )
    cache_precision: str = field(
        default="float32",
        metadata={
            "help": "How the decoded waveforms and the cached encoder outputs (feature encoder, FAST) are stored: "
            "float32, or float16 at half the disk and memory (see docs/results/LOG.md, Scale).",
            "choices": list(CACHE_PRECISIONS),
        },
    )

    def __post_init__(self):
        check_numbers(self)
        self.corpus = [str(c) for c in _as_list(self.corpus) or []]
        self.data_dir = [str(d) for d in _as_list(self.data_dir) or []]
        if isinstance(self.corpus_options, str) and self.corpus_options.lstrip().startswith("["):
            self.corpus_options = load_yaml(self.corpus_options)
        if not isinstance(self.corpus_options, list):
            self.corpus_options = _mapping(self.corpus_options, "corpus_options") or {}
        self.label_map = _mapping(self.label_map, "label_map")
        self.corpus_weights = _corpus_weights_option(self.corpus_weights, self.corpus)
        self.labels = _as_list(self.labels)
        self.train_only_corpora = _train_only_corpora_option(self.train_only_corpora, self.corpus)
        for name in ("train_speakers", "validation_speakers", "test_speakers"):
            speakers = _as_list(getattr(self, name))
            setattr(self, name, None if speakers is None else [str(s) for s in speakers])
        self.folds = None if self.folds is None else [int(f) for f in _as_list(self.folds)]
        if not self.corpus:
            raise RecipeError("corpus is required: the corpus (or corpora) to train on, e.g. corpus: ravdess.")
        if len(self.corpus) != len(self.data_dir):
            raise RecipeError(
                f"Give one data_dir per corpus: {len(self.corpus)} corpora ({', '.join(self.corpus)}) "
                f"and {len(self.data_dir)} data_dir."
            )
        options_of_each_corpus(self.corpus, self.corpus_options)  # one mapping per corpus, or the error naming why
        problem = corpus_name_problem(
            {"corpus": self.corpus, "data_dir": self.data_dir, "corpus_options": self.corpus_options}
        )
        if problem:
            raise RecipeError(problem)
        if self.split_protocol not in PROTOCOLS:
            raise RecipeError(f"split_protocol {self.split_protocol!r} is not one of {', '.join(PROTOCOLS)}.")
        if self.cache_precision not in CACHE_PRECISIONS:
            raise RecipeError(f"cache_precision {self.cache_precision!r} is not one of {', '.join(CACHE_PRECISIONS)}.")
        if self.max_duration_seconds is not None and self.max_duration_seconds <= 0:
            raise RecipeError(f"max_duration_seconds must be positive, got {self.max_duration_seconds}.")
        if self.sampling_rate <= 0:
            raise RecipeError(
                f"sampling_rate must be a positive number of samples per second, got {self.sampling_rate}."
            )
        if self.num_folds < 2:
            raise RecipeError(
                f"num_folds must be at least 2 (each fold tests on the speakers the others train on), "
                f"got {self.num_folds}."
            )

    def check_split_keys(self, given: Collection[str]) -> None:
        """Refuse shares of speakers (``test_size``, ``validation_size``) given with speaker lists, which the speaker
        protocol would silently ignore; ``given`` holds the keys the recipe or the command line set."""
        if self.split_protocol != "speaker":
            return
        lists = [
            name
            for name in ("train_speakers", "validation_speakers", "test_speakers")
            if getattr(self, name) is not None
        ]
        sizes = [name for name in ("test_size", "validation_size") if name in given]
        if lists and sizes:
            raise RecipeError(
                f"{' and '.join(sizes)} cannot be used with {', '.join(lists)}: the split takes the "
                f"speakers named and would ignore {' and '.join(sizes)}. Remove one or the other."
            )

    def split_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`ser_hf.data.splits.split_dataset` for the recipe's protocol."""
        options = self._protocol_options()
        if self.train_only_corpora:
            options["train_only_corpora"] = self.train_only_corpora
        return options

    def _protocol_options(self) -> dict[str, Any]:
        if self.split_protocol == "speaker":
            if any(v is not None for v in (self.train_speakers, self.validation_speakers, self.test_speakers)):
                return {
                    "train_speakers": self.train_speakers,
                    "validation_speakers": self.validation_speakers,
                    "test_speakers": self.test_speakers,
                    "seed": self.split_seed,
                }
            return {"test_size": self.test_size, "validation_size": self.validation_size, "seed": self.split_seed}
        if self.split_protocol == "kfold":
            return {"n_splits": self.num_folds, "validation_size": self.validation_size, "seed": self.split_seed}
        if self.split_protocol == "loso":
            return {"validation_size": self.validation_size, "seed": self.split_seed}
        return {"test_size": self.test_size, "validation_size": self.validation_size, "seed": self.split_seed}


@dataclass
class AugmentationArguments:
    """Training-time augmentation (the training split only). Every probability defaults to 0: off."""

    noise_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of adding noise to a clip.",
            "card": CardRow(1, "additive noise", "SNR {noise_snr_db} dB"),
        },
    )
    noise_snr_db: list[float] = field(
        default_factory=lambda: [10.0, 30.0], metadata={"help": "SNR range [low, high] of the added noise, in dB."}
    )
    noise_files: Optional[list[str]] = field(
        default=None, metadata={"help": "Recorded noise clips to mix in; white noise when not given."}
    )
    gain_prob: float = field(
        default=0.0,
        metadata={"help": "Probability of a random gain.", "card": CardRow(2, "random gain", "{gain_db} dB")},
    )
    gain_db: list[float] = field(default_factory=lambda: [-6.0, 6.0], metadata={"help": "Gain range in dB."})
    speed_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of speed perturbation (tempo and pitch).",
            "card": CardRow(3, "speed perturbation", "factors {speed_factors}"),
        },
    )
    speed_factors: list[float] = field(
        default_factory=lambda: [0.9, 1.1], metadata={"help": "Speed factors to choose from (Kaldi uses 0.9, 1.1)."}
    )
    pitch_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of a pitch shift (tempo kept).",
            "card": CardRow(4, "pitch shift", "{pitch_semitones} semitones"),
        },
    )
    pitch_semitones: list[float] = field(
        default_factory=lambda: [-2.0, 2.0], metadata={"help": "Pitch shift range in semitones."}
    )
    reverb_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of reverberation.",
            "card": CardRow(5, "reverberation", "RT60 {reverb_rt60} s"),
        },
    )
    reverb_rt60: list[float] = field(
        default_factory=lambda: [0.2, 0.8], metadata={"help": "RT60 range (s) of generated impulse responses."}
    )
    impulse_responses: Optional[list[str]] = field(
        default=None, metadata={"help": "Recorded room impulse responses; generated ones when not given."}
    )
    lowpass_prob: float = field(
        default=0.0, metadata={"help": "Probability of band-limiting a clip (a narrowband channel, e.g. telephone)."}
    )
    lowpass_hz: list[float] = field(
        default_factory=lambda: [3000.0, 6000.0], metadata={"help": "Cut-off frequency range in Hz."}
    )
    cached_augmented_copies: int = field(
        default=0,
        metadata={
            "help": "FAST mode and finetune_top_layers: encode N augmented copies of every clip once (the recipe's "
            "waveform augmentation, seeded per clip and copy) beside the clip itself, up to the first fine-tuned "
            "layer with finetune_top_layers; each training epoch draws, per clip, the clip or one of its copies. "
            "Validation and test clips are never augmented."
        },
    )
    num_time_masks: int = field(default=0, metadata={"help": "SpecAugment time masks per clip (spectrogram models)."})
    time_mask_width: int = field(
        default=20,
        metadata={
            "help": "SpecAugment time masks are drawn 0 to this many frames wide, this width excluded (torchaudio's "
            "TimeMasking)."
        },
    )
    num_freq_masks: int = field(
        default=0, metadata={"help": "SpecAugment frequency masks per clip (spectrogram models)."}
    )
    freq_mask_width: int = field(
        default=8,
        metadata={
            "help": "SpecAugment frequency masks are drawn 0 to this many bins wide, this width excluded "
            "(torchaudio's FrequencyMasking)."
        },
    )
    mask_time_prob: Optional[float] = field(
        default=None, metadata={"help": "SSL encoders: wav2vec2's own SpecAugment, share of frames masked."}
    )
    mask_time_length: Optional[int] = field(default=None, metadata={"help": "SSL encoders: frames per time mask."})
    mask_feature_prob: Optional[float] = field(
        default=None, metadata={"help": "SSL encoders: share of feature channels masked."}
    )
    mask_feature_length: Optional[int] = field(
        default=None, metadata={"help": "SSL encoders: channels per feature mask."}
    )
    mixup_alpha: float = field(
        default=0.0,
        metadata={
            "help": "Mixup (Zhang et al., 2018): each training batch's inputs are mixed with the same batch in "
            "shuffled order, with a weight lambda drawn from Beta(mixup_alpha, mixup_alpha), and the loss mixes the "
            "two clips' labels the same way. 0: off. Models of fixed-size inputs only (opensmile).",
            "range": OFF_OR_POSITIVE,
        },
    )

    def __post_init__(self):
        for name in ("noise_files", "impulse_responses"):
            setattr(self, name, _as_list(getattr(self, name)))
        self.speed_factors = [float(f) for f in _as_list(self.speed_factors)]
        for name in ("noise_snr_db", "gain_db", "pitch_semitones", "reverb_rt60", "lowpass_hz"):
            setattr(self, name, list(_range(getattr(self, name), name)))
        copies = self.cached_augmented_copies
        if isinstance(copies, bool) or not isinstance(copies, int) or not 0 <= copies <= 32:
            raise RecipeError(f"cached_augmented_copies: {copies!r} must be a whole number from 0 to 32.")
        for name in ("noise_files", "impulse_responses"):
            missing = [path for path in getattr(self, name) or [] if not os.path.isfile(path)]
            if missing:
                raise RecipeError(f"{name}: {missing} do not exist.")
        check_numbers(self)
        try:  # the augmentation classes validate their values; fail here, before any data is loaded
            self.waveform_augmentation(16000)
            self.spec_augment()
        except ValueError as error:
            raise RecipeError(str(error)) from None

    def waveform_augmentation(self, sampling_rate: int):
        """The :class:`~ser_hf.inputs.augment.WaveformAugmentation` the recipe asks for, or `None` when it asks for
        none."""
        if not any(
            (self.noise_prob, self.gain_prob, self.speed_prob, self.pitch_prob, self.reverb_prob, self.lowpass_prob)
        ):
            return None
        from ..inputs.augment import WaveformAugmentation

        return WaveformAugmentation(
            sampling_rate=sampling_rate,
            noise_prob=self.noise_prob,
            noise_snr_db=tuple(self.noise_snr_db),
            noise_files=self.noise_files or (),
            gain_prob=self.gain_prob,
            gain_db=tuple(self.gain_db),
            speed_prob=self.speed_prob,
            speed_factors=tuple(self.speed_factors),
            pitch_prob=self.pitch_prob,
            pitch_semitones=tuple(self.pitch_semitones),
            reverb_prob=self.reverb_prob,
            reverb_rt60=tuple(self.reverb_rt60),
            impulse_responses=self.impulse_responses or (),
            lowpass_prob=self.lowpass_prob,
            lowpass_hz=tuple(self.lowpass_hz),
        )

    def spec_augment(self):
        """The :class:`~ser_hf.inputs.augment.SpecAugment` for spectrogram inputs, or `None`."""
        if not (self.num_time_masks or self.num_freq_masks):
            return None
        from ..inputs.augment import SpecAugment

        return SpecAugment(
            num_time_masks=self.num_time_masks,
            time_mask_width=self.time_mask_width,
            num_freq_masks=self.num_freq_masks,
            freq_mask_width=self.freq_mask_width,
        )

    def ssl_masking(self) -> dict[str, Any]:
        """wav2vec2-style masking settings to write into an SSL encoder's config (only those the recipe sets)."""
        names = ("mask_time_prob", "mask_time_length", "mask_feature_prob", "mask_feature_length")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def check_model(self, model_args: ModelArguments) -> None:
        """Refuse augmentation settings the chosen model cannot use, rather than silently ignoring them."""
        # Every baseline but the raw-waveform CNN reads frame features (log-mel or MFCC) that SpecAugment can mask.
        spectrogram_input = model_args.is_baseline and model_args.model_type != "cnn1d"
        if (self.num_time_masks or self.num_freq_masks) and not spectrogram_input:
            raise RecipeError(
                f"num_time_masks/num_freq_masks mask spectrograms; {model_args.model_type} reads "
                "waveforms (use mask_time_prob/mask_feature_prob for SSL encoders)."
            )
        if self.ssl_masking() and model_args.is_baseline:
            raise RecipeError(
                f"mask_time_prob/mask_feature_prob configure SSL encoders, not the "
                f"{model_args.model_type} baseline (use num_time_masks/num_freq_masks)."
            )
        if self.mixup_alpha and model_args.model_type not in MIXUP_MODEL_TYPES:
            raise RecipeError(
                f"mixup_alpha: {self.mixup_alpha:g} mixes fixed-size inputs (the {', '.join(MIXUP_MODEL_TYPES)} "
                f"functionals); {model_args.model_type} reads clips of varying length, whose padding and attention "
                "masks a mix would blur: leave mixup_alpha unset."
            )
        if model_args.cache_feature_encoder and self.waveform_augmentation(16000) is not None:
            raise RecipeError(
                "cache_feature_encoder: true runs the feature encoder once per clip, so waveform "
                "augmentation cannot apply: turn it off, or leave cache_feature_encoder unset."
            )
        waveform_augmentation = self.waveform_augmentation(16000) is not None
        if self.cached_augmented_copies and not (model_args.cache_encoder_outputs and waveform_augmentation):
            raise RecipeError(
                f"cached_augmented_copies: {self.cached_augmented_copies} encodes augmented copies of each clip once "
                "for FAST mode: it needs cache_encoder_outputs: true and a waveform augmentation (noise_prob, "
                "gain_prob, speed_prob, pitch_prob, reverb_prob or lowpass_prob above 0)."
            )
        if model_args.cache_encoder_outputs and (
            (waveform_augmentation and not self.cached_augmented_copies) or self.ssl_masking()
        ):
            raise RecipeError(
                "cache_encoder_outputs encodes each clip once, so waveform augmentation and SSL masking "
                "cannot apply as they do in training on audio: set cached_augmented_copies: N to encode N augmented "
                "copies of each clip once, turn them off, or train without the cache."
            )


@dataclass
class SERTrainingArguments(TrainingArguments):
    """`TrainingArguments` with ser-hf's defaults (evaluate and save every epoch, keep the best model by validation
    UA, group batches by clip length) and what SER training adds: class weights, a separate head learning rate,
    OneCycle scheduling, early stopping and automatic mixed precision."""

    class_weights: Optional[dict | str] = field(
        default=None,
        metadata={
            "help": "Weight the loss per class: 'balanced' (inverse class frequency in the training split) or "
            "a mapping {label: weight}; unweighted when not set.",
            "card": CardRow(15),
            "outcome": True,
        },
    )
    head_learning_rate: Optional[float] = field(
        default=None,
        metadata={
            "help": "Learning rate of the classification head (projector, pooler, classifier, layer weights); "
            "learning_rate then applies to the encoder. Same as learning_rate when not set.",
            "range": POSITIVE_RATE,
            "card": CardRow(2),
            "outcome": True,
        },
    )
    one_cycle_lr: bool = field(
        default=False,
        metadata={
            "help": "Use torch's OneCycleLR (warm-up over warmup_steps, then cosine annealing, momentum "
            "cycled) instead of lr_scheduler_type.",
            "card": CardRow(9),
            "outcome": True,
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train again into an output_dir that holds a run (finished or not), deleting that run "
            "first. Without it a finished run is read back, not trained again, and an unfinished one "
            "resumes from its last checkpoint.",
            "outcome": False,
        },
    )
    early_stopping_patience: Optional[int] = field(
        default=None,
        metadata={
            "help": "Stop after this many evaluations without improvement of metric_for_best_model.",
            "card": CardRow(16),
            "outcome": True,
        },
    )
    calibrate_temperature: bool = field(
        default=True,
        metadata={
            "help": "After training, fit temperature scaling on the validation split (one temperature T that the "
            "logits are divided by, minimising their negative log-likelihood) and save T in the model's config, "
            "so that its scores are calibrated; no prediction changes. Without a validation split T stays 1.",
            "outcome": True,
        },
    )
    calibration_min_clips: int = field(
        default=100,
        metadata={
            "help": "Fit the temperature only on a validation split of at least this many clips: on fewer, one "
            "temperature follows the noise of a few clips and can make the scores worse elsewhere (T stays 1, and "
            "the report says why).",
            "range": AT_LEAST_ONE,
            "outcome": True,
        },
    )
    self_training_rounds: int = field(
        default=0,
        metadata={
            "help": "Rounds of self-training on the test split's unlabelled clips (0: off): each round's model "
            "predicts them, and the next trains from scratch on the training split plus, for every predicted "
            "emotion, the self_training_share of its clips predicted with the highest probability, with the "
            "predicted emotions; the last round's model is saved. Transductive, like corpus and speaker "
            "statistics: the test clips' audio is read, their labels never (ser_hf.training.self_training).",
            "range": NumberRule("0 (off) or a positive whole number", at_least=0, whole=True),
            "outcome": True,
        },
    )
    self_training_share: float = field(
        default=0.3,
        metadata={
            "help": "Share of the test clips predicted as each emotion that a self-training round keeps.",
            "range": NumberRule("in (0, 1]", greater_than=0, at_most=1, why="the share of each emotion's clips kept"),
            "outcome": True,
        },
    )
    starting_point_weight: float = field(
        default=0.0,
        metadata={
            "help": "L2-SP regularisation (Li, Grandvalet and Davoine, 2018): adds this weight times the squared "
            "distance of the trained weights from those training started from to the loss, so that a few clips "
            "adapt a trained model (ser-hf adapt) without wrecking what it learnt; set weight_decay to 0 with it, "
            "which pulls towards zero instead. 0: off.",
            "range": OFF_OR_POSITIVE,
            "card": CardRow(12),
            "outcome": True,
        },
    )
    soup_size: int = field(
        default=1,
        metadata={
            "help": "Model soup (Wortsman et al., 2022): train this many models from the same starting weights, "
            "each with its own seed (seed, seed + 1, ...: data order and dropout), and keep the average of their "
            "trained weights, one ordinary model. Steadies what a few clips train (ser-hf adapt uses 5); meant "
            "for models trained on from one start, not heads trained from random starts. 1: off "
            "(ser_hf.training.soup).",
            "range": NumberRule("1 (off) or more", at_least=1, whole=True),
            "card": CardRow(21),
            "outcome": True,
        },
    )
    corpus_adversarial_weight: float = field(
        default=0.0,
        metadata={
            "help": "Domain-adversarial training across the training corpora (Ganin and Lempitsky, 2015): a "
            "classifier of each training clip's corpus learns from the head's projection behind a gradient "
            "reversal layer, whose reversed gradient, scaled by this weight (ramped up from 0 over training), "
            "teaches the projection to hide the corpus, so that the head reads what the corpora share. 0: off. "
            "Needs two training corpora or more and a cached encoder (cache_encoder_outputs); the adversary is "
            "never saved with the model (ser_hf.training.corpus_adversary).",
            "range": OFF_OR_POSITIVE,
            "outcome": True,
        },
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto",
        metadata={
            "help": "auto: bf16 on a GPU that supports it, full precision otherwise; or fp32/bf16/fp16. (Not "
            "named mixed_precision: TrainingArguments uses that attribute for accelerate's setting.)",
            "card": CardRow(18),
            "outcome": True,
        },
    )
    defer_loss_check: Optional[bool] = field(
        default=None,
        metadata={
            "help": "A NaN or infinite training loss stops the run, naming the step and the batch's clips. "
            "Checking makes the host wait for the device, so by default each loss is checked at once "
            "on CPU (free there) and, on accelerators, kept on the device and checked when Trainer "
            "waits anyway (logging, evaluation, saving, epoch end): true or false forces either way.",
            "outcome": False,
        },
    )
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={
            "help": "Trainer's filter that leaves NaN/inf losses out of the logged mean. Off: a non-finite "
            "loss stops the run instead (defer_loss_check), and the filter would wait for the device "
            "at every step.",
            "outcome": False,
        },
    )
    eval_strategy: str = field(
        default="epoch",
        metadata={"help": "When to evaluate on the validation split: no, steps or epoch.", "outcome": True},
    )
    save_strategy: str = field(
        default="epoch", metadata={"help": "When to save a checkpoint: no, steps or epoch.", "outcome": False}
    )
    save_total_limit: Optional[int] = field(
        default=2,
        metadata={
            "help": "Checkpoints kept (the best is kept too).",
            "range": NumberRule("at least 1 (or left out: keep every checkpoint)", at_least=1),
            "outcome": False,
        },
    )
    load_best_model_at_end: bool = field(
        default=True,
        metadata={"help": "End with the checkpoint that scored best on metric_for_best_model.", "outcome": True},
    )
    metric_for_best_model: Optional[str] = field(
        default="unweighted_accuracy",
        metadata={"help": "Validation metric that picks the best model (UA).", "card": CardRow(17), "outcome": True},
    )
    greater_is_better: Optional[bool] = field(
        default=True, metadata={"help": "Whether the metric is better higher.", "outcome": True}
    )
    logging_steps: float = field(
        default=10, metadata={"help": "Log the training loss every N steps.", "outcome": False}
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep the dataset columns: the collator needs the waveform and label.", "outcome": False},
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "group_by_length: batches of clips of similar length (less padding); or random, sequential.",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
            "outcome": True,
        },
    )
    length_column_name: str = field(
        default="duration", metadata={"help": "Column of clip lengths for grouping.", "outcome": False}
    )
    dataloader_num_workers: Optional[int] = field(
        default=None,
        metadata={
            "help": "DataLoader worker processes that collate batches beside the training loop. When not set: "
            "min(4, CPU cores per training process) when training on a GPU, so that collating never keeps the "
            "GPU waiting, and 0 on CPU, where workers would take cores from the training itself. A value in "
            "the recipe or on the command line always wins. Workers are started again every epoch "
            "(dataloader_persistent_workers stays off), so that each epoch's random crops and augmentation "
            "reach them; clips are decoded once into the Arrow cache before training, never in the workers.",
            "outcome": False,
        },
    )

    def __post_init__(self):
        self._check_training_length()
        if self.dataloader_num_workers is None:
            self.dataloader_num_workers = default_dataloader_workers(self.use_cpu)
        elif self.dataloader_num_workers < 0:
            raise RecipeError(f"dataloader_num_workers must be 0 or more, got {self.dataloader_num_workers}.")
        self.class_weights = _class_weights_option(self.class_weights)
        if self.precision == "auto":
            gpu_bf16 = not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            self.bf16 = self.bf16 or gpu_bf16
        elif self.precision == "bf16":
            self.bf16 = True
        elif self.precision == "fp16":
            self.fp16 = True
        elif self.precision == "fp32":
            if self.bf16 or self.fp16 or os.environ.get("ACCELERATE_MIXED_PRECISION", "no") != "no":
                logger.warning("precision: fp32 overrides bf16/fp16 and accelerate's mixed_precision setting.")
            self.bf16 = self.fp16 = False
            os.environ["ACCELERATE_MIXED_PRECISION"] = "no"
        if self.dataloader_pin_memory and (self.use_cpu or not torch.cuda.is_available()):
            self.dataloader_pin_memory = False  # pinned memory only speeds copies to a GPU (torch warns otherwise)
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise RecipeError(f"early_stopping_patience must be at least 1, got {self.early_stopping_patience}.")
        # Batches in pinned memory are copied to the GPU without the host waiting for the copy (accelerate's
        # non_blocking), unless the recipe's accelerator_config says otherwise.
        non_blocking_set = self.accelerator_config is not None and (
            not isinstance(self.accelerator_config, dict) or "non_blocking" in self.accelerator_config
        )
        super().__post_init__()
        if self.dataloader_pin_memory and not non_blocking_set:
            self.accelerator_config.non_blocking = True
        check_output_dir_writable(self.output_dir)

    def check_model(self, model_args: ModelArguments, data_args: DataArguments) -> None:
        """Refuse a corpus adversary the recipe's model or corpora cannot train, naming every reason at once."""
        weight = self.corpus_adversarial_weight
        if not weight:
            return
        problems = []
        if not model_args.cache_encoder_outputs:
            problems.append(
                "it reads the head's projection of each clip, which the models of cached encoder states have "
                "(set cache_encoder_outputs: true, with finetune_top_layers to fine-tune the top layers)"
            )
        if len(data_args.corpus) < 2:
            problems.append(
                f"it needs two training corpora or more, and the recipe reads {', '.join(data_args.corpus) or 'none'}"
                " (corpus: [ravdess, tess, ...])"
            )
        if problems:
            raise RecipeError(f"corpus_adversarial_weight: {weight:g}: " + "; ".join(problems) + ".")

    def _check_training_length(self) -> None:
        """Refuse values that would train nothing (and save an untrained model as a finished run) or fail inside
        torch, naming the key."""
        if self.max_steps == 0 or self.max_steps < -1:
            raise RecipeError(
                f"max_steps must be a positive number of optimizer steps, got {self.max_steps} (leave "
                "it out, or set -1, to train for num_train_epochs)."
            )
        check_numbers(self)

    def __getstate__(self) -> dict[str, Any]:
        # Trainer pickles its arguments into every checkpoint (training_args.bin): never with the Hub token in them.
        state = self.__dict__.copy()
        if state.get("hub_token") is not None:
            state["hub_token"] = None
        return state


def default_dataloader_workers(use_cpu: bool) -> int:
    """DataLoader workers when the recipe sets none: ``min(4, cores per process)`` when training on a GPU (each
    process of a multi-GPU launch gets its share of the machine's cores, ``LOCAL_WORLD_SIZE`` of them), 0 on CPU."""
    if use_cpu or not torch.cuda.is_available():
        return 0
    processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(4, (os.cpu_count() or 1) // processes))


def check_output_dir_writable(output_dir: str | os.PathLike) -> None:
    """Stop before any work when ``output_dir`` cannot hold a run: it is a file, a folder above it is a file, a
    folder name is longer than the file system allows, or the folder (or the nearest existing one above it) cannot be
    written."""
    path = Path(output_dir).expanduser().absolute()
    existing = path
    # os.path's tests, not Path's: Path.exists() raises on a name too long for the file system.
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing == path and not os.path.isdir(path):
        raise RecipeError(f"output_dir {output_dir} is a file, not a folder: choose another output_dir.")
    if not os.path.isdir(existing):
        raise RecipeError(f"output_dir {output_dir} cannot be created: {existing} is a file, not a folder.")
    name_max = _path_limit(existing, "PC_NAME_MAX", 255)
    for name in path.relative_to(existing).parts:
        if len(os.fsencode(name)) > name_max:
            raise RecipeError(
                f"output_dir {output_dir} cannot be created: the folder name {name[:40]}... is "
                f"{len(os.fsencode(name))} bytes long, over the file system's limit of {name_max}."
            )
    path_max = _path_limit(existing, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(path))) >= path_max:
        raise RecipeError(
            f"output_dir {output_dir} is {len(os.fsencode(str(path)))} bytes long, over the file "
            f"system's limit of {path_max}: choose a shorter output_dir."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == path else f"cannot be created: {existing} is not writable"
        raise RecipeError(
            f"output_dir {output_dir} {what} (permissions, or a read-only file system): choose a "
            "folder you can write to."
        )


def _path_limit(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):  # not defined on this system (Windows has no pathconf)
        return default


def _train_only_corpora_option(value: Any, corpora: Sequence[str]) -> Optional[list[str]]:
    names = _as_list(value)
    if not names:
        return None
    names = [str(name) for name in names]
    unknown = [name for name in names if name not in corpora]
    if unknown:
        raise RecipeError(
            f"train_only_corpora names {', '.join(map(repr, unknown))}, which the recipe does not train on (corpus: "
            f"{', '.join(corpora)})."
        )
    if set(names) >= set(corpora):
        raise RecipeError(
            f"train_only_corpora lists every corpus of the recipe ({', '.join(corpora)}): none is left to validate "
            "or test on. Leave at least one out."
        )
    return names


def _is_weight(value: Any) -> bool:
    """A finite number (not a boolean: YAML's ``true`` is not a weight)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _corpus_weights_option(value: Any, corpora: Sequence[str]) -> Optional[dict[str, float]]:
    """``corpus_weights`` keyed as the corpora's ``corpus`` column holds them: names matched to ``corpus`` as
    ``load_corpus`` matches them (case, aliases: ``RAVDESS``, ``CREMA-D``), every corpus of the recipe given a weight
    (1 where none is named). The values are kept as written; :func:`~ser_hf.training.trainer.corpus_sampling_weights`
    scales them by the largest before dividing, so ``1.0e+308`` weighs as ``1``."""
    weights = _mapping(value, "corpus_weights")
    if weights is None:
        return None
    names = list(dict.fromkeys(canonical_corpus_name(corpus) for corpus in corpora))
    given: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    unknown = []
    for name, weight in weights.items():
        key = canonical_corpus_name(str(name))
        if key not in names:
            unknown.append(str(name))
        elif key in given:
            raise RecipeError(
                f"corpus_weights names corpus {key!r} twice ({spelled[key]!r} and {str(name)!r}): give it one weight."
            )
        else:
            given[key], spelled[key] = weight, str(name)
    if unknown:
        raise RecipeError(
            f"corpus_weights names {', '.join(map(repr, sorted(unknown)))}, which the recipe does not train on "
            f"(corpus: {', '.join(corpora)})."
        )
    bad = {spelled[key]: weight for key, weight in given.items() if not _is_weight(weight) or weight <= 0}
    if bad:
        raise RecipeError(f"corpus_weights must map corpora to positive finite numbers; bad entries: {bad}.")
    if len(corpora) < 2:
        raise RecipeError("corpus_weights weighs corpora against each other: it needs two corpora or more.")
    resolved = {name: float(given.get(name, 1.0)) for name in names}
    largest = max(resolved.values())
    drowned = [spelled.get(name, name) for name, weight in resolved.items() if weight / largest == 0.0]
    if drowned:
        raise RecipeError(
            f"corpus_weights: the weight of {', '.join(map(repr, drowned))} is too small beside the largest "
            f"({largest:g}) to be drawn at all; give weights within a few orders of magnitude of each other."
        )
    return resolved


#: The pooling modes a pretrained encoder's head takes (``pooling_mode``).
PRETRAINED_POOLING_MODES = (*POOLING_MODES, LAYER_STATISTICS)
#: The words ``class_weights`` takes besides a mapping of labels to weights.
CLASS_WEIGHT_WORDS = ("balanced", "none")


def _yaml_or_none(text: str) -> Any:
    """`text` read as YAML, or `None` where it is not valid YAML (the caller's own parsing words that error)."""
    try:
        return load_yaml(text)
    except (yaml.YAMLError, DuplicateKeyError):
        return None


def _class_weights_option(value: Any) -> Optional[dict | str]:
    if value is None:
        return None
    if isinstance(value, str) and value.strip() in CLASS_WEIGHT_WORDS:
        return None if value.strip() == "none" else "balanced"
    if isinstance(value, str) and value.strip() and isinstance(_yaml_or_none(value), str):
        raise RecipeError(
            f"class_weights {unknown_key_message(value.strip(), CLASS_WEIGHT_WORDS)} is not balanced, none or a "
            "mapping of labels to weights such as {angry: 2, neutral: 1}."
        )
    weights = _mapping(value, "class_weights")
    bad = {label: weight for label, weight in (weights or {}).items() if not _is_weight(weight) or weight < 0}
    if bad:
        raise RecipeError(f"class_weights must map labels to non-negative finite numbers; bad entries: {bad}.")
    return {str(label): float(weight) for label, weight in weights.items()}


RECIPE_DATACLASSES = (ModelArguments, DataArguments, AugmentationArguments, SERTrainingArguments)


def _type_name(hint: Any) -> str:
    """A type as error messages name it (``Optional[list[str]]``), here and in the parser's type check."""
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("NoneType", "None")


__all__ = [
    "AugmentationArguments",
    "DataArguments",
    "MIXUP_MODEL_TYPES",
    "MODEL_TYPES",
    "ModelArguments",
    "RECIPE_DATACLASSES",
    "SERTrainingArguments",
    "check_output_dir_writable",
    "default_dataloader_workers",
]
