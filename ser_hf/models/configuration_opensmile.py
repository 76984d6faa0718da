"""Configuration of the openSMILE baseline: a linear or small MLP classifier on openSMILE functionals."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class OpenSmileConfig(PreTrainedConfig):
    r"""Configuration of [`OpenSmileForAudioClassification`].

    Args:
        num_features (`int`, *optional*, defaults to 6373):
            Functionals per clip; must equal the feature extractor's `feature_size` (6,373 for ComParE_2016, 88 for
            eGeMAPSv02, 6,461 for both).
        hidden_sizes (`list[int]`, *optional*, defaults to `()`):
            Hidden layers of the MLP; empty for a linear classifier (the field's standard functionals baseline).
        input_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the functionals (thousands of correlated features, a few hundred clips per speaker).
        classifier_dropout (`float`, *optional*, defaults to 0.3):
            Dropout after every hidden layer.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the linear layers.
    """

    model_type = "ser_opensmile"

    num_features: int = 6373
    hidden_sizes: list[int] | tuple[int, ...] = ()
    input_dropout: float | int = 0.2
    classifier_dropout: float | int = 0.3
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        if self.num_features <= 0 or min(self.hidden_sizes, default=1) <= 0:
            raise ValueError("num_features and hidden_sizes must be positive.")
        if not 0 <= self.input_dropout < 1 or not 0 <= self.classifier_dropout < 1:
            raise ValueError("input_dropout and classifier_dropout must be in [0, 1).")


__all__ = ["OpenSmileConfig"]
