"""Which input mode a recipe's model trains in (see :mod:`ser_hf.inputs.base` for the interface they share).

A new input mode is a subclass of :class:`~ser_hf.inputs.base.InputMode` in a file of its own, chosen here."""

from __future__ import annotations

import logging
from typing import Optional

from .augmented_copies import AugmentedCopiesMode
from .base import InputMode, ModelBuilder
from .fast_mode import FastMode
from .feature_encoder_cache import FeatureEncoderCacheMode
from .functionals import FUNCTIONALS_MODEL_TYPE, FunctionalsMode
from .raw_audio import RawAudioMode
from .top_layers import TopLayersMode
from .top_layers_copies import TopLayersCopiesMode

logger = logging.getLogger(__name__)

#: Every input mode.
INPUT_MODES = (
    FastMode,
    AugmentedCopiesMode,
    TopLayersMode,
    TopLayersCopiesMode,
    FunctionalsMode,
    RawAudioMode,
    FeatureEncoderCacheMode,
)


def input_mode(
    model_args, data_args, augmentation_args, build_model: ModelBuilder, device: Optional[str] = None
) -> InputMode:
    """The recipe's input mode: FAST mode with ``cache_encoder_outputs`` (the top layers fine-tuned on the cached lower
    ones with ``finetune_top_layers``; either with cached augmented copies with ``cached_augmented_copies``); the
    openSMILE functionals for the opensmile baseline; raw audio for the other baselines and SSL models with
    ``cache_feature_encoder: false``; otherwise (an SSL model) its frozen feature encoder's outputs cached once per
    clip, where they can be, when ``cache_feature_encoder`` is true, or left unset (auto) and the model trains on CPU
    (:func:`caches_feature_encoder`).

    Args:
        model_args (`ModelArguments`), data_args (`DataArguments`), augmentation_args (`AugmentationArguments`):
            the recipe.
        build_model (`Callable`): :func:`ser_hf.training.model_stage.build_model`, which the modes that encode the
            corpus before it is split build the recipe's model with.
        device (`str`, *optional*): the type of device the model trains on (``"cpu"``, ``"cuda"``, ...); by default
            ``"cuda"`` when torch sees a GPU, else ``"cpu"``.
    """
    copies = getattr(augmentation_args, "cached_augmented_copies", 0)
    if model_args.cache_encoder_outputs and getattr(model_args, "finetune_top_layers", 0):
        mode = TopLayersCopiesMode if copies else TopLayersMode
    elif model_args.cache_encoder_outputs and copies:
        mode = AugmentedCopiesMode
    elif model_args.cache_encoder_outputs:
        mode = FastMode
    elif model_args.model_type == FUNCTIONALS_MODEL_TYPE:
        mode = FunctionalsMode
    elif model_args.is_baseline or not caches_feature_encoder(model_args, device):
        mode = RawAudioMode
    else:
        mode = FeatureEncoderCacheMode
    return mode(model_args, data_args, augmentation_args, build_model)


def caches_feature_encoder(model_args, device: Optional[str] = None) -> bool:
    """Whether an SSL model's frozen feature encoder is cached (``cache_feature_encoder``): true or false as the recipe
    says; left unset (auto), on CPU only. On CPU the convolutional feature encoder is a large share of every step and
    reading its cached outputs is much cheaper (docs/results/LOG.md, bench/train_step.py); on a GPU it may cost less
    than reading its cache, which is not measured yet, so auto recomputes it there (the GPU subsection of
    docs/results/LOG.md has the command that measures it)."""
    if model_args.cache_feature_encoder is not None:
        return model_args.cache_feature_encoder
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return True
    logger.info(
        "cache_feature_encoder is not set (auto): training on %s, the feature encoder is recomputed at every step "
        "(set cache_feature_encoder: true to cache it).",
        device,
    )
    return False


__all__ = ["INPUT_MODES", "caches_feature_encoder", "input_mode"]
