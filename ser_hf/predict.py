"""Classify recordings of any length with a trained model: ``ser-hf predict``.

A recording longer than the window is cut into windows (``window_seconds`` long, every ``hop_seconds``, the last one
ending at the end of the file), each window is classified through ``pipeline("audio-classification")``, and the
recording's emotion is the duration-weighted mean of its windows' probabilities. Results are written per window and
per file as CSV or JSON.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from .corpora import AUDIO_EXTENSIONS
from .prepare import decode_waveform


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
    """A recording's windows and their duration-weighted mean (``scores``)."""

    file: str
    duration: float
    windows: list[WindowPrediction] = field(default_factory=list)

    @property
    def scores(self) -> dict[str, float]:
        weights = np.array([w.end - w.start for w in self.windows], dtype=np.float64)
        labels = list(self.windows[0].scores)
        values = np.array([[w.scores[label] for label in labels] for w in self.windows], dtype=np.float64)
        mean = (weights[:, None] * values).sum(axis=0) / weights.sum()
        return {label: float(v) for label, v in zip(labels, mean)}

    @property
    def label(self) -> str:
        scores = self.scores
        return max(scores, key=scores.get)

    def top(self, k: Optional[int] = None) -> list[dict[str, Any]]:
        ranked = sorted(self.scores.items(), key=lambda item: -item[1])
        return [{"label": label, "score": round(score, 4)} for label, score in ranked[:k]]

    def to_dict(self, top_k: Optional[int] = None) -> dict[str, Any]:
        """JSON-ready: the file's top labels, every label's score, and each window's."""
        return {"file": self.file, "duration": round(self.duration, 3), "label": self.label,
                "predictions": self.top(top_k), "scores": {k: round(v, 6) for k, v in self.scores.items()},
                "windows": [{"start": round(w.start, 3), "end": round(w.end, 3), "label": w.label,
                             "scores": {k: round(v, 6) for k, v in w.scores.items()}} for w in self.windows]}


def window_bounds(num_samples: int, sampling_rate: int, window_seconds: Optional[float],
                  hop_seconds: Optional[float] = None) -> list[tuple[int, int]]:
    """``(start, end)`` sample indices of the windows of a recording.

    A recording no longer than the window (or any, when ``window_seconds`` is `None`) is one window. Otherwise windows
    start every ``hop_seconds`` (defaults to the window: no overlap). No audio is left out: a tail shorter than half a
    hop extends the last window, a longer one gets a window of its own that ends at the recording's end.
    """
    if window_seconds is not None and (window_seconds <= 0 or (hop_seconds is not None and hop_seconds <= 0)):
        raise ValueError(f"window_seconds and hop_seconds must be positive, got {window_seconds} and {hop_seconds}.")
    if window_seconds is None or num_samples <= int(round(window_seconds * sampling_rate)):
        return [(0, num_samples)]
    window = int(round(window_seconds * sampling_rate))
    hop = int(round((hop_seconds or window_seconds) * sampling_rate))
    bounds = [(start, start + window) for start in range(0, num_samples - window + 1, hop)]
    tail = num_samples - bounds[-1][1]
    if 0 < tail < hop / 2:
        bounds[-1] = (bounds[-1][0], num_samples)
    elif tail > 0:
        bounds.append((num_samples - window, num_samples))
    return bounds


def find_audio_inputs(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The audio files named, and those below the folders named (sorted); errors name a path that is neither."""
    files: list[str] = []
    suffixes = {ext.lower() for ext in AUDIO_EXTENSIONS}
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                           and not p.name.startswith("._"))
            if not found:
                raise FileNotFoundError(f"No audio files ({', '.join(sorted(suffixes))}) found under {path}.")
            files += found
        elif path.is_file():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"{path} is neither an audio file nor a folder.")
    return files


def classify_files(classifier, files: Sequence[str], *, window_seconds: Optional[float] = None,
                   hop_seconds: Optional[float] = None, batch_size: int = 8,
                   progress: bool = True) -> Iterable[FilePrediction]:
    """Classify each file (windowed when longer than ``window_seconds``) with an ``audio-classification`` pipeline;
    yields one :class:`FilePrediction` per file. The tqdm progress bar counts seconds of audio, so that it moves
    through a single long recording too."""
    from tqdm.auto import tqdm

    from .corpora import InvalidClipError, probe_audio

    sampling_rate = classifier.feature_extractor.sampling_rate
    id2label = classifier.model.config.id2label
    labels = [id2label[i] for i in range(len(id2label))]
    if not getattr(classifier.feature_extractor, "return_attention_mask", True):
        batch_size = 1  # padding would change what a model without attention mask hears
    try:
        total = sum(probe_audio(path)["duration"] for path in files)
    except InvalidClipError:
        total = None  # the decoder names the bad file below
    bar_format = None if total is None else "{l_bar}{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]"
    with tqdm(total=total, desc="Classifying", unit="s", disable=not progress, bar_format=bar_format) as bar:
        for path in files:
            waveform = decode_waveform(path, sampling_rate)
            bounds = window_bounds(len(waveform), sampling_rate, window_seconds, hop_seconds)
            windows, covered = [], 0
            for first in range(0, len(bounds), batch_size):
                chunk = bounds[first:first + batch_size]
                inputs = [{"raw": waveform[start:end], "sampling_rate": sampling_rate} for start, end in chunk]
                for (start, end), output in zip(chunk, classifier(inputs, top_k=None, batch_size=batch_size)):
                    scores = {o["label"]: float(o["score"]) for o in output}
                    windows.append(WindowPrediction(start=start / sampling_rate, end=end / sampling_rate,
                                                    scores={label: scores[label] for label in labels}))
                bar.update((chunk[-1][1] - covered) / sampling_rate)
                covered = chunk[-1][1]
            yield FilePrediction(file=path, duration=len(waveform) / sampling_rate, windows=windows)


def write_predictions(predictions: Sequence[FilePrediction], path: str | os.PathLike,
                      top_k: Optional[int] = None) -> Path:
    """Write predictions as JSON (a list of :meth:`FilePrediction.to_dict`) or CSV (one row per window, then one
    ``all`` row per file with the aggregated scores), chosen by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise ValueError(f"--output {path}: write .csv or .json.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(json.dumps([p.to_dict(top_k) for p in predictions], indent=2) + "\n")
        return path
    labels = list(predictions[0].scores) if predictions else []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "window", "start", "end", "label", "score", *labels])
        for prediction in predictions:
            for index, window in enumerate(prediction.windows):
                writer.writerow([prediction.file, index, f"{window.start:.3f}", f"{window.end:.3f}", window.label,
                                 f"{window.scores[window.label]:.6f}", *(f"{window.scores[k]:.6f}" for k in labels)])
            scores = prediction.scores
            writer.writerow([prediction.file, "all", "0.000", f"{prediction.duration:.3f}", prediction.label,
                             f"{scores[prediction.label]:.6f}", *(f"{scores[k]:.6f}" for k in labels)])
    return path


__all__ = ["FilePrediction", "WindowPrediction", "classify_files", "find_audio_inputs", "window_bounds",
           "write_predictions"]
