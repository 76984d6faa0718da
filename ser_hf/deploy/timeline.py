"""Emotion over time in a long recording: ``ser-hf predict --timeline``.

The recording is cut into speech segments by voice activity (Silero VAD, :mod:`.voice_activity`). Each segment is
classified through the same ``pipeline("audio-classification")`` as ``ser-hf predict`` (a long segment in windows,
:func:`recording_windows`, its scores the duration-weighted mean of theirs) with some of the audio around it
(:func:`segment_context`), its scores are smoothed over time (:class:`Smoothing`), and the result is a
:class:`Timeline` of :class:`Segment` rows (start, end, label, scores, and a speaker when a diarisation is given as an
RTTM file), written as CSV or JSON rows and drawn by :func:`plot_timeline`.

With a diarisation (:mod:`.diarization`), a speech segment that crosses a speaker turn is cut at the turn's boundary,
each piece gets the speaker whose turns overlap it most, and smoothing never mixes two speakers' scores.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import InputError
from .constants import DEFAULT_SMOOTHING, OUTPUT_SUFFIXES, check_window_options
from .diarization import SpeakerTurn, read_rttm, split_by_speaker, turns_of
from .voice_activity import VADOptions, load_vad, speech_segments

logger = logging.getLogger(__name__)

SMOOTHING_METHODS = ("none", "mean", "exponential")
#: Seconds of the audio around each speech segment that it is classified with (:func:`segment_context`): the value
#: with which segments best agree with whole-clip predictions, as measured on 2026-11-25 (docs/results/LOG.md, "bench/
#: timeline.py: timeline segments against whole-clip predictions"; the script is gone, the record stays).
DEFAULT_SEGMENT_CONTEXT = 1.0


@dataclass
class Segment:
    """One stretch of speech: ``start``/``end`` in seconds, its ``label`` (the top score), every label's ``scores``
    (smoothed when the timeline is), and its ``speaker`` when a diarisation was given."""

    start: float
    end: float
    label: str
    scores: dict[str, float]
    speaker: Optional[str] = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Timeline:
    """The speech segments of a recording (``duration`` seconds long) in time order, and how they were found."""

    file: str
    duration: float
    segments: list[Segment]
    labels: list[str] = field(default_factory=list)
    smoothing: str = "none"

    def __post_init__(self):
        if not self.labels and self.segments:
            self.labels = list(self.segments[0].scores)

    @property
    def has_speakers(self) -> bool:
        return any(segment.speaker is not None for segment in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the file, its duration, the labels, the smoothing applied and one record per segment."""
        return {
            "file": self.file,
            "duration": round(self.duration, 3),
            "labels": list(self.labels),
            "smoothing": self.smoothing,
            "segments": [
                {
                    "start": round(segment.start, 3),
                    "end": round(segment.end, 3),
                    "speaker": segment.speaker,
                    "label": segment.label,
                    "scores": {label: round(segment.scores[label], 6) for label in self.labels},
                }
                for segment in self.segments
            ],
        }

    def to_rows(self) -> list[dict[str, Any]]:
        """CSV rows, one per segment: ``file, start, end, speaker, label, score_<label>...`` (``speaker`` empty
        without a diarisation)."""
        return [
            {
                "file": self.file,
                "start": f"{segment.start:.3f}",
                "end": f"{segment.end:.3f}",
                "speaker": segment.speaker or "",
                "label": segment.label,
                **{f"score_{label}": f"{segment.scores[label]:.6f}" for label in self.labels},
            }
            for segment in self.segments
        ]


# --- Smoothing ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Smoothing:
    """How segment scores are smoothed over time, written ``none``, ``mean:3s``, ``mean:5`` or ``exponential:2s``.

    - ``none``: each segment keeps the scores the model gave it.
    - ``mean:Ws``: each segment gets the mean scores of the speech within ``W/2`` seconds either side of its centre,
      each segment (itself included) weighted by how many seconds of it lie in that span. A segment at least ``W``
      seconds long keeps its own scores; shorter ones borrow from the speech right around them, and silence longer
      than the span separates. The default, ``mean:3s``: fragments under a few seconds, where models trained on
      acted utterances of 2-4 s are least reliable, are steadied, while whole utterances are left as they are.
    - ``mean:N``: the duration-weighted mean over a centred run of ``N`` segments (odd ``N``), whatever their
      timing.
    - ``exponential:Hs``: an exponentially weighted mean of the segments so far (causal: no future segment), with a
      half-life of ``H`` seconds between segment centres (``exponential:N``: of ``N`` segments), as a live display
      would show; it lags behind a change by about the half-life.

    With speakers, each speaker's segments are smoothed on their own.
    """

    method: str = "none"
    span: float = 0.0
    seconds: bool = True

    def __post_init__(self):
        if self.method not in SMOOTHING_METHODS:
            raise ValueError(f"smoothing method {self.method!r}: choose one of {', '.join(SMOOTHING_METHODS)}.")
        if self.method != "none" and not (self.span > 0 and math.isfinite(self.span)):
            raise ValueError(f"smoothing {self.method} needs a positive span, got {self.span}.")
        if self.method == "mean" and not self.seconds and (self.span != int(self.span) or int(self.span) % 2 == 0):
            raise ValueError(f"smoothing mean over segments needs an odd whole number of them, got {self.span:g}.")

    @classmethod
    def parse(cls, text: "str | Smoothing | None") -> "Smoothing":
        """``none``, ``mean:3s``, ``mean:5``, ``exponential:2s`` (a trailing ``s``: seconds; none: segments)."""
        if isinstance(text, Smoothing):
            return text
        if text is None or str(text).strip().lower() in ("none", "off", ""):
            return cls()
        match = re.fullmatch(r"\s*(mean|exponential)\s*:\s*([0-9]*\.?[0-9]+)\s*(s?)\s*", str(text).lower())
        if match is None:
            raise ValueError(
                f"smoothing {text!r}: write none, mean:SECONDSs (e.g. mean:3s), mean:N (N segments, odd) or "
                f"exponential:SECONDSs (half-life, e.g. exponential:2s) or exponential:N."
            )
        return cls(match[1], float(match[2]), seconds=bool(match[3]))

    def __str__(self) -> str:
        if self.method == "none":
            return "none"
        return f"{self.method}:{self.span:g}{'s' if self.seconds else ''}"

    def apply(self, starts: np.ndarray, ends: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Smoothed ``scores`` (segments x labels) of segments in time order (one speaker's)."""
        if self.method == "none" or len(scores) < 2:
            return scores
        durations = ends - starts
        centres = (starts + ends) / 2
        if self.method == "exponential":
            import pandas

            frame = pandas.DataFrame(scores)
            if self.seconds:
                times = pandas.to_datetime(centres, unit="s")
                return frame.ewm(halflife=pandas.Timedelta(seconds=self.span), times=times).mean().to_numpy()
            return frame.ewm(halflife=self.span).mean().to_numpy()
        if self.seconds:
            low, high = centres[:, None] - self.span / 2, centres[:, None] + self.span / 2
            weights = np.clip(np.minimum(ends[None, :], high) - np.maximum(starts[None, :], low), 0, None)
        else:
            half = int(self.span) // 2
            index = np.arange(len(scores))
            weights = (np.abs(index[:, None] - index[None, :]) <= half) * durations[None, :]
        weights = weights / weights.sum(axis=1, keepdims=True)
        return weights @ scores


# --- The timeline -------------------------------------------------------------------------------------------------


def segment_context(
    bounds: Sequence[tuple[float, float]], duration: float, context_seconds: float
) -> list[tuple[float, float]]:
    """The stretch of audio each ``(start, end)`` speech segment (in time order) is classified on: the segment and up
    to ``context_seconds`` of the audio either side of it, never past the middle of the pause to a neighbouring
    segment (no audio is classified twice, no other speech is heard) nor past the recording's ends.

    Models trained on whole acted clips heard the silence around each utterance; the VAD's tight segments lack it,
    and their predictions then differ from the whole clip's (docs/results/LOG.md records the measurement)."""
    if not (context_seconds >= 0):
        raise ValueError(f"context_seconds must not be negative, got {context_seconds}.")
    widened = []
    for index, (start, end) in enumerate(bounds):
        low = (bounds[index - 1][1] + start) / 2 if index else 0.0
        high = (end + bounds[index + 1][0]) / 2 if index + 1 < len(bounds) else duration
        widened.append((max(start - context_seconds, min(low, start)), min(end + context_seconds, max(high, end))))
    return widened


def _segment_scores(
    classifier, waveform: np.ndarray, bounds: Sequence[tuple[float, float]], *, window_seconds, hop_seconds, batch_size
) -> list[dict[str, float]]:
    """Every label's score for each ``(start, end)`` of ``waveform``: a long one classified in windows
    (:func:`recording_windows`), its scores their duration-weighted mean. A segment shorter than the model's receptive
    field is widened around its centre to that length."""
    from ..models.runtime.padding import is_padding_invariant
    from ..models.runtime.ssl import minimum_input_samples
    from .pipelines import model_labels
    from .windows import MAX_WHOLE_FILE_SECONDS, fit_to_encoder_window, recording_windows

    sampling_rate = classifier.feature_extractor.sampling_rate
    # A model with a fixed window (Whisper) gets a segment longer than it in windows, as predict gives a recording.
    window_seconds, max_whole_seconds = fit_to_encoder_window(
        classifier.feature_extractor, window_seconds, MAX_WHOLE_FILE_SECONDS
    )
    encoder_window = getattr(classifier.feature_extractor, "chunk_length", None)
    labels = model_labels(classifier)
    shortest = min(minimum_input_samples(classifier.model.config), len(waveform))
    if not is_padding_invariant(classifier.model, classifier.feature_extractor):
        batch_size = 1  # as predict: models that hear a batch's padding get one window per pass
    inputs, owners, weights = [], [], []
    for index, (start, end) in enumerate(bounds):
        first, last = int(round(start * sampling_rate)), int(round(end * sampling_rate))
        if last - first < shortest:
            first = min(max(0, (first + last - shortest) // 2), len(waveform) - shortest)
            last = first + shortest
        for low, high in recording_windows(
            last - first, sampling_rate, window_seconds, hop_seconds, max_whole_seconds, encoder_window
        ):
            inputs.append({"raw": waveform[first + low : first + high], "sampling_rate": sampling_rate})
            owners.append(index)
            weights.append(high - low)
    outputs = classifier(inputs, top_k=None, batch_size=batch_size) if inputs else []
    totals = np.zeros((len(bounds), len(labels)))
    for owner, weight, output in zip(owners, weights, outputs):
        scores = {o["label"]: float(o["score"]) for o in output}
        totals[owner] += weight * np.array([scores[label] for label in labels])
    totals /= totals.sum(axis=1, keepdims=True)
    return [dict(zip(labels, row.tolist())) for row in totals]


def emotion_timeline(
    classifier,
    audio: "str | os.PathLike | np.ndarray",
    sampling_rate: Optional[int] = None,
    *,
    rttm: "str | os.PathLike | Sequence[SpeakerTurn] | None" = None,
    smoothing: "str | Smoothing | None" = DEFAULT_SMOOTHING,
    context_seconds: float = DEFAULT_SEGMENT_CONTEXT,
    window_seconds: Optional[float] = None,
    hop_seconds: Optional[float] = None,
    batch_size: int = 8,
    file: Optional[str] = None,
    **vad_options,
) -> Timeline:
    """The emotion of each stretch of speech in a recording.

    Args:
        classifier: an ``audio-classification`` pipeline (see
            :func:`ser_hf.deploy.pipelines.load_classifier`), or a model folder or Hub id, loaded as
            ``ser-hf predict`` loads it.
        audio: an audio file, or a 1-D waveform (then ``sampling_rate`` is required; it is resampled to the model's).
        rttm (*optional*): a diarisation, as an RTTM file or :class:`SpeakerTurn` list: segments get a speaker, and
            are cut where a turn ends inside them. An RTTM of several recordings is matched on the file's name.
        smoothing (`str`, defaults to ``"mean:3s"``): see :class:`Smoothing`; ``"none"`` keeps the model's scores.
        context_seconds (`float`, defaults to ``DEFAULT_SEGMENT_CONTEXT``): each segment is classified with up to
            this much of the audio around it, never past the middle of the pause to the next segment
            (:func:`segment_context`); its reported start and end stay those of the speech. ``0`` classifies the
            speech alone; ``inf``, all of the pauses around it up to their middles.
        window_seconds, hop_seconds (*optional*): segments longer than ``window_seconds`` are classified in windows,
            as ``ser-hf predict`` does (without it, segments over 30 s are).
        batch_size (`int`, defaults to 8): windows per forward pass.
        file (*optional*): the name the timeline gives the recording (defaults to the path, or ``"audio"``).
        **vad_options: :class:`VADOptions` fields: ``threshold`` (0.5), ``min_speech_seconds`` (0.25),
            ``min_silence_seconds`` (0.3), ``speech_pad_seconds`` (0.03), ``max_segment_seconds`` (10: longer speech
            is cut at its longest pause), ``onnx`` (False: the VAD through onnxruntime instead of TorchScript).
    """
    from ..data.decode import decode_waveform

    smoothing = Smoothing.parse(smoothing)
    options = VADOptions(**vad_options)
    load_vad(options.onnx)  # says how to install silero-vad before a model is loaded
    if isinstance(classifier, (str, os.PathLike)):
        from .pipelines import load_classifier

        classifier = load_classifier(classifier)
    rate = classifier.feature_extractor.sampling_rate
    if isinstance(audio, (str, os.PathLike)):
        name = file or str(audio)
        waveform = decode_waveform(str(audio), rate)
    else:
        if sampling_rate is None:
            raise ValueError("emotion_timeline(waveform, ...) needs the waveform's sampling_rate.")
        name = file or "audio"
        waveform = np.asarray(audio, dtype=np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"emotion_timeline needs a 1-D (mono) waveform, got shape {waveform.shape}.")
        if sampling_rate != rate:
            import soxr

            waveform = soxr.resample(waveform, sampling_rate, rate, quality="HQ").astype(np.float32)
    duration = len(waveform) / rate
    bounds = speech_segments(waveform, rate, options)
    if rttm is not None:
        turns = rttm if not isinstance(rttm, (str, os.PathLike)) else turns_of(read_rttm(rttm), name, str(rttm))
        pieces = split_by_speaker(bounds, turns)
    else:
        pieces = [(start, end, None) for start, end in bounds]
    scores = _segment_scores(
        classifier,
        waveform,
        segment_context([(start, end) for start, end, _ in pieces], duration, context_seconds),
        window_seconds=window_seconds,
        hop_seconds=hop_seconds,
        batch_size=batch_size,
    )
    from .pipelines import model_labels

    labels = model_labels(classifier)
    matrix = np.array([[row[label] for label in labels] for row in scores]).reshape(len(pieces), len(labels))
    starts = np.array([piece[0] for piece in pieces])
    ends = np.array([piece[1] for piece in pieces])
    speakers = [piece[2] for piece in pieces]
    smoothed = matrix.copy()
    for speaker in dict.fromkeys(speakers):
        rows = [i for i, s in enumerate(speakers) if s == speaker]
        smoothed[rows] = smoothing.apply(starts[rows], ends[rows], matrix[rows])
    segments = []
    for (start, end, speaker), row in zip(pieces, smoothed):
        values = dict(zip(labels, row.tolist()))
        segments.append(Segment(start, end, max(values, key=values.get), values, speaker))
    logger.info("%s: %d speech segment(s) in %.1f s", name, len(segments), duration)
    return Timeline(name, duration, segments, labels=labels, smoothing=str(smoothing))


@dataclass
class TimelineSummary:
    """What :func:`timeline_files` did: how many recordings, their speech segments in all, and the files written
    (``output``, and one plot per recording)."""

    files: int
    segments: int = 0
    output: Optional[Path] = None
    plots: list[Path] = field(default_factory=list)


def timeline_files(
    model: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    *,
    rttm: "str | os.PathLike | None" = None,
    smoothing: "str | Smoothing | None" = DEFAULT_SMOOTHING,
    context_seconds: Optional[float] = None,
    window_seconds: Optional[float] = None,
    hop_seconds: Optional[float] = None,
    batch_size: int = 8,
    output: "str | os.PathLike | None" = None,
    plot: "str | os.PathLike | None" = None,
    check_plot: Optional[Callable[[Path], None]] = None,
    revision: Optional[str] = None,
    trust_remote_code: bool = False,
    on_timeline: Optional[Callable[[Timeline], None]] = None,
    **vad_options,
) -> TimelineSummary:
    """``ser-hf predict --timeline`` in one call: the :class:`Timeline` of each recording in `files` (audio files),
    with the model at `model` (a folder, Hub id or ONNX export) loaded once.

    Every option is checked before the model loads (windows, smoothing, VAD options, Silero VAD installed, the RTTM
    read, the plot paths): `rttm` is a diarisation of one or several of the recordings (matched on their names);
    `plot` a ``.png`` file (one recording) or a folder that gets ``<name>.timeline.png`` per recording
    (:func:`timeline_plot_path`), each path handed to `check_plot` first (``ser-hf predict`` refuses to replace a
    file it did not write). `context_seconds` defaults to :data:`DEFAULT_SEGMENT_CONTEXT`; the other options are
    :func:`emotion_timeline`'s. Each timeline goes to `on_timeline` as it is made, is drawn to its plot, and all are
    written to `output` (``.csv`` or ``.json``, :func:`write_timelines`) at the end."""
    check_window_options(window_seconds, hop_seconds, batch_size)
    if not files:
        raise ValueError("Give the audio files or folders to follow over time.")
    if output is not None and Path(output).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"{output}: write timelines to a .csv or .json file.")
    smoothing = Smoothing.parse(smoothing)
    vad = VADOptions(**vad_options)
    context_seconds = DEFAULT_SEGMENT_CONTEXT if context_seconds is None else context_seconds
    if context_seconds < 0:
        raise ValueError(f"context_seconds must not be negative, got {context_seconds}.")
    files = [str(file) for file in files]
    turns = read_rttm(rttm) if rttm is not None else None
    plots = [timeline_plot_path(plot, file, len(files) > 1) for file in files] if plot is not None else []
    for path in plots if check_plot is not None else []:
        check_plot(path)
    load_vad(vad.onnx)  # says how to install silero-vad before a model is loaded

    from .pipelines import load_classifier

    classifier = load_classifier(model, revision=revision, trust_remote_code=trust_remote_code)
    summary = TimelineSummary(files=len(files), plots=plots)
    timelines = []
    for index, file in enumerate(files):
        timeline = emotion_timeline(
            classifier,
            file,
            rttm=None if turns is None else turns_of(turns, file, str(rttm)),
            smoothing=smoothing,
            context_seconds=context_seconds,
            window_seconds=window_seconds,
            hop_seconds=hop_seconds,
            batch_size=batch_size,
            **vars(vad),
        )
        timelines.append(timeline)
        summary.segments += len(timeline.segments)
        if plots:
            plot_timeline(timeline, plots[index])
        if on_timeline is not None:
            on_timeline(timeline)
    if output is not None:
        summary.output = write_timelines(timelines, output)
    return summary


# --- Writing and drawing ------------------------------------------------------------------------------------------


def write_timelines(timelines: Sequence[Timeline], path: str | os.PathLike) -> Path:
    """Write timelines as CSV rows (:meth:`Timeline.to_rows`) or a JSON list (:meth:`Timeline.to_dict`), chosen by the
    suffix, atomically."""
    import csv
    import io
    import json

    from ..atomic_files import write_text_atomic

    path = Path(path)
    if path.suffix.lower() == ".json":
        write_text_atomic(path, json.dumps([timeline.to_dict() for timeline in timelines], indent=2) + "\n")
    elif path.suffix.lower() == ".csv":
        labels = list(dict.fromkeys(label for timeline in timelines for label in timeline.labels))
        columns = ["file", "start", "end", "speaker", "label", *(f"score_{label}" for label in labels)]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, columns, lineterminator="\n")
        writer.writeheader()
        for timeline in timelines:
            writer.writerows(timeline.to_rows())
        write_text_atomic(path, text.getvalue())
    else:
        raise ValueError(f"{path}: write timelines to a .csv or .json file.")
    return path


#: Width and height, in inches, of :func:`plot_timeline`'s figure (saved at 120 dpi: 1200 x 420 pixels).
FIGURE_SIZE = (10.0, 3.5)


def plot_timeline(timeline: Timeline, path: "str | os.PathLike | None" = None):
    """The timeline as stacked score areas over time (one colour per label, silence shaded grey, each segment's
    speaker written above it); saved as a PNG (atomically, then closed) when ``path`` is given."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=FIGURE_SIZE)
    colours = plt.get_cmap("tab10")
    edges = [0.0]
    for segment in timeline.segments:
        edges += [segment.start, segment.end]
    edges.append(timeline.duration)
    for low, high in zip(edges[::2], edges[1::2]):
        if high > low:
            axis.axvspan(low, high, color="0.88", linewidth=0, zorder=0)
    for index, label in enumerate(timeline.labels):
        axis.bar(
            [segment.start for segment in timeline.segments],
            [segment.scores[label] for segment in timeline.segments],
            width=[segment.duration for segment in timeline.segments],
            bottom=[sum(segment.scores[k] for k in timeline.labels[:index]) for segment in timeline.segments],
            align="edge",
            color=colours(index % 10),
            linewidth=0,
            label=label,
            zorder=2,
        )
    for segment in timeline.segments:
        if segment.speaker is not None:
            axis.text((segment.start + segment.end) / 2, 1.02, segment.speaker, ha="center", va="bottom", fontsize=7)
    axis.set_xlim(0, max(timeline.duration, 1e-3))
    axis.set_ylim(0, 1.08 if timeline.has_speakers else 1)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("score")
    smoothing = "" if timeline.smoothing == "none" else f", smoothed {timeline.smoothing}"
    axis.set_title(f"{Path(timeline.file).name}: {len(timeline.segments)} speech segment(s){smoothing}", fontsize=9)
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    if path is not None:
        from ..atomic_files import save_figure

        save_figure(figure, path)
    return figure


def timeline_plot_path(target: str | os.PathLike, file: str, many: bool) -> Path:
    """Where a timeline's `plot` (``ser-hf predict --timeline-plot``) puts a recording's PNG: ``target`` itself
    when it names a ``.png`` file (one recording), otherwise ``target/<name>.timeline.png``."""
    target = Path(target)
    if target.suffix.lower() == ".png":
        if many:
            raise InputError(f"plot {target}: give a folder for the plots of several recordings.", parameter="plot")
        return target
    return target / f"{Path(file).stem}.timeline.png"


__all__ = [
    "DEFAULT_SEGMENT_CONTEXT",
    "DEFAULT_SMOOTHING",
    "Segment",
    "Smoothing",
    "Timeline",
    "TimelineSummary",
    "emotion_timeline",
    "plot_timeline",
    "segment_context",
    "timeline_files",
    "timeline_plot_path",
    "write_timelines",
]
