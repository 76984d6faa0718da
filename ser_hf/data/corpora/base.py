"""The shared machinery behind every corpus loader: reading each file's header, the label policy and the
``Dataset`` it builds.

A corpus module only describes its corpus (a :class:`~ser_hf.data.corpora.spec.CorpusSpec`: code table, licence,
citation) and how one file name becomes a :class:`~ser_hf.data.corpora.spec.Clip`, both in
:mod:`ser_hf.data.corpora.spec`, which imports no ``datasets``; :func:`build_corpus` does the rest the same way for all
of them.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import soundfile
from datasets import Audio, ClassLabel, Dataset, DatasetInfo, Features, Value

from ...emotions import EMOTIONS, LabelPolicy
from ..dataset_info import column_values, get_ser_info, set_ser_info
from ..errors import CorpusError, InvalidClipError, InvalidClipsError
from .spec import Clip, ClipParser, CorpusSpec, parse_clip

logger = logging.getLogger(__name__)


#: Columns every ser-hf corpus has; corpus metadata may not reuse these names.
RESERVED_COLUMNS: tuple[str, ...] = (
    "audio",
    "label",
    "speaker_id",
    "corpus",
    "path",
    "emotion_code",
    "duration",
    "original_sampling_rate",
    "num_channels",
    "waveform",
)

#: Default sampling rate of the ``audio`` column (what SSL speech encoders expect).
DEFAULT_SAMPLING_RATE = 16000


def probe_audio(path: str | os.PathLike) -> dict[str, Any]:
    """Read an audio file's header: duration, native sampling rate and channels. Raises :class:`InvalidClipError`.

    libsndfile reads the header of WAV/FLAC/OGG/MP3 in microseconds; other containers go through torchcodec (FFmpeg).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise InvalidClipError(path, "the file does not exist (or is a broken link)")
    if os.path.getsize(path) == 0:
        raise InvalidClipError(path, "the file is empty (0 bytes)")
    try:
        info = soundfile.info(path)
        frames, sampling_rate, channels = info.frames, info.samplerate, info.channels
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        frames, sampling_rate, channels = _probe_with_ffmpeg(path)
    if not frames or frames <= 0:
        raise InvalidClipError(path, "the audio stream has no samples (zero-length audio)")
    return {
        "duration": frames / sampling_rate,
        "original_sampling_rate": int(sampling_rate),
        "num_channels": int(channels),
    }


#: torchcodec's wording of a file in which FFmpeg finds no audio stream (a text file named .flac, say), and what it
#: means to a user.
_NO_AUDIO_STREAM = ("The best audio stream is unknown", "FFmpeg finds no audio stream in it: not an audio file?")


def decoder_problem(error: Exception) -> str:
    """What FFmpeg said, through torchcodec, of a file it cannot decode: without the C++ function and source line
    torchcodec starts its messages with, and without its "This should never happen. Please report an issue" text,
    which would send a user to torchcodec's bug tracker for a file that is not audio."""
    said = re.sub(r"^\w+, \S+:\d+, ", "", str(error))
    said = said.split("This should never happen.")[0].strip().rstrip(".")
    if said.startswith(_NO_AUDIO_STREAM[0]):
        return _NO_AUDIO_STREAM[1]
    return said


def _probe_with_ffmpeg(path: str) -> tuple[int, int, int]:
    from torchcodec.decoders import AudioDecoder

    try:
        metadata = AudioDecoder(path).metadata
    except Exception as error:  # torchcodec raises RuntimeError/ValueError depending on what FFmpeg says
        raise InvalidClipError(path, f"cannot be decoded as audio ({decoder_problem(error)})") from error
    duration = metadata.duration_seconds_from_header or metadata.duration_seconds or 0.0
    return int(round(duration * metadata.sample_rate)), int(metadata.sample_rate), int(metadata.num_channels)


def build_corpus(
    spec: CorpusSpec,
    files: Iterable[str | os.PathLike],
    parse: ClipParser,
    *,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    label_map: Optional[Mapping[str, Optional[str]]] = None,
    labels: Optional[Sequence[str]] = None,
    skip_invalid: bool = False,
    check_audio: bool = True,
    join: Optional[Callable[[list[Clip]], None]] = None,
) -> Dataset:
    """Build the ``Dataset`` of a corpus from its files.

    Args:
        spec (`CorpusSpec`): the corpus description.
        files (`Iterable[PathLike]`): the audio files, in the order the rows should have.
        parse (`Callable[[Path], Clip]`): turns a path into a :class:`Clip`; raises :class:`InvalidClipError`.
        sampling_rate (`int`, *optional*, defaults to 16000): rate the ``audio`` column decodes to (always mono).
        label_map (`Mapping[str, Optional[str]]`, *optional*): merges/drops of labels (``{"calm": "neutral"}``,
            ``{"calm": None}``); defaults to the corpus' ``default_label_map``.
        labels (`Sequence[str]`, *optional*): the task's label set; clips with other labels are dropped.
        skip_invalid (`bool`, *optional*, defaults to `False`): skip bad clips (each is logged and listed in the
            dataset's ser-hf record) instead of stopping at the first one.
        check_audio (`bool`, *optional*, defaults to `True`): read every file's header (duration, channels) so that
            empty or undecodable files fail here, not in the middle of training.
        join (`Callable[[list[Clip]], None]`, *optional*): adds metadata from side tables to the parsed clips.
    """
    policy = _label_policy(spec, label_map, labels)
    clips, skipped, dropped = _read_clips(
        spec, files, parse, policy, skip_invalid=skip_invalid, check_audio=check_audio
    )
    if join is not None:
        join(clips)
    dataset = _clips_dataset(spec, clips, policy, sampling_rate, check_audio)
    if dropped:
        logger.info("%s: dropped by the label policy: %s", spec.full_name, dropped)
    if skipped:
        logger.warning(
            "%s: skipped %d invalid clip(s); the list is in get_ser_info(dataset)['skipped']",
            spec.full_name,
            len(skipped),
        )
    return set_ser_info(
        dataset,
        corpora=[spec.name],
        label_policy=policy.to_dict(),
        dropped_by_label_policy=dropped,
        skipped=skipped,
        sampling_rate=sampling_rate,
        text_column=spec.text_column,
    )


def _label_policy(
    spec: CorpusSpec, label_map: Optional[Mapping[str, Optional[str]]], labels: Optional[Sequence[str]]
) -> LabelPolicy:
    """The corpus's label policy: the user's `label_map` on top of the corpus default (EmoDB drops boredom unless the
    user maps it) and the task's `labels`; refused when a code it keeps falls outside ser-hf's vocabulary, before any
    file is read."""
    policy = LabelPolicy(
        label_map={**spec.default_label_map, **dict(label_map or {})},
        labels=list(labels) if labels is not None else None,
    )
    outside = sorted({policy.apply(name) for name in spec.emotion_codes.values()} - set(EMOTIONS) - {None})
    if outside:
        raise CorpusError(
            f"{spec.full_name} label(s) {outside} are not in ser-hf's vocabulary {list(EMOTIONS)}; "
            f"merge them into one of its labels or drop them with label_map={{{outside[0]!r}: None}}."
        )
    return policy


def _read_clips(
    spec: CorpusSpec,
    files: Iterable[str | os.PathLike],
    parse: ClipParser,
    policy: LabelPolicy,
    *,
    skip_invalid: bool,
    check_audio: bool,
) -> tuple[list[Clip], list[dict[str, str]], dict[str, int]]:
    """Each file parsed (and its header read, with `check_audio`) into a clip labelled by `policy`; also the clips
    skipped (`skip_invalid`) and how many of each code the policy dropped.

    Without `skip_invalid`, every unusable clip is named at once, after the others were read; a corpus left with no
    clip is an error either way.
    """
    clips: list[Clip] = []
    skipped: list[dict[str, str]] = []
    dropped: dict[str, int] = {}
    invalid: list[InvalidClipError] = []
    for path in files:
        path = Path(path)
        try:
            clip = parse_clip(spec, parse, path)
            if check_audio:
                clip.metadata.update(probe_audio(path))
        except InvalidClipError as error:
            if not skip_invalid:
                invalid.append(error)
                continue
            logger.warning("Skipping %s", error)
            skipped.append({"path": error.path, "problem": error.problem})
            continue
        original = spec.emotion_codes[clip.emotion_code]
        emotion = policy.apply(original)
        if emotion is None:
            dropped[original] = dropped.get(original, 0) + 1
            continue
        clip.metadata["label"] = emotion
        clips.append(clip)

    if len(invalid) == 1:
        raise invalid[0]
    if invalid:
        raise InvalidClipsError(spec.full_name, invalid, usable=len(clips))
    if not clips:
        raise CorpusError(
            f"No usable {spec.full_name} clips: every clip was skipped or dropped "
            f"(skipped {len(skipped)}, dropped by label policy {dropped})."
        )
    return clips, skipped, dropped


def _clips_dataset(
    spec: CorpusSpec, clips: list[Clip], policy: LabelPolicy, sampling_rate: int, check_audio: bool
) -> Dataset:
    """The `Dataset` of the corpus's clips: the columns every corpus has (:func:`corpus_features`), its metadata and
    its citation, homepage and licence."""
    class_label = policy.class_label(clip.metadata["label"] for clip in clips)
    features = corpus_features(class_label, spec.metadata, sampling_rate, with_probe=check_audio)
    columns: dict[str, list] = {name: [] for name in features}
    for clip in clips:
        row = {
            "audio": clip.path,
            "label": class_label.str2int(clip.metadata["label"]),
            "speaker_id": clip.speaker_id,
            "corpus": spec.name,
            "path": clip.path,
            "emotion_code": clip.emotion_code,
            **clip.metadata,
        }
        for name in columns:
            columns[name].append(row.get(name))
    # The paths go in as strings and are cast to Audio afterwards: building with the Audio feature would encode every
    # row through torchcodec, which needs FFmpeg's libraries even where ser-hf reads every file with libsndfile.
    plain = Features({**features, "audio": Value("string")})
    info = DatasetInfo(citation=spec.citation, homepage=spec.homepage, license=spec.license, features=plain)
    return Dataset.from_dict(columns, features=plain, info=info).cast_column("audio", features["audio"])


def decode_every_clip(dataset: Dataset, skip_invalid: bool = False) -> Dataset:
    """Decode every clip of a corpus whole with torchcodec, the decoder of its ``audio`` column: a file whose header
    reads but whose audio does not (cut short, corrupt) is named here, where ``dataset[i]["audio"]`` would raise
    torchcodec's error without the file's name, in the middle of whatever reads it.

    Raises :class:`InvalidClipError` naming the first bad clip; with ``skip_invalid``, bad clips are dropped instead,
    each logged and listed under ``skipped`` in the dataset's ser-hf record.
    """
    import torch
    from torchcodec.decoders import AudioDecoder
    from tqdm.auto import tqdm

    problems: dict[int, tuple[str, str]] = {}
    for row, path in enumerate(tqdm(column_values(dataset, "path"), desc="Decoding every clip", unit="clip")):
        try:
            samples = AudioDecoder(path).get_all_samples().data
        except Exception as error:  # torchcodec raises RuntimeError/ValueError depending on what FFmpeg says
            problem = f"cannot be decoded as audio past its header, cut short or corrupt ({decoder_problem(error)})"
        else:
            if samples.numel() == 0:
                problem = "the audio stream has no samples (zero-length audio)"
            elif not torch.isfinite(samples).all():
                problem = "the audio contains NaN or infinite sample values"
            else:
                continue
        if not skip_invalid:
            raise InvalidClipError(path, problem)
        logger.warning("Skipping %s: %s", path, problem)
        problems[row] = (path, problem)
    if not problems:
        return dataset
    if len(problems) == len(dataset):
        raise CorpusError(
            f"No usable clips: none of the {len(dataset)} clips decodes (first: "
            f"{': '.join(next(iter(problems.values())))})."
        )
    skipped = get_ser_info(dataset).get("skipped", []) + [
        {"path": path, "problem": problem} for path, problem in problems.values()
    ]
    kept = dataset.select([row for row in range(len(dataset)) if row not in problems])
    return set_ser_info(kept, skipped=skipped)


def corpus_features(
    class_label: ClassLabel, metadata: Mapping[str, str], sampling_rate: int, with_probe: bool = True
) -> Features:
    """The columns every ser-hf corpus has, then the corpus' own metadata."""
    features = {
        "audio": Audio(sampling_rate=sampling_rate, num_channels=1),
        "label": class_label,
        "speaker_id": Value("string"),
        "corpus": Value("string"),
        "path": Value("string"),
        "emotion_code": Value("string"),
    }
    if with_probe:
        features.update(duration=Value("float32"), original_sampling_rate=Value("int32"), num_channels=Value("int32"))
    features.update({name: Value(dtype) for name, dtype in metadata.items()})
    return Features(features)


__all__ = [
    "DEFAULT_SAMPLING_RATE",
    "RESERVED_COLUMNS",
    "build_corpus",
    "corpus_features",
    "decode_every_clip",
    "decoder_problem",
    "probe_audio",
]
