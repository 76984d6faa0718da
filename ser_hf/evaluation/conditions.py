"""Evaluation conditions built from a corpus: speakers heard in a few emotions only, and recordings degraded as users
make them (noise, babble, telephone, codecs, rooms: :mod:`ser_hf.inputs.degradations`).

Corpora recorded for emotion research give every speaker every emotion; recordings gathered elsewhere often do not
(talk-show clips: one speaker angry throughout, another sad). Statistics taken per speaker behave very differently
there, so the protocol builds that condition from the corpora at hand: each speaker keeps the clips of
``emotions_per_speaker`` emotions, assigned so that every emotion is still tested (the speakers, in a seeded random
order, take the emotions in turn, the emotions in a seeded random order too), and ``speaker_share`` of the speakers
(drawn with the same seed) are reduced so, the others keeping every clip (a set mixing both kinds of speaker). A
speaker with no clip of an emotion assigned to them is heard in fewer (in none: they leave the set).

Recording conditions (``ser-hf evaluate --conditions``) score the same clips again, each degraded once under each
condition (:func:`degraded_clips`), and set each condition's figures beside the clean ones (:func:`condition_record`):
UA with its speaker-bootstrap interval and its change against clean with a paired speaker-bootstrap interval.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from datasets import Dataset

from ..data.dataset_info import column_values
from ..data.decode import WAVEFORM_COLUMN
from ..inputs.collators import clip_seed
from ..inputs.degradations import RecordingCondition
from .bootstrap import paired_comparison
from .constants import INTERVAL_METRICS

#: Part of each degraded dataset's fingerprint (so of the encoder cache's key): raised when a degradation changes.
DEGRADATION_VERSION = 1


def assign_emotions(
    speakers: Sequence[str], emotions: Sequence[int], emotions_per_speaker: int, seed: int
) -> dict[str, list[int]]:
    """Each speaker's ``emotions_per_speaker`` emotions (label ids), assigned in turn so that each of ``emotions``
    goes to as many speakers as the others, give or take one (every emotion is tested once there are at least
    ``len(emotions) / emotions_per_speaker`` speakers)."""
    if emotions_per_speaker < 1:
        raise ValueError(f"emotions_per_speaker must be 1 or more, got {emotions_per_speaker}.")
    rng = np.random.default_rng([seed, emotions_per_speaker])
    order = [int(value) for value in rng.permutation(sorted(set(emotions)))]
    shuffled = [str(value) for value in rng.permutation(sorted(set(speakers)))]
    count = min(emotions_per_speaker, len(order))
    return {
        speaker: [order[(index * count + turn) % len(order)] for turn in range(count)]
        for index, speaker in enumerate(shuffled)
    }


def keep_emotions_per_speaker(
    dataset: Dataset,
    emotions_per_speaker: int,
    seed: int,
    labels: Optional[Sequence[str]] = None,
    speaker_share: float = 1.0,
) -> Dataset:
    """The clips of ``dataset`` a speaker heard in ``emotions_per_speaker`` emotions only would leave (see the
    module's text): each reduced speaker keeps the clips of their assigned emotions among ``labels`` (label names;
    default: every label of the dataset) and no other; with ``speaker_share`` under 1, that share of the speakers
    (rounded down) is reduced and the rest keep every clip. Reads the ``speaker_id`` and ``label`` columns."""
    if not 0.0 < speaker_share <= 1.0:
        raise ValueError(f"speaker_share must be above 0 and at most 1, got {speaker_share}.")
    names = dataset.features["label"].names
    unknown = sorted(set(labels or ()) - set(names))
    if unknown:
        raise ValueError(f"labels {unknown} are not labels of the dataset ({', '.join(names)}).")
    emotions = [names.index(label) for label in labels] if labels else list(range(len(names)))
    speakers = [str(value) for value in column_values(dataset, "speaker_id")]
    clip_labels = column_values(dataset, "label")
    everyone = sorted(set(speakers))
    reduced = set(everyone)
    if speaker_share < 1.0:
        rng = np.random.default_rng([seed, 0])
        reduced = {str(value) for value in rng.choice(everyone, int(len(everyone) * speaker_share), replace=False)}
    assigned = assign_emotions(sorted(reduced), emotions, emotions_per_speaker, seed)
    rows = [
        index
        for index, (speaker, label) in enumerate(zip(speakers, clip_labels))
        if speaker not in reduced or label in assigned[speaker]
    ]
    return dataset.select(rows)


def check_conditions_for_clips(conditions: Sequence[RecordingCondition], speakers: Sequence[str]) -> None:
    """Refuse, before any clip is scored, a condition the clips cannot take: babble mixes in clips of other speakers,
    so the clips (``speakers``: each clip's speaker) need two speakers or more. The error names the condition, its
    parameter and what the clips hold."""
    present = sorted(set(speakers))
    for condition in conditions:
        if condition.talkers and len(present) < 2:
            holds = f"one speaker only ({present[0]})" if present else "no clip"
            raise ValueError(
                f"condition {condition}: speakers={condition.talkers} mixes in clips of other speakers than each "
                f"clip's own, and the evaluated clips have {holds}; babble needs clips of 2 speakers or more "
                "(it takes the others in turn where there are fewer than speakers)."
            )


def degraded_clips(dataset: Dataset, condition: RecordingCondition, seed: int, sampling_rate: int) -> Dataset:
    """``dataset`` with each clip's ``waveform`` degraded under ``condition``, made here and now (never written beside
    the recordings: the datasets cache holds it, as it holds the decoded clips). Each clip draws from a generator
    seeded by ``seed``, its folder and file name and the condition, so the same seed degrades every clip the same way
    again; babble mixes in ``condition.talkers`` clips of other speakers of ``dataset`` (each of another speaker
    where there are enough), drawn the same way. The
    result's fingerprint, and so the key of the encoder cache that FAST models read, holds the condition and the
    seed."""
    speakers = [str(value) for value in column_values(dataset, "speaker_id")]
    check_conditions_for_clips([condition], speakers)
    clips_by_speaker: dict[str, list[int]] = {}
    for row, speaker in enumerate(speakers):
        clips_by_speaker.setdefault(speaker, []).append(row)
    fingerprint = hashlib.sha256(
        f"{dataset._fingerprint}|{condition}|{seed}|degradation-{DEGRADATION_VERSION}".encode()
    ).hexdigest()[:32]
    return dataset.map(
        _degrade_batch,
        batched=True,
        batch_size=16,
        with_indices=True,
        fn_kwargs={
            "condition": condition,
            "seed": seed,
            "clips": dataset.select_columns([WAVEFORM_COLUMN]).with_format("numpy"),
            "speakers": speakers,
            "clips_by_speaker": clips_by_speaker,
            "sampling_rate": sampling_rate,
        },
        features=dataset.features,
        new_fingerprint=fingerprint,
        desc=f"Degrading clips: {condition}",
    )


def _degrade_batch(
    batch: dict[str, list],
    indices: list[int],
    condition: RecordingCondition,
    seed: int,
    clips: Dataset,
    speakers: list[str],
    clips_by_speaker: dict[str, list[int]],
    sampling_rate: int,
) -> dict[str, list[np.ndarray]]:
    waveforms = []
    for index, waveform, path in zip(indices, batch[WAVEFORM_COLUMN], batch["path"]):
        rng = np.random.default_rng([seed, clip_seed(path), condition.seed()])
        talkers = []
        if condition.talkers:
            # As many other speakers as it asks for where the set has them (each heard once), in turn where it has
            # fewer; a clip of each drawn at random.
            voices = rng.permutation(sorted(set(speakers) - {speakers[index]}))
            for turn in range(condition.talkers):
                rows = clips_by_speaker[str(voices[turn % len(voices)])]
                row = rows[int(rng.integers(len(rows)))]
                talkers.append(np.asarray(clips[row][WAVEFORM_COLUMN], dtype=np.float32))
        waveform = np.asarray(waveform, dtype=np.float32)
        degraded = condition.apply(waveform, sampling_rate, rng, talkers)
        if not np.isfinite(degraded).all():  # said here, not later as a model whose weights hold NaN
            raise ValueError(f"condition {condition} turned {path} into infinite or NaN samples.")
        waveforms.append(degraded)
    return {WAVEFORM_COLUMN: waveforms}


def condition_record(
    condition: RecordingCondition, clean: Mapping[str, Any], degraded: Mapping[str, Any]
) -> dict[str, Any]:
    """One condition's row of the report: the metrics with an interval (:data:`~.constants.INTERVAL_METRICS`: UA, WA,
    macro-F1) with their speaker-bootstrap intervals, and the
    change of UA against ``clean`` on the same clips (``degraded`` minus ``clean``) with a paired speaker-bootstrap
    interval and McNemar's exact test (:func:`~.bootstrap.paired_comparison`). ``clean`` and ``degraded`` are the
    metrics of the two evaluations (with their ``clip_predictions``)."""
    clean_clips = {row["path"]: row for row in clean["clip_predictions"]}
    rows = [row for row in degraded["clip_predictions"] if row["path"] in clean_clips]
    labels = list(clean["label_names"])
    comparison = paired_comparison(
        [labels.index(row["label"]) for row in rows],
        [labels.index(clean_clips[row["path"]]["prediction"]) for row in rows],
        [labels.index(row["prediction"]) for row in rows],
        [row["speaker_id"] for row in rows],
        len(labels),
    )
    return {
        "condition": str(condition),
        "family": condition.family,
        "description": condition.description(),
        "clips": degraded["clips"],
        **{name: degraded[name] for name in INTERVAL_METRICS},
        "confidence_intervals": degraded.get("confidence_intervals"),
        "change": comparison,
    }


__all__ = [
    "DEGRADATION_VERSION",
    "assign_emotions",
    "check_conditions_for_clips",
    "condition_record",
    "degraded_clips",
    "keep_emotions_per_speaker",
]
