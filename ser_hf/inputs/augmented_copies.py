"""FAST mode with augmented copies (``cached_augmented_copies: N``): waveform augmentation that still lets the frozen
encoder's outputs be cached.

Each clip is encoded once as it is and once per copy, augmented by the recipe's waveform augmentation (room
reverberation, noise, gain, speed, pitch, band-limiting, telephone, codecs:
:class:`~ser_hf.inputs.augment.WaveformAugmentation`), each copy's draws seeded by the recipe's ``augmentation_seed``
(its training seed unless set), the copy and the clip's path, so the copies are the same in every run and are cached
like the clip's own states. Training then draws, for every clip of every epoch, the clip's own states or
one of its copies' (from a generator seeded by the seed, the epoch and the clip, so a resumed run draws what an
uninterrupted one would); validation, test and the statistics of ``normalization`` read the clips' own states only.
Encoding costs ``N + 1`` times FAST mode's; every epoch after it costs what FAST mode's does. Fine-tuning the top
layers (``finetune_top_layers``) takes copies the same way:
:class:`~ser_hf.inputs.top_layers_copies.TopLayersCopiesMode` caches each copy's input to the first fine-tuned layer
too (:func:`add_augmented_copies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict, concatenate_datasets

from ..data.dataset_info import get_ser_info, set_ser_info
from .collators import clip_seed
from .encoder_states import LOWER_STATES_COLUMN, encode_dataset
from .fast_mode import EncoderStatesCollator, FastMode
from .speaker_normalization import ENCODER_STATES_COLUMN


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
    augmentation = mode.augmentation_args.waveform_augmentation(feature_extractor.sampling_rate)
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
            augmentation=augmentation,
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


@dataclass
class AugmentedCopiesCollator(EncoderStatesCollator):
    """:class:`EncoderStatesCollator` for training: each row's states (its pooled ones, and its input to the first
    fine-tuned layer where the row has it) are its own or one of its `copies` augmented copies', drawn uniformly from
    a generator seeded by (`seed`, `epoch`, the clip's path)."""

    copies: int = 0
    seed: int = 0
    epoch: int = 0

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
                }
            drawn.append(row)
        return super().__call__(drawn)


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
            feature_extractor, normalization, copies=self.copies, seed=training_args.seed
        )
        return training, self.evaluation_collator(feature_extractor, normalization)


class AugmentedCopiesMode(WithAugmentedCopies, FastMode):
    """FAST mode whose training clips are drawn among each clip's own states and its cached augmented copies'."""

    name = "FAST (cached encoder states, with augmented copies)"
    preparation = "encoding the corpus and its augmented copies once (FAST mode)"


__all__ = [
    "AugmentedCopiesCollator",
    "AugmentedCopiesMode",
    "WithAugmentedCopies",
    "add_augmented_copies",
    "copy_column",
]
