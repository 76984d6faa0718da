"""CNN + attention-LSTM baseline: 1-D convolutions over log-mel frames, a bidirectional LSTM, multi-head
self-attention over the LSTM outputs, and attention pooling."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_cnn_attention_lstm import CNNAttentionLSTMConfig
from .masked_conv import MaskedConv1dBlock, init_conv_stack_weights
from .pooling import TemporalPooling, frame_lengths, lengths_to_mask


class CNNAttentionLSTMPreTrainedModel(PreTrainedModel):
    config: CNNAttentionLSTMConfig
    config_class = CNNAttentionLSTMConfig
    base_model_prefix = "cnn_attention_lstm"
    main_input_name = "input_features"
    input_modalities = ("audio",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        init_conv_stack_weights(module)


class CNNAttentionLSTMForAudioClassification(CNNAttentionLSTMPreTrainedModel):
    r"""Convolutions over time, a bidirectional LSTM with self-attention, and attention pooling.

    The mel bands are the input channels of 1-D conv - batch norm - ReLU - max-pool blocks that shorten the frame
    sequence; a bidirectional LSTM reads each clip's real frames only (packed sequences); multi-head self-attention
    over its outputs (layer norm first, padded frames masked as keys, residual connection) lets every frame draw on
    the whole clip; temporal pooling weighs the frames into one vector for the classifier. Padding never changes a
    clip's logits.
    Where the CRNN convolves the (frequency, time) plane and pools the LSTM directly, this model treats each frame's
    spectrum as one vector and adds the self-attention layer.
    """

    def __init__(self, config: CNNAttentionLSTMConfig):
        super().__init__(config)
        channels = [config.num_mel_bins, *config.conv_channels]
        self.encoder = nn.ModuleList(
            MaskedConv1dBlock(in_channels, out_channels, config.conv_kernel_size, pool_size=config.pool_size)
            for in_channels, out_channels in zip(channels[:-1], channels[1:])
        )
        self.lstm = nn.LSTM(
            input_size=channels[-1],
            hidden_size=config.lstm_hidden_size,
            num_layers=config.lstm_num_layers,
            dropout=config.lstm_dropout if config.lstm_num_layers > 1 else 0.0,
            batch_first=True,
            bidirectional=True,
        )
        sequence_size = 2 * config.lstm_hidden_size
        self.attention = nn.MultiheadAttention(
            sequence_size, config.num_attention_heads, dropout=config.attention_dropout, batch_first=True
        )
        self.attention_dropout = nn.Dropout(config.attention_dropout)
        self.attention_norm = nn.LayerNorm(sequence_size)
        self.pooler = TemporalPooling(sequence_size, config.pooling_mode, config.attention_hidden_size)
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
        hidden_states = input_features.transpose(1, 2)
        for block in self.encoder:
            hidden_states, lengths = block(hidden_states, lengths)
        frames = hidden_states.transpose(1, 2)
        num_frames = frames.shape[1]
        packed = nn.utils.rnn.pack_padded_sequence(frames, lengths.cpu(), batch_first=True, enforce_sorted=False)
        sequence, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=num_frames)
        mask = lengths_to_mask(lengths, num_frames)
        normed = self.attention_norm(sequence)
        attended, _ = self.attention(normed, normed, normed, key_padding_mask=~mask, need_weights=False)
        sequence = sequence + self.attention_dropout(attended)
        pooled = self.pooler(sequence, mask)
        logits = self.classifier(self.dropout(pooled))
        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["CNNAttentionLSTMForAudioClassification", "CNNAttentionLSTMPreTrainedModel"]
