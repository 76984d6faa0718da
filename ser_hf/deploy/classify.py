"""Classify recordings of any length with a trained model: what ``ser-hf predict`` runs.

A recording longer than the window is cut into windows (``window_seconds`` long, every ``hop_seconds``, the last one
ending at the end of the file), each window is classified through ``pipeline("audio-classification")``, and the
recording's emotion is the duration-weighted mean of its windows' probabilities.

Files are decoded one at a time, as the windows ahead of them are classified: windows from many files go through the
pipeline together (batches of similar length), and each file's result comes out in the order of the files, so that a
folder of any size needs the memory of one chunk of windows. A file that cannot be classified (corrupt, empty,
truncated, NaN samples, too short for the model) gets a result with an ``error`` and the others go on.

Recordings may be grouped by speaker (:mod:`.speakers`): a model whose feature extractor standardises per speaker
(``normalization="speaker"``) then gets each window standardised with the statistics of its speaker's recordings,
computed without labels: in a pass of their own over the same windows, or, for a Whisper classifier whose head reads
its pooled encoder states, from the states each window is encoded to once, which the head then scores (as
``ser-hf evaluate`` does).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..evaluation.setup_shift import setup_shift_report, standardized_states
from ..evaluation.speaker_check import checked_head_statistics, checks_speakers, warn_unchecked
from ..inputs.fast_mode import encodes_once, head_logits
from ..inputs.speaker_normalization import ENCODER_STATES_COLUMN, NormalizationPlan, statistics_by_speaker
from ..models.feature_normalization import Statistics
from ..models.runtime.padding import is_padding_invariant
from .pipelines import SpeakerNormalizedAudioClassificationPipeline, model_labels
from .results import FilePrediction, WindowPrediction
from .speakers import (
    MIN_STATISTICS_ROWS,
    RECORDINGS_GROUP,
    SPEAKERS_CSV_COLUMNS,
    normalises_per_corpus,
    normalises_per_speaker,
    speaker_statistics_of_files,
    statistics_of_groups,
)
from .windows import (
    MAX_WHOLE_FILE_SECONDS,
    fit_to_encoder_window,
    model_windows,
    read_clip,
    shortest_clip,
    warn_if_too_short,
)

#: Windows classified together: this many batches' worth are decoded ahead and sorted by length, so that each batch
#: holds windows of similar length (little padding) whatever the order of the files.
BATCHES_PER_CHUNK = 16
#: ... and at most this many seconds of audio, so that whole long recordings (no ``window_seconds``) are not decoded
#: many at a time.
MAX_CHUNK_SECONDS = 600.0

logger = logging.getLogger(__name__)


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


def _statistics_groups(
    classifier, files: Sequence[str], speakers: Optional[Mapping[str, Optional[str]]]
) -> Optional[dict[str, Optional[str]]]:
    """Whose statistics standardise each file (``{file: group}``; `None`: a file no speaker is known for, which gets
    the training statistics) for a model that standardises per speaker or per corpus; `None` for other models, or
    without speakers (then a warning names the fallback and how to group the recordings)."""
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
        return {file: RECORDINGS_GROUP for file in files}
    if not normalises_per_speaker(feature_extractor):
        if speakers is not None:
            logger.info(
                "%s does not standardise features per speaker (normalization=%r): the speakers only label "
                "the results.",
                type(feature_extractor).__name__,
                getattr(feature_extractor, "normalization", None),
            )
        return None
    if speakers is None:
        logger.warning(
            "The model was trained on features standardised per speaker, but the recordings are not "
            "grouped by speaker: each is standardised with the training speakers' global statistics "
            "instead, which may cost accuracy. Group them with --speaker-from folder (one folder per "
            "speaker) or --speakers CSV (columns %s), or classify_files(..., speakers={file: speaker}).",
            ",".join(SPEAKERS_CSV_COLUMNS),
        )
        feature_extractor._fallback_said = True  # its own warning would say the same, naming the Python API only
        return None
    if not isinstance(classifier, SpeakerNormalizedAudioClassificationPipeline):
        raise TypeError(
            "The model standardises features per speaker: build the pipeline with "
            "load_classifier() (or pipeline_class="
            "SpeakerNormalizedAudioClassificationPipeline) so that each window's speaker statistics reach "
            "its feature extractor."
        )
    return {file: speakers[file] for file in files}


@dataclass
class _EncodedWindow:
    """A window of a file (``file``: its index) and its pooled encoder states once computed."""

    file: int
    start: int
    end: int
    states: Optional[np.ndarray] = None


def _pooled_states(model, feature_extractor, clips: list[np.ndarray]) -> list[np.ndarray | Exception]:
    """Each clip's pooled encoder states (what FAST mode caches, the rows of its group's statistics); when a batch
    fails its clips are tried one at a time, so that only a clip the model cannot take fails, with its exception."""
    try:
        inputs = feature_extractor(
            clips, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt", return_state_statistics=False
        )
        states = model.pooled_encoder_states(
            inputs["input_features"].to(device=model.device, dtype=model.dtype),
            inputs["attention_mask"].to(model.device),
        )
        return list(states.float().cpu().numpy())
    except Exception as error:  # noqa: BLE001 - one bad window must not lose the run's other results
        if len(clips) == 1:
            return [error]
        return [states for clip in clips for states in _pooled_states(model, feature_extractor, [clip])]


def _classify_by_encoder_states(
    classifier,
    files: Sequence[str],
    groups: Mapping[str, Optional[str]],
    reader: _FileReader,
    *,
    batch_size: int,
    progress: bool,
    min_statistics_rows: int,
) -> list[FilePrediction]:
    """Every file's prediction, each window through the encoder once, for a Whisper classifier whose logits follow
    from its pooled encoder states (:func:`~ser_hf.inputs.fast_mode.encodes_once`) standardised per speaker or
    corpus: the states are kept (one vector a window), the groups' statistics taken over them, and the model's own
    head scores them (:func:`~ser_hf.inputs.fast_mode.head_logits`), as ``ser-hf evaluate`` does. The
    progress bar counts the files encoded."""
    from tqdm.auto import tqdm

    with _files_bar(tqdm, len(files), progress) as bar:
        encoded = _EncodedFiles(classifier, groups, batch_size, bar)
        for path in files:
            encoded.add(path, *reader.read(path))
        encoded.encode_pending()
    predictions = encoded.predictions
    scored = [
        window for window in encoded.windows if window.states is not None and predictions[window.file].error is None
    ]
    logits = _head_logits_of_windows(classifier, files, groups, scored, encoded, min_statistics_rows)
    probabilities = _softmax(logits)
    labels = model_labels(classifier)
    sampling_rate = classifier.feature_extractor.sampling_rate
    for window, window_logits, window_probabilities in zip(scored, logits, probabilities):
        prediction = predictions[window.file]
        if prediction.error is not None:
            continue
        if not np.isfinite(window_logits).all():
            prediction.error = _not_finite(dict(zip(labels, window_probabilities.tolist())))
            continue
        prediction.windows.append(
            WindowPrediction(
                start=window.start / sampling_rate,
                end=window.end / sampling_rate,
                scores={label: float(score) for label, score in zip(labels, window_probabilities)},
            )
        )
    for prediction in predictions:
        if prediction.error is not None:
            prediction.windows = []
    return predictions


class _EncodedFiles:
    """The files read so far, their windows and each window's pooled encoder states, encoded ``batch_size`` windows at
    a time; also each statistics group's number of windows and seconds of audio (what its statistics rest on)."""

    def __init__(self, classifier, groups: Mapping[str, Optional[str]], batch_size: int, bar):
        self.model, self.extractor = classifier.model, classifier.feature_extractor
        self.groups, self.batch_size, self.bar = groups, batch_size, bar
        self.predictions: list[FilePrediction] = []
        self.windows: list[_EncodedWindow] = []
        self.pending: list[tuple[_EncodedWindow, np.ndarray]] = []
        self.file_windows: list[int] = []
        self.group_windows: Counter = Counter()
        self.group_seconds: Counter = Counter()

    def add(
        self, path: str, waveform: Optional[np.ndarray], prediction: FilePrediction, bounds: Sequence[tuple[int, int]]
    ) -> None:
        """Take a file read by :meth:`_FileReader.read`, and encode its windows as batches fill."""
        self.predictions.append(prediction)
        if waveform is None:
            self.file_windows.append(0)
            self.bar.update(1)
            return
        self.file_windows.append(len(bounds))
        group = self.groups[path]
        if group is not None:
            self.group_windows[group] += len(bounds)
            self.group_seconds[group] += len(waveform) / self.extractor.sampling_rate
        for start, end in bounds:
            window = _EncodedWindow(len(self.predictions) - 1, start, end)
            self.windows.append(window)
            self.pending.append((window, waveform[start:end]))
            if len(self.pending) >= self.batch_size:
                self.encode_pending()

    def encode_pending(self) -> None:
        """Encode the windows waiting; a window the model cannot take fails its file (the first failure named)."""
        if not self.pending:
            return
        states = _pooled_states(self.model, self.extractor, [clip for _, clip in self.pending])
        for (window, _), window_states in zip(self.pending, states):
            prediction = self.predictions[window.file]
            num_windows = self.file_windows[window.file]
            if isinstance(window_states, Exception):
                if prediction.error is None:
                    prediction.error = _window_failure(
                        window_states, window.start, window.end, self.extractor.sampling_rate, num_windows
                    )
            else:
                window.states = window_states
            self.bar.update(1 / num_windows)
        self.pending.clear()


def _head_logits_of_windows(
    classifier,
    files: Sequence[str],
    groups: Mapping[str, Optional[str]],
    scored: list[_EncodedWindow],
    encoded: _EncodedFiles,
    min_statistics_rows: int,
) -> np.ndarray:
    """The head's logits of each window of `scored`, its states standardised with its group's statistics (taken over
    the windows of the group's files, and checked against each other where the model checks speakers); a group with
    too few windows, or a file without a group, gets the training statistics."""
    model, extractor = classifier.model, classifier.feature_extractor
    rows = (
        (groups[files[window.file]], window.states.reshape(1, -1))
        for window in scored
        if groups[files[window.file]] is not None
    )
    statistics = statistics_of_groups(
        extractor, rows, encoded.group_windows, encoded.group_seconds, min_statistics_rows
    )
    plan = NormalizationPlan(extractor.normalization, speaker_statistics=statistics)
    head_rows = [
        {ENCODER_STATES_COLUMN: window.states, plan.group_column: groups[files[window.file]]} for window in scored
    ]
    if checks_speakers(extractor) and statistics:
        # The speakers statistics_of_groups kept (enough windows of their own) are checked against each other.
        kept = statistics_by_speaker(
            (row[plan.group_column], row[ENCODER_STATES_COLUMN].reshape(1, -1))
            for row in head_rows
            if row[plan.group_column] in statistics
        )
        plan.speaker_statistics, _ = checked_head_statistics(model, extractor, head_rows, plan.group_column, kept)
    return head_logits(model, extractor, head_rows, plan)


def _window_failure(error: Exception, start: int, end: int, sampling_rate: int, num_windows: int) -> str:
    """The error of a file one of whose windows the model could not classify, naming the window when there are
    several."""
    where = ""
    if num_windows > 1:
        where = f" (window {start / sampling_rate:.3f}-{end / sampling_rate:.3f} s)"
    return f"the model could not classify it{where}: {type(error).__name__}: {error}"


@dataclass(frozen=True)
class _FileReader:
    """How :func:`classify_files` reads a file: decoded (:func:`read_clip`, a file it cannot classify given an error),
    its speaker put in its result, and cut into the model's windows."""

    extractor: Any
    window_seconds: Optional[float]
    hop_seconds: Optional[float]
    max_whole_file_seconds: float
    min_samples: int
    too_short: str
    speakers: Optional[Mapping[str, Optional[str]]]

    def window_options(self) -> dict[str, Any]:
        """The windowing as the keyword arguments of :func:`speaker_statistics_of_files`."""
        return dict(
            window_seconds=self.window_seconds,
            hop_seconds=self.hop_seconds,
            max_whole_file_seconds=self.max_whole_file_seconds,
        )

    def read(self, path: str) -> tuple[Optional[np.ndarray], FilePrediction, list[tuple[int, int]]]:
        """The file's waveform (`None` when it cannot be classified), its result so far and its windows' bounds."""
        waveform, prediction = read_clip(path, self.extractor.sampling_rate, self.min_samples, self.too_short)
        if self.speakers is not None:
            prediction.speaker = self.speakers[path]
        if waveform is None:
            return None, prediction, []
        warn_if_too_short(prediction)
        bounds = model_windows(
            self.extractor, waveform, self.window_seconds, self.hop_seconds, self.max_whole_file_seconds
        )
        return waveform, prediction, bounds


def _files_bar(tqdm, files: int, progress: bool):
    """The bar of files classified (a file's windows move it by their share). Its time left comes from the average
    rate since the start (``smoothing=0``): windows are classified a batch at a time, longest first, so the rate of the
    last few updates says little about the rest."""
    return tqdm(
        total=files,
        desc="Classifying",
        unit="file",
        disable=not progress,
        bar_format="{l_bar}{bar}| {n:.0f}/{total} files [{elapsed}<{remaining}]",
        smoothing=0,
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Each row's probabilities, as the audio-classification pipeline computes them (in float32)."""
    return torch.from_numpy(np.asarray(logits, np.float32)).softmax(-1).numpy()


def _not_finite(scores: Mapping[str, float]) -> str:
    return (
        f"its scores are not finite ({', '.join(f'{k}: {v}' for k, v in scores.items())}): the "
        "model's weights or its preprocessor_config.json statistics hold NaN or infinite values"
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
        # Longest first, so that each batch holds windows of similar length; the bar moves after every batch (by
        # each window's share of its file), not once a chunk.
        chunk.sort(key=lambda window: window.start - window.end)
        for first in range(0, len(chunk), self.batch_size):
            batch = chunk[first : first + self.batch_size]
            for window, scores in zip(batch, self._scores(batch)):
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
        record.prediction.error = _window_failure(
            error, window.start, window.end, self.sampling_rate, record.num_windows
        )
        record.prediction.windows = []

    def _scores(self, batch: list[_Window]) -> list[dict[str, float] | Exception]:
        """Every label's score for each window of a batch (in the order given), in one forward pass. When it fails,
        its windows are tried one at a time, so that only a window the model cannot take fails (with its exception)."""
        inputs = []
        for window in batch:
            inputs.append(
                {"raw": window.pending.waveform[window.start : window.end], "sampling_rate": self.sampling_rate}
            )
            if window.pending.speaker_statistics is not None:
                inputs[-1]["speaker_statistics"] = window.pending.speaker_statistics
        try:
            outputs = self.classifier(inputs, top_k=None, batch_size=self.batch_size)
        except Exception as error:  # noqa: BLE001 - one bad window must not lose the run's other results
            outputs = [error] if len(inputs) == 1 else [self._one(window) for window in inputs]
        results: list[Any] = [None] * len(batch)
        for i, output in enumerate(outputs):
            if isinstance(output, Exception):
                results[i] = output
            else:
                scores = {o["label"]: float(o["score"]) for o in output}
                results[i] = {label: scores[label] for label in self.labels}
                if not all(math.isfinite(score) for score in scores.values()):
                    # A NaN score is never written as a result: the file gets an error row instead.
                    results[i] = ValueError(_not_finite(scores))
        return results

    def _one(self, window: dict) -> list[dict] | Exception:
        try:
            return self.classifier(window, top_k=None)
        except Exception as error:  # noqa: BLE001
            return error


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
    min_statistics_rows: int = MIN_STATISTICS_ROWS,
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
    files (:func:`speaker_statistics_of_files`, a pass of its own; a Whisper classifier whose logits follow from its
    pooled encoder states keeps each window's states instead, so that each window is encoded once, and yields its
    results once every file is encoded), and every window is standardised with its speaker's: the results are
    transductive. A file whose speaker is `None` gets the training statistics. Such a model needs a
    :class:`SpeakerNormalizedAudioClassificationPipeline` (see :func:`load_classifier`); without
    ``speakers`` it gets the training speakers' global statistics, with a warning, and so does a speaker (or, for a
    model standardised per corpus, the files classified together) whose statistics would rest on fewer than
    ``min_statistics_rows`` feature vectors (:data:`~ser_hf.deploy.speakers.MIN_STATISTICS_ROWS`, measured).
    """
    files = list(files)
    extractor = classifier.feature_extractor
    sampling_rate = extractor.sampling_rate
    min_samples, too_short = shortest_clip(classifier)
    if window_seconds is not None and window_seconds * sampling_rate < min_samples:
        raise InputError(
            f"window_seconds {window_seconds} is shorter than "
            f"{too_short.format(ms=f'{min_samples / sampling_rate * 1000:.1f}')}: no window could be classified.",
            parameter="window_seconds",
        )
    window_seconds, max_whole_file_seconds = fit_to_encoder_window(extractor, window_seconds, max_whole_file_seconds)
    reader = _FileReader(
        extractor, window_seconds, hop_seconds, max_whole_file_seconds, min_samples, too_short, speakers
    )
    groups = _statistics_groups(classifier, files, speakers)
    if groups is not None and encodes_once(classifier.model, extractor):
        yield from _classify_by_encoder_states(
            classifier,
            files,
            groups,
            reader,
            batch_size=batch_size,
            progress=progress,
            min_statistics_rows=min_statistics_rows,
        )
        return
    statistics = {}
    if groups is not None:
        warn_unchecked(extractor)
        statistics = speaker_statistics_of_files(
            extractor,
            files,
            groups,
            model=classifier.model,
            **reader.window_options(),
            min_samples=min_samples,
            progress=progress,
            min_statistics_rows=min_statistics_rows,
        )
    yield from _classify_by_windows(classifier, files, groups, statistics, reader, batch_size, progress)


def _classify_by_windows(
    classifier,
    files: Sequence[str],
    groups: Optional[Mapping[str, Optional[str]]],
    statistics: Mapping[str, Statistics],
    reader: _FileReader,
    batch_size: int,
    progress: bool,
) -> Iterator[FilePrediction]:
    """Every file's prediction, in order, its windows classified through the pipeline a chunk at a time
    (:class:`_WindowQueue`), each standardised with its group's `statistics` where it has some; then the recordings'
    shift from the training statistics is judged when enough windows were standardised."""
    from tqdm.auto import tqdm

    if not is_padding_invariant(classifier.model, classifier.feature_extractor):
        batch_size = 1  # group-norm encoders (no attention mask) and data2vec-audio hear the padding of a batch
    with (
        standardized_states(classifier.model) as standardized,
        _files_bar(tqdm, len(files), progress) as bar,
    ):
        queue = _WindowQueue(classifier, batch_size, bar)
        for path in files:
            waveform, prediction, bounds = reader.read(path)
            group = groups[path] if groups is not None else None
            if waveform is None:
                queue.add(prediction, None)
            else:
                queue.add(prediction, waveform, bounds, statistics.get(group))
            while queue.chunk_ready():
                queue.classify_chunk()
            yield from queue.finished()
        while queue.windows:
            queue.classify_chunk()
        yield from queue.finished()
    if standardized is not None and standardized.count >= MIN_SHIFT_WINDOWS:
        # Says so (a warning) when the recordings sit farther from the training statistics than any training speaker.
        setup_shift_report(classifier.feature_extractor, None, standardized=standardized)


#: The fewest windows whose shift from a model's training statistics ``classify_files`` judges: a clip or two
#: differ from their set-up's mean as much as a set-up differs from another.
MIN_SHIFT_WINDOWS = 10

__all__ = ["BATCHES_PER_CHUNK", "MAX_CHUNK_SECONDS", "MIN_SHIFT_WINDOWS", "classify_files"]
