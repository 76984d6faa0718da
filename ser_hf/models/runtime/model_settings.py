"""What a model's settings get wrong, in the words of the recipe keys that set them: the keys that only SSL encoders
take, set for a baseline; a Whisper feature extractor's fields; Whisper's encoder window; the training regimes that
conflict (LoRA, frozen and cached encoders, FAST mode, the top layers fine-tuned on cached ones); and the config class
a model type is configured with, its fields' types and its own checks (:func:`model_config_class`,
:func:`config_field_types`, :func:`check_config_values`). They are facts of the model families, so they live with the
models, beside the registry and builders that read them (not among the files a saved model carries). The recipe's
model section (``ser_hf.recipe.model_arguments``) runs them on itself: `settings` is any object with that section's
attributes (this stage never imports the recipe, which sits above it).
"""

from __future__ import annotations

import inspect
from typing import Any

from ...errors import RecipeError
from ..configuration_whisper import LAYER_STATISTICS
from ..feature_extraction_whisper import (
    DEREVERBERATIONS,
    STATE_NORMALIZATIONS,
    UTTERANCE_NORMALIZATION,
    check_dereverberation_installed,
    dereverberation_taps_problem,
    is_dereverberation,
    is_trim_silence_db,
)
from ..feature_normalization import GROUP_NORMALIZATIONS
from .baselines import BASELINES
from .registry import ENCODER_FAMILIES
from .ssl import TOP_LAYERS_LORA_TARGET_MODULES

#: The fields of a Whisper feature extractor a recipe's feature_extractor_config may set.
WHISPER_EXTRACTOR_FIELDS = (
    "normalization",
    "trim_silence_db",
    "speaker_statistics_check",
    "dereverberation",
    "dereverberation_taps",
)
#: The encoder family whose feature extractor takes `normalization` and whose window can be shortened.
WHISPER_MODEL_TYPE = "whisper"


def check_model_settings(settings: Any) -> None:
    """Raise :class:`~ser_hf.errors.RecipeError` on the first model setting the model family cannot take, or on every
    training-regime setting that conflicts with another (:func:`regime_conflicts`), reported together."""
    if settings.model_type in BASELINES:
        _check_baseline_settings(settings)
    elif settings.model_type == WHISPER_MODEL_TYPE:
        _check_whisper_extractor(settings.feature_extractor_config)
    elif settings.feature_extractor_config:
        raise RecipeError(
            "feature_extractor_config applies to the baselines and Whisper; other SSL encoders use their checkpoint's."
        )
    if settings.encoder_window_seconds is not None:
        if settings.model_type != WHISPER_MODEL_TYPE:
            raise RecipeError(
                f"encoder_window_seconds applies to Whisper encoders, not to model_type {settings.model_type!r}."
            )
        if isinstance(settings.encoder_window_seconds, bool) or not 1 <= settings.encoder_window_seconds <= 30:
            raise RecipeError(
                f"encoder_window_seconds: {settings.encoder_window_seconds!r} must be a whole number of seconds "
                "from 1 to 30 (Whisper's positional embeddings cover 30 s)."
            )
    conflicts = regime_conflicts(settings)
    if len(conflicts) == 1:
        raise RecipeError(conflicts[0])
    if conflicts:
        raise RecipeError(
            f"{len(conflicts)} settings of the recipe conflict: "
            + " ".join(f"({number}) {text}" for number, text in enumerate(conflicts, start=1))
        )


def model_config_class(model_type: str) -> type:
    """The config class a recipe's ``model_config`` is checked against: a baseline's own, or for an encoder, ser-hf's
    config of its family (its pooling fields, Whisper's head_dropout), which extends the checkpoint's, or
    transformers' config of the model type."""
    if model_type in BASELINES:
        return BASELINES[model_type][0]
    family = ENCODER_FAMILIES.get(model_type)
    if family:
        return family.pooling_config_class
    from transformers import AutoConfig

    return type(AutoConfig.for_model(model_type))


def config_field_types(config_class: type) -> dict[str, Any]:
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


def check_config_values(name: str, values: dict, config_class: type) -> None:
    """Build the config from ``values`` so that its own checks (``validate_architecture``) stop the run now, in one
    line naming `name`, rather than as a ``StrictDataclassError`` once the data is loaded."""
    from huggingface_hub.errors import StrictDataclassError

    try:
        config_class(**values)
    except (StrictDataclassError, TypeError, ValueError) as error:
        cause = error.__cause__ if isinstance(error, StrictDataclassError) and error.__cause__ else error
        raise RecipeError(f"{name}: {cause}") from None


def _check_baseline_settings(settings: Any) -> None:
    """Stop on the keys that only apply to SSL encoders, set for a baseline (which trains from scratch)."""
    ssl_only = {
        "model_name_or_path": settings.model_name_or_path,
        "pooling_mode": settings.pooling_mode,
        "use_weighted_layer_sum": settings.use_weighted_layer_sum,
        "num_frozen_layers": settings.num_frozen_layers,
        "freeze_base_model": settings.freeze_base_model,
        "use_lora": settings.use_lora,
        "cache_encoder_outputs": settings.cache_encoder_outputs,
        "cache_feature_encoder": settings.cache_feature_encoder,
    }
    set_fields = [name for name, value in ssl_only.items() if value]
    if set_fields:
        raise RecipeError(
            f"{', '.join(set_fields)} only apply to SSL encoders, not to the {settings.model_type} "
            "baseline (it trains from scratch)."
        )


def _check_whisper_extractor(feature_extractor_config: dict) -> None:
    """Stop on a Whisper feature extractor field a recipe cannot set, or a value it cannot take."""
    unknown = sorted(set(feature_extractor_config) - set(WHISPER_EXTRACTOR_FIELDS))
    if unknown:
        raise RecipeError(
            f"feature_extractor_config: {', '.join(unknown)} cannot be set for Whisper; it takes "
            f"{', '.join(f'`{name}`' for name in WHISPER_EXTRACTOR_FIELDS)} only (the rest is the "
            "checkpoint's preprocessor_config.json)."
        )
    trim = feature_extractor_config.get("trim_silence_db")
    if not is_trim_silence_db(trim):
        raise RecipeError(
            f"feature_extractor_config.trim_silence_db: {trim!r} is not a number of dB above 0 (e.g. 30: "
            "frames quieter than 30 dB below the clip's loudest are trimmed from its ends), nor null."
        )
    dereverberation = feature_extractor_config.get("dereverberation")
    if not is_dereverberation(dereverberation):
        raise RecipeError(
            f"feature_extractor_config.dereverberation: {dereverberation!r} is not one of "
            f"{', '.join(DEREVERBERATIONS)} (wpe: weighted prediction error before the encoder), nor null."
        )
    taps_problem = dereverberation_taps_problem(feature_extractor_config.get("dereverberation_taps"), dereverberation)
    if taps_problem:
        raise RecipeError(f"feature_extractor_config.{taps_problem}")
    try:
        check_dereverberation_installed(dereverberation)
    except ImportError as error:
        raise RecipeError(f"feature_extractor_config.dereverberation: {error}") from None
    normalization = feature_extractor_config.get("normalization", "none")
    if normalization not in STATE_NORMALIZATIONS:
        raise RecipeError(
            f"feature_extractor_config.normalization: {normalization!r} is not one of "
            f"{', '.join(STATE_NORMALIZATIONS)}."
        )
    check = feature_extractor_config.get("speaker_statistics_check", False)
    if not isinstance(check, bool) or (check and normalization != "speaker"):
        raise RecipeError(
            f"feature_extractor_config.speaker_statistics_check: {check!r} must be true or false, and true "
            f"only with normalization: speaker (here {normalization!r})."
        )


def regime_conflicts(settings: Any) -> list[str]:
    """Every training-regime setting that conflicts with another, each in words with what to change: reported
    together, in one error, before anything is decoded."""
    conflicts = []
    normalization = settings.feature_extractor_config.get("normalization", "none")
    if settings.model_type == WHISPER_MODEL_TYPE and normalization != "none" and not settings.cache_encoder_outputs:
        conflicts.append(
            f"feature_extractor_config.normalization: {normalization} standardises the frozen encoder's "
            "states with statistics of their cache: it needs cache_encoder_outputs: true and "
            "freeze_base_model: true."
        )
    if normalization == UTTERANCE_NORMALIZATION and settings.pooling_mode != LAYER_STATISTICS:
        conflicts.append(
            f"feature_extractor_config.normalization: {UTTERANCE_NORMALIZATION} centres each clip's frames on "
            f"their own mean, which leaves only their spread to pool: it needs pooling_mode: {LAYER_STATISTICS} "
            f"(got {settings.pooling_mode!r})."
        )
    # With finetune_top_layers, LoRA adapts the top layers only, on the cached lower ones (_check_top_layers).
    whole_encoder_lora = settings.use_lora and not settings.finetune_top_layers
    if whole_encoder_lora and settings.use_weighted_layer_sum:
        conflicts.append(
            "use_lora with use_weighted_layer_sum is not supported: peft adapter checkpoints do not "
            "hold the layer weights, so best-model loading and resuming would lose them."
        )
    if whole_encoder_lora and (settings.freeze_base_model or settings.num_frozen_layers):
        conflicts.append("use_lora already freezes the whole encoder: drop freeze_base_model and num_frozen_layers.")
    if settings.num_frozen_layers and settings.freeze_base_model:
        conflicts.append(
            "num_frozen_layers and freeze_base_model both set: freeze_base_model freezes every layer; keep one."
        )
    if settings.cache_feature_encoder and not settings.freeze_feature_encoder:
        conflicts.append(
            "cache_feature_encoder: true needs freeze_feature_encoder: true (a feature encoder that "
            "trains changes its outputs every step)."
        )
    if settings.cache_feature_encoder and settings.cache_encoder_outputs:
        conflicts.append(
            "cache_feature_encoder and cache_encoder_outputs (FAST mode) are both set: FAST mode "
            "already caches the whole encoder's outputs; leave cache_feature_encoder unset."
        )
    # Whisper's classifier reads SpecAugment's keys only on the cached frames of finetune_top_layers (wav2vec 2.0,
    # HuBERT and WavLM apply them to their own hidden states in training, as transformers does).
    if (
        settings.model_type == WHISPER_MODEL_TYPE
        and settings.model_config.get("apply_spec_augment")
        and not settings.finetune_top_layers
    ):
        conflicts.append(
            "model_config.apply_spec_augment: true needs finetune_top_layers with Whisper (it masks the cached "
            "input of the first fine-tuned layer; FAST mode caches pooled statistics that no mask reaches, and "
            "the other Whisper regimes do not read it): set finetune_top_layers, or drop apply_spec_augment and "
            "augment the audio (cached_augmented_copies, augmentation probabilities)."
        )
    if settings.finetune_top_layers:
        try:
            _check_top_layers(settings)
        except RecipeError as error:
            return conflicts + [str(error)]  # it names the FAST keys it needs itself
    if settings.cache_encoder_outputs:
        if not settings.freeze_base_model:
            conflicts.append(
                "cache_encoder_outputs needs freeze_base_model: true (a trained encoder's outputs "
                "change every step and cannot be cached; finetune_top_layers trains the top layers on them)."
            )
        if settings.pooling_mode not in (None, "mean", LAYER_STATISTICS):
            conflicts.append(
                f"cache_encoder_outputs needs mean pooling (or {LAYER_STATISTICS} for Whisper), not "
                f"pooling_mode={settings.pooling_mode!r}: only they can be computed from cached pooled layer "
                "outputs."
            )
    return conflicts


def _check_top_layers(settings: Any) -> None:
    """Every key that conflicts with ``finetune_top_layers``, in one error with the working form."""
    value = settings.finetune_top_layers
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecipeError(f"finetune_top_layers: {value!r} must be a whole number of layers (0: none).")
    wanted = {
        "model_type": (settings.model_type, WHISPER_MODEL_TYPE),
        "cache_encoder_outputs": (settings.cache_encoder_outputs, True),
        "freeze_base_model": (settings.freeze_base_model, True),
        "use_weighted_layer_sum": (settings.use_weighted_layer_sum, True),
        "pooling_mode": (settings.pooling_mode, LAYER_STATISTICS),
        "model_config.trim_window": (settings.model_config.get("trim_window", False), True),
        "num_frozen_layers": (settings.num_frozen_layers, 0),
    }
    conflicts = [f"{key}: {have!r} (needs {need!r})" for key, (have, need) in wanted.items() if have != need]
    unknown = [name for name in settings.lora_target_modules or () if name not in TOP_LAYERS_LORA_TARGET_MODULES]
    if settings.use_lora and unknown:
        conflicts.append(
            f"lora_target_modules: {', '.join(map(str, unknown))} (a Whisper encoder layer's linear modules are "
            f"{', '.join(TOP_LAYERS_LORA_TARGET_MODULES)})"
        )
    normalization = settings.feature_extractor_config.get("normalization", "none")
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


__all__ = [
    "WHISPER_EXTRACTOR_FIELDS",
    "WHISPER_MODEL_TYPE",
    "check_config_values",
    "check_model_settings",
    "config_field_types",
    "model_config_class",
    "regime_conflicts",
]
