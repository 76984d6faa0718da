"""``ser-hf kfold RECIPE`` at sample size: the recipe's speaker k-fold through the training sequence, every speaker
tested once and never trained on in its fold, the result file written with each fold and read back on a second run
(no fold trains again), and the k-fold settings refused as recipe overrides."""

from __future__ import annotations

import json

import pytest
import yaml

from ser_hf.cli import main as cli_main
from ser_hf.errors import RecipeError
from ser_hf.experiments.kfold import run_kfold
from tests.conftest import RAVDESS_SAMPLE, linked_corpus
from tests.recipe.test_parser import write_recipe


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, tiny_ravdess):
    folder = tmp_path_factory.mktemp("kfold")
    return write_recipe(folder / "r.yaml", tiny_ravdess, eval_strategy="no", save_strategy="no", max_steps=2)


def test_kfold_tests_every_speaker_once_and_resumes(tmp_path, recipe, capsys, monkeypatch):
    output, run_dir = tmp_path / "kfold.json", tmp_path / "runs"
    command = ["kfold", str(recipe), "--folds", "2", "--fold_seed", "7", "--output", str(output)]
    command += ["--run_dir", str(run_dir), "--disable_tqdm", "true", "--model_config.conv_channels", "[4, 6]"]
    assert cli_main(command) == 0
    printed = capsys.readouterr().out
    assert "| r (2 folds, seed 7) |" in printed
    document = json.loads(output.read_text())
    assert document["experiment"] == "kfold" and {"command", "date", "commit", "machine"} <= set(document)
    tested = [speaker for cell in document["cells"] for speaker in cell["test_speakers"]]
    assert sorted(tested) == ["01", "02", "03", "04"]  # every speaker once
    for fold, cell in enumerate(sorted(document["cells"], key=lambda cell: cell["fold"])):
        report = json.loads((run_dir / f"fold-{fold}" / "metrics.json").read_text())
        assert not set(report["split"]["speakers"]["train"]) & set(cell["test_speakers"])
        assert cell["unweighted_accuracy"] == round(100 * report["evaluation"]["test"]["unweighted_accuracy"], 2)
    assert document["summary"]["folds"] == 2 and "pooled" in document["summary"]
    # The dotted override set one entry of the recipe's model_config, the folds trained with it.
    assert document["settings"]["overrides"] == {"disable_tqdm": True, "model_config.conv_channels": [4, 6]}
    for fold in (0, 1):
        assert json.loads((run_dir / f"fold-{fold}" / "config.json").read_text())["conv_channels"] == [4, 6]

    # Run again: the folds are read back (nothing trains), the result is the same; the cells are the runs' figures,
    # never an earlier file's (one edited here stands for a fold trained anew with overwrite_output_dir since).
    monkeypatch.setattr("ser_hf.training.trainer.SERTrainer.train", lambda *a, **k: pytest.fail("a fold trained"))
    stale = json.loads(output.read_text())
    stale["cells"][0]["unweighted_accuracy"] = -1.0
    output.write_text(json.dumps(stale))
    assert cli_main(command) == 0
    assert json.loads(output.read_text())["cells"] == document["cells"]


@pytest.mark.slow  # a 2-fold k-fold of one step a fold before the refusal
def test_a_result_file_is_not_resumed_on_other_clips(tmp_path, tiny_ravdess):
    corpus = linked_corpus(tiny_ravdess, tmp_path / "ravdess")
    recipe = write_recipe(tmp_path / "r.yaml", corpus, eval_strategy="no", save_strategy="no", max_steps=1)
    output = tmp_path / "kfold.json"
    options = dict(folds=2, output_dir=tmp_path / "runs", overrides={"disable_tqdm": True})
    run_kfold(recipe, output, **options)
    document = json.loads(output.read_text())
    assert document["settings"]["clips"]["clips"] == 32
    # Four clips' bytes replaced by other recordings of their speaker, names (so labels and speakers) kept.
    clips = sorted((corpus / "Actor_03").iterdir())[:4]
    others = [
        clip
        for clip in sorted((RAVDESS_SAMPLE / "Actor_03").iterdir())
        if not (corpus / "Actor_03" / clip.name).exists()
    ]
    for clip, other in zip(clips, others):
        clip.unlink()  # a link into the shipped sample: replaced, not written through
        clip.write_bytes(other.read_bytes())
    named = ", ".join(rf"Actor_03/{clip.name} \(other contents\)" for clip in clips)
    with pytest.raises(
        RecipeError, match=rf"kfold.json: 4 clips changed since the result file was written: {named}; "
    ):
        run_kfold(recipe, output, **options)
    sorted((corpus / "Actor_04").iterdir())[0].unlink()  # and a clip deleted since
    with pytest.raises(RecipeError, match=r"5 clips changed since the result file was written: .*\(gone\)"):
        run_kfold(recipe, output, **options)
    assert json.loads(output.read_text()) == document  # the refused file is left as it was


def test_the_split_settings_are_the_experiments_own(tmp_path, recipe):
    with pytest.raises(RecipeError, match="^num_folds: set by ser-hf kfold itself"):
        run_kfold(recipe, tmp_path / "k.json", overrides={"num_folds": 3})
    with pytest.raises(RecipeError, match="^folds 1: a k-fold needs 2 folds or more"):
        run_kfold(recipe, tmp_path / "k.json", folds=1)


def test_more_folds_than_speakers_names_the_flag_as_typed(tmp_path, recipe, capsys):
    command = ["kfold", str(recipe), "--folds", "20", "--output", str(tmp_path / "k.json")]
    assert cli_main(command + ["--run_dir", str(tmp_path / "runs"), "--disable_tqdm", "true"]) == 2
    error = capsys.readouterr().err
    assert "--folds 20: the recipe's folded corpus has 4 speakers" in error and "give 2 to 4 folds" in error
    assert "num_folds" not in error and "--n-splits" not in error


def test_the_recipe_is_folded_as_the_benchmark_folds_it(tmp_path):
    """Its own split dropped, the fold seed as split and training seed, no validation speakers where it chooses
    nothing on them, 0.2 of each fold's training speakers where it does, a merged recipe's folds splitting the
    corpus it does not train only on (or the one named)."""
    from ser_hf.experiments.kfold import kfold_values

    recipe = {"corpus": "ravdess", "train_speakers": ["01"], "test_speakers": ["02"], "load_best_model_at_end": False}
    values = kfold_values(recipe, 5, 42, tmp_path)
    assert "train_speakers" not in values and "test_speakers" not in values
    assert (values["split_protocol"], values["num_folds"], values["split_seed"], values["seed"]) == (
        "kfold",
        5,
        42,
        42,
    )
    assert values["validation_size"] == 0.0
    assert kfold_values({**recipe, "load_best_model_at_end": True}, 5, 42, tmp_path)["validation_size"] == 0.2
    merged = {"corpus": ["ravdess", "tess", "nemo"], "train_only_corpora": ["tess", "nemo"]}
    assert kfold_values(merged, 5, 7, tmp_path)["train_only_corpora"] == ["tess", "nemo"]  # as the recipe says
    chosen = kfold_values(merged, 5, 7, tmp_path, fold_corpus="nemo")
    assert chosen["train_only_corpora"] == ["ravdess", "tess"]
    with pytest.raises(RecipeError, match="name the corpus the folds split with fold_corpus"):
        kfold_values({"corpus": ["tess", "nemo"]}, 5, 42, tmp_path)
    with pytest.raises(RecipeError, match="^fold_corpus cremad: not among"):
        kfold_values(merged, 5, 42, tmp_path, fold_corpus="cremad")


def test_model_path_must_be_id_equals_folder_and_replaces_only_that_id(tmp_path, recipe, capsys):
    """``--model_path`` must be ID=FOLDER (the flag named as typed, nothing written); a recipe's Hub id is replaced
    by the local folder given for it, and nothing else."""
    from ser_hf.model_location import with_model_path

    command = ["kfold", str(recipe), "--output", str(tmp_path / "k.json"), "--model_path", "openai/whisper-base"]
    assert cli_main(command) == 2
    assert "--model_path 'openai/whisper-base' is not of the form ID=FOLDER" in capsys.readouterr().err
    assert not (tmp_path / "k.json").exists()
    paths = {"openai/whisper-base": "/models/whisper-base"}
    assert with_model_path({"model_name_or_path": "openai/whisper-base"}, paths) == {
        "model_name_or_path": "/models/whisper-base"
    }
    assert with_model_path({"model_name_or_path": "openai/whisper-tiny"}, paths) == {
        "model_name_or_path": "openai/whisper-tiny"
    }


@pytest.mark.slow  # end to end, the longest of its file: make test-slow (CI runs both)
def test_an_ensemble_recipe_is_folded_member_by_member_and_fused_on_each_fold(tmp_path, tiny_ravdess):
    """Each member trains on the k-fold's folds (the ensemble's keys given to it, its own output folder under the
    run's members/), and each fold's fused model scores that fold's test speakers; the result file's cells are the
    fused models' and its fingerprint holds each member's resolved values."""
    for name, channels in (("a", [4, 8]), ("b", [4, 4])):
        write_recipe(tmp_path / f"{name}.yaml", tiny_ravdess, model_config={"conv_channels": channels})
    ensemble = tmp_path / "ensemble.yaml"
    shared = {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False, "max_steps": 1}
    ensemble.write_text(yaml.safe_dump({"ensemble_members": ["a.yaml", "b.yaml"], "member_weights": [2, 1], **shared}))
    run_dir = tmp_path / "runs"
    document = run_kfold(ensemble, tmp_path / "k.json", folds=2, output_dir=run_dir, overrides={"disable_tqdm": True})
    members = document["settings"]["recipe_values"]["ensemble_members"]
    assert set(members) == {"a", "b"} and members["b"]["model_config"] == {"conv_channels": [4, 4]}
    assert members["a"]["max_steps"] == 1 and members["a"]["split_protocol"] == "kfold"
    for cell in document["cells"]:
        fold = f"fold-{cell['fold']}"
        fused = json.loads((run_dir / fold / "metrics.json").read_text())
        assert fused["ensemble"]["weights"] == [2.0, 1.0]  # the recipe's member_weights
        assert cell["unweighted_accuracy"] == round(100 * fused["evaluation"]["test"]["unweighted_accuracy"], 2)
        for member in ("a", "b"):
            trained = json.loads((run_dir / "members" / member / fold / "metrics.json").read_text())
            assert trained["split"]["speakers"]["test"] == cell["test_speakers"]
    assert sorted(s for cell in document["cells"] for s in cell["test_speakers"]) == ["01", "02", "03", "04"]
