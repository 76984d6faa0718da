"""FAST mode: train only the head of a frozen self-supervised encoder, on encoder outputs computed once and cached.

transformers' SSL classification head is linear up to the classifier: `hidden_states` (the last layer, or a
softmax(`layer_weights`)-weighted sum of every layer with `use_weighted_layer_sum`) go through the `projector`, are
averaged over the clip's real frames, then classified. Averaging commutes with the weighted sum and the projector, so
the logits follow exactly from the per-layer mean over real frames of the encoder's hidden states. With the encoder
frozen those means never change: :func:`~ser_hf.inputs.encoder_states.encode_dataset` computes them once per clip into
an Arrow cache file, and :class:`CachedEncoderHead` trains the model's own `projector`, `classifier` (and
`layer_weights`) on them, so the model is saved with `save_pretrained` as usual and runs on raw audio.

The encoder runs in eval mode, as it does at inference: FAST training sees no dropout, layer drop or SpecAugment
time masking (`mask_time_prob`) in the frozen encoder, which a frozen encoder in train mode would apply.

:class:`FastMode` is the input mode (:mod:`ser_hf.inputs.base`) through which training and the leakage study use it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from datasets import Dataset
from torch import nn
from torch.utils.data import DataLoader
from transformers import (
    PreTrainedModel,
    set_seed,
)
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.modeling_outputs import SequenceClassifierOutput

from ..models.feature_extraction_whisper import SerWhisperFeatureExtractor
from ..models.modeling_whisper import SerWhisperForAudioClassification, centred_layer_statistics
from .base import InputMode, drop_clips_longer_than, drop_clips_shorter_than, receptive_field_seconds
from .encoder_cache_keys import encoder_cache_key, pools_layer_statistics
from .encoder_states import check_cacheable, encode_dataset
from .speaker_normalization import ENCODER_STATES_COLUMN, NormalizationPlan, clip_statistics_of

logger = logging.getLogger(__name__)


class CachedEncoderHead(nn.Module):
    """The head of an SSL classifier, trained on cached encoder states (see :func:`encode_dataset`).

    It holds the model's own `projector`, `classifier` and (with `use_weighted_layer_sum`) `layer_weights`, not
    copies: training it trains the full model's head, which is then saved with `save_pretrained` and runs on raw
    audio. Its `state_dict` holds just those, so `Trainer` checkpoints stay small. It runs as a `Trainer` model.

    Args:
        model (`PreTrainedModel`): an SSL classifier that passes :func:`check_cacheable`.
    """

    def __init__(self, model: PreTrainedModel):
        check_cacheable(model)
        super().__init__()
        # The config (not a module) is shared too: Trainer reads `model.config` (label smoothing, `use_cache`).
        self.config = model.config
        self.projector = model.projector
        self.classifier = model.classifier
        self.layer_weights = getattr(model, "layer_weights", None) if model.config.use_weighted_layer_sum else None
        # Whisper's head: its dropout, and its pooling of each layer's statistics (see SerWhisperConfig).
        self.head_dropout = getattr(model, "head_dropout", None)
        self.layer_statistics = pools_layer_statistics(model)
        self.layer_selection = getattr(model, "layer_selection", None)  # Whisper's config.pooled_layers

    def forward(
        self,
        encoder_states: torch.Tensor,
        labels: Optional[torch.Tensor] = None,
        state_mean: Optional[torch.Tensor] = None,
        state_std: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        encoder_states (`torch.FloatTensor` of shape `(batch_size, num_hidden_layers + 1, hidden_size)` or
            `(batch_size, hidden_size)`): each clip's mean encoder states, as :func:`encode_dataset` caches them
            (`(batch_size, layers, 2 * hidden_size)` means and standard deviations for Whisper's layer statistics).
        state_mean, state_std (`torch.FloatTensor` of shape `(batch_size, layers * hidden_size)`, *optional*):
            Statistics each clip's states are standardised with first, as the full model does (a Whisper classifier
            whose feature extractor has `normalization`; :class:`EncoderStatesCollator` passes them).
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices (`-100` is ignored) for the cross-entropy loss.
        num_items_in_batch (`int` or `torch.Tensor`, *optional*):
            Labelled clips in the whole (gradient-accumulated) batch, which `Trainer` passes: the loss is then summed
            and divided by it, as transformers' `loss_function`s do. Other keyword arguments are ignored.
        """
        states = encoder_states.to(self.projector.weight.dtype)
        if state_mean is not None or state_std is not None:
            if state_mean is None or state_std is None:
                raise ValueError("Pass both state_mean and state_std, or neither.")
            shape = states.shape
            states = (states.reshape(shape[0], -1) - state_mean.to(states.dtype)) / state_std.to(states.dtype)
            states = states.reshape(shape)
        if self.layer_statistics:
            layers = self.config.num_hidden_layers + 1 if self.config.use_weighted_layer_sum else 1
            expected = 2 * self.config.hidden_size * layers
            if states[0].numel() != expected:
                raise ValueError(
                    f"With pooling_mode='layer_statistics', each clip's encoder_states must hold {expected} values "
                    f"(every layer's mean and standard deviation); got {tuple(states.shape[1:])}."
                )
            states = states.reshape(states.shape[0], -1)
            if getattr(self.config, "center_frames", False):
                states = centred_layer_statistics(states, encoder_states.shape[1])
            if self.layer_selection is not None:  # config.pooled_layers: the head reads those layers only
                states = self.layer_selection(states)
            states = self.head_dropout(states)
        elif self.layer_weights is not None:
            if states.dim() != 3 or states.shape[1] != self.layer_weights.shape[0]:
                raise ValueError(
                    f"With use_weighted_layer_sum, encoder_states must be (batch, {self.layer_weights.shape[0]}, "
                    f"hidden_size); got {tuple(states.shape)}."
                )
            weights = nn.functional.softmax(self.layer_weights, dim=-1)
            states = (states * weights.view(-1, 1)).sum(dim=1)
        elif states.dim() != 2:
            raise ValueError(f"encoder_states must be (batch, hidden_size); got {tuple(states.shape)}.")
        projected = self.projector(states)
        logits = self.classifier(self.head_dropout(projected) if self.head_dropout is not None else projected)

        loss = None
        if labels is not None:
            loss = _cross_entropy(logits, labels.to(logits.device), kwargs.get("num_items_in_batch"))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: Optional[Union[int, torch.Tensor]]
) -> torch.Tensor:
    """Cross entropy as transformers' `ForSequenceClassificationLoss`: the mean, or the sum over the number of
    labelled items in the whole accumulated batch when `Trainer` gives it (so gradient accumulation is exact)."""
    logits = logits.view(-1, logits.shape[-1]).float()
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(logits, labels.view(-1), ignore_index=-100)
    loss = nn.functional.cross_entropy(logits, labels.view(-1), ignore_index=-100, reduction="sum")
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch


@dataclass
class EncoderStatesCollator:
    """Batches rows `{"encoder_states": ..., "label": int, ...}` into `{"encoder_states": float, "labels": long}`
    tensors; other columns are dropped. Rows without a `label` give a batch without `labels` (prediction).

    With a `feature_extractor` that standardises the encoder's states (`normalization` global or speaker), the batch
    also holds the `state_mean` and `state_std` of each row (its speaker's, from the `normalization` plan)."""

    feature_extractor: Optional[SequenceFeatureExtractor] = None
    normalization: Optional[Any] = None

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        states = np.stack([np.asarray(row[ENCODER_STATES_COLUMN], dtype=np.float32) for row in rows])
        batch = {ENCODER_STATES_COLUMN: torch.from_numpy(states)}
        clip_statistics = getattr(self.feature_extractor, "clip_statistics", None)
        statistics = clip_statistics(len(rows), self.row_statistics(rows)) if clip_statistics else None
        if statistics is not None:
            batch["state_mean"], batch["state_std"] = (torch.from_numpy(value) for value in statistics)
        if "label" in rows[0]:
            batch["labels"] = torch.tensor([row["label"] for row in rows], dtype=torch.long)
        return batch

    def row_statistics(self, rows: list[dict[str, Any]]) -> Optional[list[Optional[Any]]]:
        """Each row's statistics: its speaker's (its corpus', under corpus normalisation) from the plan, or `None`."""
        return clip_statistics_of(self.normalization, rows)


class FastMode(InputMode):
    """FAST mode (``cache_encoder_outputs``): the frozen encoder's pooled states of every clip, computed once for the
    whole corpus before it is split (:func:`encode_dataset`), and the model's head trained on them
    (:class:`CachedEncoderHead`)."""

    name = "FAST (cached encoder states)"
    columns = (ENCODER_STATES_COLUMN,)
    preparation = "encoding the corpus once (FAST mode)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: The cache key of the encoder the corpus was encoded with, and the corpus as loaded (set by
        #: :meth:`prepare_corpus`): each split's model is checked against them.
        self.encoder_key: Optional[str] = None
        self.unencoded_dataset: Optional[Dataset] = None

    def lower_layer(self, model: PreTrainedModel) -> Optional[int]:
        """The encoder layer whose input is cached beside the pooled states, for the layers above it to train on
        (:class:`~ser_hf.inputs.top_layers.TopLayersMode`); `None`: the whole encoder is frozen."""
        return None

    def longest_clip_seconds(self, feature_extractor: SequenceFeatureExtractor) -> Optional[float]:
        """No bound: a clip longer than the encoder's window is encoded in windows, pooled over the whole clip."""
        return None

    def _prepare_corpus(self, dataset: Dataset, training_args) -> Dataset:
        """Clips shorter than the encoder's receptive field (or, where the mode reads clips whole, longer than its
        window) stop the run before any clip is encoded, as in normal training (with ``skip_invalid`` they are left
        out, with a warning that lists them)."""
        model, feature_extractor = self.build_encoder(dataset, training_args)
        long_enough = drop_clips_shorter_than(
            dataset, receptive_field_seconds(model, feature_extractor), skip_invalid=self.data_args.skip_invalid
        )
        long_enough = drop_clips_longer_than(
            long_enough, self.longest_clip_seconds(feature_extractor), self.data_args.skip_invalid, feature_extractor
        )
        lower_layer = self.lower_layer(model)
        encoded = encode_dataset(
            model,
            feature_extractor,
            long_enough,
            batch_size=training_args.per_device_eval_batch_size,
            precision=self.data_args.cache_precision,
            lower_layer=lower_layer,
        )
        # The key of the corpus as loaded: each split's model is checked against it (trained_model).
        self.encoder_key = encoder_cache_key(
            model, feature_extractor, dataset, self.data_args.cache_precision, lower_layer=lower_layer
        )
        self.unencoded_dataset = dataset
        return encoded

    def build_encoder(self, dataset: Dataset, training_args) -> tuple[PreTrainedModel, SequenceFeatureExtractor]:
        """The recipe's model, seeded as every split's is (so a randomly initialised encoder is the same one), on the
        training device, and its feature extractor."""
        set_seed(training_args.seed)
        model, feature_extractor = self.build_model(self.model_args, self.augmentation_args, dataset.features["label"])
        return model.to(training_args.device), feature_extractor

    def check_encoder(self, model: PreTrainedModel, feature_extractor) -> None:
        """Refuse a split's model whose encoder is not the one the corpus was encoded with."""
        if self.encoder_key is not None and (
            encoder_cache_key(
                model,
                feature_extractor,
                self.unencoded_dataset,
                self.data_args.cache_precision,
                lower_layer=self.lower_layer(model),
            )
            != self.encoder_key
        ):
            raise RuntimeError("The encoder built for this split differs from the one whose outputs were cached.")

    def fold_inputs(self, model, feature_extractor, splits, training_args):
        if ENCODER_STATES_COLUMN not in splits["train"].column_names:
            raise ValueError(
                f"FAST mode trains on the {ENCODER_STATES_COLUMN!r} column, which the splits lack (columns: "
                f"{', '.join(splits['train'].column_names)}): encode the corpus with prepare_corpus before "
                "splitting it."
            )
        return super().fold_inputs(model, feature_extractor, splits, training_args)

    def trained_model(self, model, feature_extractor, inputs) -> nn.Module:
        self.check_encoder(model, feature_extractor)
        return CachedEncoderHead(model)

    def collators(self, feature_extractor, inputs, training_args, normalization=None, extra_columns=()):
        collator = EncoderStatesCollator(feature_extractor, normalization)
        return collator, collator


@contextlib.contextmanager
def encoder_frozen(model: PreTrainedModel):
    """While the block runs, the encoder's parameters need no gradient (as FAST mode's cache requires of it); a
    loaded model's are restored after. Evaluation computes no gradient either way."""
    trainable = [parameter for parameter in model.base_model.parameters() if parameter.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


@torch.no_grad()
def head_logits(
    model: PreTrainedModel,
    feature_extractor,
    rows: Sequence[dict[str, Any]],
    normalization: Optional[NormalizationPlan] = None,
    batch_size: int = 256,
) -> np.ndarray:
    """A model's logits from cached pooled encoder states: its own head (:class:`CachedEncoderHead`, as FAST mode
    trains it) on `rows` (``{"encoder_states": ..., group column: ...}``, a dataset's or a list's), each row
    standardised with its group's statistics of ``normalization``, the logits divided by the model's calibration
    temperature as its forward pass divides them. NaN or infinite logits are left to the caller (``ser-hf predict``
    gives each such window's file an error)."""
    with encoder_frozen(model):
        head = CachedEncoderHead(model).eval()
    collator = EncoderStatesCollator(feature_extractor, normalization)
    outputs = []
    for batch in DataLoader(rows, batch_size=batch_size, collate_fn=collator):
        batch = {name: value.to(model.device) for name, value in batch.items()}
        outputs.append(head(**batch).logits.float().cpu().numpy())
    logits = np.concatenate(outputs) if outputs else np.zeros((0, model.config.num_labels), dtype=np.float32)
    return logits / getattr(model.config, "calibration_temperature", 1.0)


def encodes_once(model, feature_extractor) -> bool:
    """Whether a model's logits follow from its pooled encoder states, so that the states computed for corpus or
    speaker statistics serve its head too: a Whisper classifier whose pooling caches (``mean``, ``layer_statistics``),
    not wrapped by peft. Others run the whole model after their statistics (their statistics need no encoder, or
    their head reads every frame), and the log says why."""
    if not isinstance(model, SerWhisperForAudioClassification) or not isinstance(
        feature_extractor, SerWhisperFeatureExtractor
    ):
        return False
    try:
        with encoder_frozen(model):
            check_cacheable(model)
    except ValueError as error:
        logger.info("Encoding the clips twice (once for the statistics, once to score them): %s", error)
        return False
    return True


def encoder_states_once(model: PreTrainedModel, feature_extractor, dataset: Dataset, batch_size: int) -> Dataset:
    """`dataset` with each clip's pooled encoder states (the ``encoder_states`` column), computed once through FAST
    mode's cache (:func:`~ser_hf.inputs.encoder_states.encode_dataset`): an evaluation run again, or of a corpus a
    FAST training run encoded with the same encoder, reads them back."""
    with encoder_frozen(model):
        return encode_dataset(model, feature_extractor, dataset, batch_size=batch_size)


__all__ = [
    "CachedEncoderHead",
    "ENCODER_STATES_COLUMN",
    "EncoderStatesCollator",
    "FastMode",
    "encoder_frozen",
    "encoder_states_once",
    "encodes_once",
    "head_logits",
]
