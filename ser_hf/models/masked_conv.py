"""Convolution blocks for padded batches of variable-length clips.

A convolution over a zero-padded batch sees, past the end of a short clip, the same zeros its own zero padding would
give it alone, provided the padded frames are zero when each convolution reads them. The blocks here keep them zero
(they multiply by the frame mask after every activation), compute batch-norm statistics over real frames only, and
track how each layer shortens the clips, so a clip's output never depends on the batch it came in. This file is copied
next to saved baseline models (``register_for_auto_class``): it imports nothing but ``torch`` and ``transformers``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import nn
from transformers import initialization as init

from .pooling import lengths_to_mask


def conv_output_lengths(lengths: torch.Tensor, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """Frames a convolution (no dilation) returns for inputs of `lengths` frames."""
    return torch.div(lengths + 2 * padding - kernel_size, stride, rounding_mode="floor") + 1


def pool_output_lengths(lengths: torch.Tensor, pool_size: int) -> torch.Tensor:
    """Frames a `ceil_mode` max-pooling of window and stride `pool_size` returns for inputs of `lengths` frames."""
    return torch.div(lengths + pool_size - 1, pool_size, rounding_mode="floor")


def _time_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a `(batch, time)` mask so that it broadcasts against `like` `(batch, channels, ..., time)`."""
    shape = (mask.shape[0],) + (1,) * (like.dim() - 2) + (mask.shape[1],)
    return mask.view(shape).to(like.dtype)


class MaskedBatchNorm(nn.Module):
    """Batch normalisation whose training statistics are taken over real (unmasked) frames only.

    Behaves as `nn.BatchNorm1d`/`nn.BatchNorm2d` on inputs `(batch, channels, time)` or `(batch, channels, freq,
    time)`, with the same parameters and buffers; in evaluation mode it is a plain batch norm with running statistics.

    Args:
        num_features (`int`): Number of channels.
        eps (`float`, *optional*, defaults to 1e-5): Added to the variance for numerical stability.
        momentum (`float`, *optional*, defaults to 0.1): Weight of the current batch in the running statistics.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, hidden_states: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not self.training or mask is None:
            return nn.functional.batch_norm(
                hidden_states,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                training=self.training,
                momentum=self.momentum,
                eps=self.eps,
            )
        # Statistics in float32 whatever the input (bf16/fp16 under autocast), as the running buffers are kept.
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.float()
        reduce_dims = [0] + list(range(2, hidden_states.dim()))
        frame_mask = _time_mask(mask, hidden_states)
        count = frame_mask.expand_as(hidden_states[:, :1]).sum()
        mean = (hidden_states * frame_mask).sum(dim=reduce_dims) / count
        centred = (hidden_states - _channels(mean, hidden_states)) * frame_mask
        variance = centred.pow(2).sum(dim=reduce_dims) / count
        with torch.no_grad():
            unbiased = variance * count / (count - 1).clamp(min=1.0)
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
            self.num_batches_tracked.add_(1)
        normalized = (hidden_states - _channels(mean, hidden_states)) / torch.sqrt(
            _channels(variance, hidden_states) + self.eps
        )
        normalized = normalized * _channels(self.weight, hidden_states) + _channels(self.bias, hidden_states)
        return normalized.to(input_dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


def _channels(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape per-channel `values` so they broadcast against `like` `(batch, channels, ...)`."""
    return values.view((1, -1) + (1,) * (like.dim() - 2))


def zero_padding(hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Set the frames of `hidden_states` `(batch, channels, ..., time)` past each clip's length to zero."""
    return hidden_states * _time_mask(lengths_to_mask(lengths, hidden_states.shape[-1]), hidden_states)


class MaskedConv2dBlock(nn.Module):
    """Conv2d - batch norm - ReLU - max-pool on `(batch, channels, freq, time)`, keeping padded frames at zero.

    Pooling runs in `ceil_mode` after the ReLU: the last window of a clip may cover padding, whose zeros never exceed
    the non-negative activations, so the window's maximum is the clip's own.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, pool_size: Union[int, Sequence[int]] = 2
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = MaskedBatchNorm(out_channels)
        self.activation = nn.ReLU()
        freq_pool, time_pool = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
        self.time_pool = time_pool
        self.pool = nn.MaxPool2d((freq_pool, time_pool), ceil_mode=True) if (freq_pool, time_pool) != (1, 1) else None

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map `(batch, in_channels, freq, time)` and per-clip frame counts to the block's output and its counts."""
        hidden_states = self.conv(zero_padding(hidden_states, lengths))
        mask = lengths_to_mask(lengths, hidden_states.shape[-1])
        hidden_states = zero_padding(self.activation(self.norm(hidden_states, mask)), lengths)
        if self.pool is not None:
            lengths = pool_output_lengths(lengths, self.time_pool)
            hidden_states = zero_padding(self.pool(hidden_states), lengths)
        return hidden_states, lengths


class MaskedConv1dBlock(nn.Module):
    """Conv1d - batch norm - ReLU - max-pool on `(batch, channels, time)`, keeping padded frames at zero."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, pool_size: int = 1):
        super().__init__()
        # `kernel_size // 2` padding gives every clip of at least one sample at least one output frame.
        self.padding = kernel_size // 2
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=self.padding, bias=False)
        self.norm = MaskedBatchNorm(out_channels)
        self.activation = nn.ReLU()
        self.pool = nn.MaxPool1d(pool_size, ceil_mode=True) if pool_size > 1 else None
        self.kernel_size, self.stride, self.pool_size = kernel_size, stride, pool_size

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map `(batch, in_channels, time)` and per-clip frame counts to the block's output and its counts."""
        hidden_states = self.conv(zero_padding(hidden_states, lengths))
        lengths = conv_output_lengths(lengths, self.kernel_size, self.stride, self.padding)
        mask = lengths_to_mask(lengths, hidden_states.shape[-1])
        hidden_states = zero_padding(self.activation(self.norm(hidden_states, mask)), lengths)
        if self.pool is not None:
            lengths = pool_output_lengths(lengths, self.pool_size)
            hidden_states = zero_padding(self.pool(hidden_states), lengths)
        return hidden_states, lengths


class MaskedConvStack(nn.ModuleList):
    """Masked conv blocks run in turn, each given the clip lengths the block before it returned. A `ModuleList`, so its
    weights are named as those of a plain list of blocks (`encoder.0.conv.weight`, ...)."""

    @classmethod
    def over_spectrogram(
        cls, conv_channels: Sequence[int], kernel_size: int, pool_size: Sequence[int]
    ) -> "MaskedConvStack":
        r""":class:`MaskedConv2dBlock`\ s with `conv_channels` outputs over a one-channel `(batch, 1, freq, time)`
        spectrogram, each with a square `kernel_size` and a (frequency, time) `pool_size`."""
        channels = [1, *conv_channels]
        return cls(
            MaskedConv2dBlock(in_channels, out_channels, kernel_size, tuple(pool_size))
            for in_channels, out_channels in zip(channels[:-1], channels[1:])
        )

    def output_bins(self, input_bins: int) -> int:
        """Frequency bins of the last 2-D block's output for `input_bins` input bins (pooling in `ceil_mode`)."""
        for block in self:
            if block.pool is not None:
                input_bins = math.ceil(input_bins / block.pool.kernel_size[0])
        return input_bins

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map inputs and per-clip frame counts to the last block's output and its counts."""
        for block in self:
            hidden_states, lengths = block(hidden_states, lengths)
        return hidden_states, lengths


def init_conv_stack_weights(module: nn.Module) -> None:
    """He initialisation for convolutions followed by ReLU, identity for :class:`MaskedBatchNorm`.

    Called from the baselines' `_init_weights` after transformers' defaults (normal(0, 0.02) for convolutions, which
    is meant for transformers and starves a deep ReLU stack of signal).
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, MaskedBatchNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)
        init.zeros_(module.running_mean)
        init.ones_(module.running_var)
        init.zeros_(module.num_batches_tracked)


__all__ = [
    "MaskedBatchNorm",
    "MaskedConv1dBlock",
    "MaskedConv2dBlock",
    "MaskedConvStack",
    "conv_output_lengths",
    "init_conv_stack_weights",
    "pool_output_lengths",
    "zero_padding",
]
