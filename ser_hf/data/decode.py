"""Decode and resample every clip once, and keep the result in an Arrow cache file.

Training reads the ``waveform`` column of the prepared dataset (memory-mapped) instead of decoding files again each
epoch. libsndfile (WAV, FLAC, OGG, MP3) plus soxr's high-quality resampler does the work; containers libsndfile cannot
read go through torchcodec (FFmpeg). The cache holds only ``path -> waveform``; its key covers every file's path,
size and modification time, the target sampling rate, the storage precision and the decoder version, so an edited
file or another rate is decoded again and nothing else is. Labels and metadata never come from the cache.

The waveforms are stored as float32, or as float16 (``precision="float16"``, the recipe's ``cache_precision``) at half
the size: float16 keeps 11 significant bits of every sample, a relative error below 0.05 %, about 66 dB under each
sample, which changed no prediction of the models docs/results/LOG.md ("Scale") trained both ways. Readers cast rows
back to float32 (the collators do).
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import pyarrow.compute as pc
import soundfile
import soxr
from datasets import Dataset, Features, List, Value, concatenate_datasets
from datasets import config as datasets_config
from datasets.fingerprint import Hasher

from . import ffmpeg
from .constants import CACHE_PRECISIONS
from .corpora.base import InvalidClipError, decoder_problem
from .dataset_info import column_values, get_ser_info, set_ser_info
from .errors import InvalidClipsError, RecordingTooLongError

logger = logging.getLogger(__name__)

#: Bump when decoding changes, so caches written by older code are not reused.
DECODER_VERSION = 1
WAVEFORM_COLUMN = "waveform"
#: libsndfile's diagnosis of a WAV/AIFF whose data chunk is shorter than its header says (a cut-off copy).
TRUNCATED_DATA_CHUNK = re.compile(r"^(?:data|SSND)\s*:\s*(?P<declared>\d+)\s*\(should be (?P<present>\d+)\)", re.M)


def decode_waveform(path: str, sampling_rate: int, max_seconds: Optional[float] = None) -> np.ndarray:
    """Decode one file to a mono float32 waveform at ``sampling_rate``; errors name the file and the problem. With
    ``max_seconds``, no more than that (and a little) is ever decoded, whatever the file's header says (a browser's
    WebM declares no duration): a longer recording raises :class:`RecordingTooLongError` saying so."""
    try:
        with soundfile.SoundFile(path) as audio_file:
            truncated = TRUNCATED_DATA_CHUNK.search(audio_file.extra_info)
            native_rate = audio_file.samplerate
            limit = -1 if max_seconds is None else math.floor(max_seconds * native_rate) + 1
            samples = audio_file.read(frames=limit, dtype="float32", always_2d=True)
        if max_seconds is not None and len(samples) > max_seconds * native_rate:
            raise RecordingTooLongError(path, _longer_than(max_seconds))
        if truncated:
            raise InvalidClipError(
                path,
                f"the file is truncated: its header declares {truncated['declared']} bytes "
                f"of audio but only {truncated['present']} are there",
            )
        waveform = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
        if native_rate != sampling_rate:
            waveform = soxr.resample(waveform, native_rate, sampling_rate, quality="HQ")
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        waveform = _decode_with_ffmpeg(path, sampling_rate, max_seconds)
    if waveform.size == 0:
        raise InvalidClipError(path, "the audio stream has no samples (zero-length audio)")
    if not np.isfinite(waveform).all():
        raise InvalidClipError(path, "the audio contains NaN or infinite sample values")
    if not waveform.any():
        raise InvalidClipError(path, "the audio is digital silence (every sample is zero)")
    return np.ascontiguousarray(waveform, dtype=np.float32)


def _longer_than(max_seconds: float) -> str:
    return f"the recording is longer than {max_seconds:g} s (decoding stopped there)"


def _decode_with_ffmpeg(path: str, sampling_rate: int, max_seconds: Optional[float] = None) -> np.ndarray:
    if ffmpeg.ffmpeg_missing():  # named with the clip, not torchcodec's traceback over every FFmpeg version it tried
        problem = ffmpeg.missing_ffmpeg_message("decoding it")
        raise InvalidClipError(path, f"libsndfile does not read it, and {problem}")
    from torchcodec.decoders import AudioDecoder

    try:
        decoder = AudioDecoder(path, sample_rate=sampling_rate, num_channels=1)
        if max_seconds is None:
            samples = decoder.get_all_samples()
        else:  # a little past the limit, to tell a recording of exactly that length from a longer one
            samples = decoder.get_samples_played_in_range(0.0, max_seconds + 0.5)
    except Exception as error:  # torchcodec raises RuntimeError/ValueError depending on what FFmpeg says
        raise InvalidClipError(path, f"cannot be decoded as audio ({decoder_problem(error)})") from error
    waveform = samples.data[0].numpy()
    if max_seconds is not None and len(waveform) > max_seconds * sampling_rate:
        raise RecordingTooLongError(path, _longer_than(max_seconds))
    return waveform


def _decode_batch(batch: dict, sampling_rate: int, precision: str = "float32") -> dict:
    # Errors are recorded, never raised, in the workers: whether a bad clip stops the run or is skipped is decided
    # afterwards in the main process, so a cache written with skip_invalid=True still stops a run without it.
    waveforms, errors = [], []
    for path in batch["path"]:
        try:
            waveforms.append(stored_waveform(path, decode_waveform(path, sampling_rate), precision))
            errors.append(None)
        except InvalidClipError as error:
            waveforms.append(np.zeros(0, dtype=precision))
            errors.append(error.problem)
    return {WAVEFORM_COLUMN: waveforms, "decode_error": errors}


def stored_waveform(path: str, waveform: np.ndarray, precision: str) -> np.ndarray:
    """``waveform`` in the cache's storage type; a float16 overflow (samples beyond +-65504) names the file."""
    try:
        return cast_to_precision(waveform, precision)
    except ValueError as error:
        raise InvalidClipError(path, str(error)) from None


def cast_to_precision(values: np.ndarray, precision: str) -> np.ndarray:
    """``values`` (float32) in a cache's storage type; a `ValueError` where float16 would turn them infinite."""
    if precision == "float32" or values.dtype == np.dtype(precision):
        return values
    stored = values.astype(precision)
    if not np.isfinite(stored).all():
        raise ValueError(
            f"values reach {np.abs(values).max():g}, beyond {precision}'s range: store them as float32 "
            "(cache_precision: float32)"
        )
    return stored


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`~ser_hf.data.constants.CACHE_PRECISIONS`, else a `ValueError`."""
    if precision not in CACHE_PRECISIONS:
        raise ValueError(f"Cache precision {precision!r} is not one of {', '.join(CACHE_PRECISIONS)}.")
    return precision


def waveform_cache_key(paths: list[str], sampling_rate: int, precision: str = "float32") -> str:
    """A hash of what the decoded audio depends on: each file's path, size and mtime, the rate, the storage precision,
    the decoder."""
    stats = []
    for path in paths:
        stat = os.stat(path)
        stats.append((path, stat.st_size, stat.st_mtime_ns))
    # float32 caches keep the key they had before the precision was an option; any other precision hashes its name.
    return Hasher.hash((stats, sampling_rate, DECODER_VERSION) + (() if precision == "float32" else (precision,)))


class ShortestClip(NamedTuple):
    """The shortest clip a recipe's model can use, for :func:`prepare_audio`'s check of every clip."""

    #: Its length in seconds.
    seconds: float
    #: What sets it, with ``{ms}`` for the length: "the model's receptive field ({ms} ms)", "one openSMILE frame ...".
    what: str

    def problem(self, duration: float) -> str:
        """How a clip of ``duration`` seconds is named as too short."""
        return f"{duration * 1000:.1f} ms, shorter than {self.what.format(ms=f'{self.seconds * 1000:.1f}')}"


def prepare_audio(
    dataset: Dataset,
    *,
    num_proc: Optional[int] = None,
    cache_dir: Optional[str | os.PathLike] = None,
    skip_invalid: bool = False,
    load_from_cache: bool = True,
    precision: str = "float32",
    shortest_clip: Optional[ShortestClip] = None,
) -> Dataset:
    """Add a ``waveform`` column (mono, at the ``audio`` column's sampling rate), decoded once and cached.

    Every clip is checked once, here, before any slow work: one that does not decode, is empty, holds NaN or infinite
    samples or digital silence, or (with ``shortest_clip``) is too short for the model. One error names every such
    clip of every kind (:class:`~ser_hf.data.errors.InvalidClipsError`, with the remedy), so that a folder is fixed in
    one go; with ``skip_invalid`` they are all left out with one warning that lists them.

    Args:
        dataset (`Dataset`): a corpus from :func:`ser_hf.load_corpus` (it needs the ``path`` column).
        num_proc (`int`, *optional*): decoding processes; defaults to one per CPU core (at most 8).
        cache_dir (`str`, *optional*): where the Arrow cache lives; defaults to ``$HF_DATASETS_CACHE/ser_hf``.
        skip_invalid (`bool`, *optional*, defaults to `False`): drop the unusable clips (listed in one warning and in
            the ser-hf record under ``skipped``) instead of stopping with an error that names them all.
        load_from_cache (`bool`, *optional*, defaults to `True`): reuse a cache written for the same files and rate.
        precision (`str`, *optional*, defaults to `"float32"`): how the waveforms are stored, `"float32"` or
            `"float16"` (half the size; see the module docstring).
        shortest_clip (`ShortestClip`, *optional*): the shortest clip the recipe's model can use (its receptive
            field, one openSMILE frame); clips shorter (by their ``duration`` column, else their decoded length) are
            unusable too. `None`: no bound.
    """
    check_precision(precision)
    if WAVEFORM_COLUMN in dataset.column_names:
        return dataset
    sampling_rate = dataset.features["audio"].sampling_rate
    if sampling_rate is None:
        raise ValueError("The dataset's audio column has no sampling_rate; load the corpus with sampling_rate=...")
    cache_dir = Path(cache_dir or Path(datasets_config.HF_DATASETS_CACHE) / "ser_hf")
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = column_values(dataset, "path")
    # The cache holds only path -> waveform; labels and metadata stay with the dataset, so a new label policy or
    # merge never reads stale columns back from it.
    cache_file = cache_dir / f"waveforms-{waveform_cache_key(paths, sampling_rate, precision)}.arrow"
    if num_proc is None:
        num_proc = min(os.cpu_count() or 1, 8)
    # One process per 16 clips at least: starting a worker costs more than decoding a handful of files.
    num_proc = max(1, min(num_proc, len(dataset) // 16))
    decoded = Dataset.from_dict({"path": paths}).map(
        _decode_batch,
        batched=True,
        batch_size=16,
        writer_batch_size=64,  # rows of audio are large; keep the writer's buffer small
        num_proc=num_proc if num_proc > 1 else None,
        fn_kwargs={"sampling_rate": sampling_rate, "precision": precision},
        features=Features(
            {"path": Value("string"), WAVEFORM_COLUMN: List(Value(precision)), "decode_error": Value("string")}
        ),
        cache_file_name=str(cache_file),
        load_from_cache_file=load_from_cache,
        desc=f"Decoding to {sampling_rate} Hz mono",
    )
    problems = _unusable_clips(dataset, decoded, sampling_rate, shortest_clip)
    corpora = (
        ", ".join(sorted(set(map(str, column_values(dataset, "corpus")))))
        if "corpus" in dataset.column_names
        else "corpus"
    )
    unusable = [InvalidClipError(paths[row], problem) for row, problem in problems.items()]
    if unusable and not skip_invalid:
        # Every unusable clip, of every kind, named at once: fixed in one go, not one rerun per clip or per kind.
        raise InvalidClipsError(corpora, unusable)
    if dataset._indices is not None:
        dataset = dataset.flatten_indices()
    prepared = concatenate_datasets([dataset, decoded.select_columns([WAVEFORM_COLUMN])], axis=1)
    if unusable:
        logger.warning("Skipping %s", InvalidClipsError.listing(corpora, unusable))
        prepared = prepared.select([row for row in range(len(prepared)) if row not in problems])
    skipped = get_ser_info(dataset).get("skipped", []) + [{"path": e.path, "problem": e.problem} for e in unusable]
    return set_ser_info(prepared, skipped=skipped, prepared_cache=str(cache_file), waveform_precision=precision)


def _unusable_clips(
    dataset: Dataset, decoded: Dataset, sampling_rate: int, shortest_clip: Optional[ShortestClip]
) -> dict[int, str]:
    """Row -> problem of each clip that did not decode, or (with ``shortest_clip``) is too short for the model, in the
    dataset's order."""
    problems = {row: error for row, error in enumerate(column_values(decoded, "decode_error")) if error}
    if shortest_clip is None:
        return problems
    if "duration" in dataset.column_names:  # the header's, as the later checks of the splits read it
        durations = column_values(dataset, "duration")
    else:
        lengths = pc.list_value_length(decoded.data.column(WAVEFORM_COLUMN)).to_pylist()
        durations = [length / sampling_rate for length in lengths]
    for row, duration in enumerate(durations):
        if row not in problems and duration is not None and duration < shortest_clip.seconds:
            problems[row] = shortest_clip.problem(duration)
    return dict(sorted(problems.items()))
