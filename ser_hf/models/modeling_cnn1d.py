"""CNN1D baseline: conv - batch norm - ReLU - max-pool blocks over the raw waveform, pooled over time."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_cnn1d import CNN1DConfig
from .masked_conv import MaskedConv1dBlock, MaskedConvStack
from .modeling_baseline import BaselineForAudioClassification
from .pooling import TemporalPooling, lengths_to_mask


class CNN1DForAudioClassification(BaselineForAudioClassification):
    r"""Raw-waveform CNN for clip-level classification.

    A wide strided first convolution learns a filter bank from the samples; later blocks convolve and pool its
    frames; temporal pooling (`config.pooling_mode`) gives one vector per clip for a linear classifier. Inputs are
    the normalised waveforms and sample-level mask of a `Wav2Vec2FeatureExtractor(return_attention_mask=True)`.
    """

    config: CNN1DConfig
    config_class = CNN1DConfig
    base_model_prefix = "cnn1d"
    main_input_name = "input_values"

    def __init__(self, config: CNN1DConfig):
        super().__init__(config)
        channels = [1, *config.conv_channels]
        self.encoder = MaskedConvStack(
            MaskedConv1dBlock(in_channels, out_channels, kernel_size, stride, pool_size)
            for in_channels, out_channels, kernel_size, stride, pool_size in zip(
                channels[:-1], channels[1:], config.conv_kernel_sizes, config.conv_strides, config.pool_sizes
            )
        )
        self.pooler = TemporalPooling(channels[-1], config.pooling_mode, config.attention_hidden_size)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(self.pooler.output_size, config.num_labels)
        self.post_init()

    def classify(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden_states = features.unsqueeze(1)
        hidden_states, lengths = self.encoder(hidden_states, lengths)
        frames = hidden_states.transpose(1, 2)
        pooled = self.pooler(frames, lengths_to_mask(lengths, frames.shape[1]))
        return self.classifier(self.dropout(pooled))

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, samples)`):
            Raw 16 kHz waveforms, zero-mean unit-variance per clip, zero-padded.
        attention_mask (`torch.LongTensor` of shape `(batch_size, samples)`, *optional*):
            1 on real samples, 0 on padding.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for the classification loss.
        """
        return self._classify_padded(input_values, attention_mask, labels, **kwargs)


__all__ = ["CNN1DForAudioClassification"]
