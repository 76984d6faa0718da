"""``ser_hf.adaptation.suggest(model, folder, sheet, ...)``: which of a user's unlabelled recordings to label first, so
that the few clips a person labels teach the adapted head most.

Every recording is encoded once with the model's frozen encoder, through the encoder-state cache FAST mode trains on
(:func:`~ser_hf.inputs.encoder_states.encode_dataset`, its clip-level index): ``ser-hf adapt`` on the labelled clips
then reads their states back and encodes none again. The model's head scores each clip from those states (as
evaluation does, with each speaker's or the folder's own statistics where the model standardises with them).

The choice (:func:`choose_clips`) combines coverage and uncertainty: for each of the model's emotions, the clips it
predicts as that emotion are shared out among the speakers in turn (so that every speaker's voice is heard), within
each speaker clustered by k-means over their standardised encoder states into as many groups as clips are wanted
(so that the clips cover what that speaker's recordings sound like), and from each group the clip the model is least
sure of (smallest margin between its two most probable emotions) is taken. An emotion the model predicts for too few
clips is filled with the clips it finds most probable for it. The sheet lists the clips in labelling order: one clip
of each emotion in turn, so that a person who stops early has some of every emotion.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..atomic_files import refuse_output_among, write_text_atomic
from .adapt import csv_text, folder_corpus_options, resolve_model_folder
from .errors import AdaptationError
from .sheet import SheetRow, read_sheet, write_sheet

logger = logging.getLogger(__name__)

#: Beside the sheet, when some recordings cannot be used: ``SHEET.unusable.csv`` (path, problem).
UNUSABLE_SUFFIX = ".unusable.csv"
#: The dimensions k-means clusters a speaker's standardised encoder states in (PCA over the folder's clips): enough
#: to tell recordings apart, few enough for a handful of clips per cluster to be meaningful.
CLUSTERING_DIMENSIONS = 16


@dataclass
class Suggestions:
    """What :func:`suggest` found and wrote.

    Attributes:
        sheet (`Path`): the labelling sheet written.
        rows (`list[SheetRow]`): its rows, in labelling order.
        labels (`list[str]`): the model's emotions.
        recordings (`int`): audio files found in the folder.
        unusable (`list[dict]`): ``{"path", "problem"}`` of each recording the model cannot read (undecodable,
            silent, shorter than its receptive field, no speaker), listed in `unusable_file` too.
        unusable_file (`Path`, *optional*): ``SHEET.unusable.csv``, where some recordings cannot be used.
    """

    sheet: Path
    rows: list[SheetRow]
    labels: list[str]
    recordings: int
    unusable: list[dict[str, str]] = field(default_factory=list)
    unusable_file: Optional[Path] = None


def suggest(
    model: str | os.PathLike,
    folder: str | os.PathLike,
    sheet: str | os.PathLike,
    *,
    per_emotion: int = 5,
    speaker_regex: Optional[str] = None,
    revision: Optional[str] = None,
    batch_size: int = 8,
    seed: int = 0,
) -> Suggestions:
    """Choose about `per_emotion` clips of each of `model`'s emotions among the recordings in `folder` for a person to
    label, and write them to the labelling sheet `sheet` (:mod:`.sheet`) in the order to label them.

    Args:
        model (`str`): a trained ser-hf model on a speech encoder (one ``ser-hf adapt`` takes): a folder or Hub id.
        folder (`str`): the unlabelled recordings, in any layout.
        sheet (`str`): the CSV written (outside `folder`); an existing sheet that holds answers is never overwritten.
        per_emotion (`int`, *optional*, defaults to 5): clips suggested per emotion of the model (fewer where the
            folder has fewer).
        speaker_regex (`str`): reads each recording's speaker from its path relative to `folder`, as ``ser-hf adapt``
            reads it (``'(?P<speaker>[^/]+)$'``: a speaker per file).
        revision (`str`, *optional*): the branch, tag or commit of a Hub model.
        batch_size (`int`, *optional*, defaults to 8): clips per forward pass of the encoder.
        seed (`int`, *optional*, defaults to 0): the seed of the clustering.
    """
    from ..data.corpora.spec import find_audio_files
    from .trained_model import trained_model_facts

    if per_emotion < 1:
        raise AdaptationError(f"per_emotion must be at least 1, got {per_emotion}.", parameter="per_emotion")
    options = folder_corpus_options(speaker_regex=speaker_regex)
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise AdaptationError(f"folder {folder}: no such folder of recordings.", parameter="folder")
    sheet = Path(sheet).expanduser()
    refuse_output_among(sheet, {"folder": folder}, parameter="sheet")
    if sheet.exists():
        answered = [row for row in read_sheet(sheet) if row.answered]
        if answered:
            raise AdaptationError(
                f"sheet {sheet} holds {len(answered)} answers already: ser-hf suggest never overwrites them; write "
                "the new sheet elsewhere, or delete this one.",
                parameter="sheet",
            )
    model_dir = resolve_model_folder(model, revision)
    labels = trained_model_facts(model_dir)["labels"]
    resolved_root = root.resolve()
    recordings = [str(path) for path in find_audio_files(root)]
    speakers, unusable = recording_speakers(recordings, root, options["speaker_regex"])
    usable = [recording for recording in recordings if recording in speakers]
    if not usable:
        raise AdaptationError(
            f"speaker_regex {options['speaker_regex']!r} finds no speaker in any file of {folder}.",
            parameter="speaker_regex",
        )
    scored, skipped = score_recordings(model_dir, usable, speakers, batch_size, corpus=resolved_root.name)
    unusable += skipped
    if not scored["paths"]:
        raise AdaptationError(f"{folder}: the model can read none of its {len(recordings)} recordings (see the log).")
    order = choose_clips(scored["probabilities"], scored["states"], scored["speakers"], per_emotion, seed=seed)
    rows = []
    for row in order:
        probabilities = scored["probabilities"][row]
        guess = int(np.argmax(probabilities))
        rows.append(
            SheetRow(
                path=Path(scored["paths"][row]).relative_to(resolved_root).as_posix(),
                speaker=scored["speakers"][row],
                model_guess=labels[guess],
                model_probability=float(probabilities[guess]),
            )
        )
    sheet.parent.mkdir(parents=True, exist_ok=True)
    write_sheet(sheet, rows)
    unusable_file = sheet.with_name(f"{sheet.stem}{UNUSABLE_SUFFIX}")
    if unusable:
        listing = [("path", "problem")]
        listing += [(Path(item["path"]).relative_to(resolved_root).as_posix(), item["problem"]) for item in unusable]
        write_text_atomic(unusable_file, csv_text(listing))
        logger.warning(
            "%d of %d recordings cannot be used (listed in %s), so none of them is suggested.",
            len(unusable),
            len(recordings),
            unusable_file,
        )
    elif unusable_file.exists():
        unusable_file.unlink()  # written by an earlier run of ser-hf suggest for this sheet
    logger.info("Suggested %d of %d recordings to label, in %s.", len(rows), len(recordings), sheet)
    return Suggestions(
        sheet=sheet,
        rows=rows,
        labels=labels,
        recordings=len(recordings),
        unusable=unusable,
        unusable_file=unusable_file if unusable else None,
    )


def recording_speakers(
    recordings: Sequence[str], root: Path, speaker_regex: str
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Each recording's speaker, read by `speaker_regex` from its path relative to `root` (as the folder corpus reads
    it), and the recordings in which it finds none (``{"path", "problem"}``)."""
    import re

    pattern = re.compile(speaker_regex)
    resolved = root.resolve()
    speakers, missed = {}, []
    for recording in recordings:
        searched = Path(recording).relative_to(resolved).as_posix()
        match = pattern.search(searched)
        speaker = None
        if match:
            speaker = match.group("speaker") if "speaker" in pattern.groupindex else match.group(match.lastindex or 0)
        if speaker:
            speakers[recording] = speaker
        else:
            missed.append({"path": recording, "problem": f"speaker_regex {speaker_regex!r} finds no speaker in it"})
    return speakers, missed


def score_recordings(
    model_dir: Path, recordings: Sequence[str], speakers: dict[str, str], batch_size: int = 8, corpus: str = "folder"
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Decode the `recordings` once (as a training run decodes them), encode them with the model's frozen encoder
    through FAST mode's cache (the states ``ser-hf adapt`` reads back), and score them with the model's head. Returns
    ``{"paths", "speakers", "states", "probabilities"}`` of the clips the model can read, and the others with their
    problem (undecodable, silent, shorter than the model's receptive field)."""
    from datasets import Audio, Dataset

    from ..data.dataset_info import column_values, get_ser_info
    from ..data.decode import ShortestClip, prepare_audio
    from ..evaluation.evaluate_model import cached_states_logits
    from ..inputs.base import minimum_clip_samples
    from ..inputs.fast_mode import encoder_states_once
    from ..models.runtime.loading import load_model
    from .fitting import unlabelled_normalization

    model, feature_extractor = load_model(model_dir, allow_onnx=False, purpose="ser-hf suggest")
    sampling_rate = feature_extractor.sampling_rate
    clips = Dataset.from_dict(
        {
            "audio": list(recordings),
            "path": list(recordings),
            "speaker_id": [speakers[recording] for recording in recordings],
            "corpus": [corpus or "folder"] * len(recordings),
        }
    ).cast_column("audio", Audio(sampling_rate=sampling_rate))
    samples, what = minimum_clip_samples(model.config, feature_extractor)
    shortest = ShortestClip(samples / sampling_rate, what) if samples > 1 else None
    # Decoded as a training run decodes (the same rate and precision): the clip index finds the same samples.
    prepared = prepare_audio(clips, skip_invalid=True, shortest_clip=shortest)
    skipped = [
        {"path": item["path"], "problem": item["problem"]} for item in get_ser_info(prepared).get("skipped", [])
    ]
    if not len(prepared):
        return {"paths": [], "speakers": [], "states": None, "probabilities": None}, skipped
    encoded = encoder_states_once(model, feature_extractor, prepared, batch_size)
    normalization = unlabelled_normalization(feature_extractor, encoded, model)
    logits = cached_states_logits(model, feature_extractor, encoded, normalization)
    logits = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    states = np.asarray(encoded.with_format("numpy")["encoder_states"], dtype=np.float32)
    scored = {
        "paths": column_values(prepared, "path"),
        "speakers": column_values(prepared, "speaker_id"),
        "states": states.reshape(len(states), -1),
        "probabilities": probabilities,
    }
    return scored, skipped


def choose_clips(
    probabilities: np.ndarray,
    states: np.ndarray,
    speakers: Sequence[str],
    per_emotion: int,
    *,
    seed: int = 0,
) -> list[int]:
    """The rows to label, in labelling order: about `per_emotion` per emotion (column of `probabilities`), spread
    over the `speakers` and over each speaker's `states` (k-means), the least certain clip of each cluster (see the
    module docstring). Every row at most once; fewer when there are fewer rows."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    rows, emotions = probabilities.shape
    features = standardised_within_speakers(np.asarray(states, dtype=np.float64).reshape(rows, -1), speakers, seed)
    ranked = np.sort(probabilities, axis=1)
    margin = ranked[:, -1] - (ranked[:, -2] if emotions > 1 else 0.0)
    predicted = probabilities.argmax(axis=1)
    taken: set[int] = set()
    picks: dict[int, list[int]] = {}
    # The emotions the model predicts for fewest clips choose first: what they lack is filled from the others'.
    for emotion in sorted(range(emotions), key=lambda e: (int((predicted == e).sum()), e)):
        candidates = [row for row in range(rows) if predicted[row] == emotion and row not in taken]
        chosen = covering_clips(candidates, features, margin, speakers, per_emotion, seed)
        if len(chosen) < per_emotion:  # the clips the model finds most probable for it, whatever it predicts
            others = [row for row in np.argsort(-probabilities[:, emotion], kind="stable") if row not in taken]
            chosen += [int(row) for row in others if row not in chosen][: per_emotion - len(chosen)]
        taken.update(chosen)
        picks[emotion] = chosen
    order = []
    for turn in range(per_emotion):  # one clip of each emotion in turn
        order += [picks[emotion][turn] for emotion in range(emotions) if turn < len(picks[emotion])]
    return order


def covering_clips(
    candidates: Sequence[int],
    features: np.ndarray,
    margin: np.ndarray,
    speakers: Sequence[str],
    wanted: int,
    seed: int,
) -> list[int]:
    """Up to `wanted` of `candidates`: shared out among their speakers in turn, each speaker's share the least certain
    clip (smallest `margin`) of each of as many k-means clusters of their `features`; ordered speaker by speaker in
    turn, the least certain first."""
    from sklearn.cluster import KMeans

    by_speaker: dict[str, list[int]] = {}
    for row in candidates:
        by_speaker.setdefault(speakers[row], []).append(row)
    share = dict.fromkeys(by_speaker, 0)
    # Shares in turn, the speakers with most candidates first: every speaker gets one before any gets two.
    turn_order = sorted(by_speaker, key=lambda speaker: (-len(by_speaker[speaker]), speaker))
    while sum(share.values()) < wanted and any(share[s] < len(by_speaker[s]) for s in turn_order):
        for speaker in turn_order:
            if sum(share.values()) < wanted and share[speaker] < len(by_speaker[speaker]):
                share[speaker] += 1
    chosen_by_speaker = {}
    for speaker, count in share.items():
        rows = by_speaker[speaker]
        if count == 0:
            continue
        if count >= len(rows):
            chosen = rows
        else:
            clusters = KMeans(n_clusters=count, n_init=4, random_state=seed).fit_predict(features[rows])
            chosen = [
                min((row for row, cluster in zip(rows, clusters) if cluster == group), key=lambda r: (margin[r], r))
                for group in range(count)
            ]
        chosen_by_speaker[speaker] = sorted(chosen, key=lambda r: (margin[r], r))
    ordered = []
    for turn in range(max((len(chosen) for chosen in chosen_by_speaker.values()), default=0)):
        for speaker in turn_order:
            speaker_clips = chosen_by_speaker.get(speaker, [])
            if turn < len(speaker_clips):
                ordered.append(speaker_clips[turn])
    return ordered


def standardised_within_speakers(states: np.ndarray, speakers: Sequence[str], seed: int = 0) -> np.ndarray:
    """`states` standardised within each speaker (so that clusters follow how a speaker's recordings differ, not who
    speaks), then reduced by PCA to at most :data:`CLUSTERING_DIMENSIONS` dimensions."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    standardised = np.zeros_like(states)
    speakers = np.asarray(speakers)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        standardised[rows] = StandardScaler().fit_transform(states[rows])
    dimensions = min(CLUSTERING_DIMENSIONS, *standardised.shape)
    if dimensions < 2 or dimensions == standardised.shape[1]:
        return standardised
    return PCA(n_components=dimensions, random_state=seed).fit_transform(standardised)


__all__ = [
    "Suggestions",
    "choose_clips",
    "recording_speakers",
    "score_recordings",
    "suggest",
]
