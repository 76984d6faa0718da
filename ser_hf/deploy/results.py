"""What classifying a recording gives: each window's scores (:class:`WindowPrediction`) and the recording's
duration-weighted mean, or the error that kept it from being classified (:class:`FilePrediction`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass
class WindowPrediction:
    """The scores of one window: ``start``/``end`` in seconds, ``scores`` as {label: probability}."""

    start: float
    end: float
    scores: dict[str, float]

    @property
    def label(self) -> str:
        return max(self.scores, key=self.scores.get)


@dataclass
class FilePrediction:
    """A recording's windows and their duration-weighted mean (``scores``), or the ``error`` that kept it from being
    classified (then no windows, no scores, no label; ``duration`` is `None` when not even the header could be read).
    """

    file: str
    duration: Optional[float]
    windows: list[WindowPrediction] = field(default_factory=list)
    error: Optional[str] = None
    speaker: Optional[str] = None

    @property
    def scores(self) -> dict[str, float]:
        if self.error is not None or not self.windows:
            return {}
        weights = np.array([w.end - w.start for w in self.windows], dtype=np.float64)
        labels = list(self.windows[0].scores)
        values = np.array([[w.scores[label] for label in labels] for w in self.windows], dtype=np.float64)
        mean = (weights[:, None] * values).sum(axis=0) / weights.sum()
        return {label: float(v) for label, v in zip(labels, mean)}

    @property
    def label(self) -> Optional[str]:
        scores = self.scores
        return max(scores, key=scores.get) if scores else None

    def top(self, k: Optional[int] = None) -> list[dict[str, Any]]:
        ranked = sorted(self.scores.items(), key=lambda item: -item[1])
        return [{"label": label, "score": round(score, 4)} for label, score in ranked[:k]]

    def to_dict(self, top_k: Optional[int] = None) -> dict[str, Any]:
        """JSON-ready: the file (and its ``speaker`` when recordings are grouped by speaker), its top labels, every
        label's score, each window's, and ``error`` (`None` when classified)."""
        speaker = {} if self.speaker is None else {"speaker": self.speaker}
        return {
            "file": self.file,
            **speaker,
            "duration": None if self.duration is None else round(self.duration, 3),
            "label": self.label,
            "predictions": self.top(top_k),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "windows": [
                {
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "label": w.label,
                    "scores": {k: round(v, 6) for k, v in w.scores.items()},
                }
                for w in self.windows
            ],
            "error": self.error,
        }


__all__ = ["FilePrediction", "WindowPrediction"]
