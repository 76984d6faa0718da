"""Speech segments by voice activity: Silero VAD, whose model ships inside the ``silero-vad`` wheel (it works offline;
the ``timeline`` extra), loaded once per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..extras import MissingExtraError, install_hint

#: Silero VAD's models run at 8 or 16 kHz; other rates are resampled to this one for the VAD alone.
VAD_SAMPLING_RATE = 16000
#: How to install Silero VAD (the ``timeline`` extra).
TIMELINE_INSTALL = install_hint("timeline")


@dataclass
class VADOptions:
    """Silero VAD's settings, in seconds (its ``get_speech_timestamps`` takes milliseconds)."""

    threshold: float = 0.5
    min_speech_seconds: float = 0.25
    min_silence_seconds: float = 0.3
    speech_pad_seconds: float = 0.03
    max_segment_seconds: float = 10.0
    onnx: bool = False

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"VAD threshold must be between 0 and 1, got {self.threshold}.")
        for name in ("min_speech_seconds", "min_silence_seconds", "speech_pad_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}.")
        if not self.max_segment_seconds > 0:
            raise ValueError(f"max_segment_seconds must be positive, got {self.max_segment_seconds}.")


_VAD_MODELS: dict[bool, Any] = {}


def load_vad(onnx: bool = False):
    """Silero VAD's model from inside the ``silero-vad`` wheel (no download), loaded once per process: TorchScript,
    or ONNX through onnxruntime with ``onnx=True``."""
    try:
        import silero_vad
    except ImportError:
        raise MissingExtraError(
            f"Emotion over time needs Silero VAD, which is not installed: {TIMELINE_INSTALL}"
        ) from None
    if onnx not in _VAD_MODELS:
        _VAD_MODELS[onnx] = silero_vad.load_silero_vad(onnx=onnx)
    return _VAD_MODELS[onnx]


def speech_segments(waveform: np.ndarray, sampling_rate: int, options: Optional[VADOptions] = None) -> list[tuple]:
    """``(start, end)`` seconds of each stretch of speech Silero VAD finds in ``waveform``."""
    import torch
    from silero_vad import get_speech_timestamps

    options = options or VADOptions()
    model = load_vad(options.onnx)
    audio = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
    if sampling_rate != VAD_SAMPLING_RATE:
        import torchaudio

        audio = torchaudio.functional.resample(audio, sampling_rate, VAD_SAMPLING_RATE)
    stamps = get_speech_timestamps(
        audio,
        model,
        threshold=options.threshold,
        sampling_rate=VAD_SAMPLING_RATE,
        min_speech_duration_ms=int(round(options.min_speech_seconds * 1000)),
        min_silence_duration_ms=int(round(options.min_silence_seconds * 1000)),
        speech_pad_ms=int(round(options.speech_pad_seconds * 1000)),
        max_speech_duration_s=options.max_segment_seconds,
    )
    return [(stamp["start"] / VAD_SAMPLING_RATE, stamp["end"] / VAD_SAMPLING_RATE) for stamp in stamps]


__all__ = ["TIMELINE_INSTALL", "VAD_SAMPLING_RATE", "VADOptions", "load_vad", "speech_segments"]
