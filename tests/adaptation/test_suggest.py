"""``ser-hf suggest`` and ``ser-hf adapt --labels_csv``: the clips a person should label, chosen by the model's
uncertainty and spread over speakers and encoder states; the sheet filled in and adapted on, the adaptation reading
back the states ``ser-hf suggest`` encoded (not one clip encoded twice); recordings the model cannot read listed,
never suggested."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser_hf.adaptation.sheet import NOT_SPEECH, SHEET_COLUMNS, SKIP, read_sheet, write_sheet
from ser_hf.adaptation.suggest import choose_clips
from ser_hf.cli import main as cli_main
from ser_hf.train import main as train_main
from tests.conftest import RAVDESS_SAMPLE
from tests.recipe.test_parser import write_recipe
from tests.training.test_self_training import FAST

SPEAKER_REGEX = r"^(?P<speaker>[A-Z]+)_"
#: RAVDESS emotion codes of the clips laid out unlabelled, and the emotions a person would answer for them.
EMOTIONS = {"05": "angry", "03": "happy", "04": "sad"}


def test_choose_clips_covers_every_emotion_and_speaker_and_takes_the_least_certain_clip_of_each_cluster():
    rng = np.random.default_rng(0)
    rows, emotions = 60, 3
    speakers = [("A", "B", "C")[row % 3] for row in range(rows)]
    predicted = np.array([row // 20 for row in range(rows)])  # 20 clips predicted as each emotion
    probabilities = np.full((rows, emotions), 0.05)
    probabilities[np.arange(rows), predicted] = rng.uniform(0.4, 0.9, rows)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    states = rng.normal(size=(rows, 8))
    order = choose_clips(probabilities, states, speakers, per_emotion=3)
    assert len(order) == len(set(order)) == 9
    # One clip of each emotion in turn, and each emotion's three clips from its three speakers.
    assert [int(predicted[row]) for row in order] == [0, 1, 2] * 3
    for emotion in range(emotions):
        assert {speakers[row] for row in order if predicted[row] == emotion} == {"A", "B", "C"}
    # With one clip per speaker and emotion, each is the speaker's least certain clip of that emotion.
    margin = np.sort(probabilities, axis=1)
    margin = margin[:, -1] - margin[:, -2]
    for row in order:
        same = [r for r in range(rows) if predicted[r] == predicted[row] and speakers[r] == speakers[row]]
        assert margin[row] == min(margin[same])


def test_choose_clips_fills_an_emotion_the_model_rarely_predicts_with_its_most_probable_clips():
    probabilities = np.array([[0.8, 0.15, 0.05]] * 6 + [[0.1, 0.8, 0.1]] * 6, dtype=float)
    probabilities[0] = [0.5, 0.1, 0.4]  # the clip most probably of the third emotion, which none is predicted as
    probabilities[7] = [0.2, 0.5, 0.3]
    order = choose_clips(probabilities, np.eye(12), ["S"] * 12, per_emotion=2)
    assert len(order) == len(set(order)) == 6
    assert order[2] == 0 and order[5] == 7  # the third emotion's two: the clips most probably of it


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, tiny_ravdess) -> Path:
    """A tiny Whisper model trained as the general recipe is (FAST, corpus statistics) on RAVDESS actors 01-03."""
    folder = tmp_path_factory.mktemp("trained")
    train_main([str(write_recipe(folder / "r.yaml", tiny_ravdess, **FAST))])
    return folder / "run"


def unlabelled_folder(root: Path, speakers: dict[str, str], per: int) -> dict[str, str]:
    """RAVDESS clips of `speakers` (actor -> speaker id) laid out unlabelled as SPEAKER_N.flac; the emotion of each
    file (what a person would answer)."""
    root.mkdir()
    truth = {}
    for actor, speaker in speakers.items():
        number = 0
        for code, emotion in EMOTIONS.items():
            for clip in sorted((RAVDESS_SAMPLE / f"Actor_{actor}").glob(f"03-01-{code}-*.flac"))[:per]:
                name = f"{speaker}_{number:02d}.flac"
                (root / name).symlink_to(clip.resolve())
                truth[name] = emotion
                number += 1
    return truth


def test_suggest_writes_a_sheet_and_adapt_reads_its_answers_without_encoding_a_clip_again(
    tmp_path, trained_model, caplog, capsys
):
    folder = tmp_path / "recordings"
    truth = unlabelled_folder(folder, {"05": "SPA", "06": "SPB"}, per=4)
    # What cannot be used: digital silence, bytes that are no audio, a file whose name gives no speaker.
    soundfile.write(folder / "SPA_silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    (folder / "SPB_broken.wav").write_bytes(b"RIFF" + b"\0" * 100)
    (folder / "no_speaker.flac").symlink_to(next(RAVDESS_SAMPLE.glob("Actor_07/*.flac")).resolve())
    sheet = tmp_path / "sheet.csv"
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        status = cli_main(
            ["suggest", str(trained_model), str(folder), "--per_emotion", "2", "--speaker_regex", SPEAKER_REGEX]
            + ["--output", str(sheet)]
        )
    assert status == 0
    # Every readable recording encoded once (or read from a cache of the same encoder another test wrote).
    assert re.search(r"Encoded 24 clips|Reused the encoder states of \d+ of 24 clips", caplog.text)
    out = capsys.readouterr().out
    assert f"in {sheet}; 3 cannot be used" in out and "--labels-csv" in out
    with open(sheet, newline="") as handle:
        assert next(csv.reader(handle)) == list(SHEET_COLUMNS)
    rows = read_sheet(sheet)
    labels = json.loads((trained_model / "config.json").read_text())["id2label"]
    assert len(rows) == 2 * len(labels) and len({row.path for row in rows}) == len(rows)
    assert all(row.path in truth and row.label == "" for row in rows)
    assert all(row.model_guess in labels.values() and 0 < row.model_probability <= 1 for row in rows)
    assert {row.speaker for row in rows} == {"SPA", "SPB"}
    with open(tmp_path / "sheet.unusable.csv", newline="") as handle:
        unusable = {row["path"]: row["problem"] for row in csv.DictReader(handle)}
    assert set(unusable) == {"SPA_silent.wav", "SPB_broken.wav", "no_speaker.flac"}
    assert "silence" in unusable["SPA_silent.wav"] and "cannot be decoded" in unusable["SPB_broken.wav"]
    assert "finds no speaker" in unusable["no_speaker.flac"]

    # A person answers in the sheet: emotions for most clips, a skip and a not-speech.
    for number, row in enumerate(rows):
        row.label = SKIP if number == 0 else NOT_SPEECH if number == 1 else truth[row.path]
    write_sheet(sheet, rows)
    emotions_answered = {row.label for row in rows[2:]}
    adapted = tmp_path / "adapted"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        status = cli_main(
            ["adapt", str(trained_model), "--data_dir", str(folder), "--labels_csv", str(sheet)]
            + ["--output_dir", str(adapted)]
        )
    assert status == 0
    labelled = len(rows) - 2
    assert f"Reused the encoder states of {labelled} of {labelled} clips" in caplog.text
    assert "encoded 0." in caplog.text and "Encoded " not in caplog.text
    record = json.loads((adapted / "adaptation.json").read_text())
    assert record["labelled_clips"] == labelled and record["labels"] == record["model_labels"]
    assert {label for label, clips in record["clips_per_label"].items() if clips} == emotions_answered
    assert record["sheet_answers"] == {"emotion": labelled, SKIP: 1, NOT_SPEECH: 1, "unanswered": 0}
    assert (tmp_path / "adapted.labels.csv").is_file()


def test_adapt_refuses_a_sheet_with_no_emotion_answered(tmp_path, trained_model, capsys):
    folder = tmp_path / "recordings"
    unlabelled_folder(folder, {"05": "SPA"}, per=1)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(f"path,speaker,label\nSPA_00.flac,SPA,{SKIP}\nSPA_01.flac,SPA,\n")
    status = cli_main(
        ["adapt", str(trained_model), "--data_dir", str(folder), "--labels_csv", str(sheet)]
        + ["--output_dir", str(tmp_path / "out")]
    )
    assert status == 2
    assert "no row has an emotion in its label column yet (2 rows: 1 skipped" in capsys.readouterr().err
