"""``ser-hf learning-curve`` at sample size: a tiny model trained as the general recipes are, adapted through
``ser-hf adapt``'s own code on clips of RAVDESS sample actors drawn as users would label them (at random, as
``ser-hf suggest`` orders them) and by their labels (the oracle); the draws come from the adaptation speakers only,
every arm is scored on the test speakers beside the adaptation's own estimate, the result file resumes, and a file of
other settings, another model under the same path, or a malformed file is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ser_hf.experiments.learning_curve as curve_module
from ser_hf.cli import main as cli_main
from ser_hf.errors import RecipeError, SerHfError
from ser_hf.experiments.learning_curve import draw_clips, draw_unstratified, run_learning_curve
from ser_hf.train import main as train_main
from tests.conftest import RAVDESS_SAMPLE, linked_corpus
from tests.recipe.test_parser import write_recipe
from tests.training.test_self_training import FAST

ADAPT, TEST = ["05", "06"], ["07"]
LABELS = ["neutral", "happy", "sad"]


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, tiny_ravdess) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    train_main([str(write_recipe(folder / "r.yaml", tiny_ravdess, **FAST))])
    return folder / "run"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """RAVDESS sample actors 05-07 (links)."""
    root = tmp_path_factory.mktemp("curve_corpus")
    for actor in ADAPT + TEST:
        (root / f"Actor_{actor}").symlink_to(RAVDESS_SAMPLE / f"Actor_{actor}")
    return root


def test_draws_take_k_clips_of_every_label_from_the_adaptation_speakers_only():
    labels = ["a", "b"] * 6
    speakers = ["s1"] * 4 + ["s2"] * 4 + ["t"] * 4
    for seed in range(5):
        rows = draw_clips(labels, speakers, ["s1", "s2"], 2, seed)
        assert len(rows) == 4 and {speakers[row] for row in rows} <= {"s1", "s2"}
        assert sorted(labels[row] for row in rows) == ["a", "a", "b", "b"]
    draws = {tuple(draw_clips(labels, speakers, ["s1", "s2"], 1, seed)) for seed in range(5)}
    assert len(draws) > 1  # the seed draws
    with pytest.raises(SerHfError, match="fewer than k = 5"):
        draw_clips(labels, speakers, ["s1"], 5, 0)
    assert len(draw_clips(labels, speakers, ["s1"], 5, 0, at_most=True)) == 4  # all of s1's clips


def test_the_random_arm_draws_from_the_pool_without_reading_labels():
    pool = list(range(10, 30))
    draws = [draw_unstratified(pool, 6, seed) for seed in range(20)]
    assert all(len(rows) == 6 and set(rows) <= set(pool) for rows in draws)
    assert len({tuple(rows) for rows in draws}) > 1
    with pytest.raises(SerHfError, match="fewer than the 21 to label"):
        draw_unstratified(pool, 21, 0)


def test_the_curve_runs_ser_hf_adapt_per_cell_scores_the_test_speakers_and_resumes(
    tmp_path, trained_model, corpus, monkeypatch, capsys
):
    output = tmp_path / "curve.json"
    command = ["learning-curve", str(trained_model), "--data_dir", str(corpus), "--corpus", "ravdess"]
    command += ["--adapt_speakers", ",".join(ADAPT), "--test_speakers", ",".join(TEST), "--labels", ",".join(LABELS)]
    command += ["--ks", "0", "1", "2", "--draws", "1", "--output", str(output)]
    command += ["--arms", "zero-shot", "random", "oracle", "oracle+self-training"]
    assert cli_main(command) == 0
    printed = capsys.readouterr().out
    assert "| ordinary | oracle | 2 |" in printed and "| ordinary | zero-shot | 0 |" in printed
    document = json.loads(output.read_text())
    assert document["experiment"] == "learning-curve" and {"command", "date", "commit", "machine"} <= set(document)
    keys = [cell["key"] for cell in document["cells"]]
    arms = ("random", "oracle", "oracle+self-training")
    assert sorted(keys) == sorted(["zero-shot/0"] + [f"{a}/{k}/1" for a in arms for k in (1, 2)])
    for cell in document["cells"]:  # every arm scored on actor 07's 10 clips of the labels (neutral has 2)
        assert 0 <= cell["unweighted_accuracy"] <= 100 and cell["test_clips"] == 10
    for cell in (cell for cell in document["cells"] if cell["arm"] == "random"):
        assert cell["labelled_clips"] == cell["k"] * len(LABELS)  # k x labels clips, whatever their labels
    for cell in (cell for cell in document["cells"] if cell["arm"] == "oracle"):
        assert cell["labelled_clips"] == cell["k"] * len(LABELS) and cell["missing_labels"] == []
        # Beside the test figure: what the adaptation kept, and no estimate of its own from one or two clips of an
        # emotion (too few for a figure worth printing: it says so instead of a number).
        assert cell["estimate_ua"] is None and "covered" not in cell and cell["kept"]
    assert {row["arm"]: row["draws"] for row in document["summary"] if row["k"] == 2}["oracle"] == 1
    assert document["settings"]["labels"] == LABELS and document["settings"]["model_fingerprint"]
    assert not (tmp_path / "curve.work").exists()  # the cells' models are removed once scored

    # Started again with the same settings: every cell is read back, nothing is adapted.
    def no_adaptation(*args, **kwargs):
        raise AssertionError("a finished cell was adapted again")

    monkeypatch.setattr("ser_hf.adaptation.adapt", no_adaptation)
    monkeypatch.setattr(curve_module, "_zero_shot", no_adaptation)
    assert cli_main(command) == 0
    assert [cell["key"] for cell in json.loads(output.read_text())["cells"]] == keys
    # Other settings into the same file: refused, naming the setting.
    with pytest.raises(RecipeError, match="was written with labels"):
        run_learning_curve(
            trained_model,
            corpus,
            output,
            corpus="ravdess",
            adapt_speakers=ADAPT,
            test_speakers=TEST,
            labels=["sad", "happy"],
        )


def test_speakers_and_arms_are_checked_before_any_adaptation(tmp_path, trained_model, corpus):
    options = dict(corpus="ravdess", labels=LABELS)
    with pytest.raises(SerHfError, match="adapt_speakers and test_speakers both name 06"):
        run_learning_curve(
            trained_model, corpus, tmp_path / "c.json", adapt_speakers=ADAPT, test_speakers=["06"], **options
        )
    with pytest.raises(SerHfError, match="^test_speakers 99: not among"):
        run_learning_curve(
            trained_model, corpus, tmp_path / "c.json", adapt_speakers=ADAPT, test_speakers=["99"], **options
        )
    with pytest.raises(SerHfError, match=r"^draws \[-1\]: draw seeds are 0 or more"):
        run_learning_curve(
            trained_model, corpus, tmp_path / "c.json", adapt_speakers=ADAPT, test_speakers=TEST, draws=[-1]
        )
    assert not (tmp_path / "c.work").exists()  # refused before its work folder was made
    with pytest.raises(SerHfError, match="^arms fine-tuned"):
        run_learning_curve(
            trained_model, corpus, tmp_path / "c.json", adapt_speakers=ADAPT, test_speakers=TEST, arms=["fine-tuned"]
        )
    assert not (tmp_path / "c.json").exists()


def test_the_suggested_arm_labels_as_many_clips_as_ser_hf_suggest_puts_first(tmp_path, trained_model, corpus):
    """The clips ser-hf suggest chose among the adaptation speakers' (never a test speaker's), as many as the random
    arm labels, adapted on with their true labels."""
    document = run_learning_curve(
        trained_model,
        corpus,
        tmp_path / "curve.json",
        corpus="ravdess",
        adapt_speakers=ADAPT,
        test_speakers=TEST,
        labels=LABELS,
        ks=[2],
        draws=[1],
        arms=["suggested"],
    )
    (cell,) = document["cells"]
    assert cell["key"] == "suggested/2/1" and cell["test_clips"] == 10
    assert cell["labelled_clips"] == 2 * len(LABELS)


def test_the_few_emotions_condition_hears_every_speaker_in_two_emotions(tmp_path, trained_model):
    """Every speaker heard in two emotions, each side keeping every emotion; a side that cannot (one test speaker for
    three emotions: its cells would score two of three) is refused before any cell, naming the side."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for actor in ADAPT + ["07", "08"]:
        (corpus / f"Actor_{actor}").symlink_to(RAVDESS_SAMPLE / f"Actor_{actor}")
    options = dict(corpus="ravdess", adapt_speakers=ADAPT, labels=LABELS, scenarios=["few-emotions"])
    with pytest.raises(SerHfError, match=r"test_speakers \(1 speaker\(s\)\), each heard in 2 emotions, cannot"):
        run_learning_curve(trained_model, corpus, tmp_path / "one.json", test_speakers=TEST, **options)
    assert not (tmp_path / "one.json").exists() and not (tmp_path / "one.work").exists()
    document = run_learning_curve(
        trained_model,
        corpus,
        tmp_path / "curve.json",
        test_speakers=["07", "08"],
        ks=[0, 2],
        draws=[1],
        arms=["zero-shot", "oracle"],
        **options,
    )
    keys = sorted(cell["key"] for cell in document["cells"])
    assert keys == ["few-emotions:oracle/2/1", "few-emotions:zero-shot/0"]
    # Actors 07 and 08 keep two of the three emotions each: fewer test clips than the 20 of all three.
    assert all(cell["test_clips"] < 20 for cell in document["cells"])


def test_the_telephone_babble_condition_hears_every_clip_through_a_phone_in_a_room_of_talkers(
    tmp_path, trained_model, corpus
):
    """Every clip of the corpus degraded once (babble of the corpus' other speakers at 5 dB, then the telephone
    channel), written as FLAC under the work folder and kept for the next run; the cells read those files."""
    import numpy as np
    import soundfile

    options = dict(corpus="ravdess", adapt_speakers=ADAPT, test_speakers=TEST, labels=LABELS)
    options.update(ks=[0], arms=["zero-shot"], scenarios=["telephone-babble"])
    document = run_learning_curve(trained_model, corpus, tmp_path / "curve.json", **options)
    (cell,) = document["cells"]
    assert cell["key"] == "telephone-babble:zero-shot/0" and cell["test_clips"] == 10
    degraded = sorted((tmp_path / "curve.work" / "corpus-telephone-babble").glob("*.flac"))
    assert len(degraded) == 3 * 10  # the three actors' clips of the three labels: 2 + 4 + 4 each
    clips = curve_module.CurveCorpus("ravdess", corpus, {}, LABELS, LABELS)
    original, _ = soundfile.read(clips.paths[0])
    heard, rate = soundfile.read(degraded[0])
    assert rate == 16000 and len(heard) == len(original) and not np.allclose(heard, original, atol=1e-3)
    spectrum = np.abs(np.fft.rfft(heard))
    band = np.fft.rfftfreq(len(heard), 1 / rate)
    assert spectrum[band > 4000].sum() < 0.05 * spectrum.sum()  # the telephone band: almost nothing above 4 kHz
    # Started again (to resume, or with more cells), the curve reads its own kept folder instead of refusing it.
    written = [path.stat().st_mtime_ns for path in degraded]
    again = run_learning_curve(trained_model, corpus, tmp_path / "curve.json", **options)
    assert again["cells"] == document["cells"]
    assert [path.stat().st_mtime_ns for path in degraded] == written  # degraded once


def test_a_result_file_of_another_model_or_malformed_is_refused(tmp_path, trained_model, corpus):
    options = dict(corpus="ravdess", adapt_speakers=ADAPT, test_speakers=TEST, labels=LABELS, ks=[0])
    output = tmp_path / "curve.json"
    run_learning_curve(trained_model, corpus, output, arms=["zero-shot"], **options)
    other = tmp_path / "model"  # another model under the path the file names
    other.mkdir()
    for file in trained_model.iterdir():
        if file.is_file():
            (other / file.name).write_bytes(file.read_bytes())
    document = json.loads(output.read_text())
    document["settings"]["model"] = str(other)
    output.write_text(json.dumps(document))
    (other / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(RecipeError, match="was written with model_fingerprint"):
        run_learning_curve(other, corpus, output, arms=["zero-shot"], **options)
    for text, problem in (
        ("[]", "a JSON list"),
        ('{"settings": null}', "no settings"),
        ('{"settings": {}, "cells": [{"arm": "x"}]}', "a cell without its key"),
    ):
        output.write_text(text)
        with pytest.raises(RecipeError, match=problem):
            run_learning_curve(trained_model, corpus, output, arms=["zero-shot"], **options)
    with pytest.raises(SerHfError, match="is inside work_dir"):
        run_learning_curve(trained_model, corpus, tmp_path / "lc" / "c.json", work_dir=tmp_path / "lc", **options)


def test_a_result_file_is_not_resumed_on_other_clips(tmp_path, trained_model):
    corpus = linked_corpus(RAVDESS_SAMPLE, tmp_path / "ravdess")
    options = dict(corpus="ravdess", adapt_speakers=ADAPT, test_speakers=TEST, labels=LABELS, ks=[0])
    output = tmp_path / "curve.json"
    run_learning_curve(trained_model, corpus, output, arms=["zero-shot"], **options)
    gone = next(clip for clip in (corpus / "Actor_07").iterdir() if clip.name.split("-")[2] == "03")  # a happy clip
    gone.unlink()
    with pytest.raises(
        RecipeError, match=rf"1 clip changed since the result file was written: Actor_07/{gone.name} \(gone\)"
    ):
        run_learning_curve(trained_model, corpus, output, arms=["zero-shot"], **options)


def test_a_work_folder_of_the_users_is_refused_before_anything_runs(tmp_path, trained_model, corpus):
    work = tmp_path / "mine"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    with pytest.raises(SerHfError, match="holds files ser-hf learning-curve did not write"):
        run_learning_curve(
            trained_model,
            corpus,
            tmp_path / "c.json",
            corpus="ravdess",
            adapt_speakers=ADAPT,
            test_speakers=TEST,
            labels=LABELS,
            work_dir=work,
        )
    assert (work / "notes.txt").read_text() == "mine"
