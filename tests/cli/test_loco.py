"""``ser-hf loco RECIPE`` at sample size: three small corpora (RAVDESS actors 01-04 of the shipped sample, TESS-named
generated clips, CREMA-D-named RAVDESS clips of actors 05-08), each left out once, the model trained on every speaker
of the others and tested on every speaker of the one left out, on every emotion of its training corpora, and scored on
the left-out corpus' emotions among those all three share with its choice restricted to them; the result file read
back on a second run (nothing trains), and one of other settings refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ser_hf.cli import main as cli_main
from ser_hf.errors import RecipeError
from ser_hf.experiments.loco import restrict_choice, run_loco, scored_labels, shared_labels
from tests.conftest import RAVDESS_SAMPLE, linked_corpus, write_audio
from tests.recipe.test_parser import write_recipe

#: What the three corpora hold: RAVDESS all 8 emotions, TESS 7 (no calm), CREMA-D 6 (no calm, no surprise).
SHARED = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
TESS_CODES = ("neutral", "happy", "sad", "angry", "fear", "disgust", "ps")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, cremad_clips):
    folder = tmp_path_factory.mktemp("loco")
    ravdess = linked_corpus(
        RAVDESS_SAMPLE,
        folder / "ravdess",
        # Actors 01-04, statement 01, first repetition: 15 clips each, all 8 emotions.
        keep=lambda clip: clip.parent.name <= "Actor_04" and clip.stem.split("-")[4:6] == ["01", "01"],
    )
    for seed, (speaker, word, code) in enumerate(
        (speaker, word, code) for speaker in ("OAF", "YAF") for word in ("back", "bar") for code in TESS_CODES
    ):
        write_audio(folder / "tess" / speaker / f"{speaker}_{word}_{code}.wav", seconds=0.5, seed=seed)
    path = write_recipe(
        folder / "r.yaml",
        ravdess,
        corpus=["ravdess", "tess", "cremad"],
        corpus_weights={"ravdess": 1, "tess": 1, "cremad": 1},
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        max_steps=2,
    )
    values = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**values, "data_dir": [str(ravdess), str(folder / "tess"), str(cremad_clips)]}))
    return path


@pytest.mark.slow  # trains three leave-one-corpus-out cells twice over: about 40 s
def test_each_corpus_left_out_once_on_its_shared_emotions_and_resumed(tmp_path, recipe, capsys, monkeypatch):
    output, run_dir = tmp_path / "loco.json", tmp_path / "runs"
    command = ["loco", str(recipe), "--seeds", "3", "--output", str(output), "--run_dir", str(run_dir)]
    assert cli_main([*command, "--disable_tqdm", "true"]) == 0
    printed = capsys.readouterr().out
    assert "| recipe | statistics | RAVDESS left out | TESS left out | CREMA-D left out | mean | seeds |" in printed
    assert "| `r` | the recipe's |" in printed
    document = json.loads(output.read_text())
    assert document["experiment"] == "loco" and {"command", "date", "commit", "machine"} <= set(document)
    cells = {cell["test"]: cell for cell in document["cells"]}
    assert sorted(cells) == ["cremad", "ravdess", "tess"]  # each corpus left out once
    speakers = {"ravdess": 4, "tess": 2, "cremad": 4}
    for left_out, cell in cells.items():
        report = json.loads((Path(cell["run"]) / "metrics.json").read_text())
        train, test = report["split"]["speakers"]["train"], report["split"]["speakers"]["test"]
        sources = [name for name in speakers if name != left_out]
        assert cell["train"] == "+".join(sorted(sources, key=list(speakers).index))
        # Every speaker of the other corpora trains, every speaker of the one left out is tested, none in both.
        assert {s.split(":")[0] for s in train} == set(sources) and len(train) == sum(speakers[n] for n in sources)
        assert {s.split(":")[0] for s in test} == {left_out} and len(test) == speakers[left_out]
        assert "validation" not in report["split"]["speakers"]
        assert json.loads((Path(cell["run"]) / "run_config.json").read_text())["training"]["seed"] == 3
        # Trained on every emotion its training corpora hold; scored on the left-out corpus' among the shared ones.
        assert report["labels"] == cell["model_labels"]
        assert cell["scored_labels"] == [label for label in SHARED if label in cell["model_labels"]]
        clips = report["evaluation"]["test"]["clip_predictions"]
        assert {clip["label"] for clip in clips} == set(cell["scored_labels"]) and len(clips) == cell["test_clips"]
        # The model's choice restricted to the scored emotions: UA from the clips' scores of those emotions alone.
        chosen = [max(cell["scored_labels"], key=lambda label: clip["scores"][label]) for clip in clips]
        recalls = [
            np.mean([c == label for c, clip in zip(chosen, clips) if clip["label"] == label])
            for label in cell["scored_labels"]
        ]
        assert cell["unweighted_accuracy"] == pytest.approx(100 * np.mean(recalls), abs=0.01)
    assert "calm" not in cells["ravdess"]["model_labels"] and "calm" in cells["tess"]["model_labels"]
    assert cells["tess"]["test_clips"] == 2 * 2 * 6  # TESS's surprised clips are not scored
    summary = document["summary"]["recipe"]
    assert set(summary["left_out"]) == set(speakers) and summary["mean"]["seeds"] == 1

    # Run again: every cell is read back from the result file (nothing trains), the result is the same.
    monkeypatch.setattr("ser_hf.training.trainer.SERTrainer.train", lambda *a, **k: pytest.fail("a cell trained"))
    assert cli_main([*command, "--disable_tqdm", "true"]) == 0
    assert json.loads(output.read_text())["cells"] == document["cells"]

    # Other settings into the same result file are refused before anything trains.
    with pytest.raises(RecipeError, match="was written with seeds = \\[3\\], not \\[4\\]"):
        run_loco(recipe, output, seeds=[4], run_dir=run_dir, overrides={"disable_tqdm": True})
    with pytest.raises(RecipeError, match="was written with corpora"):
        run_loco(
            recipe,
            output,
            seeds=[3],
            corpora=["ravdess", "tess"],
            run_dir=run_dir,
            overrides={"disable_tqdm": True},
        )


def test_the_protocol_refuses_what_it_sets_itself(tmp_path, recipe):
    with pytest.raises(RecipeError, match="^test_speakers: set by ser-hf loco itself"):
        run_loco(recipe, tmp_path / "l.json", overrides={"test_speakers": ["01"]})
    with pytest.raises(RecipeError, match="chooses its epoch on validation speakers"):
        run_loco(recipe, tmp_path / "l.json", overrides={"load_best_model_at_end": True})
    with pytest.raises(RecipeError, match="two corpora at least"):
        run_loco(recipe, tmp_path / "l.json", corpora=["tess"])
    with pytest.raises(RecipeError, match="^corpora nemo: not among the recipe's corpora"):
        run_loco(recipe, tmp_path / "l.json", corpora=["tess", "nemo"])
    with pytest.raises(RecipeError, match="^score_labels fear joy: not emotions of ser-hf"):
        run_loco(recipe, tmp_path / "l.json", score_labels=["happy", "fear", "joy"])
    assert not (tmp_path / "l.json").exists()


def test_a_result_file_is_not_resumed_on_other_clips(tmp_path, monkeypatch):
    """The clips are fingerprinted before any cell trains (a cell's training stands in here): a result file written on
    other clips is refused in one line naming the corpus' change, and nothing trains."""
    import ser_hf.experiments.loco as loco

    ravdess = linked_corpus(RAVDESS_SAMPLE, tmp_path / "ravdess", keep=lambda clip: clip.parent.name <= "Actor_02")
    for seed, code in enumerate(TESS_CODES):
        write_audio(tmp_path / "tess" / "OAF" / f"OAF_back_{code}.wav", seconds=0.5, seed=seed)
    recipe = write_recipe(tmp_path / "r.yaml", ravdess, load_best_model_at_end=False)
    values = yaml.safe_load(recipe.read_text())
    recipe.write_text(
        yaml.safe_dump({**values, "corpus": ["ravdess", "tess"], "data_dir": [str(ravdess), str(tmp_path / "tess")]})
    )
    trained = []

    def train_left_out(values, left_out, **kwargs):
        trained.append(left_out)
        row = {"train": "the others", "test": left_out, "scored_labels": ["sad"]}
        return {**row, "unweighted_accuracy": 50.0, "accuracy": 50.0, "macro_f1": 50.0}, {}

    monkeypatch.setattr(loco, "train_left_out", train_left_out)
    output = tmp_path / "loco.json"
    run_loco(recipe, output, run_dir=tmp_path / "runs")
    assert sorted(trained) == ["ravdess", "tess"]
    assert json.loads(output.read_text())["settings"]["clips"]["speakers"] == {
        "ravdess:01": 30,
        "ravdess:02": 30,
        "tess:OAF": 7,
    }
    (tmp_path / "tess" / "OAF" / "OAF_back_ps.wav").unlink()
    with pytest.raises(
        RecipeError, match=r"1 clip changed since the result file was written: tess/OAF/OAF_back_ps\.wav \(gone\)"
    ) as error:
        run_loco(recipe, output, run_dir=tmp_path / "runs")
    assert "\n" not in str(error.value) and len(trained) == 2


def test_score_labels_reach_the_protocol_from_the_command_line(tmp_path, recipe, monkeypatch, capsys):
    """``--score_labels`` (BENCHMARKS.md's four-corpus protocol: the six emotions RAVDESS, TESS and nEMO share, where
    the left-out corpus has them) is passed to run_loco as given; an unknown emotion is refused before training."""
    import ser_hf.experiments.loco as loco

    calls = []
    monkeypatch.setattr(loco, "run_loco", lambda *args, **kwargs: calls.append(kwargs) or {"cells": []})
    monkeypatch.setattr(loco, "loco_row", lambda document: "row")
    labels = ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
    assert cli_main(["loco", str(recipe), "--output", str(tmp_path / "l.json"), "--score-labels", *labels]) == 0
    assert calls[0]["score_labels"] == labels
    monkeypatch.undo()
    assert cli_main(["loco", str(recipe), "--output", str(tmp_path / "l.json"), "--score_labels", "joy"]) == 2
    assert "ser-hf: error: --score-labels joy: not emotions of ser-hf" in capsys.readouterr().err


def test_scored_labels_are_the_left_out_corpus_own_that_the_model_has_among_the_shared():
    labels_of = {
        "ravdess": ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"],
        "banglaser": ["neutral", "happy", "sad", "angry", "surprised"],
        "nemo": ["neutral", "happy", "sad", "angry", "fearful", "surprised"],
    }
    shared = shared_labels(labels_of, ["ravdess", "nemo"])
    assert shared == ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
    # BanglaSER has no fear: scored on five; a model without surprise is not scored on it.
    assert scored_labels(labels_of["banglaser"], labels_of["ravdess"], shared) == [
        "neutral",
        "happy",
        "sad",
        "angry",
        "surprised",
    ]
    assert scored_labels(labels_of["nemo"], ["neutral", "happy", "sad", "angry"], shared) == [
        "neutral",
        "happy",
        "sad",
        "angry",
    ]


def test_restricted_choice_renormalises_the_scored_emotions():
    clips = [
        {"path": "a", "speaker_id": "s1", "label": "happy", "scores": {"calm": 0.6, "happy": 0.3, "sad": 0.1}},
        {"path": "b", "speaker_id": "s2", "label": "sad", "scores": {"calm": 0.5, "happy": 0.2, "sad": 0.3}},
    ]
    restricted = restrict_choice({"clip_predictions": clips}, ["happy", "sad"])
    # Calm wins both clips unrestricted; among happy and sad each clip's own emotion wins.
    assert restricted["unweighted_accuracy"] == 1.0
    assert [clip["prediction"] for clip in restricted["clip_predictions"]] == ["happy", "sad"]
    assert restricted["clip_predictions"][0]["scores"]["happy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="clips of happy"):
        restrict_choice({"clip_predictions": clips}, ["sad"])
