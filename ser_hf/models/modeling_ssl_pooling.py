"""Self-supervised speech encoders with a configurable pooling head (attentive statistics pooling by default).

Each class subclasses transformers' `...ForSequenceClassification`, so `freeze_feature_encoder`, `freeze_base_model`,
`use_weighted_layer_sum`, the `projector` and the `classifier` work as there; only the pooling of the projected frames
changes (`config.pooling_mode`, a :class:`TemporalPooling` named `pooler`), and the classifier reads the pooled vector,
twice the projector's width for the statistics modes. Logits are divided by `config.calibration_temperature` when the
config has one (temperature scaling fitted after training; absent means 1). This file is copied next to saved models
(``register_for_auto_class``): it imports nothing from ser-hf.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers import (
    Data2VecAudioForSequenceClassification,
    Data2VecAudioModel,
    HubertForSequenceClassification,
    HubertModel,
    Wav2Vec2ForSequenceClassification,
    Wav2Vec2Model,
    WavLMForSequenceClassification,
    WavLMModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel

from .configuration_ssl_pooling import SerData2VecAudioConfig, SerHubertConfig, SerWav2Vec2Config, SerWavLMConfig
from .pooling import TemporalPooling

# Forwarded to the encoder; every other keyword argument is a loss argument (such as `num_items_in_batch`).
_ENCODER_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states")


class PooledSequenceClassificationMixin:
    """Builds and runs the head: optional weighted layer sum, projector, `pooler`, classifier."""

    @property
    def is_gradient_checkpointing(self) -> bool:
        # peft (0.21) reads this alias, deprecated by transformers 5 (a FutureWarning at every LoRA wrap), when it
        # wraps the model in adapters: answered with the current name.
        return self.is_activation_checkpointing

    def _build_pooled_head(self, config) -> None:
        if config.use_weighted_layer_sum:
            num_layers = config.num_hidden_layers + 1  # transformer layers + the input embeddings
            self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.pooler = TemporalPooling(config.classifier_proj_size, config.pooling_mode, config.pooling_attention_size)
        self.classifier = nn.Linear(self.pooler.output_size, config.num_labels)

    def forward(
        self,
        input_values: Optional[torch.Tensor],
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, samples)`):
            Raw 16 kHz waveforms, as returned by the model's `Wav2Vec2FeatureExtractor`.
        attention_mask (`torch.LongTensor` of shape `(batch_size, samples)`, *optional*):
            1 on real samples, 0 on padding.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for the classification loss.
        """
        return_dict = kwargs.pop("return_dict", None)
        encoder_flags = {name: kwargs.pop(name) for name in _ENCODER_OUTPUT_FLAGS if name in kwargs}
        wants_hidden_states = bool(encoder_flags.get("output_hidden_states", self.config.output_hidden_states))
        if self.config.use_weighted_layer_sum:
            encoder_flags["output_hidden_states"] = True
        encoder = getattr(self, self.base_model_prefix)
        outputs = encoder(input_values, attention_mask=attention_mask, **encoder_flags)

        if self.config.use_weighted_layer_sum:
            layers = torch.stack(outputs.hidden_states, dim=1)
            weights = nn.functional.softmax(self.layer_weights, dim=-1)
            hidden_states = (layers * weights.view(-1, 1, 1)).sum(dim=1)
        else:
            hidden_states = outputs.last_hidden_state

        hidden_states = self.projector(hidden_states)
        frame_mask = None
        if attention_mask is not None:
            frame_mask = self._get_feature_vector_attention_mask(hidden_states.shape[1], attention_mask)
        logits = self.classifier(self.pooler(hidden_states, frame_mask))
        logits = logits / getattr(self.config, "calibration_temperature", 1.0)

        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        output = SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states if wants_hidden_states else None,
            attentions=outputs.attentions,
        )
        return output if return_dict is not False else output.to_tuple()


class SerWav2Vec2ForSequenceClassification(PooledSequenceClassificationMixin, Wav2Vec2ForSequenceClassification):
    config_class = SerWav2Vec2Config

    def __init__(self, config: SerWav2Vec2Config):
        # Skips the parent's __init__, which would build a mean-pooling classifier only to replace it.
        PreTrainedModel.__init__(self, config)
        if config.add_adapter:
            raise ValueError("Sequence classification does not support Wav2Vec2 adapters (config.add_adapter=True).")
        self.wav2vec2 = Wav2Vec2Model(config)
        self._build_pooled_head(config)
        self.post_init()


class SerHubertForSequenceClassification(PooledSequenceClassificationMixin, HubertForSequenceClassification):
    config_class = SerHubertConfig

    def __init__(self, config: SerHubertConfig):
        PreTrainedModel.__init__(self, config)
        self.hubert = HubertModel(config)
        self._build_pooled_head(config)
        self.post_init()


class SerWavLMForSequenceClassification(PooledSequenceClassificationMixin, WavLMForSequenceClassification):
    config_class = SerWavLMConfig

    def __init__(self, config: SerWavLMConfig):
        PreTrainedModel.__init__(self, config)
        if config.add_adapter:
            raise ValueError("Sequence classification does not support WavLM adapters (config.add_adapter=True).")
        self.wavlm = WavLMModel(config)
        self._build_pooled_head(config)
        self.post_init()


class SerData2VecAudioForSequenceClassification(
    PooledSequenceClassificationMixin, Data2VecAudioForSequenceClassification
):
    config_class = SerData2VecAudioConfig

    def __init__(self, config: SerData2VecAudioConfig):
        PreTrainedModel.__init__(self, config)
        if config.add_adapter:
            raise ValueError("Sequence classification does not support Data2VecAudio adapters (add_adapter=True).")
        self.data2vec_audio = Data2VecAudioModel(config)
        self._build_pooled_head(config)
        self.post_init()


__all__ = [
    "PooledSequenceClassificationMixin",
    "SerData2VecAudioForSequenceClassification",
    "SerHubertForSequenceClassification",
    "SerWav2Vec2ForSequenceClassification",
    "SerWavLMForSequenceClassification",
]
