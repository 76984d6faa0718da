"""The warning when a model's predictions for an unseen speaker collapse onto one or two emotions (what a model
trained on other recordings does on a new set-up), naming the speaker and the remedies."""

from __future__ import annotations

import logging

import numpy as np
from datasets import Dataset

from ser_hf.evaluation.report import collapsed_speakers, evaluate_split

LABELS = ["neutral", "happy", "sad", "angry"]


def _clips(speaker: str, predicted: list[int]) -> tuple[list[int], list[int], list[str]]:
    """Four clips of each of the four labels for `speaker`, predicted as `predicted` (16 values)."""
    labels = [label for label in range(4) for _ in range(4)]
    return labels, predicted, [speaker] * 16


def test_a_speaker_answered_with_one_or_two_emotions_is_named_with_what_it_got():
    collapsed = _clips("S4", [0] * 12 + [1] * 2 + [2, 3])  # 12 neutral, 2 happy of 16: 88 %
    spread = _clips("S5", [label for label in range(4) for _ in range(4)])  # every clip right
    few = (list(range(4)) * 2, [0] * 8, ["S6"] * 8)  # too few clips to judge
    labels, predictions, speakers = (a + b + c for a, b, c in zip(collapsed, spread, few))
    assert collapsed_speakers(labels, predictions, speakers, LABELS) == {"S4": "75 % neutral, 12 % happy of 16 clips"}


def test_evaluate_split_warns_with_the_remedies(caplog):
    labels, predictions, speakers = _clips("S4", [3] * 16)
    logits = np.eye(4)[predictions]

    clips = Dataset.from_dict({"speaker_id": speakers})
    with caplog.at_level(logging.WARNING, logger="ser_hf.evaluation.report"):
        evaluate_split(None, clips, LABELS, "test", predictions=(np.array(labels), logits))
    (record,) = [r for r in caplog.records if "collapse" in r.getMessage()]
    message = record.getMessage()
    assert "test: the predictions of speaker S4 collapse" in message and "100 % angry of 16 clips" in message
    assert "normalization: speaker" in message and "ser-hf adapt" in message
