"""Batching of prepared clips: random crops for training, dynamic padding with attention masks for every split.

The collator reads the ``waveform`` column written by :func:`ser_hf.prepare_audio` and hands the clips to the model's
own feature extractor, which pads each batch only to its longest clip and returns the attention mask the model needs
to ignore the padding.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..data.decode import WAVEFORM_COLUMN
from .speaker_normalization import FUNCTIONALS_COLUMN, clip_statistics_of


def clip_seed(path: str | os.PathLike) -> int:
    """The seed a clip's random draws (crops, augmentation, cached augmented copies) derive from: a CRC-32 of its file
    name and its folder's name only (``Actor_01/03-01-05-01-01-01-01.flac``), so that the same corpus in another
    folder, or on another machine, draws the same and a run reproduces wherever its data lies."""
    parts = Path(os.fspath(path)).parts[-2:]
    return zlib.crc32("/".join(parts).encode("utf-8"))


def random_crop(waveform: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``max_samples`` (the whole clip when it is shorter)."""
    if len(waveform) <= max_samples:
        return waveform
    start = int(rng.integers(0, len(waveform) - max_samples + 1))
    return waveform[start : start + max_samples]


#: Raw-audio batches are padded to a multiple of this many samples (0.256 s at 16 kHz) where the padding is masked: on
#: CPU, oneDNN keeps a compiled convolution (and its buffers) for every input shape it meets, up to 1,024 of them, so
#: batches padded to their longest clip, a new shape almost every time, grow a process's memory with the corpus.
PAD_TO_MULTIPLE_OF = 4096


def padding_multiple(feature_extractor) -> Optional[int]:
    """:data:`PAD_TO_MULTIPLE_OF` for a feature extractor that returns an attention mask (the model ignores the
    padding, so a clip's outputs do not change), `None` for one that does not (padding would change them)."""
    return PAD_TO_MULTIPLE_OF if getattr(feature_extractor, "return_attention_mask", False) else None


@dataclass
class AudioClassificationCollator:
    """Turns rows ``{"waveform": array, "label": int, ...}`` into a padded model batch.

    Args:
        feature_extractor (`SequenceFeatureExtractor`): the model's feature extractor (pads and normalises).
        max_duration_seconds (`float`, *optional*): crop longer clips to a random window of this length (training);
            `None` keeps whole clips (evaluation).
        seed (`int`, *optional*, defaults to 0): seed of the crops and augmentation.
        augmentation (`WaveformAugmentation`, *optional*): waveform perturbations applied after cropping (training).
        spec_augment (`SpecAugment`, *optional*): time/frequency masks on the extractor's `input_features`
            (spectrogram models, training).
        extra_columns (`Sequence[str]`, *optional*): columns passed through into the batch unchanged (as lists).
        clip_id_column (`str`, *optional*, defaults to `"path"`): column that identifies a clip.
        normalization (`NormalizationPlan`, *optional*): with speaker normalisation, each speaker's statistics,
            handed to the extractor for the rows of that speaker (rows need ``speaker_id``).
        pad_to_multiple_of (`int`, *optional*): pad each batch to a multiple of this many samples rather than to its
            longest clip (see :func:`padding_multiple`).

    Every random draw for a clip comes from a generator seeded with ``(seed, epoch, clip id)``, not from a stream
    consumed batch after batch: a run resumed mid-epoch, which skips the batches it already trained on, crops and
    augments the remaining clips exactly as the uninterrupted run did, and dataloader workers need no seeding.
    `Trainer` sets :attr:`epoch` through :class:`ser_hf.training.trainer.EpochCallback`.
    """

    feature_extractor: SequenceFeatureExtractor
    max_duration_seconds: Optional[float] = None
    seed: int = 0
    augmentation: Optional[Any] = None
    spec_augment: Optional[Any] = None
    extra_columns: Sequence[str] = ()
    clip_id_column: str = "path"
    normalization: Optional[Any] = None
    pad_to_multiple_of: Optional[int] = None
    epoch: int = 0
    _calls: int = field(default=0, init=False, repr=False)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    @property
    def is_random(self) -> bool:
        return self.max_duration_seconds is not None or self.augmentation is not None or self.spec_augment is not None

    def clip_rng(self, row: dict[str, Any], position: int) -> np.random.Generator:
        """The generator of one clip's random draws in the current epoch."""
        if self.clip_id_column in row:
            clip = clip_seed(row[self.clip_id_column])
        else:  # no clip id: fall back on the order of calls (reproducible, but not across a resumed run)
            clip = self._calls * 1_000_003 + position
        return np.random.default_rng([self.seed, self.epoch, clip])

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        # A copy: rows may be read-only views of the Arrow cache, and augmentation writes to the waveform.
        waveforms = [np.array(row[WAVEFORM_COLUMN], dtype=np.float32) for row in rows]
        rngs = [self.clip_rng(row, i) for i, row in enumerate(rows)] if self.is_random else []
        self._calls += 1
        if self.max_duration_seconds is not None:
            max_samples = int(self.max_duration_seconds * self.sampling_rate)
            waveforms = [random_crop(w, max_samples, rng) for w, rng in zip(waveforms, rngs)]
        if self.augmentation is not None:
            waveforms = [self.augmentation(w, rng) for w, rng in zip(waveforms, rngs)]
        # The extractor decides on the attention mask: group-norm encoders such as wav2vec2-base are fed zero padding
        # without one, as they were pre-trained (and as pipeline("audio-classification") will feed them).
        statistics = clip_statistics_of(self.normalization, rows)
        options = {"speaker_statistics": statistics} if statistics is not None else {}
        if self.pad_to_multiple_of is not None:
            options["pad_to_multiple_of"] = self.pad_to_multiple_of
        batch = self.feature_extractor(
            waveforms, sampling_rate=self.sampling_rate, padding=True, return_tensors="pt", **options
        )
        batch = dict(batch)
        if self.spec_augment is not None:
            if "input_features" not in batch:
                name = type(self.feature_extractor).__name__
                raise ValueError(f"spec_augment masks spectrogram features, but {name} returns no input_features.")
            if "attention_mask" in batch:
                num_frames = batch["attention_mask"].sum(dim=1).tolist()
            else:
                num_frames = [batch["input_features"].shape[1]] * len(rows)
            batch["input_features"] = self.spec_augment(batch["input_features"], num_frames, rngs)
        if "label" in rows[0]:
            batch["labels"] = torch.tensor([row["label"] for row in rows], dtype=torch.long)
        for column in self.extra_columns:
            batch[column] = [row[column] for row in rows]
        return batch


@dataclass
class FunctionalsCollator:
    """Batches precomputed openSMILE functionals (``functionals`` column), standardised by the model's feature
    extractor (global statistics, or each row's speaker's with speaker normalisation)."""

    feature_extractor: Any
    normalization: Optional[Any] = None
    extra_columns: Sequence[str] = ()

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        functionals = np.stack([np.asarray(row[FUNCTIONALS_COLUMN], dtype=np.float32) for row in rows])
        features = self.feature_extractor.normalize(functionals, clip_statistics_of(self.normalization, rows))
        batch: dict[str, Any] = {"input_features": torch.from_numpy(np.ascontiguousarray(features))}
        if "label" in rows[0]:
            batch["labels"] = torch.tensor([row["label"] for row in rows], dtype=torch.long)
        for column in self.extra_columns:
            batch[column] = [row[column] for row in rows]
        return batch
