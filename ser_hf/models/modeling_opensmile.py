"""openSMILE baseline: standardised functionals (one vector per clip) classified by a linear layer or a small MLP."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_opensmile import OpenSmileConfig
from .modeling_baseline import BaselineForAudioClassification


class OpenSmileForAudioClassification(BaselineForAudioClassification):
    r"""Linear (or MLP) classifier on openSMILE functionals from [`OpenSmileFeatureExtractor`], which standardises
    them (the `StandardScaler` of the classic pipelines, with its statistics saved in the extractor)."""

    config: OpenSmileConfig
    config_class = OpenSmileConfig
    base_model_prefix = "opensmile"

    def __init__(self, config: OpenSmileConfig):
        super().__init__(config)
        layers: list[nn.Module] = [nn.Dropout(config.input_dropout)]
        width = config.num_features
        for hidden_size in config.hidden_sizes:
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(config.classifier_dropout)]
            width = hidden_size
        self.mlp = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    # One vector per clip: no frames, so no attention_mask.
    @can_return_tuple
    def forward(
        self, input_features: torch.Tensor, labels: Optional[torch.Tensor] = None, **kwargs
    ) -> SequenceClassifierOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_features)`):
            Standardised functionals from [`OpenSmileFeatureExtractor`].
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for the classification loss.
        """
        if input_features.dim() != 2 or input_features.shape[1] != self.config.num_features:
            raise ValueError(
                f"input_features must be (batch, {self.config.num_features}); got {tuple(input_features.shape)}."
            )
        return self.classification_output(self.classifier(self.mlp(input_features)), labels, **kwargs)


__all__ = ["OpenSmileForAudioClassification"]
