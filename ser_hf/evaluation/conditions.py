"""Evaluation conditions built from a corpus: speakers heard in a few emotions only.

Corpora recorded for emotion research give every speaker every emotion; recordings gathered elsewhere often do not
(talk-show clips: one speaker angry throughout, another sad). Statistics taken per speaker behave very differently
there, so the protocol builds that condition from the corpora at hand: each speaker keeps the clips of
``emotions_per_speaker`` emotions, assigned so that every emotion is still tested (the speakers, in a seeded random
order, take the emotions in turn, the emotions in a seeded random order too), and ``speaker_share`` of the speakers
(drawn with the same seed) are reduced so, the others keeping every clip (a set mixing both kinds of speaker). A
speaker with no clip of an emotion assigned to them is heard in fewer (in none: they leave the set).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from datasets import Dataset

from ..data.dataset_info import column_values


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


__all__ = ["assign_emotions", "keep_emotions_per_speaker"]
