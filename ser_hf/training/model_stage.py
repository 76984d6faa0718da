"""The model stage of a training run: the recipe's model built with the task's labels and the feature extractor that
feeds it, its config checked against the checkpoint before the corpus is decoded, and the input mode that gives it its
inputs."""

from __future__ import annotations

import logging
from typing import Any, Optional

from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, PreTrainedModel
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..errors import RecipeError
from ..inputs.base import InputMode
from ..inputs.modes import input_mode as recipe_mode
from ..models import build_baseline, build_ssl_classifier, build_ssl_feature_extractor, check_feature_extractor
from ..models.feature_extraction_whisper import UTTERANCE_NORMALIZATION
from ..models.runtime.baselines import default_feature_extractor
from ..models.runtime.ssl import check_config_overrides, ssl_lora_config
from ..recipe.augmentation_arguments import AugmentationArguments
from ..recipe.data_arguments import DataArguments
from ..recipe.model_arguments import ModelArguments
from ..recipe.recipe import Recipe

logger = logging.getLogger(__name__)


def build_model(
    model_args: ModelArguments, augmentation_args: AugmentationArguments, labels
) -> tuple[PreTrainedModel, SequenceFeatureExtractor]:
    """The recipe's model with the task's labels, and the feature extractor that feeds it."""
    if model_args.is_baseline:
        extractor_class = type(default_feature_extractor(model_args.model_type))
        feature_extractor = (
            extractor_class(**model_args.feature_extractor_config) if model_args.feature_extractor_config else None
        )
        return build_baseline(
            model_args.model_type, labels, feature_extractor=feature_extractor, **model_args.model_config
        )
    lora_config = None
    # LoRA on the top layers only is the input mode's (TopLayersMode), on the modules it trains.
    if model_args.use_lora and not model_args.finetune_top_layers:
        lora_options = (
            {} if model_args.lora_target_modules is None else {"target_modules": model_args.lora_target_modules}
        )
        lora_config = ssl_lora_config(
            r=model_args.lora_r, lora_alpha=model_args.lora_alpha, lora_dropout=model_args.lora_dropout, **lora_options
        )
    regime = dict(
        pooling_mode=model_args.pooling_mode,
        use_weighted_layer_sum=model_args.use_weighted_layer_sum,
        freeze_feature_encoder=model_args.freeze_feature_encoder,
        num_frozen_layers=model_args.num_frozen_layers,
        freeze_base_model=model_args.freeze_base_model,
        lora_config=lora_config,
    )
    extractor_options = {}
    if model_args.encoder_window_seconds is not None:
        regime["encoder_window_seconds"] = extractor_options["encoder_window_seconds"] = (
            model_args.encoder_window_seconds
        )
    if model_args.feature_extractor_config:
        extractor_options.update(model_args.feature_extractor_config)
    center_frames = utterance_settings(model_args)
    if model_args.model_name_or_path is None:
        logger.warning(
            "No model_name_or_path: building a randomly initialised %s from model_config (for tests and "
            "smoke runs; real runs start from a pre-trained checkpoint).",
            model_args.model_type,
        )
        # The head's regime goes into the config it is validated with: model_config may name fields that need it
        # (pooled_layers needs layer_statistics pooling over every layer).
        head = model_args.head_config_fields()
        config = AutoConfig.for_model(model_args.model_type, **{**head, **model_args.model_config, **center_frames})
        model = build_ssl_classifier(config, labels, config_overrides=augmentation_args.ssl_masking(), **regime)
        feature_extractor = build_ssl_feature_extractor(model.config, **extractor_options)
        check_feature_extractor(model, feature_extractor)
        return model, feature_extractor
    # The feature extractor first: a checkpoint without one is named before its weights are read.
    feature_extractor = build_ssl_feature_extractor(
        model_args.model_name_or_path, revision=model_args.model_revision, **extractor_options
    )
    overrides = config_overrides(model_args, augmentation_args)
    try:
        model = build_ssl_classifier(
            model_args.model_name_or_path,
            labels,
            config_overrides=overrides,
            revision=model_args.model_revision,
            reinitialize_head=model_args.reinitialize_head,
            match_head_labels=model_args.match_head_labels,
            use_safetensors=None if model_args.allow_pickled_weights else True,
            **regime,
        )
    except StrictDataclassError as error:
        raise model_config_error(model_args, error) from None
    check_feature_extractor(model, feature_extractor)
    return model, feature_extractor


def utterance_settings(model_args: ModelArguments) -> dict[str, bool]:
    """The model's part of per-utterance normalisation (``normalization: utterance``): each clip's frames centred on
    their own mean before pooling (``center_frames``); nothing for the other normalisations."""
    normalization = (model_args.feature_extractor_config or {}).get("normalization")
    return {"center_frames": True} if normalization == UTTERANCE_NORMALIZATION else {}


def config_overrides(model_args: ModelArguments, augmentation_args: AugmentationArguments) -> dict[str, Any]:
    """What :func:`build_model` sets on a pre-trained checkpoint's config besides its regime keys: the recipe's
    ``model_config``, the per-utterance centring and the SSL masking."""
    return {**model_args.model_config, **utterance_settings(model_args), **augmentation_args.ssl_masking()}


def model_config_error(model_args: ModelArguments, error: StrictDataclassError) -> RecipeError:
    """The checkpoint's config with the recipe's values failed its own checks (a layer it does not have, ...): one
    line naming both, as the recipe's other errors, not a traceback."""
    return RecipeError(f"model_config on {model_args.model_name_or_path}: {error.__cause__ or error}")


def check_model_config(model_args: ModelArguments, augmentation_args: AugmentationArguments) -> None:
    """The recipe's ``model_config`` (and SSL masking) applied to its checkpoint's config before the corpus is
    decoded, so that a value the checkpoint cannot take stops the run before any slow work (:func:`build_model`
    applies them again when it builds the model)."""
    if model_args.is_baseline or model_args.model_name_or_path is None:
        return
    overrides = config_overrides(model_args, augmentation_args)
    if not overrides:
        return
    try:
        check_config_overrides(
            model_args.model_name_or_path,
            overrides,
            pooling_mode=model_args.pooling_mode,
            use_weighted_layer_sum=model_args.use_weighted_layer_sum,
            revision=model_args.model_revision,
        )
    except StrictDataclassError as error:
        raise model_config_error(model_args, error) from None


def recipe_input_mode(
    model_args: ModelArguments | Recipe,
    data_args: Optional[DataArguments] = None,
    augmentation_args: Optional[AugmentationArguments] = None,
    device: Optional[str] = None,
) -> InputMode:
    """How the recipe's model gets its inputs (raw audio, cached feature-encoder outputs, FAST mode or openSMILE
    functionals; see :func:`ser_hf.inputs.modes.input_mode`; ``device``: the type of device it trains on), building
    models with :func:`build_model`. Takes a :class:`~ser_hf.recipe.Recipe`, or its model, data and augmentation
    sections."""
    if isinstance(model_args, Recipe):
        model_args, data_args, augmentation_args, _ = model_args
    return recipe_mode(model_args, data_args, augmentation_args, build_model, device=device)


__all__ = [
    "build_model",
    "check_model_config",
    "config_overrides",
    "model_config_error",
    "recipe_input_mode",
    "utterance_settings",
]
