"""Classify recordings of any length with a trained model: ``ser-hf predict``.

A recording longer than the window is cut into windows (``window_seconds`` long, every ``hop_seconds``, the last one
ending at the end of the file), each window is classified through ``pipeline("audio-classification")``, and the
recording's emotion is the duration-weighted mean of its windows' probabilities.

Files are decoded one at a time, as the windows ahead of them are classified: windows from many files go through the
pipeline together (batches of similar length), and each file's result comes out in the order of the files, so that a
folder of any size needs the memory of one chunk of windows. A file that cannot be classified (corrupt, empty,
truncated, NaN samples, too short for the model) gets a result with an ``error`` and the others go on. Results are
written one file at a time to a temporary file that replaces the output only once it is complete.

Recordings may be grouped by speaker (one folder per speaker, or a CSV of ``path,speaker_id``): a model whose feature
extractor standardises per speaker (``normalization="speaker"``) then gets each window standardised with the
statistics of its speaker's recordings, computed first in a pass of their own over the same windows and without
labels. The results are then transductive: each depends on the speaker's other recordings classified with it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import textwrap
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from transformers import AudioClassificationPipeline

from .atomic_files import atomic_path
from .audio_inputs import find_audio_inputs
from .data.corpora import InvalidClipError, probe_audio
from .data.corpora.folder import read_clips_csv
from .data.decode import decode_waveform
from .inputs.base import RECEPTIVE_FIELD, minimum_clip_samples
from .inputs.speaker_normalization import (
    TRANSDUCTIVE_PROTOCOL,
    clip_feature_rows,
    statistics_by_speaker,
)
from .models.feature_normalization import Statistics
from .models.padding import is_padding_invariant
from .predict_constants import OUTPUT_SUFFIXES, SPEAKER_SOURCES

#: Windows classified together: this many batches' worth are decoded ahead and sorted by length, so that each batch
#: holds windows of similar length (little padding) whatever the order of the files.
BATCHES_PER_CHUNK = 16
#: ... and at most this many seconds of audio, so that whole long recordings (no ``window_seconds``) are not decoded
#: many at a time.
MAX_CHUNK_SECONDS = 600.0
#: Without ``window_seconds``, a recording longer than this is still cut into windows of this length, so that a
#: 10-minute recording never goes through the model (and its activations into memory) in one piece.
MAX_WHOLE_FILE_SECONDS = 30.0
#: A clip shorter than this holds less than a syllable of speech, far shorter than the utterances of the corpora
#: models are trained on (seconds): it is classified, with a warning that its emotion is not meaningful.
SHORTEST_MEANINGFUL_SECONDS = 0.25
#: The columns of a ``--speakers`` CSV: each audio file (relative to the CSV's folder, or absolute) and its speaker.
SPEAKERS_CSV_COLUMNS = ("path", "speaker_id")
#: A speaker's statistics taken over fewer windows or seconds of audio than these are unreliable: a warning names them.
MIN_SPEAKER_WINDOWS = 5
MIN_SPEAKER_SECONDS = 10.0
#: Windows whose features are computed together for the speakers' statistics.
STATISTICS_BATCH_WINDOWS = 32

logger = logging.getLogger(__name__)


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


def speakers_from_folders(files: Sequence[str]) -> dict[str, str]:
    """Each file's speaker: the name of the folder it lies in (``recordings/alice/take1.wav``: ``alice``), for
    recordings kept in one folder per speaker."""
    return {file: Path(os.path.abspath(file)).parent.name for file in files}


def read_speakers_csv(path: str | os.PathLike) -> dict[str, str]:
    """``{audio file: speaker}`` from a CSV with columns ``path`` and ``speaker_id`` (others are ignored), in its
    order; a relative path is read from the CSV's folder. Errors name the CSV and its line: a missing column or
    value, a file that does not exist, a file listed twice."""
    csv_path = Path(path)
    path_column, speaker_column = SPEAKERS_CSV_COLUMNS
    rows, _ = read_clips_csv(csv_path, csv_path.parent, path_column, None, speaker_column, inside_root=False)
    return {str(file): row[speaker_column].strip() for file, row in rows}


def speakers_of(files: Sequence[str], table: Mapping[str, str], source: str) -> dict[str, str]:
    """The speaker of each file to classify, from ``table`` (read from ``source``: named in the error when it lists
    no speaker for some of them). Paths are compared absolute, without following links."""
    by_path = {os.path.normpath(os.path.abspath(listed)): speaker for listed, speaker in table.items()}
    speakers = {file: by_path.get(os.path.normpath(os.path.abspath(file))) for file in files}
    missing = [file for file, speaker in speakers.items() if speaker is None]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(
            f"{source} gives no speaker for {len(missing)} of the {len(files)} file(s) to classify: "
            f"{shown}. Add a row ({','.join(SPEAKERS_CSV_COLUMNS)}) for each, or leave them out."
        )
    return speakers


def normalises_per_speaker(feature_extractor) -> bool:
    """Whether a model's feature extractor standardises each clip with its speaker's statistics."""
    return getattr(feature_extractor, "normalization", None) == "speaker"


def normalises_per_corpus(feature_extractor) -> bool:
    """Whether a model's feature extractor standardises each clip with its corpus' statistics: the recordings
    classified together are then standardised as one corpus, with statistics of them all."""
    return getattr(feature_extractor, "normalization", None) == "corpus"


#: The one group of statistics of a model standardised per corpus: all the recordings classified together.
RECORDINGS_GROUP = "the recordings classified together"


def _statistics_group(path: str, speakers: Optional[Mapping[str, str]], feature_extractor) -> Optional[str]:
    """Whose statistics standardise a file's windows: the recordings' (corpus normalisation), or its speaker's."""
    if normalises_per_corpus(feature_extractor):
        return RECORDINGS_GROUP
    return speakers[path] if speakers is not None else None


class SpeakerNormalizedAudioClassificationPipeline(AudioClassificationPipeline):
    """``pipeline("audio-classification")`` whose inputs may carry their speaker's statistics,
    ``{"raw": waveform, "sampling_rate": rate, "speaker_statistics": (mean, std)}``, for a feature extractor that
    standardises per speaker. The stock pipeline hands its feature extractor the audio alone, which then standardises
    it with the training speakers' global statistics. Inputs without statistics are handled as the stock pipeline
    does. Build it with ``pipeline("audio-classification", model=..., pipeline_class=...)``."""

    def preprocess(self, inputs):
        statistics = inputs.get("speaker_statistics") if isinstance(inputs, dict) else None
        if statistics is None:
            return super().preprocess(inputs)
        waveform = inputs["raw"] if "raw" in inputs else inputs.get("array")
        if waveform is None or inputs.get("sampling_rate") != self.feature_extractor.sampling_rate:
            raise ValueError(
                f"An input with speaker_statistics needs its audio under 'raw' at the model's rate "
                f"({self.feature_extractor.sampling_rate} Hz), got a sampling_rate of "
                f"{inputs.get('sampling_rate')}."
            )
        if isinstance(waveform, torch.Tensor):
            waveform = waveform.cpu().numpy()
        processed = self.feature_extractor(
            np.asarray(waveform, np.float32),
            sampling_rate=self.feature_extractor.sampling_rate,
            return_tensors="pt",
            speaker_statistics=[statistics],
        )
        return processed if self.dtype is None else processed.to(dtype=self.dtype)


def audio_classification_pipeline(model: str, feature_extractor, **kwargs) -> AudioClassificationPipeline:
    """``pipeline("audio-classification")`` for ``model``; one that passes each window's speaker statistics on when
    its feature extractor standardises per speaker (see :class:`SpeakerNormalizedAudioClassificationPipeline`). A
    folder written by ``ser-hf export --format onnx`` runs its graph in onnxruntime (see
    :func:`~ser_hf.export.onnx_runtime.onnx_audio_classification_pipeline`)."""
    from transformers import pipeline

    from .export.onnx_runtime import check_model_folder, is_onnx_export, onnx_audio_classification_pipeline

    if isinstance(model, (str, os.PathLike)):
        check_model_folder(model)
        if is_onnx_export(model):
            return onnx_audio_classification_pipeline(
                model, feature_extractor, trust_remote_code=kwargs.get("trust_remote_code") or False
            )
    if normalises_per_speaker(feature_extractor) or normalises_per_corpus(feature_extractor):
        kwargs["pipeline_class"] = SpeakerNormalizedAudioClassificationPipeline
    return pipeline("audio-classification", model=model, feature_extractor=feature_extractor, **kwargs)


def load_classifier(
    model: str | os.PathLike, *, revision: Optional[str] = None, trust_remote_code: bool = False
) -> AudioClassificationPipeline:
    """The ``audio-classification`` pipeline of ``model`` (a folder, a Hub id or an ONNX export), with its feature
    extractor loaded through ser-hf's loader (a folder without one gets an error naming the fix): how ``ser-hf
    predict``, ``predict --timeline`` and ``ser-hf app`` load a model."""
    from .export.onnx_runtime import check_model_folder
    from .models.feature_extraction_auto import load_feature_extractor

    model = str(model)
    check_model_folder(model)  # a folder that is neither a model nor an ONNX export: the file it lacks
    feature_extractor = load_feature_extractor(model, revision=revision, trust_remote_code=trust_remote_code)
    return audio_classification_pipeline(
        model, feature_extractor, revision=revision, trust_remote_code=trust_remote_code
    )


def model_labels(classifier) -> list[str]:
    """The pipeline's model's labels, in class-id order."""
    id2label = classifier.model.config.id2label
    return [id2label[i] for i in range(len(id2label))]


@dataclass
class _PendingFile:
    """A file whose windows are not all classified yet (``waveform`` is dropped once they are)."""

    prediction: FilePrediction
    waveform: Optional[np.ndarray] = None
    num_windows: int = 0
    remaining: int = 0
    progress: float = 0.0  # the share of the progress bar's unit already counted
    speaker_statistics: Optional[Statistics] = None


@dataclass
class _Window:
    pending: _PendingFile
    index: int
    start: int
    end: int


def shortest_clip(classifier) -> tuple[int, str]:
    """The fewest samples a clip needs for ``classifier``'s model to classify it, and what sets that number (see
    :func:`ser_hf.inputs.base.minimum_clip_samples`)."""
    return minimum_clip_samples(classifier.model.config, classifier.feature_extractor)


def _read_clip(
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


def speaker_statistics_of_files(
    feature_extractor,
    files: Sequence[str],
    speakers: Mapping[str, str],
    *,
    window_seconds: Optional[float] = None,
    hop_seconds: Optional[float] = None,
    max_whole_file_seconds: float = MAX_WHOLE_FILE_SECONDS,
    min_samples: int = 1,
    progress: bool = True,
    model=None,
) -> dict[str, Statistics]:
    """Each speaker's ``(mean, std)`` over the features, before normalisation, of the windows of their recordings that
    :func:`classify_files` classifies (their frames, one vector of openSMILE functionals per window, or the pooled
    encoder states `model` computes of each window for a Whisper classifier). Reads no
    label. Files that cannot be classified are left out (their result carries the error). Warns, naming the speaker,
    when the statistics come from fewer than ``MIN_SPEAKER_WINDOWS`` windows or ``MIN_SPEAKER_SECONDS`` of audio."""
    from tqdm.auto import tqdm

    sampling_rate = feature_extractor.sampling_rate
    windows: Counter = Counter()
    seconds: Counter = Counter()

    def feature_rows() -> Iterator[tuple[str, np.ndarray]]:
        for path in tqdm(files, desc="Speaker statistics", unit="file", disable=not progress):
            waveform, _ = _read_clip(path, sampling_rate, min_samples)
            if waveform is None:
                continue
            speaker = speakers[path]
            bounds = recording_windows(
                len(waveform), sampling_rate, window_seconds, hop_seconds, max_whole_file_seconds
            )
            windows[speaker] += len(bounds)
            seconds[speaker] += len(waveform) / sampling_rate
            for first in range(0, len(bounds), STATISTICS_BATCH_WINDOWS):
                clips = [waveform[start:end] for start, end in bounds[first : first + STATISTICS_BATCH_WINDOWS]]
                for rows in clip_feature_rows(feature_extractor, clips, model):
                    yield speaker, rows

    statistics = statistics_by_speaker(feature_rows())
    group = "Corpus" if normalises_per_corpus(feature_extractor) else "Speaker"
    for speaker in sorted(statistics):
        if windows[speaker] < MIN_SPEAKER_WINDOWS or seconds[speaker] < MIN_SPEAKER_SECONDS:
            logger.warning(
                "%s %s: statistics from %d window(s), %.1f s of audio, fewer than %d windows or "
                "%.0f s: their standardisation is unreliable, and so are their predictions.",
                group,
                speaker,
                windows[speaker],
                seconds[speaker],
                MIN_SPEAKER_WINDOWS,
                MIN_SPEAKER_SECONDS,
            )
    if group == "Speaker":
        logger.info(
            "Speaker normalisation of %d speaker(s): %s. The results are transductive: each depends on the "
            "speaker's other recordings classified here.",
            len(statistics),
            TRANSDUCTIVE_PROTOCOL,
        )
    return {speaker: running.statistics(feature_extractor.variance_floor) for speaker, running in statistics.items()}


def _speaker_statistics_for(
    classifier, files: Sequence[str], speakers: Optional[Mapping[str, str]], **options
) -> dict[str, Statistics]:
    """The statistics of each speaker whose windows the model standardises per speaker (none for other models, or
    without speakers: then a warning names the fallback and how to group the recordings)."""
    feature_extractor = classifier.feature_extractor
    if speakers is not None:
        missing = [file for file in files if file not in speakers]
        if missing:
            raise ValueError(f"speakers gives no speaker for {len(missing)} file(s), e.g. {missing[0]}.")
    if normalises_per_corpus(feature_extractor):
        logger.info(
            "The model standardises features per corpus: the %d recording(s) classified here are standardised as "
            "one corpus, with statistics of them all (transductive: each result depends on the others; classify "
            "recordings of one set-up together, and enough of them to span the emotions).",
            len(files),
        )
        speakers = {file: RECORDINGS_GROUP for file in files}
    elif not normalises_per_speaker(feature_extractor):
        if speakers is not None:
            logger.info(
                "%s does not standardise features per speaker (normalization=%r): the speakers only label "
                "the results.",
                type(feature_extractor).__name__,
                getattr(feature_extractor, "normalization", None),
            )
        return {}
    if speakers is None:
        logger.warning(
            "The model was trained on features standardised per speaker, but the recordings are not "
            "grouped by speaker: each is standardised with the training speakers' global statistics "
            "instead, which may cost accuracy. Group them with --speaker-from folder (one folder per "
            "speaker) or --speakers CSV (columns %s), or classify_files(..., speakers={file: speaker}).",
            ",".join(SPEAKERS_CSV_COLUMNS),
        )
        feature_extractor._fallback_said = True  # its own warning would say the same, naming the Python API only
        return {}
    if not isinstance(classifier, SpeakerNormalizedAudioClassificationPipeline):
        raise TypeError(
            "The model standardises features per speaker: build the pipeline with "
            "audio_classification_pipeline() (or pipeline_class="
            "SpeakerNormalizedAudioClassificationPipeline) so that each window's speaker statistics reach "
            "its feature extractor."
        )
    return speaker_statistics_of_files(feature_extractor, files, speakers, model=classifier.model, **options)


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


class _WindowQueue:
    """Decoded files in their order and their windows waiting for the model; classifies them a chunk at a time
    (longest first, ``batch_size`` per forward pass) and hands back the files whose windows are all done."""

    def __init__(self, classifier, batch_size: int, bar):
        self.classifier, self.batch_size, self.bar = classifier, batch_size, bar
        self.sampling_rate = classifier.feature_extractor.sampling_rate
        self.labels = model_labels(classifier)
        self.chunk_windows = BATCHES_PER_CHUNK * batch_size
        self.chunk_samples = int(MAX_CHUNK_SECONDS * self.sampling_rate)
        self.files: deque[_PendingFile] = deque()
        self.windows: list[_Window] = []
        self.samples = 0

    def add(
        self,
        prediction: FilePrediction,
        waveform: Optional[np.ndarray],
        bounds: Sequence[tuple[int, int]] = (),
        speaker_statistics: Optional[Statistics] = None,
    ) -> None:
        record = _PendingFile(
            prediction, waveform, num_windows=len(bounds), remaining=len(bounds), speaker_statistics=speaker_statistics
        )
        prediction.windows = [None] * len(bounds)
        self.files.append(record)
        self.windows += [_Window(record, index, start, end) for index, (start, end) in enumerate(bounds)]
        self.samples += sum(end - start for start, end in bounds)

    def chunk_ready(self) -> bool:
        return len(self.windows) >= self.chunk_windows or self.samples >= self.chunk_samples

    def classify_chunk(self) -> None:
        count = size = 0
        while count < len(self.windows) and count < self.chunk_windows and (not count or size < self.chunk_samples):
            size += self.windows[count].end - self.windows[count].start
            count += 1
        chunk, self.windows, self.samples = self.windows[:count], self.windows[count:], self.samples - size
        for window, scores in zip(chunk, self._scores(chunk)):
            record = window.pending
            if isinstance(scores, Exception):
                self._fail(record, window, scores)
            elif record.prediction.error is None:
                record.prediction.windows[window.index] = WindowPrediction(
                    start=window.start / self.sampling_rate, end=window.end / self.sampling_rate, scores=scores
                )
                record.progress += 1 / record.num_windows
                self.bar.update(1 / record.num_windows)
            record.remaining -= 1
            if record.remaining == 0:
                record.waveform = None

    def finished(self) -> Iterator[FilePrediction]:
        """The files at the front whose windows are all classified, in order."""
        while self.files and self.files[0].remaining == 0:
            record = self.files.popleft()
            self.bar.update(max(0.0, 1 - record.progress))
            yield record.prediction

    def _fail(self, record: _PendingFile, window: _Window, error: Exception) -> None:
        if record.prediction.error is not None:
            return
        where = ""
        if record.num_windows > 1:
            where = f" (window {window.start / self.sampling_rate:.3f}-{window.end / self.sampling_rate:.3f} s)"
        record.prediction.error = f"the model could not classify it{where}: {type(error).__name__}: {error}"
        record.prediction.windows = []

    def _scores(self, chunk: list[_Window]) -> list[dict[str, float] | Exception]:
        """Every label's score for each window (in the order given), batched longest first. When a batch fails, its
        windows are tried one at a time, so that only a window the model cannot take fails (with its exception)."""
        order = sorted(range(len(chunk)), key=lambda i: chunk[i].start - chunk[i].end)
        inputs = []
        for i in order:
            window = chunk[i]
            inputs.append(
                {"raw": window.pending.waveform[window.start : window.end], "sampling_rate": self.sampling_rate}
            )
            if window.pending.speaker_statistics is not None:
                inputs[-1]["speaker_statistics"] = window.pending.speaker_statistics
        try:
            outputs = self.classifier(inputs, top_k=None, batch_size=self.batch_size)
        except Exception as error:  # noqa: BLE001 - one bad window must not lose the run's other results
            outputs = [error] if len(inputs) == 1 else [self._one(window) for window in inputs]
        results: list[Any] = [None] * len(chunk)
        for i, output in zip(order, outputs):
            if isinstance(output, Exception):
                results[i] = output
            else:
                scores = {o["label"]: float(o["score"]) for o in output}
                results[i] = {label: scores[label] for label in self.labels}
        return results

    def _one(self, window: dict) -> list[dict] | Exception:
        try:
            return self.classifier(window, top_k=None)
        except Exception as error:  # noqa: BLE001
            return error


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
        raise ValueError(
            f"window_seconds {window_seconds:g} is longer than the model's {encoder_window:g}-s encoder window: "
            f"pass --window-seconds {encoder_window:g} or less."
        )
    return window_seconds, min(max_whole_file_seconds, float(encoder_window))


def classify_files(
    classifier,
    files: Iterable[str],
    *,
    window_seconds: Optional[float] = None,
    hop_seconds: Optional[float] = None,
    batch_size: int = 8,
    progress: bool = True,
    max_whole_file_seconds: float = MAX_WHOLE_FILE_SECONDS,
    speakers: Optional[Mapping[str, str]] = None,
) -> Iterator[FilePrediction]:
    """Classify each file (windowed when longer than ``window_seconds``; without it, when longer than
    ``max_whole_file_seconds``, in windows of that length) with an ``audio-classification`` pipeline;
    yields one :class:`FilePrediction` per file, in the order of ``files``, those that failed included (their
    ``error`` says why). The tqdm progress bar counts files (a long recording's windows move it in steps).

    Files are decoded lazily: windows are gathered from the files ahead until a chunk of ``BATCHES_PER_CHUNK``
    batches (or ``MAX_CHUNK_SECONDS`` of audio) waits, classified together, and the files they complete are
    yielded, so that at most about a chunk of audio is held at a time, however many files there are. Models whose
    feature extractor returns no attention mask (group-norm wav2vec2-base) get one window per forward pass: padding
    would change what they hear.

    ``speakers`` (``{file: speaker}``, every file) puts each file's speaker in its result. For a model whose feature
    extractor standardises per speaker, each speaker's statistics are first computed over the windows of all their
    files (:func:`speaker_statistics_of_files`, a pass of its own), and every window is standardised with its
    speaker's: the results are transductive. Such a model needs a
    :class:`SpeakerNormalizedAudioClassificationPipeline` (see :func:`audio_classification_pipeline`); without
    ``speakers`` it gets the training speakers' global statistics, with a warning.
    """
    from tqdm.auto import tqdm

    files = list(files)
    sampling_rate = classifier.feature_extractor.sampling_rate
    min_samples, too_short = shortest_clip(classifier)
    window_seconds, max_whole_file_seconds = fit_to_encoder_window(
        classifier.feature_extractor, window_seconds, max_whole_file_seconds
    )
    statistics = _speaker_statistics_for(
        classifier,
        files,
        speakers,
        window_seconds=window_seconds,
        hop_seconds=hop_seconds,
        max_whole_file_seconds=max_whole_file_seconds,
        min_samples=min_samples,
        progress=progress,
    )
    if not is_padding_invariant(classifier.model, classifier.feature_extractor):
        batch_size = 1  # group-norm encoders (no attention mask) and data2vec-audio hear the padding of a batch
    bar_format = "{l_bar}{bar}| {n:.0f}/{total} files [{elapsed}<{remaining}]"
    with tqdm(total=len(files), desc="Classifying", unit="file", disable=not progress, bar_format=bar_format) as bar:
        queue = _WindowQueue(classifier, batch_size, bar)
        for path in files:
            waveform, prediction = _read_clip(path, sampling_rate, min_samples, too_short)
            if speakers is not None:
                prediction.speaker = speakers[path]
            group = _statistics_group(path, speakers, classifier.feature_extractor)
            if waveform is None:
                queue.add(prediction, None)
            else:
                warn_if_too_short(prediction)
                bounds = recording_windows(
                    len(waveform),
                    sampling_rate,
                    window_seconds,
                    hop_seconds,
                    max_whole_file_seconds,
                    getattr(classifier.feature_extractor, "chunk_length", None),
                )
                queue.add(prediction, waveform, bounds, statistics.get(group))
            while queue.chunk_ready():
                queue.classify_chunk()
            yield from queue.finished()
        while queue.windows:
            queue.classify_chunk()
        yield from queue.finished()


class PredictionWriter:
    """Writes predictions one file at a time to a ``.csv`` or ``.json`` file, atomically: the output appears (or
    replaces the previous one) only when the writer closes without an error, so an interrupted run leaves no half
    file.

    CSV: columns ``file`` (and ``speaker`` with ``speaker_column``), ``window, start, end, label, score``, one per
    label, then ``error``. Each file has one ``all`` row (its aggregated scores, or its error with the other columns
    empty), preceded by one row per window when it was cut into several. JSON: a list of
    :meth:`FilePrediction.to_dict`.

    Example:

    ```python
    >>> with PredictionWriter("emotions.csv", model_labels(classifier)) as writer:
    ...     for prediction in classify_files(classifier, files):
    ...         writer.write(prediction)
    ```
    """

    def __init__(
        self, path: str | os.PathLike, labels: Sequence[str], top_k: Optional[int] = None, speaker_column: bool = False
    ):
        self.path = Path(path)
        if self.path.suffix.lower() not in OUTPUT_SUFFIXES:
            raise ValueError(f"--output {self.path}: write .csv or .json.")
        self.labels, self.top_k, self.speaker_column = list(labels), top_k, speaker_column
        self.files = self.windows = self.failed = 0
        self._stack: Optional[contextlib.ExitStack] = None

    @property
    def is_json(self) -> bool:
        return self.path.suffix.lower() == ".json"

    def __enter__(self) -> "PredictionWriter":
        with contextlib.ExitStack() as stack:
            partial = stack.enter_context(atomic_path(self.path))
            self._handle = stack.enter_context(open(partial, "w", newline="", encoding="utf-8"))
            if self.is_json:
                self._handle.write("[")
            else:
                self._csv = csv.writer(self._handle)
                speaker = ["speaker"] if self.speaker_column else []
                self._csv.writerow(
                    ["file", *speaker, "window", "start", "end", "label", "score", *self.labels, "error"]
                )
            self._stack = stack.pop_all()
        return self

    def write(self, prediction: FilePrediction) -> None:
        if self.is_json:
            item = textwrap.indent(json.dumps(prediction.to_dict(self.top_k), indent=2), "  ")
            self._handle.write(("\n" if not self.files else ",\n") + item)
        else:
            self._write_rows(prediction)
        self.files += 1
        self.windows += len(prediction.windows)
        self.failed += prediction.error is not None

    def _write_rows(self, prediction: FilePrediction) -> None:
        file = [prediction.file, prediction.speaker or ""] if self.speaker_column else [prediction.file]
        if prediction.error is not None:
            duration = "" if prediction.duration is None else f"{prediction.duration:.3f}"
            self._csv.writerow([*file, "all", "0.000", duration, "", "", *([""] * len(self.labels)), prediction.error])
            return
        if len(prediction.windows) > 1:
            for index, window in enumerate(prediction.windows):
                self._csv.writerow(
                    [
                        *file,
                        index,
                        f"{window.start:.3f}",
                        f"{window.end:.3f}",
                        window.label,
                        f"{window.scores[window.label]:.6f}",
                        *(f"{window.scores[k]:.6f}" for k in self.labels),
                        "",
                    ]
                )
        scores = prediction.scores
        self._csv.writerow(
            [
                *file,
                "all",
                "0.000",
                f"{prediction.duration:.3f}",
                prediction.label,
                f"{scores[prediction.label]:.6f}",
                *(f"{scores[k]:.6f}" for k in self.labels),
                "",
            ]
        )

    def __exit__(self, *exc_info) -> bool:
        stack, self._stack = self._stack, None
        if exc_info[0] is None and self.is_json:
            self._handle.write("\n]\n" if self.files else "]\n")
        return stack.__exit__(*exc_info)


def write_predictions(
    predictions: Iterable[FilePrediction],
    path: str | os.PathLike,
    labels: Sequence[str],
    top_k: Optional[int] = None,
    speaker_column: bool = False,
) -> Path:
    """Write predictions as they come (see :class:`PredictionWriter` for the formats, chosen by the file's suffix)."""
    with PredictionWriter(path, labels, top_k=top_k, speaker_column=speaker_column) as writer:
        for prediction in predictions:
            writer.write(prediction)
    return writer.path


__all__ = [
    "FilePrediction",
    "PredictionWriter",
    "SPEAKERS_CSV_COLUMNS",
    "SPEAKER_SOURCES",
    "SpeakerNormalizedAudioClassificationPipeline",
    "WindowPrediction",
    "audio_classification_pipeline",
    "load_classifier",
    "classify_files",
    "find_audio_inputs",
    "model_labels",
    "normalises_per_corpus",
    "normalises_per_speaker",
    "read_speakers_csv",
    "recording_windows",
    "shortest_clip",
    "speaker_statistics_of_files",
    "speakers_from_folders",
    "speakers_of",
    "window_bounds",
    "write_predictions",
]
