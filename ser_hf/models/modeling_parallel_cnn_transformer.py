"""Parallel CNN + transformer baseline: convolutional branches (3x3 and 5x5 kernels by default) and a transformer
encoder read the same log-mel spectrogram side by side; their pooled vectors are concatenated and classified."""

from __future__ import annotations

import math

import torch
from torch import nn

from .configuration_parallel_cnn_transformer import ParallelCNNTransformerConfig
from .masked_conv import MaskedConvStack, pool_output_lengths
from .modeling_baseline import BaselineForAudioClassification
from .pooling import TemporalPooling, lengths_to_mask


def masked_time_max_pool(
    frames: torch.Tensor, lengths: torch.Tensor, pool_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-pool `frames` `(batch, time, features)` over time in windows of `pool_size`, reading real frames only.

    Padded frames are set to the lowest value first, so a window that runs past the end of a clip takes the maximum of
    the clip's own frames, as it does when the clip is alone. The windows are those of `ceil_mode` pooling, written as
    plain pooling over a time axis padded to a whole number of windows: `ceil_mode` makes `torch.export` fix the
    length (so the ONNX graph would take one length only). The padding is worked out with non-negative integers, where
    floor division and ONNX's truncating integer `Div` agree.
    Returns the pooled frames, zero past each clip's new length, and the new lengths.
    """
    windows = (frames.shape[1] + pool_size - 1) // pool_size
    frames = nn.functional.pad(frames, (0, 0, 0, windows * pool_size - frames.shape[1]))
    mask = lengths_to_mask(lengths, frames.shape[1]).unsqueeze(-1)
    lowest = torch.finfo(frames.dtype).min
    pooled = nn.functional.max_pool1d(frames.masked_fill(~mask, lowest).transpose(1, 2), pool_size)
    lengths = pool_output_lengths(lengths, pool_size)
    pooled = pooled.transpose(1, 2)
    return pooled * lengths_to_mask(lengths, pooled.shape[1]).unsqueeze(-1).to(pooled.dtype), lengths


def sinusoidal_positions(num_positions: int, hidden_size: int, device, dtype) -> torch.Tensor:
    """Fixed sine/cosine position encodings `(num_positions, hidden_size)` (Vaswani et al., 2017), of any length."""
    positions = torch.arange(num_positions, device=device, dtype=torch.float32).unsqueeze(1)
    frequencies = torch.exp(
        torch.arange(0, hidden_size, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / hidden_size)
    )
    encodings = torch.zeros(num_positions, hidden_size, device=device, dtype=torch.float32)
    encodings[:, 0::2] = torch.sin(positions * frequencies)
    encodings[:, 1::2] = torch.cos(positions * frequencies)[:, : hidden_size // 2]
    return encodings.to(dtype)


class ParallelCNNTransformerForAudioClassification(BaselineForAudioClassification):
    r"""Parallel convolutional branches and a transformer encoder over log-mel spectrograms.

    Each convolutional branch is a stack of conv - batch norm - ReLU - max-pool blocks with its own kernel size
    (`config.branch_kernel_sizes`), so the branches see the spectrogram at different receptive fields; its frequency
    axis is averaged away and its frames pooled over time. The transformer branch max-pools the mel frames over time,
    projects them to `transformer_hidden_size`, adds sinusoidal positions and runs a pre-norm transformer encoder whose
    attention ignores padded frames. The branch vectors are concatenated and classified. Padding never changes a clip's
    logits. Inputs are log-mel spectrograms `(batch_size, frames, num_mel_bins)` from [`LogMelFeatureExtractor`].
    """

    config: ParallelCNNTransformerConfig
    config_class = ParallelCNNTransformerConfig
    base_model_prefix = "parallel_cnn_transformer"

    def __init__(self, config: ParallelCNNTransformerConfig):
        super().__init__(config)
        self.cnn_branches = nn.ModuleList(
            MaskedConvStack.over_spectrogram(config.conv_channels, kernel_size, config.pool_size)
            for kernel_size in config.branch_kernel_sizes
        )
        self.frequency_pool = nn.AdaptiveAvgPool2d((1, None))
        self.cnn_poolers = nn.ModuleList(
            TemporalPooling(config.conv_channels[-1], config.pooling_mode, config.attention_hidden_size)
            for _ in config.branch_kernel_sizes
        )
        self.input_projection = nn.Linear(config.num_mel_bins, config.transformer_hidden_size)
        layer = nn.TransformerEncoderLayer(
            d_model=config.transformer_hidden_size,
            nhead=config.transformer_num_heads,
            dim_feedforward=config.transformer_intermediate_size,
            dropout=config.transformer_dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, config.transformer_num_layers, enable_nested_tensor=False)
        self.transformer_norm = nn.LayerNorm(config.transformer_hidden_size)
        self.transformer_pooler = TemporalPooling(
            config.transformer_hidden_size, config.pooling_mode, config.attention_hidden_size
        )
        fused_size = sum(p.output_size for p in self.cnn_poolers) + self.transformer_pooler.output_size
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(fused_size, config.num_labels)
        self.post_init()

    def _transformer_branch(self, input_features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        frames, lengths = input_features, lengths
        if self.config.transformer_time_pool > 1:
            frames, lengths = masked_time_max_pool(frames, lengths, self.config.transformer_time_pool)
        mask = lengths_to_mask(lengths, frames.shape[1])
        hidden_states = self.input_projection(frames)
        hidden_states = hidden_states + sinusoidal_positions(
            hidden_states.shape[1], hidden_states.shape[2], hidden_states.device, hidden_states.dtype
        )
        hidden_states = self.transformer(hidden_states, src_key_padding_mask=~mask)
        hidden_states = self.transformer_norm(hidden_states)
        return self.transformer_pooler(hidden_states, mask)

    def classify(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        spectrogram = features.transpose(1, 2).unsqueeze(1)
        branch_vectors = []
        for branch, pooler in zip(self.cnn_branches, self.cnn_poolers):
            hidden_states, branch_lengths = branch(spectrogram, lengths)
            frames = self.frequency_pool(hidden_states).squeeze(2).transpose(1, 2)
            branch_vectors.append(pooler(frames, lengths_to_mask(branch_lengths, frames.shape[1])))
        branch_vectors.append(self._transformer_branch(features, lengths))
        return self.classifier(self.dropout(torch.cat(branch_vectors, dim=-1)))


__all__ = ["ParallelCNNTransformerForAudioClassification"]
