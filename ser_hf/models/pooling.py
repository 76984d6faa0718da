"""Temporal pooling that turns a padded batch of frame sequences into one vector per clip.

Every mode reads only the frames the mask marks as real, so a clip's pooled vector does not depend on how much
padding its batch added. This file is copied next to saved baseline models (``register_for_auto_class``): it imports
nothing but ``torch``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

#: The pooling modes :class:`TemporalPooling` implements.
POOLING_MODES = ("mean", "max", "mean_max", "statistics", "attention", "attentive_statistics")

# Keeps the standard deviation differentiable where a clip's frames are all equal (a one-frame clip, silence).
_VARIANCE_FLOOR = 1e-5


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean mask of shape `(batch_size, max_length)` that is `True` on the first `lengths[i]` frames of row `i`."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


def frame_lengths(features: torch.Tensor, attention_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Real frames (or samples) per clip of `features` `(batch, time, ...)`, from an `attention_mask` `(batch, time)`.

    Without a mask every frame is real.
    """
    if attention_mask is None:
        return torch.full((features.shape[0],), features.shape[1], dtype=torch.long, device=features.device)
    if attention_mask.shape != features.shape[:2]:
        raise ValueError(
            f"attention_mask of shape {tuple(attention_mask.shape)} does not mark the time steps of the inputs of "
            f"shape {tuple(features.shape)}: pass the mask the model's feature extractor returns."
        )
    return attention_mask.sum(dim=-1).long()


def masked_mean_and_std(
    hidden_states: torch.Tensor, mask: torch.Tensor, weights: Optional[torch.Tensor] = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over time of `hidden_states` `(batch, time, features)`, reading masked frames only.

    `weights` `(batch, time, 1 or features)`, when given, must sum to one over the real frames of each clip (attention
    weights); otherwise every real frame weighs the same.
    """
    mask = mask.unsqueeze(-1).to(hidden_states.dtype)
    if weights is None:
        weights = mask / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    else:
        weights = weights * mask
    mean = (hidden_states * weights).sum(dim=1)
    # Centre before squaring: E[(x - mean)^2] is exact where E[x^2] - mean^2 cancels catastrophically.
    centred = (hidden_states - mean.unsqueeze(1)) * mask
    variance = (centred.pow(2) * weights).sum(dim=1)
    return mean, torch.sqrt(variance + _VARIANCE_FLOOR)


class TemporalPooling(nn.Module):
    """Pools `(batch, time, hidden_size)` frames into `(batch, output_size)` clip vectors, ignoring padded frames.

    Args:
        hidden_size (`int`):
            Size of each frame vector.
        mode (`str`, *optional*, defaults to `"mean"`):
            `"mean"`, `"max"`, `"mean_max"` (mean and maximum, concatenated), `"statistics"` (mean and standard
            deviation, concatenated), `"attention"` (a learned
            softmax weighting of the frames) or `"attentive_statistics"` (attention-weighted mean and standard
            deviation, Okabe et al., 2018).
        attention_hidden_size (`int`, *optional*, defaults to 128):
            Width of the small network that scores each frame in the attention modes.
    """

    def __init__(self, hidden_size: int, mode: str = "mean", attention_hidden_size: int = 128):
        super().__init__()
        if mode not in POOLING_MODES:
            raise ValueError(f"Unknown pooling mode {mode!r}; expected one of {', '.join(POOLING_MODES)}.")
        self.mode = mode
        self.hidden_size = hidden_size
        if mode in ("attention", "attentive_statistics"):
            self.attention = nn.Sequential(
                nn.Linear(hidden_size, attention_hidden_size),
                nn.Tanh(),
                nn.Linear(attention_hidden_size, 1),
            )

    @property
    def output_size(self) -> int:
        """Size of the pooled vector: twice `hidden_size` for the modes that concatenate two statistics."""
        two = ("mean_max", "statistics", "attentive_statistics")
        return 2 * self.hidden_size if self.mode in two else self.hidden_size

    def forward(self, hidden_states: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Pool `hidden_states` `(batch, time, hidden_size)`; `mask` `(batch, time)` is `True` on real frames."""
        if mask is None:
            mask = torch.ones(hidden_states.shape[:2], dtype=torch.bool, device=hidden_states.device)
        mask = mask.bool()
        if self.mode == "mean":
            return masked_mean_and_std(hidden_states, mask)[0]
        if self.mode in ("max", "mean_max"):
            maximum = hidden_states.masked_fill(~mask.unsqueeze(-1), torch.finfo(hidden_states.dtype).min).amax(dim=1)
            return (
                maximum
                if self.mode == "max"
                else torch.cat([masked_mean_and_std(hidden_states, mask)[0], maximum], -1)
            )
        if self.mode == "statistics":
            return torch.cat(masked_mean_and_std(hidden_states, mask), dim=-1)

        scores = self.attention(hidden_states).masked_fill(~mask.unsqueeze(-1), torch.finfo(hidden_states.dtype).min)
        weights = torch.softmax(scores, dim=1)
        if self.mode == "attention":
            return (hidden_states * weights).sum(dim=1)
        return torch.cat(masked_mean_and_std(hidden_states, mask, weights), dim=-1)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, mode={self.mode!r}"
