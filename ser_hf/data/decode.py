"""Decode and resample every clip once, and keep the result in Arrow cache files, once per clip.

Training reads the ``waveform`` column of the prepared dataset (memory-mapped) instead of decoding files again each
epoch. libsndfile (WAV, FLAC, OGG, MP3) plus soxr's high-quality resampler does the work; containers libsndfile cannot
read go through torchcodec (FFmpeg). The cache holds only ``path -> waveform``, clip by clip: each cache file
(``waveforms-<key>.arrow``) has an index beside it (:mod:`.clip_index`) of each row's clip key, a hash of the file's
path, size and modification time, the target sampling rate, the storage type and the decoder version, so an edited
file or another rate is decoded again and nothing else is. A dataset whose clips the cache files hold (a merged set of
corpora prepared before, a fold, an adaptation pool) is assembled from them by row selection (memory-mapped slices, no
copy) and writes nothing; only the clips no file holds are decoded, into a new file of their own. Labels and metadata
never come from the cache.

The waveforms are stored as 16-bit integer PCM by default (``precision="int16"``: each sample times 32768, rounded and
clipped to 16 bits, an error of at most half a step, 1/65536, as a 16-bit WAV file keeps it; the audio of a 16-bit file
read at its own rate is kept exactly, since libsndfile reads its samples as the integer / 32768), as float16
(``precision="float16"``, the recipe's ``cache_precision``: 11 significant bits of every sample, a relative error below
0.05 %, which changed no prediction of the models docs/results/LOG.md ("Scale") trained both ways), or as float32.
16-bit PCM is a column of the feature type :class:`Pcm16Waveform`, registered with ``datasets`` when this module is
imported, which every reader (rows, NumPy batches, ``map``) gets back as float32 in [-1, 1]; the float columns are cast
back to float32 by their readers (the collators do).
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import soundfile
import soxr
from datasets import Dataset, Features, List, Value, concatenate_datasets
from datasets.features.features import register_feature
from datasets.fingerprint import Hasher
from filelock import FileLock

from . import ffmpeg
from .cache_dir import ser_hf_cache_dir
from .clip_index import find_cached_clips, rows_in_place, select_clips, write_clip_index
from .constants import CACHE_PRECISIONS, WAVEFORM_PRECISIONS
from .corpora.base import InvalidClipError, decoder_problem
from .dataset_info import column_values, get_ser_info, set_ser_info
from .errors import InvalidClipsError, RecordingTooLongError

logger = logging.getLogger(__name__)

#: Bump when decoding changes, so caches written by older code are not reused.
DECODER_VERSION = 2  # 2: 16-bit PCM at full scale 32768 (was 32767)
WAVEFORM_COLUMN = "waveform"
#: The name of every decoded-audio cache file begins with it (``waveforms-<key>.arrow``).
WAVEFORM_CACHE_PREFIX = "waveforms"
#: Full scale of 16-bit PCM, as libsndfile and FFmpeg read it (a sample is its integer / 32768): a 16-bit file decoded
#: at its own rate is stored, and read back, exactly; 1.0 and beyond are stored as the largest sample, 32767.
PCM16_SCALE = 32768
PCM16_RANGE = (-32768, 32767)
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
    """``waveform`` in the cache's storage type (16-bit PCM, float16 or float32); a float16 overflow (samples beyond
    +-65504) names the file."""
    if precision == "int16":
        return pcm16_samples(waveform)
    try:
        return cast_to_precision(waveform, precision)
    except ValueError as error:
        raise InvalidClipError(path, str(error)) from None


def pcm16_samples(waveform: np.ndarray) -> np.ndarray:
    """``waveform`` (float, full scale 1.0) as 16-bit PCM: times 32768, rounded, clipped to [-32768, 32767]."""
    return np.clip(np.rint(np.asarray(waveform, np.float32) * PCM16_SCALE), *PCM16_RANGE).astype(np.int16)


@dataclass
class Pcm16Waveform:
    """A ``datasets`` feature: a waveform stored as 16-bit integer PCM (an Arrow ``list<int16>``, half float32's
    bytes) and read back as float32 in [-1, 1] (``decode=False``: the stored integers). Float values written to it
    (``map`` returning a float waveform, ``Dataset.from_dict``) are scaled and clipped as :func:`pcm16_samples` does;
    integer values are taken as PCM already."""

    decode: bool = True
    id: Optional[str] = field(default=None, repr=False)
    dtype: ClassVar[str] = "float32"
    pa_type: ClassVar[Any] = pa.list_(pa.int16())
    _type: str = field(default="SerHfPcm16Waveform", init=False, repr=False)

    def __call__(self):
        return self.pa_type

    def encode_example(self, value: Any) -> np.ndarray:
        samples = np.asarray(value)
        return samples.astype(np.int16) if np.issubdtype(samples.dtype, np.integer) else pcm16_samples(samples)

    def decode_example(self, value: Any, token_per_repo_id: Optional[dict] = None) -> np.ndarray:
        return np.asarray(value, dtype=np.float32) / np.float32(PCM16_SCALE)

    def cast_storage(self, storage: pa.Array) -> pa.Array:
        """Any Arrow list of numbers as ``list<int16>``: floats scaled to 16-bit PCM, integers kept; a column of
        nulls only (a batch of clips that could not be read) as nulls."""
        if pa.types.is_null(storage.type):
            return pa.nulls(len(storage), self.pa_type)
        if pa.types.is_floating(storage.type.value_type):
            values = pc.multiply(storage.flatten().cast(pa.float32()), pa.scalar(PCM16_SCALE, pa.float32()))
            low, high = PCM16_RANGE
            values = pc.min_element_wise(pc.max_element_wise(pc.round(values), low), high)
            offsets = storage.offsets if storage.offset == 0 else pc.subtract(storage.offsets, storage.offsets[0])
            storage = pa.ListArray.from_arrays(offsets, values.cast(pa.int16()), mask=storage.is_null())
        return storage.cast(self.pa_type)


# A cache file's schema names its feature type: datasets reads the files back through this registration. datasets
# warns, on every registration, that registering is experimental: that warning alone is silenced, here only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*register_feature.*experimental", category=UserWarning)
    register_feature(Pcm16Waveform, "SerHfPcm16Waveform")


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


def check_precision(precision: str, precisions: tuple[str, ...] = CACHE_PRECISIONS) -> str:
    """``precision`` if it is one of `precisions` (:data:`~ser_hf.data.constants.CACHE_PRECISIONS`, or
    :data:`~ser_hf.data.constants.WAVEFORM_PRECISIONS` for the decoded audio), else a `ValueError`."""
    if precision not in precisions:
        raise ValueError(f"Cache precision {precision!r} is not one of {', '.join(precisions)}.")
    return precision


def waveform_precision(cache_precision: str) -> str:
    """How the decoded audio of a recipe with ``cache_precision`` is stored: float16 where it asks for float16, else
    16-bit PCM (float32 would double the disk for nothing a 16-bit recording holds)."""
    return "float16" if check_precision(cache_precision) == "float16" else "int16"


def clip_cache_keys(paths: list[str], sampling_rate: int, precision: str) -> list[str]:
    """Each clip's key in the decoded-audio cache: a hash of what its decoded audio depends on, its file's resolved
    path (a link is the file it leads to: the folders of links an experiment makes per cell decode nothing again),
    size and modification time, the rate, the storage type and the decoder."""
    keys = []
    for path in paths:
        stat = os.stat(path)
        resolved = os.path.realpath(path)
        keys.append(Hasher.hash((resolved, stat.st_size, stat.st_mtime_ns, sampling_rate, precision, DECODER_VERSION)))
    return keys


def waveform_index_key(sampling_rate: int, precision: str) -> str:
    """The key the decoded-audio cache files of one rate and storage type are indexed under (:mod:`.clip_index`)."""
    return f"{precision}-{sampling_rate}hz-v{DECODER_VERSION}"


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
    precision: str = "int16",
    shortest_clip: Optional[ShortestClip] = None,
) -> Dataset:
    """Add a ``waveform`` column (mono, at the ``audio`` column's sampling rate), decoded once per clip and cached.

    Every clip is checked once, here, before any slow work: one that does not decode, is empty, holds NaN or infinite
    samples or digital silence, or (with ``shortest_clip``) is too short for the model. One error names every such
    clip of every kind (:class:`~ser_hf.data.errors.InvalidClipsError`, with the remedy), so that a folder is fixed in
    one go; with ``skip_invalid`` they are all left out with one warning that lists them.

    A clip some cache file in ``cache_dir`` holds (decoded for any dataset, at the same rate and storage type, from
    the same file unchanged) is read from it, not decoded nor written again; the others are decoded into a new cache
    file. The ser-hf record's ``prepared_cache`` lists the cache files the waveforms are read from.

    Args:
        dataset (`Dataset`): a corpus from :func:`ser_hf.load_corpus` (it needs the ``path`` column).
        num_proc (`int`, *optional*): decoding processes; defaults to one per CPU core (at most 8).
        cache_dir (`str`, *optional*): where the Arrow cache lives; defaults to ``$HF_DATASETS_CACHE/ser_hf``.
        skip_invalid (`bool`, *optional*, defaults to `False`): drop the unusable clips (listed in one warning and in
            the ser-hf record under ``skipped``) instead of stopping with an error that names them all.
        load_from_cache (`bool`, *optional*, defaults to `True`): reuse the clips the cache holds (`False`: decode
            every clip again).
        precision (`str`, *optional*, defaults to `"int16"`): how the waveforms are stored, `"int16"` (16-bit PCM),
            `"float16"` or `"float32"` (see the module docstring); the column reads as float32 in [-1, 1] for
            `"int16"`, in its storage type otherwise.
        shortest_clip (`ShortestClip`, *optional*): the shortest clip the recipe's model can use (its receptive
            field, one openSMILE frame); clips shorter (by their ``duration`` column, else their decoded length) are
            unusable too. `None`: no bound.
    """
    check_precision(precision, WAVEFORM_PRECISIONS)
    if WAVEFORM_COLUMN in dataset.column_names:
        return dataset
    sampling_rate = dataset.features["audio"].sampling_rate
    if sampling_rate is None:
        raise ValueError("The dataset's audio column has no sampling_rate; load the corpus with sampling_rate=...")
    cache_dir = Path(cache_dir or ser_hf_cache_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = column_values(dataset, "path")
    # The cache holds only path -> waveform; labels and metadata stay with the dataset, so a new label policy or
    # merge never reads stale columns back from it.
    keys = clip_cache_keys(paths, sampling_rate, precision)
    index_key = waveform_index_key(sampling_rate, precision)
    locations = _cached_waveforms(cache_dir, index_key, keys) if load_from_cache else [None] * len(keys)
    if None in locations:
        # One run decodes into the folder at a time: a run that waited takes what the other one decoded.
        with FileLock(str(cache_dir / f"{WAVEFORM_CACHE_PREFIX}.{index_key}.lock")):
            if load_from_cache:
                locations = _cached_waveforms(cache_dir, index_key, keys)
            missing = {key: path for key, path, location in zip(keys, paths, locations) if location is None}
            if missing:
                decoded_at = _decode_into_cache(
                    missing, cache_dir, index_key, sampling_rate, precision, num_proc, load_from_cache
                )
                locations = [location or decoded_at[key] for key, location in zip(keys, locations)]
    for cache_file in dict.fromkeys(path for path, _ in locations):
        try:
            os.utime(cache_file)  # its last use, which `ser-hf cache delete --older-than` reads
        except OSError:  # a cache folder shared read-only
            pass
    decoded = select_clips(locations) if locations else _empty_waveforms(precision)
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
    dataset = rows_in_place(dataset)  # concatenate_datasets needs rows without an indices mapping: no copy written
    prepared = concatenate_datasets([dataset, decoded.select_columns([WAVEFORM_COLUMN])], axis=1)
    if unusable:
        logger.warning("Skipping %s", InvalidClipsError.listing(corpora, unusable))
        prepared = prepared.select([row for row in range(len(prepared)) if row not in problems])
    skipped = get_ser_info(dataset).get("skipped", []) + [{"path": e.path, "problem": e.problem} for e in unusable]
    cache_files = [str(path) for path in dict.fromkeys(path for path, _ in locations)]
    return set_ser_info(prepared, skipped=skipped, prepared_cache=cache_files, waveform_precision=precision)


def _waveform_features(precision: str) -> Features:
    """The columns of a decoded-audio cache file."""
    waveform = Pcm16Waveform() if precision == "int16" else List(Value(precision))
    return Features({"path": Value("string"), WAVEFORM_COLUMN: waveform, "decode_error": Value("string")})


def _empty_waveforms(precision: str) -> Dataset:
    return Dataset.from_dict(
        {"path": [], WAVEFORM_COLUMN: [], "decode_error": []}, features=_waveform_features(precision)
    )


def _cached_waveforms(cache_dir: Path, index_key: str, keys: list[str]) -> list[Optional[tuple[Path, int]]]:
    """Where a decoded-audio cache file of `cache_dir` holds each clip of `keys` (`None`: in none)."""
    return find_cached_clips(cache_dir, index_key, keys, prefix=WAVEFORM_CACHE_PREFIX)


def _decode_into_cache(
    missing: dict[str, str],
    cache_dir: Path,
    index_key: str,
    sampling_rate: int,
    precision: str,
    num_proc: Optional[int],
    load_from_cache: bool,
) -> dict[str, tuple[Path, int]]:
    """Decode the files of `missing` (clip key -> path) into a new cache file (one per process), indexed; where each
    clip's row is."""
    keys, paths = list(missing), list(missing.values())
    if num_proc is None:
        num_proc = min(os.cpu_count() or 1, 8)
    # One process per 16 clips at least: starting a worker costs more than decoding a handful of files.
    num_proc = max(1, min(num_proc, len(paths) // 16))
    cache_file = cache_dir / f"{WAVEFORM_CACHE_PREFIX}-{Hasher.hash(keys)}.arrow"
    decoded = Dataset.from_dict({"path": paths}).map(
        _decode_batch,
        batched=True,
        batch_size=16,
        writer_batch_size=64,  # rows of audio are large; keep the writer's buffer small
        num_proc=num_proc if num_proc > 1 else None,
        fn_kwargs={"sampling_rate": sampling_rate, "precision": precision},
        features=_waveform_features(precision),
        cache_file_name=str(cache_file),
        load_from_cache_file=load_from_cache,
        desc=f"Decoding {len(paths)} clips to {sampling_rate} Hz mono",
    )
    located = {}
    for file in dict.fromkeys(Path(cache["filename"]) for cache in decoded.cache_files):  # one per process, in order
        rows = keys[len(located) : len(located) + Dataset.from_file(str(file)).num_rows]
        write_clip_index(file, index_key, rows)
        located.update({key: (file, row) for row, key in enumerate(rows)})
    return located


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
