"""Feature standardisation with stored statistics, shared by the baselines' feature extractors: ``global`` (the
training speakers' mean and standard deviation, saved in ``preprocessor_config.json``) and ``speaker`` (each clip
standardised with the statistics of its own speaker, computed from that speaker's clips without their labels).

This file is copied next to saved models (``register_for_auto_class``): it imports nothing from ser-hf.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Normalisations by stored statistics (``utterance`` and ``none`` need none).
STATISTICS_NORMALIZATIONS = ("global", "speaker", "corpus")
#: The normalisations that standardise each clip with statistics of its group of clips, by the column naming the
#: group: its speaker's (``speaker_id``) or its corpus' (``corpus``: a whole new corpus standardised by itself).
GROUP_NORMALIZATIONS = {"speaker": "speaker_id", "corpus": "corpus"}

#: A speaker's (or the training set's) per-feature mean and standard deviation.
Statistics = tuple[np.ndarray, np.ndarray]


class FeatureStatisticsMixin:
    """Adds `feature_mean`/`feature_std` and per-clip statistics to a feature extractor whose `normalization` is
    one of :data:`STATISTICS_NORMALIZATIONS`.

    With ``normalization="speaker"`` (or ``"corpus"``) a call takes ``speaker_statistics``, one `(mean, std)` per
    clip: its speaker's (or its corpus'). Without them (a single clip through ``pipeline``) the extractor falls back
    to the global statistics it stores, and says so once: a model trained on speaker-standardised features then sees
    its input standardised globally instead.
    """

    feature_mean: Optional[list[float]] = None
    feature_std: Optional[list[float]] = None
    #: How far from the stored global statistics the training groups' means were (see :meth:`setup_shift`):
    #: ``{"corpora": {name: shift}, "speakers_median": ..., "speakers_max": ...}``, set by ser-hf training.
    setup_shifts: Optional[dict] = None
    #: Added to each feature's variance before its square root (`RunningStatistics.statistics`): keeps a feature
    #: that barely varies from being blown up. An extractor whose features vary on a smaller scale sets a smaller one.
    variance_floor: float = 1e-5

    #: The `normalization` values that standardise with stored statistics (an extractor adds its own).
    stored_statistics_normalizations: tuple[str, ...] = STATISTICS_NORMALIZATIONS

    #: Run-time state that is not part of the saved configuration.
    _transient_attributes = ("_fallback_said", "_smile")

    def to_dict(self) -> dict:
        output = super().to_dict()
        for name in self._transient_attributes:
            output.pop(name, None)
        return output

    def set_global_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store the training speakers' statistics (saved with the extractor)."""
        self.feature_mean = [float(value) for value in np.asarray(mean).ravel()]
        self.feature_std = [float(value) for value in np.asarray(std).ravel()]

    def global_statistics(self) -> Statistics:
        if self.feature_mean is None or self.feature_std is None:
            raise ValueError(
                f"normalization={self.normalization!r} needs the training set's feature_mean and "
                f"feature_std in {type(self).__name__}: ser-hf training fits them; set them with "
                "set_global_statistics(mean, std)."
            )
        return np.asarray(self.feature_mean, np.float32), np.asarray(self.feature_std, np.float32)

    def setup_shift(self, mean: np.ndarray) -> float:
        """How far a group of clips (a corpus, a speaker, the recordings classified together) sits from the stored
        global statistics: the root mean square, over features, of its mean standardised with them,
        ``sqrt(mean(((group_mean - feature_mean) / feature_std) ** 2))``. 0 for the training clips as a whole; a
        recording set-up unlike every training corpus (another microphone, room, language) is far above what the
        training corpora and speakers had (:attr:`setup_shifts`)."""
        global_mean, global_std = self.global_statistics()
        return float(np.sqrt(np.mean(((np.asarray(mean, np.float64).ravel() - global_mean) / global_std) ** 2)))

    def clip_statistics(
        self, batch_size: int, speaker_statistics: Optional[Sequence[Optional[Statistics]]] = None
    ) -> Optional[Statistics]:
        """`(mean, std)`, each `(batch, features)`, to standardise a batch with; `None` when the extractor does not
        normalise by stored statistics."""
        if self.normalization not in self.stored_statistics_normalizations:
            if speaker_statistics is not None:
                raise ValueError(
                    f"speaker_statistics were given, but {type(self).__name__} normalises with "
                    f"normalization={self.normalization!r}, not 'speaker' or 'corpus'."
                )
            return None
        if speaker_statistics is not None and len(speaker_statistics) != batch_size:
            raise ValueError(f"Got {len(speaker_statistics)} speaker statistics for {batch_size} clips.")
        if (
            self.normalization in GROUP_NORMALIZATIONS
            and speaker_statistics is None
            and not getattr(self, "_fallback_said", False)
        ):
            group = self.normalization
            logger.warning(
                "No %s statistics for these clips: %s standardises them with the global statistics "
                "of the training speakers stored in it. The model was trained on features standardised "
                "per %s; to use each %s's own statistics, pass speaker_statistics (one (mean, std) per clip, "
                "from ser_hf.inputs.speaker_normalization.speaker_statistics over several clips of the %s).",
                group,
                type(self).__name__,
                group,
                group,
                group,
            )
            self._fallback_said = True
        if self.normalization not in GROUP_NORMALIZATIONS or speaker_statistics is None:
            pairs = [self.global_statistics()] * batch_size
        else:
            pairs = [
                statistics if statistics is not None else self.global_statistics() for statistics in speaker_statistics
            ]
        means = np.stack([np.asarray(mean, np.float32) for mean, _ in pairs])
        stds = np.stack([np.asarray(std, np.float32) for _, std in pairs])
        return means, stds


class RunningStatistics:
    """Per-feature mean and standard deviation accumulated over rows (frames or clips) in float64."""

    def __init__(self):
        self.count, self.total, self.squares = 0, 0.0, 0.0

    def add(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, np.float64).reshape(-1, np.shape(rows)[-1])
        self.count += rows.shape[0]
        self.total = self.total + rows.sum(axis=0)
        self.squares = self.squares + (rows**2).sum(axis=0)

    def merge(self, other: "RunningStatistics") -> None:
        self.count += other.count
        self.total = self.total + other.total
        self.squares = self.squares + other.squares

    def statistics(self, eps: float = 1e-5) -> Statistics:
        mean = self.total / max(self.count, 1)
        variance = np.maximum(self.squares / max(self.count, 1) - mean**2, 0.0)
        return mean.astype(np.float32), np.sqrt(variance + eps).astype(np.float32)


__all__ = [
    "FeatureStatisticsMixin",
    "GROUP_NORMALIZATIONS",
    "RunningStatistics",
    "STATISTICS_NORMALIZATIONS",
    "Statistics",
]
