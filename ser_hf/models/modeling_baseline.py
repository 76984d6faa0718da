"""What every baseline model shares: its audio input, the weight initialisation of its conv stacks, the frame lengths
read from the `attention_mask`, the classification loss and the `SequenceClassifierOutput`. A baseline builds its
layers in `__init__` and turns padded features into logits in :meth:`BaselineForAudioClassification.classify`.
Logits are divided by `config.calibration_temperature` when the config has one (temperature scaling fitted after
training; absent, as in configs saved before it existed, means 1).

This file is copied next to saved baseline models with the modeling file that imports it: ``register_for_auto_class``
copies a model's module and, recursively, every module it imports with ``from .name import``, each by its file name,
into the one saved folder, where transformers loads them as siblings. That is why the model files stay side by side in
one flat folder and import each other only as ``.name``: a subpackage (``from .layers.pooling import``) or a parent
(``from ..emotions import``) would not be found in the saved folder. It imports nothing from ser-hf but its siblings.
"""

from __future__ import annotations

from typing import Optional

import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .masked_conv import init_conv_stack_weights
from .pooling import frame_lengths


class BaselineForAudioClassification(PreTrainedModel):
    """Base of the baseline classifiers. A subclass sets `config_class` and `base_model_prefix`, builds its layers and
    implements :meth:`classify`; a model whose input is not `input_features` (frames) overrides `forward` too."""

    main_input_name = "input_features"
    input_modalities = ("audio",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        init_conv_stack_weights(module)

    def classify(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits `(batch_size, num_labels)` of a zero-padded batch `features` whose clips have `lengths` real frames
        (or samples)."""
        raise NotImplementedError(f"{type(self).__name__} must implement classify().")

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, frames, features)`):
            Frame features from the model's feature extractor (log-mel spectrograms from [`LogMelFeatureExtractor`],
            MFCCs and frame features from [`MFCCFeatureExtractor`]).
        attention_mask (`torch.LongTensor` of shape `(batch_size, frames)`, *optional*):
            1 on real frames, 0 on padding.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for the classification loss.
        """
        return self._classify_padded(input_features, attention_mask, labels, **kwargs)

    def _classify_padded(
        self, inputs: torch.Tensor, attention_mask: Optional[torch.Tensor], labels: Optional[torch.Tensor], **kwargs
    ) -> SequenceClassifierOutput:
        return self.classification_output(
            self.classify(inputs, frame_lengths(inputs, attention_mask)), labels, **kwargs
        )

    def classification_output(
        self, logits: torch.Tensor, labels: Optional[torch.Tensor] = None, **kwargs
    ) -> SequenceClassifierOutput:
        """The output for `logits`, with the loss when `labels` are given (`kwargs` go to the loss, such as
        `num_items_in_batch`), divided by the calibration temperature first."""
        logits = logits / getattr(self.config, "calibration_temperature", 1.0)
        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["BaselineForAudioClassification"]
