"""CRNN baseline: a convolutional front end over log-mel spectrograms, a bidirectional LSTM, attention pooling."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_crnn import CRNNConfig
from .masked_conv import MaskedConv2dBlock, init_conv_stack_weights
from .pooling import TemporalPooling, frame_lengths, lengths_to_mask


class CRNNPreTrainedModel(PreTrainedModel):
    config: CRNNConfig
    config_class = CRNNConfig
    base_model_prefix = "crnn"
    main_input_name = "input_features"
    input_modalities = ("audio",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        init_conv_stack_weights(module)


class CRNNForAudioClassification(CRNNPreTrainedModel):
    r"""Convolutional recurrent network for clip-level classification.

    The conv blocks turn the log-mel spectrogram into a shorter sequence of frame vectors (channels x remaining
    frequency bins); a bidirectional LSTM reads the real frames of each clip only (packed sequences), and temporal
    pooling (attention by default) weighs its outputs into one vector per clip.
    """

    def __init__(self, config: CRNNConfig):
        super().__init__(config)
        channels = [1, *config.conv_channels]
        self.encoder = nn.ModuleList(
            MaskedConv2dBlock(in_channels, out_channels, config.conv_kernel_size, tuple(config.pool_size))
            for in_channels, out_channels in zip(channels[:-1], channels[1:])
        )
        frequency_bins = config.num_mel_bins
        for _ in config.conv_channels:
            frequency_bins = math.ceil(frequency_bins / config.pool_size[0])
        self.lstm = nn.LSTM(
            input_size=channels[-1] * frequency_bins,
            hidden_size=config.lstm_hidden_size,
            num_layers=config.lstm_num_layers,
            dropout=config.lstm_dropout if config.lstm_num_layers > 1 else 0.0,
            batch_first=True,
            bidirectional=True,
        )
        self.pooler = TemporalPooling(2 * config.lstm_hidden_size, config.pooling_mode, config.attention_hidden_size)
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
        batch_size, channels, frequency_bins, num_frames = hidden_states.shape
        frames = hidden_states.permute(0, 3, 1, 2).reshape(batch_size, num_frames, channels * frequency_bins)
        packed = nn.utils.rnn.pack_padded_sequence(frames, lengths.cpu(), batch_first=True, enforce_sorted=False)
        sequence, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=num_frames)
        pooled = self.pooler(sequence, lengths_to_mask(lengths, num_frames))
        logits = self.classifier(self.dropout(pooled))
        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["CRNNForAudioClassification", "CRNNPreTrainedModel"]
