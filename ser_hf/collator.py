"""Batching of prepared clips: random crops for training, dynamic padding with attention masks for every split.

The collator reads the ``waveform`` column written by :func:`ser_hf.prepare_audio` and hands the clips to the model's
own feature extractor, which pads each batch only to its longest clip and returns the attention mask the model needs
to ignore the padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from .prepare import WAVEFORM_COLUMN


def random_crop(waveform: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``max_samples`` (the whole clip when it is shorter)."""
    if len(waveform) <= max_samples:
        return waveform
    start = int(rng.integers(0, len(waveform) - max_samples + 1))
    return waveform[start:start + max_samples]


@dataclass
class AudioClassificationCollator:
    """Turns rows ``{"waveform": array, "label": int, ...}`` into a padded model batch.

    Args:
        feature_extractor (`SequenceFeatureExtractor`): the model's feature extractor (pads and normalises).
        max_duration_seconds (`float`, *optional*): crop longer clips to a random window of this length (training);
            `None` keeps whole clips (evaluation).
        seed (`int`, *optional*, defaults to 0): seed of the crop positions, so a run is reproducible.
        extra_columns (`Sequence[str]`, *optional*): columns passed through into the batch unchanged (as lists).
    """

    feature_extractor: SequenceFeatureExtractor
    max_duration_seconds: Optional[float] = None
    seed: int = 0
    extra_columns: Sequence[str] = ()
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        waveforms = [np.asarray(row[WAVEFORM_COLUMN], dtype=np.float32) for row in rows]
        if self.max_duration_seconds is not None:
            max_samples = int(self.max_duration_seconds * self.sampling_rate)
            waveforms = [random_crop(w, max_samples, self._rng) for w in waveforms]
        batch = self.feature_extractor(waveforms, sampling_rate=self.sampling_rate, padding=True,
                                       return_attention_mask=True, return_tensors="pt")
        batch = dict(batch)
        if "label" in rows[0]:
            batch["labels"] = torch.tensor([row["label"] for row in rows], dtype=torch.long)
        for column in self.extra_columns:
            batch[column] = [row[column] for row in rows]
        return batch
