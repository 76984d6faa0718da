"""Ensembles: trained models saved as one (`build_ensemble`), and ensemble recipes, whose reported scores are what the
saved ensemble gives through `pipeline`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

from ser_hf.cli import main as cli_main
from ser_hf.errors import RecipeError
from ser_hf.evaluation.evaluate_model import CorpusSource, evaluate_model
from ser_hf.models import EnsembleForAudioClassification, OpenSmileFeatureExtractor, build_baseline, build_ensemble
from ser_hf.run_folder import RunDir
from ser_hf.train import main
from ser_hf.training.ensemble import fuse_clip_predictions
from tests.conftest import RAVDESS_SAMPLE
from tests.conftest_models import LABELS as CLASS_LABEL
from tests.conftest_models import build_tiny, load_clip
from tests.recipe.test_parser import write_recipe

LABELS = list(CLASS_LABEL.names)


def _scores(classifier, clip) -> dict[str, float]:
    return {row["label"]: row["score"] for row in classifier(clip, top_k=None)}


@pytest.fixture(scope="module")
def member_dirs(tmp_path_factory) -> list[Path]:
    """A tiny log-mel CNN2D and an openSMILE (eGeMAPS) classifier with random weights, saved as runs save them."""
    root = tmp_path_factory.mktemp("members")
    extractor = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02", feature_mean=[0.5] * 88, feature_std=[2.0] * 88)
    built = {
        "cnn2d": build_tiny("cnn2d"),
        "opensmile": build_baseline("opensmile", LABELS, feature_extractor=extractor, hidden_sizes=(16,)),
    }
    for name, (model, feature_extractor) in built.items():
        model.eval().save_pretrained(root / name)
        feature_extractor.save_pretrained(root / name)
    return [root / "cnn2d", root / "opensmile"]


def test_a_saved_ensemble_scores_the_weighted_mean_of_its_members(tmp_path, member_dirs):
    model, feature_extractor = build_ensemble(member_dirs, weights=[1.0, 3.0])
    model.save_pretrained(tmp_path)
    feature_extractor.save_pretrained(tmp_path)
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path)
    assert isinstance(loaded, EnsembleForAudioClassification)
    assert loaded.config.member_names == ["cnn2d", "opensmile"] and loaded.config.member_weights == [1.0, 3.0]
    assert AutoFeatureExtractor.from_pretrained(tmp_path).model_input_names == [
        "member0_input_features",
        "member0_attention_mask",
        "member1_input_features",
    ]
    clip = load_clip(3)
    members = [_scores(pipeline("audio-classification", model=str(path)), clip) for path in member_dirs]
    ensemble = _scores(pipeline("audio-classification", model=str(tmp_path)), clip)
    assert set(ensemble) == set(LABELS)
    for label in LABELS:
        assert ensemble[label] == pytest.approx(0.25 * members[0][label] + 0.75 * members[1][label], abs=1e-6)


def test_building_an_ensemble_checks_its_members(tmp_path, member_dirs):
    extractor = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02")
    other_labels, _ = build_baseline("opensmile", LABELS[::-1], feature_extractor=extractor)
    other_labels.save_pretrained(tmp_path / "reversed")
    extractor.save_pretrained(tmp_path / "reversed")
    with pytest.raises(ValueError, match="same labels in the same order: cnn2d has .* reversed has"):
        build_ensemble([member_dirs[0], tmp_path / "reversed"])
    with pytest.raises(ValueError, match="at least two models"):
        build_ensemble(member_dirs[:1])
    with pytest.raises(
        ValueError,
        match=r"^weights \[1.0, 0.0\]: the members' weights \(member_weights in a recipe\) must be positive",
    ):
        build_ensemble(member_dirs, weights=[1.0, 0.0])


def test_ser_hf_ensemble_saves_the_members_as_one_model_and_keeps_other_folders_intact(tmp_path, member_dirs, capsys):
    output = tmp_path / "ensemble"
    command = ["ensemble", *map(str, member_dirs), "--output-dir", str(output), "--weights", "1", "3"]
    assert cli_main([*command, "--names", "logmel", "functionals"]) == 0
    assert "Ensemble of 2 models saved" in capsys.readouterr().out
    loaded = AutoModelForAudioClassification.from_pretrained(output)
    assert loaded.config.member_names == ["logmel", "functionals"] and loaded.config.member_weights == [1.0, 3.0]
    run_config = json.loads((output / "run_config.json").read_text())
    assert run_config["model"]["members"] == [str(path) for path in member_dirs]
    clip = load_clip(5)
    members = [_scores(pipeline("audio-classification", model=str(path)), clip) for path in member_dirs]
    ensemble = _scores(pipeline("audio-classification", model=str(output)), clip)
    for label in LABELS:
        assert ensemble[label] == pytest.approx(0.25 * members[0][label] + 0.75 * members[1][label], abs=1e-6)
    # ser-hf predict batches the ensemble's clips as it batches its members' (both are padding-invariant).
    clip_file = RAVDESS_SAMPLE / "Actor_08" / "03-01-05-01-01-01-08.flac"
    assert cli_main(["predict", str(output), str(clip_file)]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert row["error"] is None and sum(row["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    # An earlier ensemble is rebuilt in place; a member's folder or a trained run's is refused, left as it was.
    assert cli_main([*command[:-3], "--weights", "1", "1"]) == 0
    assert AutoModelForAudioClassification.from_pretrained(output).config.member_weights == [1.0, 1.0]
    before = {path.name: path.read_bytes() for path in member_dirs[0].iterdir()}
    assert cli_main([*command[:3], "--output-dir", str(member_dirs[0])]) == 2
    assert "is one of the members" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("{}")
    assert cli_main([*command[:3], "--output-dir", str(tmp_path / "run")]) == 2
    assert "already holds other files (metrics.json)" in capsys.readouterr().err
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["metrics.json"]
    assert {path.name: path.read_bytes() for path in member_dirs[0].iterdir()} == before
    assert cli_main([*command[:3], "--output-dir", str(tmp_path / "new"), "--weights", "1"]) == 2
    assert "one per member (2)" in capsys.readouterr().err and not (tmp_path / "new" / "config.json").exists()


def test_fusing_members_scored_on_different_clips_is_refused():
    clip = {"path": "a.flac", "speaker_id": "01", "label": "sad", "scores": {"sad": 0.6, "angry": 0.4}}
    fused = fuse_clip_predictions([[clip], [{**clip, "scores": {"sad": 0.2, "angry": 0.8}}]], ["sad", "angry"])
    assert np.exp(fused[3]) == pytest.approx(np.array([[0.4, 0.6]]))
    with pytest.raises(ValueError, match="different clips"):
        fuse_clip_predictions([[clip], [{**clip, "path": "b.flac"}]], ["sad", "angry"])


def _member_recipes(tmp_path: Path, data_dir: Path, normalization: str = "global") -> None:
    write_recipe(
        tmp_path / "cnn.yaml",
        data_dir,
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    write_recipe(
        tmp_path / "smile.yaml",
        data_dir,
        model_type="opensmile",
        model_config={"hidden_sizes": []},
        feature_extractor_config={
            "feature_set": "eGeMAPSv02",
            "num_selected_features": 20,
            "normalization": normalization,
        },
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )


def test_an_ensemble_recipe_reports_what_its_saved_model_scores(tmp_path, tiny_ravdess):
    _member_recipes(tmp_path, tiny_ravdess)
    recipe = tmp_path / "ensemble.yaml"
    # The ensemble's split and folder replace the members' own (they would train on speakers 01-02, test 04).
    recipe.write_text(
        yaml.safe_dump(
            {
                "ensemble_members": ["cnn.yaml", "smile.yaml"],
                "member_weights": [2, 1],
                "train_speakers": ["01", "02", "03"],
                "validation_speakers": None,
                "test_speakers": ["04"],
                "output_dir": str(tmp_path / "ensemble"),
            }
        )
    )
    (report,) = main([str(recipe)])
    run = tmp_path / "ensemble"
    members = [json.loads((run / "members" / name / "metrics.json").read_text()) for name in ("cnn", "smile")]
    assert all(member["split"]["speakers"] == {"train": ["01", "02", "03"], "test": ["04"]} for member in members)
    # Each member trains from its values (no member recipe written to call it); its run keeps the recipe it ran.
    assert yaml.safe_load((run / "members" / "smile" / "recipe.yaml").read_text())["model_type"] == "opensmile"
    assert not (run / "members" / "smile.yaml").exists()
    assert report.to_dict() == json.loads((run / "metrics.json").read_text())
    assert report.ensemble.weights == [2.0, 1.0]
    # Every key the ensemble's report holds is a field of the typed record, and it reads back as written.
    record = RunDir(run).read_report()
    assert record.unknown_keys() == [] and record.to_dict() == report.to_dict()
    assert record.ensemble.members == [str(run / "members" / name) for name in ("cnn", "smile")]
    assert (
        record.calibration is None and "calibration" not in report.to_dict()
    )  # an ensemble fits no temperature itself
    clips = report.evaluation["test"].clip_predictions
    member_clips = [{clip["path"]: clip for clip in m["evaluation"]["test"]["clip_predictions"]} for m in members]
    classifier = pipeline("audio-classification", model=str(run))
    for clip in clips[:3]:
        expected = {
            label: (
                2 * member_clips[0][clip["path"]]["scores"][label] + member_clips[1][clip["path"]]["scores"][label]
            )
            / 3
            for label in report.labels
        }
        assert clip["scores"] == pytest.approx(expected, abs=1e-6)
        audio = tiny_ravdess / f"Actor_{clip['speaker_id']}" / Path(clip["path"]).name
        assert _scores(classifier, str(audio)) == pytest.approx(clip["scores"], abs=1e-4)
    assert (run / "README.md").is_file() and "ser_ensemble" in (run / "README.md").read_text()


def test_evaluating_an_ensemble_normalises_each_speaker_normalised_member_with_the_speakers_statistics(
    tmp_path, tiny_ravdess
):
    _member_recipes(tmp_path, tiny_ravdess, normalization="speaker")
    recipe = tmp_path / "ensemble.yaml"
    split = {"train_speakers": ["01", "02", "03"], "validation_speakers": None, "test_speakers": ["04"]}
    recipe.write_text(
        yaml.safe_dump({"ensemble_members": ["cnn.yaml", "smile.yaml"], **split, "output_dir": str(tmp_path / "run")})
    )
    (report,) = main([str(recipe)])
    assert report.normalization["transductive"] and "smile: " in report.normalization["protocol"]
    # ser-hf evaluate of the saved ensemble on its test speaker gives the training report's (transductive) scores:
    # the openSMILE member gets speaker 04's statistics, computed from the evaluated clips, not the global ones.
    evaluated = evaluate_model(str(tmp_path / "run"), CorpusSource("ravdess", str(tiny_ravdess)), split="test")
    ((key, metrics),) = evaluated["evaluation"].items()
    assert evaluated["normalization"]["transductive"] and "smile: " in evaluated["normalization"]["protocol"]
    expected = {Path(clip["path"]).name: clip["scores"] for clip in report.evaluation["test"].clip_predictions}
    scored = {Path(clip["path"]).name: clip["scores"] for clip in metrics["clip_predictions"]}
    assert set(scored) == set(expected)
    for name, scores in scored.items():
        assert scores == pytest.approx(expected[name], abs=1e-4)
    assert metrics["unweighted_accuracy"] == pytest.approx(report.evaluation["test"].unweighted_accuracy)


def test_an_ensemble_recipe_names_what_is_wrong_with_it(tmp_path, tiny_ravdess):
    _member_recipes(tmp_path, tiny_ravdess)
    cases = {
        "case_missing.yaml": ({"ensemble_members": ["cnn.yaml", "missing.yaml"]}, "Member recipe 'missing.yaml'"),
        "case_one.yaml": ({"ensemble_members": ["cnn.yaml"]}, "at least two member recipes"),
        "case_weights.yaml": (
            {"ensemble_members": ["cnn.yaml", "smile.yaml"], "member_weights": [1]},
            "positive weight",
        ),
    }
    for name, (values, message) in cases.items():
        (tmp_path / name).write_text(yaml.safe_dump(values))
        with pytest.raises(RecipeError, match=message):
            main([str(tmp_path / name)])
