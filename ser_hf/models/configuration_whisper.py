"""Configuration of Whisper's encoder as an emotion classifier whose pooling reads only the frames a clip covers.

transformers' `WhisperForAudioClassification` averages all `max_source_positions` encoder frames of the window (1500
for 30 s), the silence the feature extractor pads a short clip with included. `SerWhisperConfig` adds the pooling
head's fields under a namespaced `model_type`, so a saved model reloads through the Auto classes with ser-hf's
pooling. This file is copied next to saved models (``register_for_auto_class``): it imports nothing from ser-hf.
"""

from __future__ import annotations

from typing import Optional

from huggingface_hub.dataclasses import strict
from transformers import WhisperConfig

from .configuration_ssl_pooling import _validate_pooling

#: Encoder frames per second of audio: 100 mel frames a second, halved by the encoder's strided convolution.
WHISPER_FRAMES_PER_SECOND = 50
#: The pooling mode of Whisper's head that pools each layer's raw states to statistics before projecting them.
LAYER_STATISTICS = "layer_statistics"


@strict
class SerWhisperConfig(WhisperConfig):
    r"""[`WhisperConfig`] of an emotion classifier on Whisper's encoder, `model_type="ser_whisper"`.

    The encoder's window is `max_source_positions / 50` seconds (30 s for OpenAI's checkpoints; shorter windows keep
    the first positional embeddings, see `ser_hf.models.set_encoder_window`). The decoder's fields are kept as the
    checkpoint had them but no decoder is built.

    Args:
        pooling_mode (`str`, *optional*, defaults to `"mean"`):
            How the clip's frames (never the window's padding) become one vector: `"mean"`, `"max"`, `"mean_max"`,
            `"statistics"`, `"attention"` or `"attentive_statistics"` pool the projected frames (of the last layer,
            or of the weighted layer sum); `"layer_statistics"` pools each layer's own states to their mean and
            standard deviation and projects them concatenated (every layer with `use_weighted_layer_sum`, which then
            learns no layer weights: the projector weighs the layers), which FAST mode caches as it does the means.
        pooling_attention_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention modes.
        head_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the head's inputs (the pooled vector before the classifier; with `"layer_statistics"`, also
            the standardised statistics before the projector).
        trim_window (`bool`, *optional*, defaults to `False`):
            Encode each batch through its longest clip's frames only (the positional embeddings of those frames,
            every clip's padding masked out of attention), never the whole window's padding: a 3.5-s clip in a 10-s
            window costs a third, and its states no longer depend on silence it was not recorded with. `False`:
            the window whole, as Whisper was trained (a clip's frames attend to the window's padding).
        pooled_layers (`list[int]`, *optional*):
            With `"layer_statistics"` pooling of every layer, the layers whose statistics the head reads (0: the input
            embeddings, `num_hidden_layers`: the last layer); every layer when unset. The encoder still runs (and FAST
            mode still caches) every layer: the choice is the head's, so one cache serves every choice.
        **kwargs: the arguments of [`WhisperConfig`].
    """

    model_type = "ser_whisper"
    pooling_mode: str = "mean"
    pooling_attention_size: int = 128
    head_dropout: float = 0.0
    trim_window: bool = False
    center_frames: bool = False
    pooled_layers: Optional[list[int]] = None

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        super().validate_architecture()
        _validate_pooling(self, extra_modes=(LAYER_STATISTICS,))
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"head_dropout must be in [0, 1), got {self.head_dropout}.")
        if self.pooled_layers is not None:
            self._validate_pooled_layers()
        if self.center_frames and not self.pools_layer_statistics:
            raise ValueError(
                f"center_frames needs pooling_mode='{LAYER_STATISTICS}' (centred frames pool to a zero mean), got "
                f"pooling_mode={self.pooling_mode!r}."
            )

    def _validate_pooled_layers(self) -> None:
        layers = self.pooled_layers
        if not (self.pools_layer_statistics and self.use_weighted_layer_sum):
            raise ValueError(
                f"pooled_layers needs pooling_mode='{LAYER_STATISTICS}' and use_weighted_layer_sum=True (the head "
                f"then reads every layer's statistics), got pooling_mode={self.pooling_mode!r}, "
                f"use_weighted_layer_sum={self.use_weighted_layer_sum}."
            )
        valid = range(self.num_hidden_layers + 1)
        if (
            not isinstance(layers, (list, tuple))
            or not layers
            or any(isinstance(layer, bool) or not isinstance(layer, int) or layer not in valid for layer in layers)
            or len(set(layers)) != len(layers)
        ):
            raise ValueError(
                "pooled_layers must list distinct layers between 0 (the input embeddings) and "
                f"{self.num_hidden_layers} (the last layer), got {layers!r}."
            )

    @property
    def pooled_layer_count(self) -> int:
        """How many layers' statistics the head reads."""
        if self.pooled_layers is not None:
            return len(self.pooled_layers)
        return self.num_hidden_layers + 1 if self.use_weighted_layer_sum else 1

    @property
    def pools_layer_statistics(self) -> bool:
        """Whether the head reads each layer's mean and standard deviation (`pooling_mode="layer_statistics"`)."""
        return self.pooling_mode == LAYER_STATISTICS

    @property
    def window_seconds(self) -> float:
        """The encoder's window in seconds."""
        return self.max_source_positions / WHISPER_FRAMES_PER_SECOND


__all__ = ["LAYER_STATISTICS", "SerWhisperConfig", "WHISPER_FRAMES_PER_SECOND"]
