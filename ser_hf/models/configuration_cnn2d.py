"""Configuration of the CNN2D baseline: a convolutional network over log-mel spectrograms."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .pooling import POOLING_MODES

#: What :class:`CNN2DForAudioClassification` does with the frequency bins the conv blocks leave.
FREQUENCY_POOLING_MODES = ("mean", "flatten")


@strict
class CNN2DConfig(PreTrainedConfig):
    r"""Configuration of [`CNN2DForAudioClassification`].

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64):
            Mel bands of the input spectrogram; must equal the feature extractor's `n_mels`.
        conv_channels (`list[int]`, *optional*, defaults to `(32, 64, 128, 256)`):
            Output channels of each conv - batch norm - ReLU - max-pool block.
        conv_kernel_size (`int`, *optional*, defaults to 3):
            Square kernel of every convolution.
        pool_size (`list[int]`, *optional*, defaults to `(2, 2)`):
            (frequency, time) max-pooling window and stride of every block.
        frequency_pooling (`str`, *optional*, defaults to `"mean"`):
            What becomes of the frequency bins left after the conv blocks: `"mean"` averages them away (adaptive
            average pooling to one bin: each frame is `conv_channels[-1]` values), `"flatten"` keeps them side by side
            (each frame is `conv_channels[-1]` x remaining bins values), so the classifier still sees where in the
            spectrum a pattern lies (pitch and formant regions).
        pooling_mode (`str`, *optional*, defaults to `"statistics"`):
            How frames are pooled into one vector per clip: `"mean"`, `"max"`, `"statistics"`, `"attention"` or
            `"attentive_statistics"`.
        attention_hidden_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention pooling modes.
        classifier_dropout (`float`, *optional*, defaults to 0.3):
            Dropout before the classifier.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
    """

    model_type = "ser_cnn2d"

    num_mel_bins: int = 64
    conv_channels: list[int] | tuple[int, ...] = (32, 64, 128, 256)
    conv_kernel_size: int = 3
    pool_size: list[int] | tuple[int, ...] = (2, 2)
    frequency_pooling: str = "mean"
    pooling_mode: str = "statistics"
    attention_hidden_size: int = 128
    classifier_dropout: float | int = 0.3
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        if self.num_mel_bins <= 0 or not self.conv_channels or min(self.conv_channels) <= 0:
            raise ValueError("num_mel_bins and every conv_channels entry must be positive, with at least one block.")
        if len(self.pool_size) != 2 or min(self.pool_size) <= 0:
            raise ValueError(f"pool_size must be two positive (frequency, time) sizes, got {self.pool_size}.")
        if self.frequency_pooling not in FREQUENCY_POOLING_MODES:
            choices = ", ".join(FREQUENCY_POOLING_MODES)
            raise ValueError(f"frequency_pooling must be one of {choices}, got {self.frequency_pooling!r}.")
        if self.pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode must be one of {', '.join(POOLING_MODES)}, got {self.pooling_mode!r}.")


__all__ = ["CNN2DConfig"]
