"""Grouping recordings by speaker for a model whose feature extractor standardises per speaker (or per corpus): whose
each recording is (one folder per speaker, or a CSV of ``path,speaker_id``), and each speaker's statistics over the
windows of their recordings, computed without labels. Results classified so are transductive: each depends on the
speaker's other recordings classified with it."""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np

from ..data.corpora.folder import read_clips_csv
from ..inputs.speaker_normalization import TRANSDUCTIVE_PROTOCOL, clip_feature_rows, statistics_by_speaker
from ..models.feature_normalization import Statistics
from .windows import MAX_WHOLE_FILE_SECONDS, model_windows, read_clip

#: The columns of a ``--speakers`` CSV: each audio file (relative to the CSV's folder, or absolute) and its speaker.
SPEAKERS_CSV_COLUMNS = ("path", "speaker_id")
#: A speaker's statistics taken over fewer windows or seconds of audio than these are unreliable: a warning names them.
MIN_SPEAKER_WINDOWS = 5
MIN_SPEAKER_SECONDS = 10.0
#: A speaker (or the recordings classified together, for a corpus-normalised model) whose statistics rest on fewer
#: feature vectors than this gets the training statistics the model stores instead of their own. A model with one
#: vector a window (Whisper's pooled states, openSMILE's functionals) standardises a single window to all 0, and a few
#: windows worse than the training statistics do: Whisper base FAST with speaker statistics, RAVDESS fold 0's test
#: speakers in groups of k clips, UA 12.5 / 62.9 / 70.3 / 71.9 / 77.3 / 80.5 for k = 1, 2, 3, 5, 7, 10 (another draw
#: of the groups: 73.8 at 7), against 73.8 with the training statistics and 82.8 with each speaker's 60
#: (docs/results/studies/group_statistics.py, docs/results/LOG.md). A log-mel model has a vector per frame, hundreds
#: a clip: its speakers keep their own statistics.
MIN_STATISTICS_ROWS = 10
#: Windows whose features are computed together for the speakers' statistics.
STATISTICS_BATCH_WINDOWS = 32

logger = logging.getLogger(__name__)


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


def training_speaker_regexes(model: str | os.PathLike) -> list[tuple[str, str]]:
    """``(corpus, speaker_regex)`` of each corpus whose speakers the model's training run read from file paths (the
    ``corpus_options`` of the ``run_config.json`` in the model's folder), in the run's order; empty for a model
    without one (a Hub id, an export, a corpus with its own file-name parser)."""
    if not Path(model).is_dir():
        return []
    from ..evaluation.evaluate_model import CorpusSource, run_training_sources
    from ..run_folder import RunDir

    return [
        (CorpusSource(name, data_dir, options=options).identity, options["speaker_regex"])
        for name, data_dir, options in run_training_sources(RunDir(Path(model)).read_config())
        if options.get("speaker_regex")
    ]


def speakers_from_training_regex(
    model: str | os.PathLike,
    files: Sequence[str],
    searched: Optional[Mapping[str, str]] = None,
    feature_extractor=None,
) -> Optional[dict[str, Optional[str]]]:
    """Each file's speaker, read as the model's training corpus read its speakers (:func:`training_speaker_regexes`;
    the first that matches, of several) from ``searched[file]`` (its path relative to the folder it was found in;
    default: its name), said in one log line; a file none matches gets `None` (the training statistics), named in a
    warning (which stands for `feature_extractor`'s own). `None` when the run recorded no ``speaker_regex`` or it
    matches no file."""
    regexes = training_speaker_regexes(model)
    if not regexes:
        return None
    compiled = [re.compile(pattern) for _, pattern in regexes]
    speakers: dict[str, Optional[str]] = {}
    for file in files:
        text = searched.get(file, Path(file).name) if searched is not None else Path(file).name
        speakers[file] = next(
            (speaker for pattern in compiled if (speaker := _speaker_group(pattern.search(text), pattern))), None
        )
    described = ", ".join(f"{corpus} {pattern!r}" for corpus, pattern in regexes)
    unmatched = [file for file, speaker in speakers.items() if speaker is None]
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (f" and {len(unmatched) - 10} more" if len(unmatched) > 10 else "")
        every = len(unmatched) == len(files)
        logger.warning(
            "%s the %d file(s) match %s speaker_regex of the model's training corpus (%s), so %s: %s",
            "None of" if every else f"{len(unmatched)} of",
            len(files),
            "the" if every else "no",
            described,
            "the recordings are not grouped by speaker"
            if every
            else "those are standardised with the training speakers' global statistics instead",
            shown,
        )
        if not every and feature_extractor is not None:
            feature_extractor._fallback_said = True  # said here, naming the files
    if len(unmatched) == len(files):
        return None
    logger.info(
        "Each file's speaker read with the speaker_regex of the model's training corpus (%s, from its "
        "run_config.json) in its path relative to the folder given: %d speaker(s) in %d file(s). Pass speakers_csv or "
        "speaker_from (--speakers or --speaker-from) to group them otherwise.",
        described,
        len({speaker for speaker in speakers.values() if speaker is not None}),
        len(files) - len(unmatched),
    )
    return speakers


def _speaker_group(match: Optional[re.Match], pattern: re.Pattern) -> Optional[str]:
    """The ``speaker`` group of `match` (else its first group), as a folder corpus reads it; `None` without a match."""
    if match is None:
        return None
    return match.group("speaker") if "speaker" in pattern.groupindex else match.group(1)


def normalises_per_speaker(feature_extractor) -> bool:
    """Whether a model's feature extractor standardises each clip with its speaker's statistics."""
    return getattr(feature_extractor, "normalization", None) == "speaker"


def normalises_per_corpus(feature_extractor) -> bool:
    """Whether a model's feature extractor standardises each clip with its corpus' statistics: the recordings
    classified together are then standardised as one corpus, with statistics of them all."""
    return getattr(feature_extractor, "normalization", None) == "corpus"


#: The one group of statistics of a model standardised per corpus: all the recordings classified together.
RECORDINGS_GROUP = "the recordings classified together"


def statistics_group(path: str, speakers: Optional[Mapping[str, str]], feature_extractor) -> Optional[str]:
    """Whose statistics standardise a file's windows: the recordings' (corpus normalisation), or its speaker's."""
    if normalises_per_corpus(feature_extractor):
        return RECORDINGS_GROUP
    return speakers[path] if speakers is not None else None


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
    min_statistics_rows: int = MIN_STATISTICS_ROWS,
) -> dict[str, Statistics]:
    """Each speaker's ``(mean, std)`` over the features, before normalisation, of the windows of their recordings that
    :func:`classify_files` classifies (their frames, one vector of openSMILE functionals per window, or the pooled
    encoder states `model` computes of each window for a Whisper classifier). Reads no
    label. Files that cannot be classified are left out (their result carries the error). Warns, naming the speaker,
    when the statistics come from fewer than ``MIN_SPEAKER_WINDOWS`` windows or ``MIN_SPEAKER_SECONDS`` of audio; a
    speaker (or the recordings, per corpus) with fewer than ``min_statistics_rows`` feature vectors
    (:data:`MIN_STATISTICS_ROWS` by default) gets no statistics (their windows are standardised with the training
    statistics the model stores), with one warning naming them."""
    from tqdm.auto import tqdm

    sampling_rate = feature_extractor.sampling_rate
    windows: Counter = Counter()
    seconds: Counter = Counter()

    def feature_rows() -> Iterator[tuple[str, np.ndarray]]:
        for path in tqdm(files, desc="Speaker statistics", unit="file", disable=not progress):
            speaker = speakers[path]
            if speaker is None:  # no speaker known: the training statistics standardise it
                continue
            waveform, _ = read_clip(path, sampling_rate, min_samples)
            if waveform is None:
                continue
            bounds = model_windows(feature_extractor, waveform, window_seconds, hop_seconds, max_whole_file_seconds)
            windows[speaker] += len(bounds)
            seconds[speaker] += len(waveform) / sampling_rate
            for first in range(0, len(bounds), STATISTICS_BATCH_WINDOWS):
                clips = [waveform[start:end] for start, end in bounds[first : first + STATISTICS_BATCH_WINDOWS]]
                for rows in clip_feature_rows(feature_extractor, clips, model):
                    yield speaker, rows

    return statistics_of_groups(feature_extractor, feature_rows(), windows, seconds, min_statistics_rows)


def statistics_of_groups(
    feature_extractor,
    feature_rows: Iterable[tuple[str, np.ndarray]],
    windows: Counter,
    seconds: Counter,
    min_statistics_rows: int = MIN_STATISTICS_ROWS,
) -> dict[str, Statistics]:
    """Each group's ``(mean, std)`` over ``(group, feature rows)`` pairs, with the warnings of
    :func:`speaker_statistics_of_files` (``windows`` and ``seconds``: each group's, complete once ``feature_rows`` is
    consumed): a group of fewer than ``min_statistics_rows`` vectors gets none; a group of few windows or seconds is
    named."""
    statistics = statistics_by_speaker(feature_rows)
    per_corpus = normalises_per_corpus(feature_extractor)
    too_few = {speaker: value.count for speaker, value in statistics.items() if value.count < min_statistics_rows}
    if too_few:
        if per_corpus:
            whose = f"The recordings classified together give {too_few[RECORDINGS_GROUP]} feature vector(s)"
        else:
            named = [f"{speaker} ({count})" for speaker, count in sorted(too_few.items())]
            whose = f"Speaker(s) {', '.join(named[:10])}{f' and {len(named) - 10} more' if len(named) > 10 else ''}"
            whose += " have statistics of that many feature vectors"
        logger.warning(
            "%s, fewer than %d: standardised by so few, the features sit further from what the model learnt than "
            "with the training statistics stored in the model, which standardise them instead. Classify %d "
            "recordings or more of one %s together for statistics of their own.",
            whose,
            min_statistics_rows,
            min_statistics_rows,
            "set-up" if per_corpus else "speaker",
        )
        for speaker in too_few:
            del statistics[speaker]
        feature_extractor._fallback_said = True  # said here, naming the recordings
    for speaker in sorted(statistics):
        if windows[speaker] < MIN_SPEAKER_WINDOWS or seconds[speaker] < MIN_SPEAKER_SECONDS:
            logger.warning(
                "%s statistics from %d windows, %.1f s of audio, fewer than %d windows or %.0f s: their "
                "standardisation is unreliable, and so are their predictions.",
                "The recordings classified together give" if per_corpus else f"Speaker {speaker}:",
                windows[speaker],
                seconds[speaker],
                MIN_SPEAKER_WINDOWS,
                MIN_SPEAKER_SECONDS,
            )
    if not per_corpus:
        logger.info(
            "Speaker normalisation of %d speaker(s): %s. The results are transductive: each depends on the "
            "speaker's other recordings classified here.",
            len(statistics),
            TRANSDUCTIVE_PROTOCOL,
        )
    return {speaker: running.statistics(feature_extractor.variance_floor) for speaker, running in statistics.items()}


__all__ = [
    "MIN_SPEAKER_SECONDS",
    "MIN_SPEAKER_WINDOWS",
    "MIN_STATISTICS_ROWS",
    "RECORDINGS_GROUP",
    "SPEAKERS_CSV_COLUMNS",
    "normalises_per_corpus",
    "normalises_per_speaker",
    "read_speakers_csv",
    "speaker_statistics_of_files",
    "speakers_from_folders",
    "speakers_from_training_regex",
    "speakers_of",
    "statistics_group",
    "statistics_of_groups",
    "training_speaker_regexes",
]
