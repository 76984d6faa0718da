"""CNN + attention-LSTM baseline: 1-D convolutions over log-mel frames, a bidirectional LSTM, multi-head
self-attention over the LSTM outputs, and attention pooling."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_cnn_attention_lstm import CNNAttentionLSTMConfig
from .masked_conv import MaskedConv1dBlock, MaskedConvStack
from .modeling_baseline import BaselineForAudioClassification
from .pooling import TemporalPooling, lengths_to_mask


class CNNAttentionLSTMForAudioClassification(BaselineForAudioClassification):
    r"""Convolutions over time, a bidirectional LSTM with self-attention, and attention pooling.

    The mel bands are the input channels of 1-D conv - batch norm - ReLU - max-pool blocks that shorten the frame
    sequence; a bidirectional LSTM reads each clip's real frames only (packed sequences); multi-head self-attention
    over its outputs (layer norm first, padded frames masked as keys, residual connection) lets every frame draw on
    the whole clip; temporal pooling weighs the frames into one vector for the classifier. Padding never changes a
    clip's logits.
    Where the CRNN convolves the (frequency, time) plane and pools the LSTM directly, this model treats each frame's
    spectrum as one vector and adds the self-attention layer. Inputs are log-mel spectrograms
    `(batch_size, frames, num_mel_bins)` from [`LogMelFeatureExtractor`].
    """

    config: CNNAttentionLSTMConfig
    config_class = CNNAttentionLSTMConfig
    base_model_prefix = "cnn_attention_lstm"

    def __init__(self, config: CNNAttentionLSTMConfig):
        super().__init__(config)
        channels = [config.num_mel_bins, *config.conv_channels]
        self.encoder = MaskedConvStack(
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

    def classify(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden_states = features.transpose(1, 2)
        hidden_states, lengths = self.encoder(hidden_states, lengths)
        frames = hidden_states.transpose(1, 2)
        num_frames = frames.shape[1]
        packed = nn.utils.rnn.pack_padded_sequence(frames, lengths.cpu(), batch_first=True, enforce_sorted=False)
        sequence, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=num_frames)
        mask = lengths_to_mask(lengths, num_frames)
        normed = self.attention_norm(sequence)
        attended, _ = self.attention(normed, normed, normed, key_padding_mask=~mask, need_weights=False)
        sequence = sequence + self.attention_dropout(attended)
        pooled = self.pooler(sequence, mask)
        return self.classifier(self.dropout(pooled))


__all__ = ["CNNAttentionLSTMForAudioClassification"]
