"""MFCC baseline: MFCCs and engineered frame features, aggregated per clip, classified by an MLP (or a 1D-CNN
over the frames first)."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_mfcc import MFCCConfig
from .masked_conv import MaskedBatchNorm, MaskedConv1dBlock, MaskedConvStack, zero_padding
from .modeling_baseline import BaselineForAudioClassification
from .pooling import TemporalPooling, lengths_to_mask


class MFCCForAudioClassification(BaselineForAudioClassification):
    r"""Engineered-feature classifier.

    An input batch norm standardises each feature with statistics learned over the training set (the role a
    `StandardScaler` plays in the classic pipelines, but saved with the model). With `head_type="mlp"` the frames are
    then aggregated per clip (by default mean and standard deviation of every feature); with `head_type="cnn"` 1D
    conv blocks run over the frames before the aggregation. An MLP classifies the clip vector. Inputs are the frame
    features `(batch_size, frames, num_features)` of [`MFCCFeatureExtractor`].
    """

    config: MFCCConfig
    config_class = MFCCConfig
    base_model_prefix = "mfcc"

    def __init__(self, config: MFCCConfig):
        super().__init__(config)
        self.input_norm = MaskedBatchNorm(config.num_features)
        channels = [config.num_features]
        if config.head_type == "cnn":
            channels += list(config.conv_channels)
        self.encoder = MaskedConvStack(
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

    def classify(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden_states = features.transpose(1, 2)
        mask = lengths_to_mask(lengths, hidden_states.shape[-1])
        hidden_states = zero_padding(self.input_norm(hidden_states, mask), lengths)
        hidden_states, lengths = self.encoder(hidden_states, lengths)
        frames = hidden_states.transpose(1, 2)
        pooled = self.pooler(frames, lengths_to_mask(lengths, frames.shape[1]))
        return self.classifier(self.mlp(pooled))


__all__ = ["MFCCForAudioClassification"]
