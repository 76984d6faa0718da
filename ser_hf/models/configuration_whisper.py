"""Configuration of Whisper's encoder as an emotion classifier whose pooling reads only the frames a clip covers.

transformers' `WhisperForAudioClassification` averages all `max_source_positions` encoder frames of the window (1500
for 30 s), the silence the feature extractor pads a short clip with included. `SerWhisperConfig` adds the pooling
head's fields under a namespaced `model_type`, so a saved model reloads through the Auto classes with ser-hf's
pooling. This file is copied next to saved models (``register_for_auto_class``): it imports nothing from ser-hf.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import WhisperConfig

from .configuration_ssl_pooling import _validate_pooling

#: Encoder frames per second of audio: 100 mel frames a second, halved by the encoder's strided convolution.
WHISPER_FRAMES_PER_SECOND = 50


@strict
class SerWhisperConfig(WhisperConfig):
    r"""[`WhisperConfig`] of an emotion classifier on Whisper's encoder, `model_type="ser_whisper"`.

    The encoder's window is `max_source_positions / 50` seconds (30 s for OpenAI's checkpoints; shorter windows keep
    the first positional embeddings, see `ser_hf.models.set_encoder_window`). The decoder's fields are kept as the
    checkpoint had them but no decoder is built.

    Args:
        pooling_mode (`str`, *optional*, defaults to `"mean"`):
            How the projected frames of the clip (never the window's padding) become one vector: `"mean"`, `"max"`,
            `"mean_max"`, `"statistics"`, `"attention"` or `"attentive_statistics"`.
        pooling_attention_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention modes.
        **kwargs: the arguments of [`WhisperConfig`].
    """

    model_type = "ser_whisper"
    pooling_mode: str = "mean"
    pooling_attention_size: int = 128

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        super().validate_architecture()
        _validate_pooling(self)

    @property
    def window_seconds(self) -> float:
        """The encoder's window in seconds."""
        return self.max_source_positions / WHISPER_FRAMES_PER_SECOND


__all__ = ["SerWhisperConfig", "WHISPER_FRAMES_PER_SECOND"]
