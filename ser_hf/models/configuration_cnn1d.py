"""Configuration of the CNN1D baseline: a convolutional network over the raw waveform."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .pooling import POOLING_MODES


@strict
class CNN1DConfig(PreTrainedConfig):
    r"""Configuration of [`CNN1DForAudioClassification`] (an M5-style network, Dai et al., 2017).

    Args:
        conv_channels (`list[int]`, *optional*, defaults to `(64, 64, 128, 256)`):
            Output channels of each conv - batch norm - ReLU - max-pool block.
        conv_kernel_sizes (`list[int]`, *optional*, defaults to `(80, 3, 3, 3)`):
            Kernel of each block's convolution, in samples (first block) or frames.
        conv_strides (`list[int]`, *optional*, defaults to `(4, 1, 1, 1)`):
            Stride of each block's convolution.
        pool_sizes (`list[int]`, *optional*, defaults to `(4, 4, 4, 4)`):
            Max-pooling window and stride of each block (1: no pooling).
        pooling_mode (`str`, *optional*, defaults to `"statistics"`):
            Temporal pooling of the last block's frames: `"mean"`, `"max"`, `"statistics"`, `"attention"` or
            `"attentive_statistics"`.
        attention_hidden_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention pooling modes.
        classifier_dropout (`float`, *optional*, defaults to 0.3):
            Dropout before the classifier.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
    """

    model_type = "ser_cnn1d"

    conv_channels: list[int] | tuple[int, ...] = (64, 64, 128, 256)
    conv_kernel_sizes: list[int] | tuple[int, ...] = (80, 3, 3, 3)
    conv_strides: list[int] | tuple[int, ...] = (4, 1, 1, 1)
    pool_sizes: list[int] | tuple[int, ...] = (4, 4, 4, 4)
    pooling_mode: str = "statistics"
    attention_hidden_size: int = 128
    classifier_dropout: float | int = 0.3
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        sizes = {len(self.conv_channels), len(self.conv_kernel_sizes), len(self.conv_strides), len(self.pool_sizes)}
        if len(sizes) != 1 or not self.conv_channels:
            raise ValueError(
                "conv_channels, conv_kernel_sizes, conv_strides and pool_sizes must have one entry per block, got "
                f"{len(self.conv_channels)}, {len(self.conv_kernel_sizes)}, {len(self.conv_strides)} and "
                f"{len(self.pool_sizes)}."
            )
        values = (*self.conv_channels, *self.conv_kernel_sizes, *self.conv_strides, *self.pool_sizes)
        if min(values) <= 0:
            raise ValueError("Every channel count, kernel, stride and pool size must be positive.")
        if self.pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode must be one of {', '.join(POOLING_MODES)}, got {self.pooling_mode!r}.")


__all__ = ["CNN1DConfig"]
