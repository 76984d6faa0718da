"""Which input mode a recipe's model trains in (see :mod:`ser_hf.inputs.base` for the interface they share).

A new input mode is a subclass of :class:`~ser_hf.inputs.base.InputMode` in a file of its own, chosen here."""

from __future__ import annotations

from .base import InputMode, ModelBuilder
from .encoder_cache import FastMode
from .feature_encoder_cache import FeatureEncoderCacheMode
from .functionals import FUNCTIONALS_MODEL_TYPE, FunctionalsMode
from .raw_audio import RawAudioMode

#: Every input mode.
INPUT_MODES = (FastMode, FunctionalsMode, RawAudioMode, FeatureEncoderCacheMode)


def input_mode(model_args, data_args, augmentation_args, build_model: ModelBuilder) -> InputMode:
    """The recipe's input mode: FAST mode with ``cache_encoder_outputs``; the openSMILE functionals for the opensmile
    baseline; raw audio for the other baselines and SSL models with ``cache_feature_encoder: false``; otherwise (an
    SSL model) its frozen feature encoder's outputs cached once per clip, where they can be.

    Args:
        model_args (`ModelArguments`), data_args (`DataArguments`), augmentation_args (`AugmentationArguments`):
            the recipe.
        build_model (`Callable`): :func:`ser_hf.training.stages.build_model`, which the modes that encode the corpus
            before it is split build the recipe's model with.
    """
    if model_args.cache_encoder_outputs:
        mode = FastMode
    elif model_args.model_type == FUNCTIONALS_MODEL_TYPE:
        mode = FunctionalsMode
    elif model_args.is_baseline or model_args.cache_feature_encoder is False:
        mode = RawAudioMode
    else:
        mode = FeatureEncoderCacheMode
    return mode(model_args, data_args, augmentation_args, build_model)


__all__ = ["INPUT_MODES", "input_mode"]
