"""``ser-hf predict`` in one call: the model loaded once, the recordings grouped by speaker where asked, every file
classified (:func:`~.classify.classify_files`, which checks the windows against the shortest clip the model takes
and the speakers against the model's normalisation, once each) and each result handed on or written to a CSV/JSON
file as it comes."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from ..errors import InputError
from ..evaluation.speaker_check import set_speaker_check
from .classify import classify_files
from .constants import check_window_options
from .pipelines import load_classifier, model_labels
from .results import FilePrediction
from .speakers import (
    normalises_per_speaker,
    read_speakers_csv,
    speakers_from_folders,
    speakers_from_training_regex,
    speakers_of,
)
from .writers import PredictionWriter


@dataclass
class PredictionSummary:
    """What :func:`predict_files` classified: how many files, the ``"file: error"`` of each that failed, and, with an
    output file, its path and how many windows it holds."""

    files: int
    failed: list[str] = field(default_factory=list)
    output: Optional[Path] = None
    windows: int = 0


def predict_files(
    model: str | os.PathLike,
    files: Optional[Sequence[str]] = None,
    *,
    speakers_csv: Optional[str | os.PathLike] = None,
    speaker_from: Optional[str] = None,
    searched_paths: Optional[Mapping[str, str]] = None,
    output: Optional[str | os.PathLike] = None,
    top_k: Optional[int] = None,
    window_seconds: Optional[float] = None,
    hop_seconds: Optional[float] = None,
    batch_size: int = 8,
    progress: bool = True,
    revision: Optional[str] = None,
    trust_remote_code: bool = False,
    on_prediction: Optional[Callable[[FilePrediction], None]] = None,
    speaker_statistics_check: Optional[bool] = None,
) -> PredictionSummary:
    """Classify `files` (audio files; with `speakers_csv` and no files, the CSV's) with the model at `model` (a
    folder, Hub id, ONNX export or folder of LoRA adapters): each :class:`FilePrediction` goes to `on_prediction`
    and, with `output` (``.csv`` or ``.json``), into that file, which appears only once complete. Speakers come from
    `speakers_csv` (columns ``path``, ``speaker_id``) or, with ``speaker_from="folder"``, from each file's folder;
    without either, a model standardised per speaker reads them as its training corpus did, with the
    ``speaker_regex`` its run recorded, searched in ``searched_paths[file]`` (the file's path relative to the folder
    it was found in, :func:`~.audio_inputs.audio_inputs`; default: its name).
    ``speaker_statistics_check`` turns the check of speaker statistics (:mod:`ser_hf.evaluation.speaker_check`) on or
    off for a Whisper model standardised per speaker (default: as the model was saved).
    A file that cannot be classified gets its error in its prediction and in the summary; the others go on."""
    check_window_options(window_seconds, hop_seconds, batch_size)
    table = read_speakers_csv(speakers_csv) if speakers_csv is not None else None
    if not files and table is None:
        raise InputError(
            "Give audio files or folders to classify (or speakers_csv, whose files are classified).",
            parameter="speakers_csv",
        )
    files = list(files) if files else list(table)
    speakers = None
    if table is not None:
        speakers = speakers_of(files, table, str(speakers_csv))
    elif speaker_from == "folder":
        speakers = speakers_from_folders(files)
    with _no_weight_loading_bar():
        classifier = load_classifier(model, revision=revision, trust_remote_code=trust_remote_code)
    set_speaker_check(classifier.feature_extractor, speaker_statistics_check, str(model))
    if speakers is None and normalises_per_speaker(classifier.feature_extractor):
        speakers = speakers_from_training_regex(model, files, searched_paths, classifier.feature_extractor)
    writer = (
        None
        if output is None
        else PredictionWriter(output, model_labels(classifier), top_k, speaker_column=speakers is not None)
    )
    summary = PredictionSummary(files=len(files), output=None if writer is None else writer.path)
    with writer or contextlib.nullcontext():
        for prediction in classify_files(
            classifier,
            files,
            window_seconds=window_seconds,
            hop_seconds=hop_seconds,
            batch_size=batch_size,
            progress=progress,
            speakers=speakers,
        ):
            if writer is not None:
                writer.write(prediction)
            if on_prediction is not None:
                on_prediction(prediction)
            if prediction.error is not None:
                summary.failed.append(f"{prediction.file}: {prediction.error}")
    if writer is not None:
        summary.windows = writer.windows
    return summary


@contextlib.contextmanager
def _no_weight_loading_bar():
    """While the model loads, no transformers progress bar ("Loading weights", a line per command that says nothing a
    user acts on); a Hub download keeps its bar. Both settings are restored after."""
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging

    transformers_bars = transformers_logging.is_progress_bar_enabled()
    hub_bars = not hub_utils.are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()  # the Hub's bars too
    if hub_bars:
        hub_utils.enable_progress_bars()
    try:
        yield
    finally:
        if transformers_bars:
            transformers_logging.enable_progress_bar()
        if not hub_bars:
            hub_utils.disable_progress_bars()


__all__ = ["PredictionSummary", "predict_files"]
