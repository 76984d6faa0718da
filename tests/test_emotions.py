import pytest

from ser_hf.emotions import EMOTIONS, LabelPolicy, canonical_emotion, shared_labels, union_labels


def test_vocabulary_is_the_eight_canonical_emotions():
    assert EMOTIONS == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Anger", "angry"),
        ("happiness", "happy"),
        ("FEAR", "fearful"),
        ("ps", "surprised"),
        ("pleasant surprise", "surprised"),
        ("neutral", "neutral"),
        ("boredom", None),
    ],
)
def test_aliases_resolve_to_the_vocabulary(name, expected):
    assert canonical_emotion(name) == expected


def test_policy_merges_drops_and_restricts():
    merge = LabelPolicy(label_map={"calm": "neutral"})
    assert merge.apply("calm") == "neutral" and merge.apply("sad") == "sad"
    drop = LabelPolicy(label_map={"calm": None})
    assert drop.apply("calm") is None
    restricted = LabelPolicy(labels=["sad", "angry", "neutral"])
    assert restricted.labels == ["neutral", "sad", "angry"]  # canonical order
    assert restricted.apply("happy") is None
    assert restricted.class_label(["sad"]).names == ["neutral", "sad", "angry"]
    assert LabelPolicy().class_label(["sad", "angry", "neutral", "sad"]).names == ["neutral", "sad", "angry"]


def test_policy_accepts_drop_spellings_and_rejects_unknown_targets():
    assert LabelPolicy(label_map={"boredom": "drop"}).apply("boredom") is None
    with pytest.raises(ValueError, match="'bored'"):
        LabelPolicy(label_map={"boredom": "bored"})
    with pytest.raises(ValueError, match="'joyful'"):
        LabelPolicy(labels=["joyful"])


def test_shared_and_union_labels_follow_canonical_order():
    assert shared_labels([["sad", "happy", "calm"], ["happy", "sad", "angry"]]) == ["happy", "sad"]
    assert union_labels([["sad", "calm"], ["angry", "neutral"]]) == ["neutral", "calm", "sad", "angry"]
