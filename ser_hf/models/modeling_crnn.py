"""CRNN baseline: a convolutional front end over log-mel spectrograms, a bidirectional LSTM, attention pooling."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_crnn import CRNNConfig
from .masked_conv import MaskedConvStack
from .modeling_baseline import BaselineForAudioClassification
from .pooling import TemporalPooling, lengths_to_mask


class CRNNForAudioClassification(BaselineForAudioClassification):
    r"""Convolutional recurrent network for clip-level classification.

    The conv blocks turn the log-mel spectrogram (`(batch_size, frames, num_mel_bins)`, from
    [`LogMelFeatureExtractor`]) into a shorter sequence of frame vectors (channels x remaining frequency bins); a
    bidirectional LSTM reads the real frames of each clip only (packed sequences), and temporal pooling (attention by
    default) weighs its outputs into one vector per clip.
    """

    config: CRNNConfig
    config_class = CRNNConfig
    base_model_prefix = "crnn"

    def __init__(self, config: CRNNConfig):
        super().__init__(config)
        self.encoder = MaskedConvStack.over_spectrogram(
            config.conv_channels, config.conv_kernel_size, config.pool_size
        )
        frequency_bins = self.encoder.output_bins(config.num_mel_bins)
        self.lstm = nn.LSTM(
            input_size=config.conv_channels[-1] * frequency_bins,
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

    def classify(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden_states, lengths = self.encoder(features.transpose(1, 2).unsqueeze(1), lengths)
        batch_size, channels, frequency_bins, num_frames = hidden_states.shape
        frames = hidden_states.permute(0, 3, 1, 2).reshape(batch_size, num_frames, channels * frequency_bins)
        packed = nn.utils.rnn.pack_padded_sequence(frames, lengths.cpu(), batch_first=True, enforce_sorted=False)
        sequence, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=num_frames)
        pooled = self.pooler(sequence, lengths_to_mask(lengths, num_frames))
        return self.classifier(self.dropout(pooled))


__all__ = ["CRNNForAudioClassification"]
