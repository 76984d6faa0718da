"""The adaptation path walked as a user walks it, on models made as the shipped recipes make them: the general
speaker-statistics recipe's settings at sample size, its validation speakers fitting a calibration temperature; then
``ser-hf adapt`` from the command line (a Hub id as MODEL, labelled and unlabelled folders, test speakers), ``ser-hf
predict`` and ``pipeline("audio-classification")`` on the adapted model, and its push to the (local) Hub and load back.
Every shipped Whisper recipe that standardises with stored statistics is trained so and adapted too (slow)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ser_hf.adaptation.trained_model import STORED_STATISTICS
from ser_hf.cli import main as cli_main
from ser_hf.recipe.data_arguments import DataArguments
from ser_hf.recipe.yaml_io import read_recipe_file
from ser_hf.train import main as train_main
from tests.conftest import RAVDESS_SAMPLE
from tests.conftest_models import TINY_WHISPER
from tests.hub.test_hub import TOKEN, USER, hub_env
from tests.hub_server import LocalHub

REPO = Path(__file__).resolve().parents[2]
#: Every shipped Whisper recipe whose feature extractor standardises with stored statistics (what adaptation keeps).
WHISPER_RECIPES_WITH_STATISTICS = [
    path
    for path in sorted((REPO / "recipes").glob("*.yaml"))
    if (values := read_recipe_file(path)).get("model_type") == "whisper"
    and (values.get("feature_extractor_config") or {}).get("normalization") in STORED_STATISTICS
]
GENERAL_SPEAKER_RECIPE = REPO / "recipes" / "general_whisper_base_speaker.yaml"
LABEL_REGEX, SPEAKER_REGEX = r"_(?P<label>[a-z]+)_\d+\.flac$", r"^(?P<speaker>[A-Z]+)_"
EMOTIONS = {"05": "angry", "03": "happy", "04": "sad"}  # RAVDESS codes -> three of the model's labels


def sample_size_recipe(recipe: Path, data_dir: Path, folder: Path) -> Path:
    """`recipe`'s model and training settings (its statistics, pooling, head, window kept as far as a tiny Whisper
    allows), on the RAVDESS sample's actors 01-04: 01-02 train, 03 validates and fits the calibration temperature
    (``calibration_min_clips`` forced down to its 8 clips), 04 tests; a tiny Whisper of random weights for the
    encoder, a few epochs."""
    values = read_recipe_file(recipe)
    data_keys = {field.name for field in dataclasses.fields(DataArguments)}
    values = {key: value for key, value in values.items() if key not in data_keys and key != "model_name_or_path"}
    values["model_config"] = {**TINY_WHISPER, **(values.get("model_config") or {}), "classifier_proj_size": 8}
    values["encoder_window_seconds"] = 6
    layers = values["model_config"].get("pooled_layers")
    if layers:  # those the tiny encoder has (two layers)
        values["model_config"]["pooled_layers"] = [layer for layer in layers if layer <= 2]
    # A corpus adversary needs two training corpora; the sample is one (the adversary is not saved with the model).
    values.pop("corpus_adversarial_weight", None)
    if "finetune_top_layers" in values:
        values["finetune_top_layers"] = 1
    values.update(
        corpus="ravdess",
        data_dir=str(data_dir),
        split_protocol="speaker",
        train_speakers=["01", "02"],
        validation_speakers=["03"],
        test_speakers=["04"],
        calibration_min_clips=1,
        num_train_epochs=40,
        learning_rate=1.0e-2,  # an overconfident head, whose temperature the validation speaker fits above 1
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        output_dir=str(folder / "run"),
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / recipe.name
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def trained_as_shipped(recipe: Path, data_dir: Path, folder: Path) -> Path:
    """The model `recipe` trains, at sample size; its temperature fitted (what made ``ser-hf adapt`` crash)."""
    (report,) = train_main([str(sample_size_recipe(recipe, data_dir, folder))])
    run = folder / "run"
    assert report.calibration is not None and report.calibration.temperature != 1.0
    assert json.loads((run / "config.json").read_text())["calibration_temperature"] == report.calibration.temperature
    return run


def flat_folder(root: Path, speakers: dict[str, str], per: int) -> Path:
    """RAVDESS sample clips of `speakers` (actor -> new speaker id) laid out flat as SPEAKER_<emotion>_N.flac."""
    root.mkdir()
    for actor, speaker in speakers.items():
        for code, emotion in EMOTIONS.items():
            for number, clip in enumerate(sorted((RAVDESS_SAMPLE / f"Actor_{actor}").glob(f"03-01-{code}-*.flac"))):
                if number < per:
                    (root / f"{speaker}_{emotion}_{number}.flac").symlink_to(clip.resolve())
    return root


def adapt_flags(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--data_dir",
        str(data_dir),
        "--output_dir",
        str(output_dir),
        "--label_regex",
        LABEL_REGEX,
        "--speaker_regex",
        SPEAKER_REGEX,
        *extra,
    ]


def run_in_fresh_process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_a_user_adapts_the_general_speaker_model_as_shipped_from_the_hub_then_predicts_and_pushes_it(
    tmp_path, tiny_ravdess, monkeypatch
):
    general = trained_as_shipped(GENERAL_SPEAKER_RECIPE, tiny_ravdess, tmp_path / "general")
    labelled = flat_folder(tmp_path / "labelled", {"05": "SPA", "06": "SPB"}, per=2)
    unlabelled = flat_folder(tmp_path / "unlabelled", {"07": "U"}, per=4)
    adapted = tmp_path / "adapted"
    with LocalHub(token=TOKEN, user=USER) as hub:
        env = hub_env(hub, tmp_path / "home")
        # The general model on the Hub, as a user finds it; adapted from its Hub id in a fresh process.
        run_in_fresh_process(
            [sys.executable, "-m", "ser_hf.cli", "push", str(general), "--repo-id", "me/general"], env
        )
        flags = adapt_flags(labelled, adapted, "--test_speakers", "SPB", "--unlabelled_dir", str(unlabelled))
        run_in_fresh_process([sys.executable, "-m", "ser_hf.cli", "adapt", "me/general", *flags], env)
        record = json.loads((adapted / "adaptation.json").read_text())
        assert record["adapted_from"] == "me/general" and record["labelled_clips"] == 6
        assert record["unlabelled_recordings"] == 12 and record["unlabelled_clips_of_labelled_folder"] == 0
        report = json.loads((adapted / "metrics.json").read_text())
        assert report["split"]["speakers"]["test"] == ["SPB"]
        assert report["normalization"]["mode"] == "speaker"  # the model's own statistics, as it was trained
        card = (adapted / "README.md").read_text()
        assert "**Adapted from:** [me/general](https://huggingface.co/me/general)" in card
        # ser-hf predict and a user's pipeline read the adapted model.
        predicted = run_in_fresh_process(
            [sys.executable, "-m", "ser_hf.cli", "predict", str(adapted), str(next(labelled.glob("SPB_angry_*")))], env
        )
        # The adapted model names every emotion the general one named (those without labelled clips kept as they were).
        config = json.loads((adapted / "config.json").read_text())
        labels = set(config["id2label"].values())
        assert labels == set(json.loads((general / "config.json").read_text())["id2label"].values())
        assert json.loads(predicted.stdout.splitlines()[-1])["label"] in labels
        run_in_fresh_process(
            [sys.executable, "-m", "ser_hf.cli", "push", str(adapted), "--repo-id", "me/adapted"], env
        )
        assert hub.files("me/adapted")["model.safetensors"] == (adapted / "model.safetensors").read_bytes()
        # Loaded back from the Hub by transformers' pipeline alone (ser-hf imported for its classes).
        code = (
            "import sys, ser_hf\n"
            "from transformers import pipeline\n"
            "classifier = pipeline('audio-classification', model='me/adapted')\n"
            "print(classifier(sys.argv[1])[0]['label'])\n"
        )
        clip = str(next(labelled.glob("SPB_sad_*")).resolve())
        loaded = run_in_fresh_process([sys.executable, "-c", code, clip], env)
        assert loaded.stdout.split()[-1] in labels


@pytest.mark.slow
@pytest.mark.parametrize("recipe", WHISPER_RECIPES_WITH_STATISTICS, ids=lambda path: path.stem)
def test_every_shipped_whisper_recipe_with_statistics_trains_a_model_that_adapts(tmp_path, tiny_ravdess, recipe):
    trained = trained_as_shipped(recipe, tiny_ravdess, tmp_path / "trained")
    labelled = flat_folder(tmp_path / "labelled", {"05": "SPA", "06": "SPB"}, per=2)
    out = tmp_path / "adapted"
    assert cli_main(["adapt", str(trained), *adapt_flags(labelled, out, "--test_speakers", "SPB")]) == 0
    assert json.loads((out / "metrics.json").read_text())["evaluation"]["test"]["clips"] == 6


def test_the_recipes_checked_include_every_general_recipe():
    names = {path.stem for path in WHISPER_RECIPES_WITH_STATISTICS}
    assert {"general_whisper_base", "general_whisper_base_speaker", "general_whisper_base_single_clip"} <= names
