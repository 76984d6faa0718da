"""FAST mode with augmented copies (``cached_augmented_copies: N``): waveform augmentation that still lets the frozen
encoder's outputs be cached.

Each clip is encoded once as it is and once per copy, augmented by the recipe's waveform augmentation (room
reverberation, noise, gain, speed, pitch, band-limiting, telephone, codecs:
:class:`~ser_hf.inputs.augment.WaveformAugmentation`), each copy's draws seeded by the recipe's ``augmentation_seed``
(its training seed unless set), the copy and the clip's path, so the copies are the same in every run and are cached
like the clip's own states. Training then draws, for every clip of every epoch, the clip's own states or
one of its copies' (from a generator seeded by the seed, the epoch and the clip, so a resumed run draws what an
uninterrupted one would); validation, test and the statistics of ``normalization`` read the clips' own states only.
A copy is mixed (each perturbation at the recipe's probability) or, by ``augmented_copy_conditions``, in one
recording condition (that perturbation on every clip); a copy in one condition is standardised with each speaker's
statistics over the copy, as ``ser-hf evaluate --conditions`` standardises a condition (each speaker's statistics
over their degraded clips), and a mixed copy with the speaker's statistics of their own clips (issue 96).
Encoding costs ``N + 1`` times FAST mode's; every epoch after it costs what FAST mode's does. Fine-tuning the top
layers (``finetune_top_layers``) takes copies the same way:
:class:`~ser_hf.inputs.top_layers_copies.TopLayersCopiesMode` caches each copy's input to the first fine-tuned layer
too (:func:`add_augmented_copies`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from datasets import Dataset, DatasetDict, concatenate_datasets

from ..data.dataset_info import get_ser_info, set_ser_info
from .collators import clip_seed
from .encoder_cache_keys import LOWER_STATES_COLUMN
from .encoder_states import encode_dataset
from .fast_mode import EncoderStatesCollator, FastMode
from .speaker_normalization import ENCODER_STATES_COLUMN, NormalizationPlan, speaker_statistics

logger = logging.getLogger(__name__)


def copy_column(copy: int, column: str = ENCODER_STATES_COLUMN) -> str:
    """The column of the `copy`-th augmented copy's `column` (1-based): its pooled states by default."""
    return f"{column}_copy{copy}"


def copies_seed(augmentation_args, training_args) -> int:
    """The seed of the copies' draws: the recipe's ``augmentation_seed``, else its training seed."""
    seed = getattr(augmentation_args, "augmentation_seed", None)
    return training_args.seed if seed is None else seed


def add_augmented_copies(mode: FastMode, encoded: Dataset, training_args) -> Dataset:
    """`encoded` (a corpus `mode` has encoded as it is) with its clips' `mode.copies` augmented copies encoded the same
    way, each in columns of its own (:func:`copy_column`): the pooled states and, where the mode caches the input of a
    first fine-tuned layer (`mode.lower_layer`), each copy's input to that layer. Each copy is cached like the clips'
    own states (:func:`encode_dataset`)."""
    model, feature_extractor = mode.build_encoder(encoded, training_args)  # the encoder of the clips' own states
    lower_layer = mode.lower_layer(model)
    states_columns = (ENCODER_STATES_COLUMN, LOWER_STATES_COLUMN)
    clips = encoded.remove_columns([name for name in states_columns if name in encoded.column_names])
    columns = []
    for copy in range(1, mode.copies + 1):
        states = encode_dataset(
            model,
            feature_extractor,
            clips,
            batch_size=training_args.per_device_eval_batch_size,
            precision=mode.data_args.cache_precision,
            lower_layer=lower_layer,
            augmentation=mode.augmentation_args.copy_augmentation(copy, feature_extractor.sampling_rate),
            augmentation_seed=copies_seed(mode.augmentation_args, training_args) * 1_000_003 + copy,
            column=copy_column(copy),
        )
        kept = [copy_column(copy)]
        if lower_layer is not None:
            states = states.rename_column(LOWER_STATES_COLUMN, copy_column(copy, LOWER_STATES_COLUMN))
            kept.append(copy_column(copy, LOWER_STATES_COLUMN))
        columns.append(states.select_columns(kept))
    info = get_ser_info(encoded)
    return set_ser_info(concatenate_datasets([encoded, *columns], axis=1), **info)


#: The key under which :class:`AugmentedCopiesCollator` marks the copy it drew for a row (0: the clip itself).
DRAWN_COPY = "_drawn_copy"


@dataclass
class AugmentedCopiesCollator(EncoderStatesCollator):
    """:class:`EncoderStatesCollator` for training: each row's states (its pooled ones, and its input to the first
    fine-tuned layer where the row has it) are its own or one of its `copies` augmented copies', drawn uniformly from
    a generator seeded by (`seed`, `epoch`, the clip's path). A copy that `copy_statistics` holds (a copy in one
    recording condition: ``{copy: {speaker: statistics}}``) is standardised with its speaker's statistics over that
    copy, as ``ser-hf evaluate --conditions`` standardises a condition; the others with the plan's."""

    copies: int = 0
    seed: int = 0
    epoch: int = 0
    copy_statistics: dict = field(default_factory=dict)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        drawn = []
        for row in rows:
            clip = clip_seed(row.get("path", ""))
            choice = int(np.random.default_rng([self.seed, self.epoch, clip]).integers(0, self.copies + 1))
            if choice:
                row = {
                    **row,
                    **{
                        column: row[copy_column(choice, column)]
                        for column in (ENCODER_STATES_COLUMN, LOWER_STATES_COLUMN)
                        if column in row
                    },
                    DRAWN_COPY: choice,
                }
            drawn.append(row)
        return super().__call__(drawn)

    def row_statistics(self, rows: list[dict[str, Any]]) -> Optional[list[Optional[Any]]]:
        """The plan's statistics of each row, those of its speaker over the drawn copy where the copy has its own."""
        statistics = super().row_statistics(rows)
        if statistics is None or not self.copy_statistics:
            return statistics
        group = self.normalization.group_column
        return [
            self.copy_statistics[row[DRAWN_COPY]].get(row[group], own)
            if row.get(DRAWN_COPY) in self.copy_statistics
            else own
            for row, own in zip(rows, statistics)
        ]


class WithAugmentedCopies:
    """What a cached mode (:class:`FastMode` or a subclass) needs for augmented copies, placed before it in the bases:
    each copy encoded once as the mode encodes the clips (:func:`add_augmented_copies`), its columns kept in every
    split, and training batches drawn among each clip and its copies by `training_collator`; evaluation reads the
    clips' own states through `evaluation_collator`."""

    training_collator: type = AugmentedCopiesCollator
    evaluation_collator: type = EncoderStatesCollator

    @property
    def copies(self) -> int:
        return self.augmentation_args.cached_augmented_copies

    @property
    def columns(self) -> tuple[str, ...]:
        own = super().columns
        return (*own, *(copy_column(copy, column) for copy in range(1, self.copies + 1) for column in own))

    def _prepare_corpus(self, dataset: Dataset, training_args) -> Dataset:
        return add_augmented_copies(self, super()._prepare_corpus(dataset, training_args), training_args)

    def fold_inputs(self, model, feature_extractor, splits, training_args):
        """The mode's inputs, the copies in the training split only: evaluation never reads them."""
        inputs = super().fold_inputs(model, feature_extractor, splits, training_args)
        own = super().columns
        copies = [name for name in self.columns if name not in own]
        return DatasetDict(
            {name: split if name == "train" else split.remove_columns(copies) for name, split in inputs.items()}
        )

    def collators(self, feature_extractor, inputs, training_args, normalization=None, extra_columns=()):
        training = self.training_collator(
            feature_extractor,
            normalization,
            copies=self.copies,
            seed=training_args.seed,
            copy_statistics=self.copy_statistics(feature_extractor, inputs["train"], normalization),
        )
        return training, self.evaluation_collator(feature_extractor, normalization)

    def copy_statistics(
        self, feature_extractor, train: Dataset, normalization: Optional[NormalizationPlan]
    ) -> dict[int, dict[str, Any]]:
        """``{copy: {speaker: statistics}}`` for the copies in one recording condition (``augmented_copy_conditions``):
        each training speaker's statistics over their clips' states in that copy (each corpus', under corpus
        normalisation), read from the cached states, without labels. Empty where the plan has no statistics by
        group (global normalisation) or every copy is mixed."""
        copies = self.augmentation_args.own_statistics_copies()
        if normalization is None or normalization.speaker_statistics is None or not copies:
            return {}
        group = normalization.group_column
        by_copy = {}
        for copy in copies:
            states = train.select_columns([copy_column(copy), group]).rename_column(
                copy_column(copy), ENCODER_STATES_COLUMN
            )
            by_group = speaker_statistics(feature_extractor, states, group_column=group)
            by_copy[copy] = {
                name: running.statistics(feature_extractor.variance_floor) for name, running in by_group.items()
            }
        logger.info(
            "Augmented copies %s (%s): each standardised with its %d groups' statistics over the copy.",
            ", ".join(map(str, copies)),
            ", ".join(self.augmentation_args.copy_condition(copy) for copy in copies),
            len(by_copy[copies[0]]),
        )
        return by_copy


class AugmentedCopiesMode(WithAugmentedCopies, FastMode):
    """FAST mode whose training clips are drawn among each clip's own states and its cached augmented copies'."""

    name = "FAST (cached encoder states, with augmented copies)"
    preparation = "encoding the corpus and its augmented copies once (FAST mode)"


__all__ = [
    "AugmentedCopiesCollator",
    "AugmentedCopiesMode",
    "DRAWN_COPY",
    "WithAugmentedCopies",
    "add_augmented_copies",
    "copy_column",
]
