"""Configuration of the CRNN baseline: convolutions over log-mel spectrograms, a bidirectional LSTM, attention
pooling."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .pooling import POOLING_MODES


@strict
class CRNNConfig(PreTrainedConfig):
    r"""Configuration of [`CRNNForAudioClassification`].

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64):
            Mel bands of the input spectrogram; must equal the feature extractor's `n_mels`.
        conv_channels (`list[int]`, *optional*, defaults to `(32, 64, 128)`):
            Output channels of each conv - batch norm - ReLU - max-pool block of the front end.
        conv_kernel_size (`int`, *optional*, defaults to 3):
            Square kernel of every convolution.
        pool_size (`list[int]`, *optional*, defaults to `(2, 2)`):
            (frequency, time) max-pooling window and stride of every block.
        lstm_hidden_size (`int`, *optional*, defaults to 128):
            Hidden size of each direction of the LSTM.
        lstm_num_layers (`int`, *optional*, defaults to 2):
            Stacked LSTM layers.
        lstm_dropout (`float`, *optional*, defaults to 0.1):
            Dropout between stacked LSTM layers.
        pooling_mode (`str`, *optional*, defaults to `"attention"`):
            Temporal pooling of the LSTM outputs: `"mean"`, `"max"`, `"statistics"`, `"attention"` or
            `"attentive_statistics"`.
        attention_hidden_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention pooling modes.
        classifier_dropout (`float`, *optional*, defaults to 0.3):
            Dropout before the classifier.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
    """

    model_type = "ser_crnn"

    num_mel_bins: int = 64
    conv_channels: list[int] | tuple[int, ...] = (32, 64, 128)
    conv_kernel_size: int = 3
    pool_size: list[int] | tuple[int, ...] = (2, 2)
    lstm_hidden_size: int = 128
    lstm_num_layers: int = 2
    lstm_dropout: float | int = 0.1
    pooling_mode: str = "attention"
    attention_hidden_size: int = 128
    classifier_dropout: float | int = 0.3
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        if self.num_mel_bins <= 0 or not self.conv_channels or min(self.conv_channels) <= 0:
            raise ValueError("num_mel_bins and every conv_channels entry must be positive, with at least one block.")
        if len(self.pool_size) != 2 or min(self.pool_size) <= 0:
            raise ValueError(f"pool_size must be two positive (frequency, time) sizes, got {self.pool_size}.")
        if self.lstm_hidden_size <= 0 or self.lstm_num_layers <= 0:
            raise ValueError("lstm_hidden_size and lstm_num_layers must be positive.")
        if self.pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode must be one of {', '.join(POOLING_MODES)}, got {self.pooling_mode!r}.")


__all__ = ["CRNNConfig"]
