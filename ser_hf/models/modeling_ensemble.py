"""An ensemble of trained classifiers saved as one model: every member scores the clip from its own inputs, and the
ensemble's probabilities are the weighted mean of the members' (its logits are their logarithm, so the softmax that
`pipeline` applies gives that mean back).

Members can read different inputs (log-mels, openSMILE functionals, the waveform): [`EnsembleFeatureExtractor`] runs
every member's feature extractor and prefixes its outputs with the member's index (`member0_input_features`,
`member1_attention_mask`, ...); the forward pass hands each member its own.

This file is copied next to saved ensembles with the modeling files it imports, so a saved ensemble loads with
`trust_remote_code=True` where ser-hf is not installed (see :mod:`.modeling_baseline`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForAudioClassification, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_ensemble import EnsembleConfig
from .modeling_cnn1d import CNN1DForAudioClassification
from .modeling_cnn2d import CNN2DForAudioClassification
from .modeling_cnn_attention_lstm import CNNAttentionLSTMForAudioClassification
from .modeling_crnn import CRNNForAudioClassification
from .modeling_mfcc import MFCCForAudioClassification
from .modeling_opensmile import OpenSmileForAudioClassification
from .modeling_parallel_cnn_transformer import ParallelCNNTransformerForAudioClassification
from .modeling_ssl_pooling import (
    SerData2VecAudioForSequenceClassification,
    SerHubertForSequenceClassification,
    SerWav2Vec2ForSequenceClassification,
    SerWavLMForSequenceClassification,
)
from .modeling_whisper import SerWhisperForAudioClassification

#: ser-hf's model classes by `model_type`; transformers' own classifiers (wav2vec2, HuBERT, ...) come from its Auto
#: classes.
MEMBER_MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    model_class.config_class.model_type: model_class
    for model_class in (
        CNN1DForAudioClassification,
        CNN2DForAudioClassification,
        CNNAttentionLSTMForAudioClassification,
        CRNNForAudioClassification,
        MFCCForAudioClassification,
        OpenSmileForAudioClassification,
        ParallelCNNTransformerForAudioClassification,
        SerData2VecAudioForSequenceClassification,
        SerHubertForSequenceClassification,
        SerWav2Vec2ForSequenceClassification,
        SerWavLMForSequenceClassification,
        SerWhisperForAudioClassification,
    )
}


def member_input_prefix(index: int) -> str:
    """The prefix of member `index`'s inputs in an ensemble's batch (`member0_`, `member1_`, ...)."""
    return f"member{index}_"


def member_config(values: dict) -> PreTrainedConfig:
    """A member's config from its `config.json` values."""
    values = dict(values)
    model_type = values.pop("model_type")
    if model_type in MEMBER_MODEL_CLASSES:
        return MEMBER_MODEL_CLASSES[model_type].config_class.from_dict(values)
    return AutoConfig.for_model(model_type, **values)


def member_model(config: PreTrainedConfig) -> PreTrainedModel:
    """A member model (random weights: the ensemble's saved weights are loaded over them)."""
    if config.model_type in MEMBER_MODEL_CLASSES:
        return MEMBER_MODEL_CLASSES[config.model_type](config)
    return AutoModelForAudioClassification.from_config(config)


class EnsembleForAudioClassification(PreTrainedModel):
    r"""Averages the probabilities of several trained classifiers of the same labels (late fusion): typically models
    that read different inputs, such as openSMILE functionals and log-mel spectrograms, whose errors differ.

    The members keep their own calibration temperatures. The ensemble's logits are the logarithm of the weighted mean
    of the members' softmax probabilities, so `softmax(logits)` is that mean and the argmax is the ensemble's choice
    (`config.calibration_temperature`, when set, divides them as it does any model's logits). Build one from trained
    model folders with [`build_ensemble`] (`ser-hf ensemble`) or train one from an ensemble recipe.
    """

    config: EnsembleConfig
    config_class = EnsembleConfig
    base_model_prefix = "ensemble"
    main_input_name = "member0_input_features"
    input_modalities = ("audio",)

    def __init__(self, config: EnsembleConfig):
        super().__init__(config)
        self.members = nn.ModuleList(member_model(member_config(values)) for values in config.members)
        self.post_init()

    def _init_weights(self, module):
        pass  # every member initialises its own layers; trained weights are loaded over them

    @can_return_tuple
    def forward(self, labels: Optional[torch.Tensor] = None, **inputs) -> SequenceClassifierOutput:
        r"""
        inputs (`torch.Tensor`):
            Each member's inputs from [`EnsembleFeatureExtractor`], named with the member's prefix
            (`member0_input_features`, `member1_input_values`, `member1_attention_mask`, ...).
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for the classification loss (the negative log-likelihood of the averaged probabilities).
        """
        member_logits = []
        for index, member in enumerate(self.members):
            prefix = member_input_prefix(index)
            own = {key[len(prefix) :]: value for key, value in inputs.items() if key.startswith(prefix)}
            if not own:
                raise ValueError(
                    f"No inputs for ensemble member {index} ({self.config.member_names[index]}): expected keys "
                    f"starting with {prefix!r}, got {sorted(inputs)}."
                )
            member_logits.append(member(**own, return_dict=True).logits)
        logits = self.fuse(member_logits)
        loss = nn.functional.nll_loss(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def fuse(self, member_logits: list[torch.Tensor]) -> torch.Tensor:
        """The ensemble's logits from its members' logits (one `(batch_size, num_labels)` tensor per member, in the
        members' order): the logarithm of the weighted mean of their softmax probabilities, divided by the
        ensemble's calibration temperature when it has one."""
        log_probabilities = torch.stack([torch.log_softmax(logits.float(), dim=-1) for logits in member_logits])
        weights = torch.tensor(self.config.member_weights, dtype=torch.float32, device=log_probabilities.device)
        log_weights = torch.log(weights / weights.sum())
        logits = torch.logsumexp(log_probabilities + log_weights[:, None, None], dim=0)
        return logits / getattr(self.config, "calibration_temperature", 1.0)


__all__ = ["EnsembleForAudioClassification", "MEMBER_MODEL_CLASSES", "member_input_prefix"]
