"""How a recording is read and cut into the windows a model classifies: decoding one file (or the error that keeps it
from being classified), the windows of a recording of any length, and the shortest clip a model can take."""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from ..data.corpora import InvalidClipError, probe_audio
from ..data.decode import decode_waveform
from ..errors import InputError
from ..inputs.base import RECEPTIVE_FIELD, minimum_clip_samples
from .results import FilePrediction

#: Without ``window_seconds``, a recording longer than this is still cut into windows of this length, so that a
#: 10-minute recording never goes through the model (and its activations into memory) in one piece.
MAX_WHOLE_FILE_SECONDS = 30.0
#: A clip shorter than this holds less than a syllable of speech, far shorter than the utterances of the corpora
#: models are trained on (seconds): it is classified, with a warning that its emotion is not meaningful.
SHORTEST_MEANINGFUL_SECONDS = 0.25

logger = logging.getLogger(__name__)


def window_bounds(
    num_samples: int,
    sampling_rate: int,
    window_seconds: Optional[float],
    hop_seconds: Optional[float] = None,
    longest_seconds: Optional[float] = None,
) -> list[tuple[int, int]]:
    """``(start, end)`` sample indices of the windows of a recording.

    A recording no longer than the window (or any, when ``window_seconds`` is `None`) is one window. Otherwise windows
    start every ``hop_seconds`` (defaults to the window: no overlap). No audio is left out: a tail shorter than half a
    hop extends the last window (unless that makes it longer than ``longest_seconds``, a model's fixed encoder
    window), a longer one gets a window of its own that ends at the recording's end.
    """
    if window_seconds is not None and (window_seconds <= 0 or (hop_seconds is not None and hop_seconds <= 0)):
        raise ValueError(f"window_seconds and hop_seconds must be positive, got {window_seconds} and {hop_seconds}.")
    if window_seconds is None or num_samples <= int(round(window_seconds * sampling_rate)):
        return [(0, num_samples)]
    window = int(round(window_seconds * sampling_rate))
    hop = int(round((hop_seconds or window_seconds) * sampling_rate))
    if window < 1 or hop < 1:
        raise ValueError(
            f"window_seconds {window_seconds} and hop_seconds {hop_seconds} must each be at least one "
            f"sample at {sampling_rate} Hz."
        )
    bounds = [(start, start + window) for start in range(0, num_samples - window + 1, hop)]
    tail = num_samples - bounds[-1][1]
    longest = None if longest_seconds is None else int(longest_seconds * sampling_rate)
    if 0 < tail < hop / 2 and (longest is None or num_samples - bounds[-1][0] <= longest):
        bounds[-1] = (bounds[-1][0], num_samples)
    elif tail > 0:
        bounds.append((num_samples - window, num_samples))
    return bounds


def shortest_clip(classifier) -> tuple[int, str]:
    """The fewest samples a clip needs for ``classifier``'s model to classify it, and what sets that number (see
    :func:`ser_hf.inputs.base.minimum_clip_samples`)."""
    return minimum_clip_samples(classifier.model.config, classifier.feature_extractor)


def read_clip(
    path: str, sampling_rate: int, min_samples: int, too_short: str = RECEPTIVE_FIELD
) -> tuple[Optional[np.ndarray], FilePrediction]:
    """Decode one file; a file that cannot be classified gets a :class:`FilePrediction` with its ``error`` (one shorter
    than ``min_samples``: ``too_short`` names what sets that length, ``{ms}`` its length in ms)."""
    duration = None
    try:
        probe_error = None
        try:
            duration = probe_audio(path)["duration"]  # names an empty or missing file better than the decoder does
        except InvalidClipError as error:
            # Streams written through a pipe (WebM/Opus from a browser) declare no duration: the decoder decides.
            probe_error = error
        try:
            waveform = decode_waveform(path, sampling_rate)
        except InvalidClipError:
            if probe_error is not None:
                raise probe_error from None
            raise
        duration = len(waveform) / sampling_rate
        if len(waveform) < min_samples:
            raise InvalidClipError(
                path,
                f"the clip is {duration * 1000:.1f} ms long, shorter than "
                + too_short.format(ms=f"{min_samples / sampling_rate * 1000:.1f}"),
            )
    except InvalidClipError as error:
        return None, FilePrediction(file=path, duration=duration, error=error.problem)
    except OSError as error:  # unreadable: permissions, a folder named like an audio file, I/O errors
        return None, FilePrediction(file=path, duration=duration, error=f"cannot be read ({error})")
    return waveform, FilePrediction(file=path, duration=duration)


def recording_windows(
    num_samples: int,
    sampling_rate: int,
    window_seconds: Optional[float] = None,
    hop_seconds: Optional[float] = None,
    max_whole_file_seconds: float = MAX_WHOLE_FILE_SECONDS,
    longest_seconds: Optional[float] = None,
) -> list[tuple[int, int]]:
    """The windows a recording is classified in: :func:`window_bounds`, and windows of ``max_whole_file_seconds``
    for a recording longer than that when no ``window_seconds`` is given; none longer than ``longest_seconds``."""
    if window_seconds is None and num_samples > max_whole_file_seconds * sampling_rate:
        window_seconds, hop_seconds = max_whole_file_seconds, None
    return window_bounds(num_samples, sampling_rate, window_seconds, hop_seconds, longest_seconds)


def model_windows(
    feature_extractor,
    waveform: np.ndarray,
    window_seconds: Optional[float] = None,
    hop_seconds: Optional[float] = None,
    max_whole_file_seconds: float = MAX_WHOLE_FILE_SECONDS,
) -> list[tuple[int, int]]:
    """The windows a model reads `waveform` in (:func:`recording_windows`, none longer than its fixed encoder window,
    Whisper's ``chunk_length``). Without ``window_seconds``, a model that trims each clip's silence
    (``trim_silence_db``) reads a recording longer than its window by its silence alone whole, as training and
    ``ser-hf evaluate`` read it."""
    bounds = recording_windows(
        len(waveform),
        feature_extractor.sampling_rate,
        window_seconds,
        hop_seconds,
        max_whole_file_seconds,
        getattr(feature_extractor, "chunk_length", None),
    )
    trims = getattr(feature_extractor, "trim_silence_db", None) is not None
    if len(bounds) > 1 and window_seconds is None and trims and feature_extractor.reads_whole(waveform):
        return [(0, len(waveform))]
    return bounds


def fit_to_encoder_window(
    feature_extractor, window_seconds: Optional[float], max_whole_file_seconds: float
) -> tuple[Optional[float], float]:
    """``(window_seconds, max_whole_file_seconds)`` for a model whose encoder hears a fixed window (Whisper's
    ``chunk_length``): longer recordings go in windows of at most that length, never cut. A ``window_seconds``
    longer than the encoder's is an error naming both."""
    encoder_window = getattr(feature_extractor, "chunk_length", None)
    if encoder_window is None:
        return window_seconds, max_whole_file_seconds
    if window_seconds is not None and window_seconds > encoder_window:
        raise InputError(
            f"window_seconds {window_seconds:g} is longer than the model's {encoder_window:g}-s encoder window: "
            f"give {encoder_window:g} or less.",
            parameter="window_seconds",
        )
    return window_seconds, min(max_whole_file_seconds, float(encoder_window))


def warn_if_too_short(prediction: FilePrediction, shortest: float = SHORTEST_MEANINGFUL_SECONDS) -> None:
    """Warn, naming the clip and its duration, when it is too short for its emotion to mean anything."""
    if prediction.duration is not None and prediction.duration < shortest:
        logger.warning(
            "%s is %.3f s long, shorter than %.2f s: too little speech for an emotion, so its prediction "
            "is not meaningful.",
            prediction.file,
            prediction.duration,
            shortest,
        )


__all__ = [
    "MAX_WHOLE_FILE_SECONDS",
    "SHORTEST_MEANINGFUL_SECONDS",
    "fit_to_encoder_window",
    "model_windows",
    "read_clip",
    "recording_windows",
    "shortest_clip",
    "warn_if_too_short",
    "window_bounds",
]
