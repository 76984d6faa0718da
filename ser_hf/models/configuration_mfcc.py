"""Configuration of the MFCC baseline: MFCCs and engineered frame features, with an MLP or 1D-CNN head."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .pooling import POOLING_MODES

HEAD_TYPES = ("mlp", "cnn")


@strict
class MFCCConfig(PreTrainedConfig):
    r"""Configuration of [`MFCCForAudioClassification`].

    Args:
        num_features (`int`, *optional*, defaults to 45):
            Features per frame; must equal the feature extractor's `feature_size` (40 MFCCs + 5 frame features).
        head_type (`str`, *optional*, defaults to `"mlp"`):
            `"mlp"`: the frame features are aggregated per clip (`pooling_mode`, by default their mean and standard
            deviation, as the classic feature sets do) and classified by a multilayer perceptron. `"cnn"`: 1D
            convolutions run over the frames first, then their outputs are pooled.
        hidden_sizes (`list[int]`, *optional*, defaults to `(256, 128)`):
            Hidden layers of the MLP after pooling (both head types).
        conv_channels (`list[int]`, *optional*, defaults to `(64, 128)`):
            Output channels of the 1D conv blocks (`head_type="cnn"` only).
        conv_kernel_size (`int`, *optional*, defaults to 5):
            Kernel of the 1D convolutions, in frames.
        conv_pool_size (`int`, *optional*, defaults to 2):
            Max-pooling window and stride of each conv block.
        pooling_mode (`str`, *optional*, defaults to `"statistics"`):
            `"mean"`, `"max"`, `"statistics"`, `"attention"` or `"attentive_statistics"`.
        attention_hidden_size (`int`, *optional*, defaults to 128):
            Width of the frame-scoring network of the attention pooling modes.
        classifier_dropout (`float`, *optional*, defaults to 0.3):
            Dropout after every hidden layer.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
    """

    model_type = "ser_mfcc"

    num_features: int = 45
    head_type: str = "mlp"
    hidden_sizes: list[int] | tuple[int, ...] = (256, 128)
    conv_channels: list[int] | tuple[int, ...] = (64, 128)
    conv_kernel_size: int = 5
    conv_pool_size: int = 2
    pooling_mode: str = "statistics"
    attention_hidden_size: int = 128
    classifier_dropout: float | int = 0.3
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        if self.head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {', '.join(HEAD_TYPES)}, got {self.head_type!r}.")
        if self.num_features <= 0 or min((*self.hidden_sizes, *self.conv_channels), default=1) <= 0:
            raise ValueError("num_features, hidden_sizes and conv_channels must be positive.")
        if self.head_type == "cnn" and not self.conv_channels:
            raise ValueError("head_type='cnn' needs at least one entry in conv_channels.")
        if self.pooling_mode not in POOLING_MODES:
            raise ValueError(f"pooling_mode must be one of {', '.join(POOLING_MODES)}, got {self.pooling_mode!r}.")


__all__ = ["MFCCConfig"]
