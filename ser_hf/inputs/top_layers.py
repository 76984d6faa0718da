"""Fine-tuning the top layers of a Whisper encoder on CPU (``finetune_top_layers``): the frozen lower layers run once.

The corpus is encoded once, before it is split, through each batch's longest clip only (``trim_window``): every
clip's pooled statistics of every layer (as FAST mode caches them) and its own frames' input to the first fine-tuned
layer (:data:`LOWER_STATES_COLUMN`, float16 with ``cache_precision: float16``). Every fold and epoch then trains the
top ``k`` layers, the encoder's final layer norm and the head on those cached frames
(:class:`CachedLowerLayersModel`): a step costs ``k`` layers over the clips' own frames instead of the whole encoder
over a padded window. The statistics of the frozen layers come from the cache; those of the fine-tuned layers are
computed every step. The model's own modules are trained, so the saved model is the full classifier that runs on
audio (`pipeline("audio-classification")`), encoding each batch through its longest clip as it was trained.

Augmentation: Whisper's SpecAugment keys in ``model_config`` (``apply_spec_augment``, ``mask_time_prob``,
``mask_time_length``, ``mask_time_min_masks``, ``mask_feature_prob``, ``mask_feature_length``,
``mask_feature_min_masks``, as ``WhisperModel`` reads them for its log-mel input) mask spans of frames and of channels
of the cached input of the first fine-tuned layer in every training step (zeroed, spans drawn by transformers'
``_compute_mask_indices``): the cache stays exact and each epoch sees other masks. Evaluation and the saved model
never mask. Augmented audio (``cached_augmented_copies``) is encoded once per copy up to the first fine-tuned
layer: :class:`~ser_hf.inputs.top_layers_copies.TopLayersCopiesMode`.

LoRA (``use_lora`` with ``finetune_top_layers``): peft's LoRA adapters on the top layers' attention and feed-forward
projections (``lora_target_modules``, by default :data:`TOP_LAYERS_LORA_TARGET_MODULES`) train instead of those
layers' weights, the final layer norm and the head in full; the adapters are merged into the layers' weights before
the model is saved, so the saved classifier is a plain transformers model of the same size as the pretrained one.

Statistics: ``normalization: global`` standardises every layer's statistics with those the training clips had
before fine-tuning (a fixed standardisation the fine-tuned layers learn under, stored in the feature extractor, as
the saved model applies it). ``speaker`` and ``corpus`` statistics standardise each clip with its speaker's (its
corpus') own, which must describe the model as it is: the fine-tuned layers' states change every step, and a test
speaker's statistics are computed by the saved model (``ser-hf evaluate``), not the pretrained one. So every group's
statistics, every split's speakers alike and without labels, are computed again with the current weights at the start
of every epoch and once more when training ends (:class:`GroupStatisticsRefresh`: the frozen layers' from the cache,
the fine-tuned layers' by one forward pass of those layers over every clip's cached input: with 4 of 5 speaker folds
training, about 40 % of an epoch's forward and backward passes, by count), as are the global statistics the saved
extractor falls back on for a single clip. Within an epoch the statistics stay those of its start; an interrupted run
recomputes them at its checkpoint's step (at an epoch's end, as the recipes save, the same ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from peft import LoraConfig, LoraModel
from torch import nn
from transformers import PreTrainedModel, TrainerCallback
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.whisper.modeling_whisper import _compute_mask_indices

from ..data.dataset_info import column_values
from ..errors import RecipeError
from ..models.feature_normalization import GROUP_NORMALIZATIONS
from ..models.modeling_whisper import pool_layer_statistics
from ..models.runtime.ssl import TOP_LAYERS_LORA_TARGET_MODULES, check_lora_targets
from .base import InputMode
from .encoder_cache_keys import LOWER_STATES_COLUMN
from .encoder_states import check_lower_layer
from .fast_mode import EncoderStatesCollator, FastMode, _cross_entropy
from .speaker_normalization import (
    ENCODER_STATES_COLUMN,
    NormalizationPlan,
    merged_statistics,
    statistics_by_speaker,
)


class CachedLowerLayersModel(nn.Module):
    """The top `num_hidden_layers - lower_layer` layers of a Whisper classifier's encoder, its final layer norm and its
    head, trained on cached inputs of layer `lower_layer` (see the module docstring). It holds the model's own modules,
    not copies (training it trains the full model) and turns their gradients on. It runs as a `Trainer` model.

    Args:
        model (`SerWhisperForAudioClassification`): with `trim_window` and `layer_statistics` pooling of every layer.
        lower_layer (`int`): the first fine-tuned layer (the layers below it are cached).
        lora_config (`peft.LoraConfig`, *optional*): LoRA adapters on the fine-tuned layers, which then train instead
            of those layers' weights (merged into them by :meth:`merge_adapters`).
    """

    def __init__(self, model: PreTrainedModel, lower_layer: int, lora_config: Optional[LoraConfig] = None):
        check_lower_layer(model, lower_layer)
        super().__init__()
        self.config = model.config
        self.lower_layer = lower_layer
        self.layers = nn.ModuleList(model.encoder.layers[lower_layer:])
        self.layer_norm = model.encoder.layer_norm
        self.projector = model.projector
        self.classifier = model.classifier
        self.head_dropout = model.head_dropout
        self._whisper = [model]  # a list: not a submodule (its frozen weights stay out of checkpoints)
        self.layer_norm.requires_grad_(True)
        self._lora: list[LoraModel] = []  # a list, as above: the adapters are registered through self.layers
        if lora_config is None:
            self.layers.requires_grad_(True)
        else:
            check_lora_targets(model, lora_config.target_modules)
            # peft puts the adapters into the model's own layers (in place) and trains the adapters only.
            self._lora.append(LoraModel(self.layers, lora_config, "default"))

    def merge_adapters(self) -> None:
        """Fold the LoRA adapters (if any) into the fine-tuned layers' weights, leaving plain transformers layers."""
        if self._lora:
            self._lora.pop().merge_and_unload()

    def forward(
        self,
        encoder_states: torch.Tensor,
        lower_states: torch.Tensor,
        frame_mask: torch.Tensor,
        labels: Optional[torch.Tensor] = None,
        state_mean: Optional[torch.Tensor] = None,
        state_std: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        encoder_states (`torch.FloatTensor` of shape `(batch_size, num_hidden_layers + 1, 2 * hidden_size)`):
            Each clip's cached layer statistics; those of the layers above `lower_layer` are replaced by the ones the
            fine-tuned layers give now.
        lower_states (`torch.FloatTensor` of shape `(batch_size, frames, hidden_size)`):
            Each clip's cached input to layer `lower_layer`, padded to the batch's longest clip.
        frame_mask (`torch.BoolTensor` of shape `(batch_size, frames)`): true on each clip's own frames.
        state_mean, state_std (`torch.FloatTensor`, *optional*): the statistics every layer's are standardised with.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): class indices for the loss.
        """
        whisper = self._whisper[0]
        pooled = self.pooled_states(encoder_states, lower_states, frame_mask)
        pooled = whisper.standardize_pooled_states(pooled, state_mean, state_std)
        # Uncalibrated, as CachedEncoderHead's: training fits the temperature on these logits afterwards.
        logits = whisper.classify_pooled_states(pooled)
        loss = None
        if labels is not None:
            loss = _cross_entropy(logits, labels.to(logits.device), kwargs.get("num_items_in_batch"))
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def pooled_states(
        self, encoder_states: torch.Tensor, lower_states: torch.Tensor, frame_mask: torch.Tensor
    ) -> torch.Tensor:
        """Each clip's layer statistics as the model has them now, flattened `(batch, (num_hidden_layers + 1) * 2 *
        hidden_size)` and not standardised: the frozen layers' from the cache, the fine-tuned layers' computed on the
        cached input of layer `lower_layer` (masked while training, see :meth:`mask_states`)."""
        hidden = self.mask_states(lower_states.to(self.projector.weight.dtype), frame_mask)
        states = self._whisper[0].run_encoder_layers(hidden, frame_mask, start=self.lower_layer)
        trained = pool_layer_statistics(states[1:], frame_mask)
        return torch.cat([encoder_states[:, : self.lower_layer + 1].to(trained.dtype), trained], dim=1).flatten(1)

    def mask_states(self, hidden: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """SpecAugment on the cached states while training (``config.apply_spec_augment``): spans of each clip's own
        frames (``mask_time_*``) and of channels (``mask_feature_*``) set to zero; `hidden` as it is otherwise."""
        config = self.config
        if not (self.training and config.apply_spec_augment):
            return hidden
        batch, frames, channels = hidden.shape
        if config.mask_time_prob > 0:
            time = _compute_mask_indices(
                (batch, frames),
                mask_prob=config.mask_time_prob,
                mask_length=config.mask_time_length,
                attention_mask=frame_mask.long(),
                min_masks=config.mask_time_min_masks,
            )
            hidden = hidden.masked_fill(torch.from_numpy(time).to(hidden.device)[:, :, None], 0.0)
        if config.mask_feature_prob > 0:
            feature = _compute_mask_indices(
                (batch, channels),
                mask_prob=config.mask_feature_prob,
                mask_length=config.mask_feature_length,
                min_masks=config.mask_feature_min_masks,
            )
            hidden = hidden.masked_fill(torch.from_numpy(feature).to(hidden.device)[:, None, :], 0.0)
        return hidden


@dataclass
class LowerStatesCollator(EncoderStatesCollator):
    """:class:`EncoderStatesCollator`'s batch, plus each row's `lower_states` padded to the batch's longest clip and
    the `frame_mask` marking its own frames."""

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = super().__call__(rows)
        lower = [np.asarray(row[LOWER_STATES_COLUMN], dtype=np.float32) for row in rows]
        frames = max(len(value) for value in lower)
        padded = np.zeros((len(lower), frames, lower[0].shape[-1]), dtype=np.float32)
        mask = np.zeros((len(lower), frames), dtype=bool)
        for row, value in enumerate(lower):
            padded[row, : len(value)] = value
            mask[row, : len(value)] = True
        batch[LOWER_STATES_COLUMN] = torch.from_numpy(padded)
        batch["frame_mask"] = torch.from_numpy(mask)
        return batch


class GroupStatisticsRefresh(TrainerCallback):
    """Speaker (or corpus) normalisation while the top layers train: every group's statistics in the run's
    `NormalizationPlan` (which the collators read), and the extractor's global ones from the training split, computed
    again from the model as it is at the start of every epoch and at the end of training (see the module docstring).
    Reads no label.

    Args:
        model (`CachedLowerLayersModel`): the trained model, whose :meth:`~CachedLowerLayersModel.pooled_states`
            give every clip's statistics.
        feature_extractor (`SerWhisperFeatureExtractor`): its global statistics (saved with the model) follow.
        inputs (`DatasetDict`): every split's cached states, with the plan's group column.
        plan (`NormalizationPlan`): updated in place.
        batch_size (`int`): clips per forward pass.
    """

    def __init__(
        self,
        model: CachedLowerLayersModel,
        feature_extractor,
        inputs: DatasetDict,
        plan: NormalizationPlan,
        batch_size: int,
    ):
        self.model, self.feature_extractor, self.inputs, self.plan = model, feature_extractor, inputs, plan
        self.batch_size = batch_size

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.refresh()

    def on_train_end(self, args, state, control, **kwargs):
        self.refresh()

    def refresh(self) -> None:
        """Recompute every group's statistics and the training split's global ones with the model's current
        weights."""
        per_split = {name: statistics_by_speaker(self._pooled_rows(dataset)) for name, dataset in self.inputs.items()}
        floor = self.feature_extractor.variance_floor
        training, by_group = merged_statistics(per_split)
        self.feature_extractor.set_global_statistics(*training.statistics(floor))
        self.plan.speaker_statistics.update(
            {group: statistics.statistics(floor) for group, statistics in by_group.items()}
        )

    def _pooled_rows(self, dataset: Dataset):
        """``(group, pooled states row)`` of every clip of `dataset`, by the model as it is (evaluation mode)."""
        groups = column_values(dataset, self.plan.group_column)
        # Only what the model reads: a training split's augmented copies (their frames) stay on disk.
        dataset = dataset.select_columns([ENCODER_STATES_COLUMN, LOWER_STATES_COLUMN])
        collator = LowerStatesCollator()
        model = self.model
        device = model.projector.weight.device
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(dataset), self.batch_size):
                    stop = min(start + self.batch_size, len(dataset))
                    batch = collator([dataset[index] for index in range(start, stop)])
                    pooled = model.pooled_states(
                        batch[ENCODER_STATES_COLUMN].to(device),
                        batch[LOWER_STATES_COLUMN].to(device),
                        batch["frame_mask"].to(device),
                    )
                    yield from zip(groups[start:stop], pooled.float().cpu().numpy()[:, None, :])
        finally:
            model.train(was_training)


class TopLayersMode(FastMode):
    """``finetune_top_layers: k`` with ``cache_encoder_outputs``: the encoder's lower layers encoded once (their
    statistics and the first fine-tuned layer's input cached), the top `k` layers and the head trained on them."""

    name = "top encoder layers fine-tuned on cached lower layers"
    columns = (ENCODER_STATES_COLUMN, LOWER_STATES_COLUMN)
    preparation = "encoding the corpus once up to the first fine-tuned layer"

    def lower_layer(self, model: PreTrainedModel) -> int:
        layers, top = model.config.num_hidden_layers, self.model_args.finetune_top_layers
        if top > layers:
            raise RecipeError(
                f"finetune_top_layers: {top} is more than the {layers} layers of {model.config.name_or_path or 'the'}"
                f" encoder: at most {layers} (every layer, on its cached input embeddings)."
            )
        return layers - top

    def longest_clip_seconds(self, feature_extractor) -> Optional[float]:
        # The fine-tuned layers read each clip's cached input whole: no windows.
        return InputMode.longest_clip_seconds(self, feature_extractor)

    def trained_model(self, model, feature_extractor, inputs) -> nn.Module:
        self.check_encoder(model, feature_extractor)
        return CachedLowerLayersModel(model, self.lower_layer(model), lora_config=self.lora_config())

    def lora_config(self) -> Optional[LoraConfig]:
        """The recipe's LoRA adapters on the fine-tuned layers (``use_lora``), or `None`."""
        args = self.model_args
        if not args.use_lora:
            return None
        return LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=list(args.lora_target_modules or TOP_LAYERS_LORA_TARGET_MODULES),
        )

    def exported_model(self, model, trained_model) -> nn.Module:
        trained_model.merge_adapters()
        return model

    def collators(self, feature_extractor, inputs, training_args, normalization=None, extra_columns=()):
        collator = LowerStatesCollator(feature_extractor, normalization)
        return collator, collator

    def callbacks(self, trained_model, feature_extractor, inputs, training_args, normalization=None):
        if normalization is None or normalization.mode not in GROUP_NORMALIZATIONS:
            return []  # global statistics: a fixed standardisation, fitted once before fine-tuning
        return [
            GroupStatisticsRefresh(
                trained_model, feature_extractor, inputs, normalization, training_args.per_device_eval_batch_size
            )
        ]


__all__ = [
    "CachedLowerLayersModel",
    "GroupStatisticsRefresh",
    "LowerStatesCollator",
    "TopLayersMode",
]
