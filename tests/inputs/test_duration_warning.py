"""The speaker-statistics duration warning fires only where a speaker's clips really differ in length from those of
the other speakers of the same corpus: never for the shipped general recipe's own speakers, whose corpora differ in
clip length by design (TESS's single words, RAVDESS's sentences)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from datasets import Dataset, DatasetDict

from ser_hf.inputs.speaker_normalization import (
    DISTRIBUTION_WARNING_DISTANCE,
    DURATION_BINS,
    _distance,
    distribution_warnings,
)

LABELS = ["neutral", "happy", "sad", "angry"]


def clips(corpus: str, speaker: str, seconds: float, count: int = 12, seed: int = 0) -> dict[str, list]:
    """`count` clips of `speaker` of `corpus`, about `seconds` long each, every label in turn."""
    rng = np.random.default_rng(seed)
    return {
        "label": [number % len(LABELS) for number in range(count)],
        "speaker_id": [f"{corpus}:{speaker}"] * count,
        "corpus": [corpus] * count,
        "duration": list(seconds + rng.uniform(-0.3, 0.3, count)),
    }


def split(*parts: dict[str, list]) -> Dataset:
    return Dataset.from_dict({key: [value for part in parts for value in part[key]] for key in parts[0]})


def duration_warnings(splits: DatasetDict) -> list[str]:
    return [warning for warning in distribution_warnings(splits, LABELS) if "durations" in warning]


def test_speakers_recorded_like_their_corpus_are_not_warned_about_whatever_the_other_corpora_record():
    # Training: a corpus of words (1.5 s) and one of sentences (3.5 s), as the general recipe's TESS and RAVDESS.
    train = split(
        clips("words", "W1", 1.5),
        clips("words", "W2", 1.5, seed=1),
        *[clips("sentences", f"S{n}", 3.5) for n in "123"],
    )
    validation = split(clips("sentences", "S4", 3.5, seed=2), clips("sentences", "S5", 3.5, seed=3))
    splits = DatasetDict({"train": train, "validation": validation})
    # The case of the issue: against all the training clips, a sentence speaker is far off.
    pooled = Counter(np.digitize(train["duration"], DURATION_BINS))
    own = Counter(np.digitize(validation["duration"][:12], DURATION_BINS))
    assert _distance(own, pooled) > DISTRIBUTION_WARNING_DISTANCE
    assert duration_warnings(splits) == []


def test_a_speaker_whose_clips_are_far_shorter_than_their_corpus_is_still_warned_about():
    train = split(clips("words", "W1", 1.5), *[clips("sentences", f"S{n}", 3.5) for n in "123"])
    validation = split(clips("sentences", "S4", 3.5), clips("sentences", "S5", 1.5))
    warnings = duration_warnings(DatasetDict({"train": train, "validation": validation}))
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "validation speaker sentences:S5: clip durations far from the training speakers' of sentences (distance "
    )


def test_a_corpus_left_out_of_training_is_compared_with_its_own_other_speakers():
    train = split(clips("words", "W1", 1.5), clips("sentences", "S1", 3.5))
    # A corpus of 8-s clips, left out of training: its speakers are recorded alike, so no warning...
    alike = split(clips("long", "L1", 8.0), clips("long", "L2", 8.0, seed=1))
    assert duration_warnings(DatasetDict({"train": train, "test": alike})) == []
    # ... unless one of them differs from the others.
    apart = split(*[clips("long", f"L{n}", 8.0, seed=n) for n in range(1, 5)], clips("long", "L5", 2.5))
    (warning,) = duration_warnings(DatasetDict({"train": train, "test": apart}))
    assert warning.startswith("test speaker long:L5: clip durations far from the other test speakers' of long")


def test_the_shipped_general_speaker_recipes_own_speakers_get_no_duration_warning(shared_data):
    """The recipe's corpora from ../shared/data, split as the recipe splits them (its test actors, 21-24, are not in
    the shared copy of RAVDESS): training it printed a duration warning for every RAVDESS validation and test
    speaker."""
    import yaml

    from ser_hf.data.corpora import load_corpus
    from ser_hf.data.corpora.loading import merge_corpora
    from ser_hf.data.splits import split_dataset
    from tests.conftest import REPO

    recipe = yaml.safe_load((REPO / "recipes" / "general_whisper_base_speaker.yaml").read_text())
    folders = {"ravdess": "ravdess_16k", "tess": "tess", "nemo": "nemo", "banglaser": "banglaser"}
    dataset = merge_corpora([load_corpus(name, shared_data / folders[name]) for name in recipe["corpus"]])
    speakers = set(dataset["speaker_id"])
    (splits,) = split_dataset(
        dataset,
        recipe["split_protocol"],
        train_only_corpora=recipe["train_only_corpora"],
        **{
            key: [s for s in recipe[key] if s in speakers]
            for key in ("train_speakers", "validation_speakers", "test_speakers")
        },
    )
    assert len(set(splits["validation"]["speaker_id"])) == 4
    assert duration_warnings(splits) == []
