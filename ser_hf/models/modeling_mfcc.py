"""MFCC baseline: MFCCs and engineered frame features, aggregated per clip, classified by an MLP (or a 1D-CNN
over the frames first)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_mfcc import MFCCConfig
from .masked_conv import MaskedBatchNorm, MaskedConv1dBlock, init_conv_stack_weights, zero_padding
from .pooling import TemporalPooling, frame_lengths, lengths_to_mask


class MFCCPreTrainedModel(PreTrainedModel):
    config: MFCCConfig
    config_class = MFCCConfig
    base_model_prefix = "mfcc"
    main_input_name = "input_features"
    input_modalities = ("audio",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        init_conv_stack_weights(module)


class MFCCForAudioClassification(MFCCPreTrainedModel):
    r"""Engineered-feature classifier.

    An input batch norm standardises each feature with statistics learned over the training set (the role a
    `StandardScaler` plays in the classic pipelines, but saved with the model). With `head_type="mlp"` the frames are
    then aggregated per clip (by default mean and standard deviation of every feature); with `head_type="cnn"` 1D
    conv blocks run over the frames before the aggregation. An MLP classifies the clip vector.
    """

    def __init__(self, config: MFCCConfig):
        super().__init__(config)
        self.input_norm = MaskedBatchNorm(config.num_features)
        channels = [config.num_features]
        if config.head_type == "cnn":
            channels += list(config.conv_channels)
        self.encoder = nn.ModuleList(
            MaskedConv1dBlock(in_channels, out_channels, config.conv_kernel_size, 1, config.conv_pool_size)
            for in_channels, out_channels in zip(channels[:-1], channels[1:])
        )
        self.pooler = TemporalPooling(channels[-1], config.pooling_mode, config.attention_hidden_size)
        layers = []
        width = self.pooler.output_size
        for hidden_size in config.hidden_sizes:
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(config.classifier_dropout)]
            width = hidden_size
        self.mlp = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, config.num_labels)
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
        input_features (`torch.FloatTensor` of shape `(batch_size, frames, num_features)`):
            Frame features from [`MFCCFeatureExtractor`].
        attention_mask (`torch.LongTensor` of shape `(batch_size, frames)`, *optional*):
            1 on real frames, 0 on padding.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for the classification loss.
        """
        lengths = frame_lengths(input_features, attention_mask)
        hidden_states = input_features.transpose(1, 2)
        mask = lengths_to_mask(lengths, hidden_states.shape[-1])
        hidden_states = zero_padding(self.input_norm(hidden_states, mask), lengths)
        for block in self.encoder:
            hidden_states, lengths = block(hidden_states, lengths)
        frames = hidden_states.transpose(1, 2)
        pooled = self.pooler(frames, lengths_to_mask(lengths, frames.shape[1]))
        logits = self.classifier(self.mlp(pooled))
        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["MFCCForAudioClassification", "MFCCPreTrainedModel"]
