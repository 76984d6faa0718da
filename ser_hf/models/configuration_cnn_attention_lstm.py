"""Configuration of the CNN + attention-LSTM baseline: 1-D convolutions over log-mel frames, a bidirectional LSTM,
self-attention over its outputs and attention pooling."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .pooling import POOLING_MODES


@strict
class CNNAttentionLSTMConfig(PreTrainedConfig):
    r"""Configuration of [`CNNAttentionLSTMForAudioClassification`].

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64):
            Mel bands of the input spectrogram (the input channels of the first convolution); must equal the
            feature extractor's `n_mels`.
        conv_channels (`list[int]`, *optional*, defaults to `(64, 128)`):
            Output channels of each 1-D conv - batch norm - ReLU - max-pool block over time.
        conv_kernel_size (`int`, *optional*, defaults to 5):
            Kernel of every convolution, in frames (odd).
        pool_size (`int`, *optional*, defaults to 2):
            Max-pooling window and stride over time of every block.
        lstm_hidden_size (`int`, *optional*, defaults to 128):
            Hidden size of each direction of the LSTM.
        lstm_num_layers (`int`, *optional*, defaults to 1):
            Stacked LSTM layers.
        lstm_dropout (`float`, *optional*, defaults to 0.1):
            Dropout between stacked LSTM layers.
        num_attention_heads (`int`, *optional*, defaults to 4):
            Heads of the self-attention over the LSTM outputs; must divide `2 * lstm_hidden_size`.
        attention_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the attention weights and on the attention output before the residual sum.
        pooling_mode (`str`, *optional*, defaults to `"attention"`):
            Temporal pooling of the attended frames: `"mean"`, `"max"`, `"statistics"`, `"attention"` or
            `"attentive_statistics"`.
        attention_hidden_size (`int`, *optional*, defaults to 64):
            Width of the frame-scoring network of the attention pooling modes.
        classifier_dropout (`float`, *optional*, defaults to 0.3):
            Dropout before the classifier.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
    """

    model_type = "ser_cnn_attention_lstm"

    num_mel_bins: int = 64
    conv_channels: list[int] | tuple[int, ...] = (64, 128)
    conv_kernel_size: int = 5
    pool_size: int = 2
    lstm_hidden_size: int = 128
    lstm_num_layers: int = 1
    lstm_dropout: float | int = 0.1
    num_attention_heads: int = 4
    attention_dropout: float | int = 0.1
    pooling_mode: str = "attention"
    attention_hidden_size: int = 64
    classifier_dropout: float | int = 0.3
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        if self.num_mel_bins <= 0 or not self.conv_channels or min(self.conv_channels) <= 0:
            raise ValueError("num_mel_bins and every conv_channels entry must be positive, with at least one block.")
        if self.conv_kernel_size <= 0 or self.conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be a positive odd number of frames, got {self.conv_kernel_size}.")
        if self.pool_size <= 0:
            raise ValueError(f"pool_size must be positive, got {self.pool_size}.")
        if self.lstm_hidden_size <= 0 or self.lstm_num_layers <= 0 or self.num_attention_heads <= 0:
            raise ValueError("lstm_hidden_size, lstm_num_layers and num_attention_heads must be positive.")
        if (2 * self.lstm_hidden_size) % self.num_attention_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must divide the bidirectional LSTM's "
                f"output size (2 * lstm_hidden_size = {2 * self.lstm_hidden_size})."
            )
        if self.pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode must be one of {', '.join(POOLING_MODES)}, got {self.pooling_mode!r}.")


__all__ = ["CNNAttentionLSTMConfig"]
