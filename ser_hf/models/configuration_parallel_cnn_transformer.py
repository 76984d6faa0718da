"""Configuration of the parallel CNN + transformer baseline: convolutional branches with different kernel sizes and a
transformer encoder, side by side over the same log-mel spectrogram."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .pooling import POOLING_MODES


@strict
class ParallelCNNTransformerConfig(PreTrainedConfig):
    r"""Configuration of [`ParallelCNNTransformerForAudioClassification`].

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64):
            Mel bands of the input spectrogram; must equal the feature extractor's `n_mels`.
        conv_channels (`list[int]`, *optional*, defaults to `(16, 32, 64)`):
            Output channels of each conv - batch norm - ReLU - max-pool block of every convolutional branch.
        branch_kernel_sizes (`list[int]`, *optional*, defaults to `(3, 5)`):
            One convolutional branch per entry, whose every convolution has this (odd) square kernel: the seeds' 3x3
            and 5x5 branches.
        pool_size (`list[int]`, *optional*, defaults to `(2, 2)`):
            (frequency, time) max-pooling window and stride of every block.
        transformer_time_pool (`int`, *optional*, defaults to 4):
            Max-pooling window (and stride) over time before the transformer, which shortens the sequence its
            attention runs over; 1 keeps every frame.
        transformer_hidden_size (`int`, *optional*, defaults to 64):
            Width of the transformer; the mel frames are projected to it.
        transformer_num_layers (`int`, *optional*, defaults to 2):
            Transformer encoder layers.
        transformer_num_heads (`int`, *optional*, defaults to 4):
            Attention heads; must divide `transformer_hidden_size`.
        transformer_intermediate_size (`int`, *optional*, defaults to 128):
            Width of each layer's feed-forward network.
        transformer_dropout (`float`, *optional*, defaults to 0.1):
            Dropout inside the transformer layers.
        pooling_mode (`str`, *optional*, defaults to `"mean"`):
            Temporal pooling of every branch's frames: `"mean"`, `"max"`, `"statistics"`, `"attention"` or
            `"attentive_statistics"`.
        attention_hidden_size (`int`, *optional*, defaults to 64):
            Width of the frame-scoring network of the attention pooling modes.
        classifier_dropout (`float`, *optional*, defaults to 0.3):
            Dropout on the concatenated branch vectors, before the classifier.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
    """

    model_type = "ser_parallel_cnn_transformer"

    num_mel_bins: int = 64
    conv_channels: list[int] | tuple[int, ...] = (16, 32, 64)
    branch_kernel_sizes: list[int] | tuple[int, ...] = (3, 5)
    pool_size: list[int] | tuple[int, ...] = (2, 2)
    transformer_time_pool: int = 4
    transformer_hidden_size: int = 64
    transformer_num_layers: int = 2
    transformer_num_heads: int = 4
    transformer_intermediate_size: int = 128
    transformer_dropout: float | int = 0.1
    pooling_mode: str = "mean"
    attention_hidden_size: int = 64
    classifier_dropout: float | int = 0.3
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        if self.num_mel_bins <= 0 or not self.conv_channels or min(self.conv_channels) <= 0:
            raise ValueError("num_mel_bins and every conv_channels entry must be positive, with at least one block.")
        if not self.branch_kernel_sizes or any(k <= 0 or k % 2 == 0 for k in self.branch_kernel_sizes):
            raise ValueError(
                f"branch_kernel_sizes must be positive odd kernel sizes (one per branch), got "
                f"{self.branch_kernel_sizes}."
            )
        if len(self.pool_size) != 2 or min(self.pool_size) <= 0:
            raise ValueError(f"pool_size must be two positive (frequency, time) sizes, got {self.pool_size}.")
        if self.transformer_time_pool <= 0:
            raise ValueError(f"transformer_time_pool must be positive, got {self.transformer_time_pool}.")
        if (
            min(
                self.transformer_hidden_size,
                self.transformer_num_layers,
                self.transformer_num_heads,
                self.transformer_intermediate_size,
            )
            <= 0
        ):
            raise ValueError("The transformer's sizes, layers and heads must be positive.")
        if self.transformer_hidden_size % self.transformer_num_heads:
            raise ValueError(
                f"transformer_num_heads ({self.transformer_num_heads}) must divide "
                f"transformer_hidden_size ({self.transformer_hidden_size})."
            )
        if self.pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode must be one of {', '.join(POOLING_MODES)}, got {self.pooling_mode!r}.")


__all__ = ["ParallelCNNTransformerConfig"]
