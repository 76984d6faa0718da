"""CNN2D baseline: conv - batch norm - ReLU - max-pool blocks over log-mel spectrograms, pooled over time."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_cnn2d import CNN2DConfig
from .masked_conv import MaskedConvStack
from .modeling_baseline import BaselineForAudioClassification
from .pooling import TemporalPooling, lengths_to_mask


class CNN2DForAudioClassification(BaselineForAudioClassification):
    r"""Log-mel CNN for clip-level classification.

    Each block convolves the `(frequency, time)` plane and max-pools it; the remaining frequency bins are averaged
    (adaptive average pooling to one bin) or kept side by side (`config.frequency_pooling`), the frames pooled into
    one vector per clip (`config.pooling_mode`), and a linear layer classifies it. Padded frames are kept at zero and
    excluded from every statistic, so a clip's logits do not depend on the batch it is in. Inputs are log-mel
    spectrograms `(batch_size, frames, num_mel_bins)` from [`LogMelFeatureExtractor`].
    """

    config: CNN2DConfig
    config_class = CNN2DConfig
    base_model_prefix = "cnn2d"

    def __init__(self, config: CNN2DConfig):
        super().__init__(config)
        self.encoder = MaskedConvStack.over_spectrogram(
            config.conv_channels, config.conv_kernel_size, config.pool_size
        )
        frame_size = config.conv_channels[-1]
        if config.frequency_pooling == "flatten":
            frame_size *= self.encoder.output_bins(config.num_mel_bins)
        self.pooler = TemporalPooling(frame_size, config.pooling_mode, config.attention_hidden_size)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(self.pooler.output_size, config.num_labels)
        self.post_init()

    def classify(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden_states, lengths = self.encoder(features.transpose(1, 2).unsqueeze(1), lengths)
        if self.config.frequency_pooling == "flatten":  # (batch, channels, bins, frames) -> (batch, frames, c x bins)
            frames = hidden_states.permute(0, 3, 1, 2).flatten(2)
        else:
            frames = hidden_states.mean(dim=2).transpose(1, 2)
        pooled = self.pooler(frames, lengths_to_mask(lengths, frames.shape[1]))
        return self.classifier(self.dropout(pooled))


__all__ = ["CNN2DForAudioClassification"]
