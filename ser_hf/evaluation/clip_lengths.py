"""The clips a trained model cannot score whole, found before evaluation: one shorter than the model reads (its
receptive field, or one openSMILE frame) or longer than its one window (a Whisper encoder's), each left out with an
error row in the report (:func:`leave_out_clips_too_short`, :func:`leave_out_clips_too_long`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from datasets import Dataset

from ..data.dataset_info import column_values
from ..data.decode import WAVEFORM_COLUMN
from ..inputs.base import minimum_clip_samples
from ..models import EnsembleForAudioClassification

if TYPE_CHECKING:
    from .evaluate_model import TrainedModel

logger = logging.getLogger(__name__)


def _minimum_clip_samples(model, feature_extractor) -> tuple[int, str]:
    """The fewest samples a clip needs for the model (for an ensemble, for every member) and what sets that number."""
    if isinstance(model, EnsembleForAudioClassification):
        needs = [_minimum_clip_samples(m, e) for m, e in zip(model.members, feature_extractor.extractors)]
        return max(needs, key=lambda need: need[0])
    return minimum_clip_samples(model.config, feature_extractor)


def leave_out_clips_too_short(trained: TrainedModel, dataset: Dataset, key: str) -> tuple[Dataset, list[dict]]:
    """The clips the model can classify, and an error row (``path``, ``speaker_id``, ``duration``, ``error``) for
    each clip it cannot: one shorter than its receptive field or, for openSMILE functionals, than one openSMILE frame
    (all-NaN functionals, which the extractor would turn into zeros and the model score as if they were speech).
    ``ser-hf predict`` gives such clips the same error; training refuses them (or drops them with
    ``skip_invalid``). Reads the ``duration`` column (none: nothing is left out)."""
    short, minimum, what = _too_short(trained, dataset)
    if not short:
        return dataset, []
    shortest = what.format(ms=f"{minimum * 1000:.1f}")
    return _leave_out(
        dataset,
        short,
        lambda duration: f"the clip is {duration * 1000:.1f} ms long, shorter than {shortest}",
        lambda duration: f"{duration * 1000:.1f} ms",
        f"Not scoring %d clip(s) of {key}, shorter than {shortest} (the report lists them): %s",
    )


def _too_short(trained: TrainedModel, dataset: Dataset) -> tuple[list[int], float, str]:
    """The rows of clips too short for the model, the shortest it reads (seconds), and what sets it."""
    if "duration" not in dataset.column_names:
        return [], 0.0, ""
    samples, what = _minimum_clip_samples(trained.model, trained.feature_extractor)
    minimum = samples / trained.feature_extractor.sampling_rate
    durations = column_values(dataset, "duration")
    return [index for index, duration in enumerate(durations) if duration < minimum], minimum, what


def readable_clips(trained: TrainedModel, dataset: Dataset) -> tuple[Dataset, int]:
    """The clips of `dataset` the model can read (neither too short nor longer than its window, as
    :func:`leave_out_clips_too_short` and :func:`leave_out_clips_too_long` tell them), and how many it cannot;
    nothing logged (the clips of labels not scored, read for corpus or speaker statistics only)."""
    unreadable = set(_too_short(trained, dataset)[0]) | set(_too_long(trained, dataset)[0])
    if not unreadable:
        return dataset, 0
    return dataset.select([index for index in range(len(dataset)) if index not in unreadable]), len(unreadable)


def _leave_out(dataset: Dataset, indices: list[int], error, duration_text, message: str) -> tuple[Dataset, list[dict]]:
    """`dataset` without the rows at `indices`, an error row for each (``error(duration)``), and one warning
    (`message`, with the count and a listing of the first ten)."""
    durations = column_values(dataset, "duration")
    paths, speakers = column_values(dataset, "path"), column_values(dataset, "speaker_id")
    rows = [
        {
            "path": paths[index],
            "speaker_id": speakers[index],
            "duration": float(durations[index]),
            "error": error(durations[index]),
        }
        for index in indices
    ]
    listing = "; ".join(f"{row['path']} ({duration_text(row['duration'])})" for row in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    logger.warning(message, len(rows), listing + more)
    excluded = set(indices)
    return dataset.select([index for index in range(len(dataset)) if index not in excluded]), rows


def _window_extractors(model, feature_extractor) -> list:
    """The feature extractors of `model` (each of an ensemble's members) that read a clip through one fixed window
    (a Whisper encoder's)."""
    if isinstance(model, EnsembleForAudioClassification):
        return [
            extractor
            for member, member_extractor in zip(model.members, feature_extractor.extractors)
            for extractor in _window_extractors(member, member_extractor)
        ]
    samples = getattr(feature_extractor, "n_samples", None)
    return [feature_extractor] if samples and "whisper" in model.config.model_type else []


def _too_long(trained: TrainedModel, dataset: Dataset) -> tuple[list[int], float, list]:
    """The rows of clips longer than the model's window (once trimmed, for a model that trims their silence), the
    window (seconds), and the extractors that read through one."""
    extractors = _window_extractors(trained.model, trained.feature_extractor)
    if not extractors or "duration" not in dataset.column_names:
        return [], 0.0, extractors
    window = min(extractor.n_samples / extractor.sampling_rate for extractor in extractors)
    durations = column_values(dataset, "duration")
    long = [index for index, duration in enumerate(durations) if duration > window]
    if long and any(getattr(extractor, "trim_silence_db", None) is not None for extractor in extractors):
        waveforms = dataset.select(long).select_columns([WAVEFORM_COLUMN]).with_format("numpy")
        long = [
            index
            for index, row in zip(long, waveforms)
            if not all(extractor.reads_whole(row[WAVEFORM_COLUMN]) for extractor in extractors)
        ]
    return long, window, extractors


def leave_out_clips_too_long(trained: TrainedModel, dataset: Dataset, key: str) -> tuple[Dataset, list[dict]]:
    """The clips no longer than the model's window, and an error row for each longer one: a Whisper encoder takes one
    window, and its feature extractor would stop the whole evaluation at the first such clip. ``ser-hf predict``
    classifies them in windows. Reads the ``duration`` column (none: nothing is left out); a model that trims each
    clip's silence (``trim_silence_db``) keeps a longer clip that fits its window once trimmed, as it reads it."""
    long, window, extractors = _too_long(trained, dataset)
    if not long:
        return dataset, []
    trimmed = " (its silence trimmed too)" if any(getattr(e, "trim_silence_db", None) for e in extractors) else ""
    return _leave_out(
        dataset,
        long,
        lambda duration: (
            f"the clip is {duration:.3f} s long, longer than the model's {window:g}-s window{trimmed}: evaluate "
            "scores whole clips; ser-hf predict classifies it in windows"
        ),
        lambda duration: f"{duration:.3f} s",
        f"Not scoring %d clip(s) of {key}, longer than the model's {window:g}-s window (the report lists them; "
        "ser-hf predict classifies them in windows): %s",
    )


__all__ = ["leave_out_clips_too_long", "leave_out_clips_too_short", "readable_clips"]
