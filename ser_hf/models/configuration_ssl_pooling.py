"""Configurations of self-supervised speech encoders with a pooling head that transformers does not offer.

transformers' `Wav2Vec2ForSequenceClassification` and siblings average the projected frames. These subclasses add
one field, `pooling_mode` (attentive statistics pooling by default), and a namespaced `model_type`, so a saved model
reloads with its pooling layer through the Auto classes. This file is copied next to saved models
(``register_for_auto_class``): it imports nothing from ser-hf.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import Data2VecAudioConfig, HubertConfig, Wav2Vec2Config, WavLMConfig

from .pooling import POOLING_MODES


def _validate_pooling(config, extra_modes: tuple[str, ...] = ()) -> None:
    modes = POOLING_MODES + extra_modes
    if config.pooling_mode not in modes:
        raise ValueError(f"pooling_mode must be one of {', '.join(modes)}, got {config.pooling_mode!r}.")
    if config.pooling_attention_size <= 0:
        raise ValueError(f"pooling_attention_size must be positive, got {config.pooling_attention_size}.")


@strict
class SerWav2Vec2Config(Wav2Vec2Config):
    r"""[`Wav2Vec2Config`] with a configurable pooling head, `model_type="ser_wav2vec2"`.

    Args:
        pooling_mode (`str`, *optional*, defaults to `"attentive_statistics"`):
            How the projected frames become one vector per clip: `"mean"`, `"max"`, `"statistics"`, `"attention"`
            or `"attentive_statistics"` (attention-weighted mean and standard deviation, Okabe et al., 2018).
        pooling_attention_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention modes.
        **kwargs: the arguments of [`Wav2Vec2Config`].
    """

    model_type = "ser_wav2vec2"
    pooling_mode: str = "attentive_statistics"
    pooling_attention_size: int = 128

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        super().validate_architecture()
        _validate_pooling(self)


@strict
class SerHubertConfig(HubertConfig):
    r"""[`HubertConfig`] with a configurable pooling head, `model_type="ser_hubert"`.

    Args:
        pooling_mode (`str`, *optional*, defaults to `"attentive_statistics"`):
            How the projected frames become one vector per clip: `"mean"`, `"max"`, `"statistics"`, `"attention"`
            or `"attentive_statistics"` (attention-weighted mean and standard deviation, Okabe et al., 2018).
        pooling_attention_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention modes.
        **kwargs: the arguments of [`HubertConfig`].
    """

    model_type = "ser_hubert"
    pooling_mode: str = "attentive_statistics"
    pooling_attention_size: int = 128

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        super().validate_architecture()
        _validate_pooling(self)


@strict
class SerWavLMConfig(WavLMConfig):
    r"""[`WavLMConfig`] with a configurable pooling head, `model_type="ser_wavlm"`.

    Args:
        pooling_mode (`str`, *optional*, defaults to `"attentive_statistics"`):
            How the projected frames become one vector per clip: `"mean"`, `"max"`, `"statistics"`, `"attention"`
            or `"attentive_statistics"` (attention-weighted mean and standard deviation, Okabe et al., 2018).
        pooling_attention_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention modes.
        **kwargs: the arguments of [`WavLMConfig`].
    """

    model_type = "ser_wavlm"
    pooling_mode: str = "attentive_statistics"
    pooling_attention_size: int = 128

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        super().validate_architecture()
        _validate_pooling(self)


@strict
class SerData2VecAudioConfig(Data2VecAudioConfig):
    r"""[`Data2VecAudioConfig`] with a configurable pooling head, `model_type="ser_data2vec_audio"`.

    Args:
        pooling_mode (`str`, *optional*, defaults to `"attentive_statistics"`):
            How the projected frames become one vector per clip: `"mean"`, `"max"`, `"statistics"`, `"attention"`
            or `"attentive_statistics"` (attention-weighted mean and standard deviation, Okabe et al., 2018).
        pooling_attention_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention modes.
        **kwargs: the arguments of [`Data2VecAudioConfig`].
    """

    model_type = "ser_data2vec_audio"
    pooling_mode: str = "attentive_statistics"
    pooling_attention_size: int = 128

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        super().validate_architecture()
        _validate_pooling(self)


__all__ = ["SerData2VecAudioConfig", "SerHubertConfig", "SerWav2Vec2Config", "SerWavLMConfig"]
