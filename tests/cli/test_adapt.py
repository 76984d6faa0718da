"""``ser-hf adapt`` end to end: the command adapts a trained model to a labelled folder (and its unlabelled
recordings), saves an ordinary ser-hf model whose card says what it was adapted from, and refuses what it cannot adapt
on, naming the file, flag or label, before the model loads (a wrong model folder before torch is imported)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ser_hf.cli import main as cli_main
from ser_hf.train import main as train_main
from tests.conftest import RAVDESS_SAMPLE
from tests.recipe.test_parser import write_recipe
from tests.training.test_adaptation import write_model_config
from tests.training.test_self_training import FAST


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--labels", "angry,sad"], "no clip of sad among the speakers who adapt"),
        (["--labels", "angry"], "clips of 1 emotion(s) of angry only"),
        (["--test_speakers", "SPA"], "--test-speakers names every speaker"),
        (["--test_speakers", "NOBODY"], "--test-speakers NOBODY: not among"),
        (["--label_regex", r"_(?P<label>[a-z]+)_\d+\.flac$"], "label 'boredom' is not an emotion ser-hf knows"),
        (["--label_regex", r"_(?P<label>[a-z]+_\d+\.flac$"], "is not a regular expression"),
    ],
    ids=[
        "label-without-clips",
        "one-emotion-labelled",
        "no-speaker-left",
        "unknown-test-speaker",
        "label-out-of-vocabulary",
        "bad-regex",
    ],
)
def test_adapt_refuses_a_folder_it_cannot_adapt_on_before_the_model_loads(tmp_path, capsys, flags, message):
    folder = write_model_config(tmp_path / "model", model_type="ser_whisper", id2label={"0": "angry", "1": "happy"})
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("SPA_angry_0.flac", "SPA_happy_0.flac"):
        (clips / name).symlink_to(next(RAVDESS_SAMPLE.glob("Actor_01/*.flac")))
    if "label 'boredom'" in message:
        (clips / "SPA_boredom_0.flac").symlink_to(next(RAVDESS_SAMPLE.glob("Actor_01/*.flac")))
    status = cli_main(
        ["adapt", str(folder), "--data_dir", str(clips), "--output_dir", str(tmp_path / "out")]
        + ["--label_regex", r"_(?P<label>[a-z]+)_\d+\.flac$", "--speaker_regex", r"^(?P<speaker>[A-Z]+)_", *flags]
    )
    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_adapt_refuses_a_wrong_model_folder_before_torch_is_imported(tmp_path):
    folder = write_model_config(tmp_path / "model", model_type="ser_cnn2d", id2label={"0": "angry"})
    code = (
        "import sys\n"
        "from ser_hf.cli import main\n"
        f"status = main(['adapt', {str(folder)!r}, '--data_dir', {str(tmp_path)!r}, '--output_dir', 'x'])\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules, 'datasets' in sys.modules, status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False", "False", "2"], result.stdout + result.stderr
    assert "ser-hf: error:" in result.stderr and "cannot be adapted" in result.stderr


def _flat_folder(root: Path, source: Path, speakers: dict[str, str], emotions: dict[str, str], per: int) -> Path:
    """RAVDESS clips of `speakers` (actor -> new speaker id) laid out flat as SPEAKER_<emotion>_N.flac."""
    root.mkdir()
    for actor, speaker in speakers.items():
        for code, emotion in emotions.items():
            clips = sorted((source / f"Actor_{actor}").glob(f"03-01-{code}-*.flac"))[:per]
            for number, clip in enumerate(clips):
                (root / f"{speaker}_{emotion}_{number}.flac").symlink_to(clip.resolve())
    return root


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_ravdess) -> Path:
    """A tiny Whisper model trained as the general recipe is (FAST, corpus statistics) on RAVDESS actors 01-03."""
    folder = tmp_path_factory.mktemp("trained")
    recipe = write_recipe(folder / "r.yaml", tiny_ravdess, **FAST)
    train_main([str(recipe)])
    return folder / "run"


def test_adapt_trains_the_models_head_on_a_labelled_folder_and_saves_an_ordinary_model(tmp_path, trained_run, capsys):
    emotions = {"05": "angry", "03": "happy", "04": "sad"}  # three of the model's labels, by its vocabulary's aliases
    clips = _flat_folder(tmp_path / "clips", RAVDESS_SAMPLE, {"05": "SPA", "06": "SPB"}, emotions, per=2)
    unlabelled = _flat_folder(tmp_path / "unlabelled", RAVDESS_SAMPLE, {"07": "U"}, emotions, per=4)
    out = tmp_path / "adapted"
    status = cli_main(
        [
            "adapt",
            str(trained_run),
            "--data_dir",
            str(clips),
            "--output_dir",
            str(out),
            "--label_regex",
            r"_(?P<label>[a-z]+)_\d+\.flac$",
            "--speaker_regex",
            r"^(?P<speaker>[A-Z]+)_",
            "--test_speakers",
            "SPB",
            "--unlabelled_dir",
            str(unlabelled),
        ]
    )
    assert status == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    # One labelled speaker (U's clips only train): no figure worth printing, and the line says so.
    assert last_line.startswith("No estimate of the UA on new speakers of your set-up: ") and "1 speaker" in last_line
    config = json.loads((out / "config.json").read_text())
    # Every emotion the model named, those without a labelled clip kept as the model had them.
    model_labels = [json.loads((trained_run / "config.json").read_text())["id2label"][str(i)] for i in range(8)]
    assert [config["id2label"][str(i)] for i in range(8)] == model_labels
    report = json.loads((out / "metrics.json").read_text())
    assert report["split"]["speakers"]["test"] == ["SPB"] and report["evaluation"]["test"]["unweighted_accuracy"] >= 0
    record = json.loads((out / "adaptation.json").read_text())
    assert record["labelled_clips"] == 6 and record["unlabelled_recordings"] == 12
    assert record["new_labels"] == [] and record["dropped_labels"] == []
    assert record["unlabelled_labels"] == ["neutral", "calm", "fearful", "disgust", "surprised"]
    assert 0 < record["pseudo_labelled_clips"] < 12  # the surest share of each predicted emotion
    assert report["split"]["clips"]["train"] == 6 + record["pseudo_labelled_clips"]
    assert report["split"]["speakers"]["train"] == ["SPA", "U"]  # the unlabelled ones' speaker, read by the regex
    selection = record["selection"]
    assert selection["estimate_line"] == last_line and selection["chosen"] in selection["cross_validated_ua"]
    # One labelled speaker (SPA; U's clips are pseudo-labelled): folds over clips, said; the pseudo-labelled clips
    # only train, so the estimate scores the 6 labelled clips.
    assert "folds over clips" in selection["cross_validation"] and "one speaker" in selection["cross_validation"]
    # Only the classifier can change: the encoder and the projector are the trained model's, byte for byte.
    adapted, source = load_file(out / "model.safetensors"), load_file(trained_run / "model.safetensors")
    assert all(torch.equal(adapted[name], source[name]) for name in source if not name.startswith("classifier."))
    assert config["speaker_check_classifier"]["labels"] == model_labels
    card = (out / "README.md").read_text()
    assert f"**Adapted from:** `{trained_run.name}`" in card
    assert f"on 6 labelled clips and {record['pseudo_labelled_clips']} of 12 unlabelled recordings" in card
    assert "neutral, calm, fearful, disgust, surprised kept as the trained model had them" in card
    assert f"**Expected on new speakers of the set-up it was adapted to:** {last_line}" in card
    assert (out / "report.md").read_text().startswith(f"**{last_line}**")
    # An ordinary ser-hf model: predict loads it through the pipeline.
    capsys.readouterr()
    assert cli_main(["predict", str(out), str(next(clips.glob("SPB_angry_*")))]) == 0
    assert any(label in capsys.readouterr().out for label in ("happy", "sad", "angry"))


def test_self_training_on_the_test_speakers_own_clips_is_said_in_the_report_and_the_card(tmp_path, trained_run):
    """--self_train_on_test_speakers: the test speaker's unlabelled recordings join self-training, knowingly; the
    report and the card say the evaluation is transductive."""
    emotions = {"05": "angry", "03": "happy", "04": "sad"}
    clips = _flat_folder(tmp_path / "clips", RAVDESS_SAMPLE, {"05": "SPA", "06": "SPB"}, emotions, per=1)
    unlabelled = _flat_folder(tmp_path / "unlabelled", RAVDESS_SAMPLE, {"06": "SPB"}, {"05": "x", "04": "y"}, per=3)
    out = tmp_path / "adapted"
    flags = ["--label_regex", r"_(?P<label>[a-z]+)_\d+\.flac$", "--speaker_regex", r"^(?P<speaker>[A-Z]+)_"]
    flags += ["--test_speakers", "SPB", "--unlabelled_dir", str(unlabelled), "--self_train_on_test_speakers"]
    assert cli_main(["adapt", str(trained_run), "--data_dir", str(clips), "--output_dir", str(out), *flags]) == 0
    assert json.loads((out / "adaptation.json").read_text())["self_trained_on_test_speakers"] == ["SPB"]
    assert (out / "report.md").read_text().startswith("**Self-trained on the test speakers' own unlabelled clips")
    assert "UA on new speakers of your set-up" in (out / "report.md").read_text()
    assert (
        "**Transductive evaluation:** self-trained on the test speakers' own unlabelled clips (SPB)"
        in (out / "README.md").read_text()
    )


@pytest.mark.parametrize(
    "content, named",
    [
        ('{"selection": {"chosen": "head (pull 1)", "unchan', "cannot be read as JSON"),
        ('{"selection": ["head (pull 1)"]}', "'selection' is list"),
        ('{"selection": {"unchanged": false, "estimate": {}, "estimate_line": "x"}}', "selection.chosen is None"),
        ('["a", "list"]', "not a mapping"),
    ],
)
def test_a_damaged_adaptation_record_is_refused_by_push_in_one_line_naming_the_file(
    tmp_path, trained_run, capsys, monkeypatch, content, named
):
    """A truncated adaptation.json, a selection that is not a mapping or one without its keys: ser-hf push says so
    in one line naming the file, before the Hub is asked anything (never a TypeError or KeyError from the card)."""
    import shutil

    folder = tmp_path / "adapted"
    shutil.copytree(trained_run, folder)
    (folder / "adaptation.json").write_text(content)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing answers there: the refusal comes first
    assert cli_main(["push", str(folder), "--repo-id", "user/adapted"]) != 0
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(folder / "adaptation.json") in error and named in error
    assert "Traceback" not in error and "KeyError" not in error and "TypeError" not in error
