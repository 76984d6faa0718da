"""CNN2D baseline: conv - batch norm - ReLU - max-pool blocks over log-mel spectrograms, pooled over time."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_cnn2d import CNN2DConfig
from .masked_conv import MaskedConv2dBlock, init_conv_stack_weights
from .pooling import TemporalPooling, frame_lengths, lengths_to_mask


class CNN2DPreTrainedModel(PreTrainedModel):
    config: CNN2DConfig
    config_class = CNN2DConfig
    base_model_prefix = "cnn2d"
    main_input_name = "input_features"
    input_modalities = ("audio",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        init_conv_stack_weights(module)


class CNN2DForAudioClassification(CNN2DPreTrainedModel):
    r"""Log-mel CNN for clip-level classification.

    Each block convolves the `(frequency, time)` plane and max-pools it; the remaining frequency bins are averaged
    (adaptive average pooling to one bin), the frames pooled into one vector per clip (`config.pooling_mode`), and a
    linear layer classifies it. Padded frames are kept at zero and excluded from every statistic, so a clip's logits
    do not depend on the batch it is in.
    """

    def __init__(self, config: CNN2DConfig):
        super().__init__(config)
        channels = [1, *config.conv_channels]
        self.encoder = nn.ModuleList(
            MaskedConv2dBlock(in_channels, out_channels, config.conv_kernel_size, tuple(config.pool_size))
            for in_channels, out_channels in zip(channels[:-1], channels[1:])
        )
        self.frequency_pool = nn.AdaptiveAvgPool2d((1, None))
        self.pooler = TemporalPooling(channels[-1], config.pooling_mode, config.attention_hidden_size)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(self.pooler.output_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, frames, num_mel_bins)`):
            Log-mel spectrograms from [`LogMelFeatureExtractor`].
        attention_mask (`torch.LongTensor` of shape `(batch_size, frames)`, *optional*):
            1 on real frames, 0 on padding.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for the classification loss.
        """
        lengths = frame_lengths(input_features, attention_mask)
        hidden_states = input_features.transpose(1, 2).unsqueeze(1)
        for block in self.encoder:
            hidden_states, lengths = block(hidden_states, lengths)
        frames = self.frequency_pool(hidden_states).squeeze(2).transpose(1, 2)
        pooled = self.pooler(frames, lengths_to_mask(lengths, frames.shape[1]))
        logits = self.classifier(self.dropout(pooled))
        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["CNN2DForAudioClassification", "CNN2DPreTrainedModel"]
