"""FAST mode with augmented copies (``cached_augmented_copies: N``): waveform augmentation that still lets the frozen
encoder's outputs be cached.

Each clip is encoded once as it is and once per copy, augmented by the recipe's waveform augmentation (room
reverberation, noise, gain, speed, pitch, band-limiting: :class:`~ser_hf.inputs.augment.WaveformAugmentation`), each
copy's draws seeded by the recipe's seed, the copy and the clip's path, so the copies are the same in every run and
are cached like the clip's own states. Training then draws, for every clip of every epoch, the clip's own states or
one of its copies' (from a generator seeded by the seed, the epoch and the clip, so a resumed run draws what an
uninterrupted one would); validation, test and the statistics of ``normalization`` read the clips' own states only.
Encoding costs ``N + 1`` times FAST mode's; every epoch after it costs what FAST mode's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets

from ..data.dataset_info import get_ser_info, set_ser_info
from .collators import clip_seed
from .encoder_states import encode_dataset
from .fast_mode import EncoderStatesCollator, FastMode
from .speaker_normalization import ENCODER_STATES_COLUMN


def copy_column(copy: int) -> str:
    """The column of the `copy`-th augmented copy's states (1-based)."""
    return f"{ENCODER_STATES_COLUMN}_copy{copy}"


@dataclass
class AugmentedCopiesCollator(EncoderStatesCollator):
    """:class:`EncoderStatesCollator` for training: each row's states are its own or one of its `copies` augmented
    copies', drawn uniformly from a generator seeded by (`seed`, `epoch`, the clip's path)."""

    copies: int = 0
    seed: int = 0
    epoch: int = 0

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        drawn = []
        for row in rows:
            clip = clip_seed(row.get("path", ""))
            choice = int(np.random.default_rng([self.seed, self.epoch, clip]).integers(0, self.copies + 1))
            drawn.append(
                {**row, ENCODER_STATES_COLUMN: row[copy_column(choice)] if choice else row[ENCODER_STATES_COLUMN]}
            )
        return super().__call__(drawn)


class AugmentedCopiesMode(FastMode):
    """FAST mode whose training clips are drawn among each clip's own states and its cached augmented copies'."""

    name = "FAST (cached encoder states, with augmented copies)"
    preparation = "encoding the corpus and its augmented copies once (FAST mode)"

    @property
    def copies(self) -> int:
        return self.augmentation_args.cached_augmented_copies

    @property
    def columns(self) -> tuple[str, ...]:
        return (ENCODER_STATES_COLUMN, *(copy_column(copy) for copy in range(1, self.copies + 1)))

    def _prepare_corpus(self, dataset: Dataset, training_args) -> Dataset:
        encoded = super()._prepare_corpus(dataset, training_args)
        model, feature_extractor = self.build_encoder(dataset, training_args)  # the encoder of the clips' own states
        augmentation = self.augmentation_args.waveform_augmentation(feature_extractor.sampling_rate)
        clips = encoded.remove_columns(ENCODER_STATES_COLUMN)
        columns = []
        for copy in range(1, self.copies + 1):
            states = encode_dataset(
                model,
                feature_extractor,
                clips,
                batch_size=training_args.per_device_eval_batch_size,
                precision=self.data_args.cache_precision,
                augmentation=augmentation,
                augmentation_seed=training_args.seed * 1_000_003 + copy,
                column=copy_column(copy),
            )
            columns.append(states.select_columns([copy_column(copy)]))
        info = get_ser_info(encoded)
        return set_ser_info(concatenate_datasets([encoded, *columns], axis=1), **info)

    def collators(self, feature_extractor, inputs, training_args, normalization=None, extra_columns=()):
        training = AugmentedCopiesCollator(
            feature_extractor, normalization, copies=self.copies, seed=training_args.seed
        )
        return training, EncoderStatesCollator(feature_extractor, normalization)


__all__ = ["AugmentedCopiesCollator", "AugmentedCopiesMode", "copy_column"]
