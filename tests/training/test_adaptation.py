"""Adapting a trained ser-hf model to a user's recordings (``ser-hf adapt``): the head's rows matched to the user's
labels by name (``match_head_labels``), L2-SP towards the trained weights (``starting_point_weight``), the recipe
``adaptation_values`` makes from a model folder and its refusals, and the command end to end (card, predict,
self-training on unlabelled recordings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainingArguments, WhisperConfig

from ser_hf.cli import main as cli_main
from ser_hf.errors import RecipeError
from ser_hf.inputs.fast_mode import CachedEncoderHead
from ser_hf.models import build_ssl_classifier
from ser_hf.models.runtime.registry import ENCODER_FAMILIES
from ser_hf.recipe.adaptation import (
    ADAPTABLE_FAMILIES,
    ADAPTATION_NORMALIZATION,
    ADAPTATION_SETTINGS,
    adaptation_values,
    trained_model_facts,
)
from ser_hf.train import main as train_main
from ser_hf.training.trainer import SERTrainer
from tests.conftest import RAVDESS_SAMPLE
from tests.conftest_models import TINY_WHISPER
from tests.recipe.test_parser import write_recipe
from tests.training.test_self_training import FAST

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def _saved_classifier(folder: Path, labels=LABELS) -> Path:
    model = build_ssl_classifier(
        WhisperConfig(**TINY_WHISPER), labels, use_weighted_layer_sum=True, pooling_mode="layer_statistics"
    )
    model.save_pretrained(folder)
    return folder


def test_every_encoder_family_of_the_registry_can_be_adapted():
    assert set(ADAPTABLE_FAMILIES) == set(ENCODER_FAMILIES)


def test_matched_head_keeps_the_rows_of_shared_labels_drops_the_others_and_starts_new_ones(tmp_path):
    source = _saved_classifier(tmp_path / "source")
    saved = load_file(source / "model.safetensors")
    # The user's labels: a subset of the model's, in another order, and one it lacks ("other", a new row).
    task = ["angry", "other", "neutral"]
    model = build_ssl_classifier(source, task, match_head_labels=True)
    assert [model.config.id2label[i] for i in range(3)] == task
    for row, label in ((0, "angry"), (2, "neutral")):
        assert torch.equal(model.classifier.weight[row], saved["classifier.weight"][LABELS.index(label)])
        assert torch.equal(model.classifier.bias[row], saved["classifier.bias"][LABELS.index(label)])
    assert not any(torch.equal(model.classifier.weight[1], row) for row in saved["classifier.weight"])
    # The rest of the model loads as it was trained.
    state = model.state_dict()
    rest = [name for name in saved if not name.startswith("classifier.")]
    assert "projector.weight" in rest and all(torch.equal(state[name], saved[name]) for name in rest)


def test_matched_head_refusals(tmp_path):
    source = _saved_classifier(tmp_path / "source")
    with pytest.raises(ValueError, match="none of this task's"):
        build_ssl_classifier(source, ["a", "b"], match_head_labels=True)
    with pytest.raises(ValueError, match="pick one"):
        build_ssl_classifier(source, ["angry"], match_head_labels=True, reinitialize_head=True)
    # Without the option, another label set is refused, as before.
    with pytest.raises(ValueError, match="reinitialize_head"):
        build_ssl_classifier(source, ["angry", "neutral"])


def _head_distance(weight: float, tmp_path: Path) -> float:
    torch.manual_seed(0)
    model = build_ssl_classifier(
        WhisperConfig(**TINY_WHISPER),
        LABELS,
        use_weighted_layer_sum=True,
        pooling_mode="layer_statistics",
        freeze_base_model=True,
    )
    head = CachedEncoderHead(model)
    start = {name: value.detach().clone() for name, value in head.named_parameters()}
    states = torch.randn(16, TINY_WHISPER["encoder_layers"] + 1, 2 * TINY_WHISPER["d_model"])
    rows = [{"encoder_states": states[i], "labels": i % 8} for i in range(16)]
    args = TrainingArguments(
        output_dir=str(tmp_path / f"w{weight}"),
        max_steps=30,
        learning_rate=1e-2,
        per_device_train_batch_size=8,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    collate = lambda batch: {  # noqa: E731
        "encoder_states": torch.stack([row["encoder_states"] for row in batch]),
        "labels": torch.tensor([row["labels"] for row in batch]),
    }
    trainer = SERTrainer(
        model=head, args=args, train_dataset=rows, data_collator=collate, starting_point_weight=weight
    )
    trainer.train()
    return sum(float((value.detach() - start[name]).pow(2).sum()) for name, value in head.named_parameters())


def test_starting_point_weight_holds_the_trained_weights_near_where_they_started(tmp_path):
    free, held = _head_distance(0.0, tmp_path), _head_distance(10.0, tmp_path)
    assert held < 0.5 * free, (held, free)


def _write_config(folder: Path, **config) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "preprocessor_config.json").write_text(json.dumps({"normalization": "corpus"}))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.mark.parametrize(
    "config, message",
    [
        ({"model_type": "ser_cnn2d", "id2label": {"0": "angry"}}, "model_type 'ser_cnn2d' cannot be adapted"),
        ({"model_type": "ser_whisper"}, "no id2label"),
        ({"model_type": "ser_whisper", "id2label": {"0": "LABEL_0", "1": "LABEL_1"}}, "bare encoder"),
        ({"model_type": "ser_whisper", "id2label": {"0": "angry", "1": "angry"}}, "names a label twice"),
    ],
    ids=["baseline", "no-labels", "placeholder-labels", "label-twice"],
)
def test_a_folder_that_is_no_trained_ser_hf_classifier_is_refused_naming_the_file(tmp_path, config, message):
    folder = _write_config(tmp_path / "model", **config)
    with pytest.raises(RecipeError, match=message) as error:
        trained_model_facts(folder)
    assert "config.json" in str(error.value)
    with pytest.raises(RecipeError, match="No such model folder"):
        trained_model_facts(tmp_path / "missing")


def test_the_adaptation_recipe_keeps_the_models_head_statistics_and_window(tmp_path):
    folder = _write_config(
        tmp_path / "model",
        model_type="ser_whisper",
        id2label={"0": "neutral", "1": "angry"},
        pooling_mode="layer_statistics",
        use_weighted_layer_sum=True,
        max_source_positions=500,
    )
    values = adaptation_values(folder, tmp_path / "clips", tmp_path / "out", test_speakers=["03"], labels=["angry"])
    assert values["model_type"] == "whisper" and values["match_head_labels"] and values["cache_encoder_outputs"]
    assert values["encoder_window_seconds"] == 10
    assert values["feature_extractor_config"] == {"normalization": ADAPTATION_NORMALIZATION}
    assert values["test_speakers"] == ["03"] and values["labels"] == ["angry"]
    assert {key: values[key] for key in ADAPTATION_SETTINGS} == ADAPTATION_SETTINGS


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--labels", "angry,sad"], "no clip of sad among the speakers who adapt"),
        (["--test_speakers", "SPA"], "--test_speakers names every speaker"),
        (["--test_speakers", "NOBODY"], "--test_speakers NOBODY: not among"),
        (["--label_regex", r"_(?P<label>[a-z]+)_\d+\.flac$"], "label 'boredom' is not an emotion ser-hf knows"),
        (["--set", "num_train_epoch=3"], "--set: unknown recipe key 'num_train_epoch'"),
    ],
    ids=["label-without-clips", "no-speaker-left", "unknown-test-speaker", "label-out-of-vocabulary", "misspelt-key"],
)
def test_adapt_refuses_a_folder_it_cannot_adapt_on_before_the_model_loads(tmp_path, capsys, flags, message):
    folder = _write_config(tmp_path / "model", model_type="ser_whisper", id2label={"0": "angry", "1": "happy"})
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
    folder = _write_config(tmp_path / "model", model_type="ser_cnn2d", id2label={"0": "angry"})
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
            "--set",
            "num_train_epochs=2",
            "--set",
            "feature_extractor_config.normalization=corpus",  # a dotted key sets one entry
        ]
    )
    assert status == 0
    config = json.loads((out / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(3)] == ["happy", "sad", "angry"]  # the user's labels only
    report = json.loads((out / "metrics.json").read_text())
    assert report["split"]["speakers"]["test"] == ["SPB"] and report["evaluation"]["test"]["unweighted_accuracy"] >= 0
    record = json.loads((out / "adaptation.json").read_text())
    assert record["labelled_clips"] == 6 and record["unlabelled_recordings"] == 12
    assert record["new_labels"] == [] and record["dropped_labels"] == [
        "neutral",
        "calm",
        "fearful",
        "disgust",
        "surprised",
    ]
    assert 0 < record["pseudo_labelled_clips"] < 12  # the surest share of each predicted emotion
    assert report["split"]["clips"]["train"] == 6 + record["pseudo_labelled_clips"]
    assert report["split"]["speakers"]["train"] == ["SPA", "U"]  # the unlabelled ones' speaker, read by the regex
    run_config = json.loads((out / "run_config.json").read_text())
    assert run_config["model"]["match_head_labels"] and run_config["training"]["starting_point_weight"] > 0
    assert run_config["model"]["feature_extractor_config"] == {"normalization": "corpus"}
    # Only the head trained: the encoder is the trained model's, byte for byte.
    adapted, source = load_file(out / "model.safetensors"), load_file(trained_run / "model.safetensors")
    assert all(torch.equal(adapted[name], source[name]) for name in source if name.startswith("encoder."))
    assert not torch.equal(adapted["projector.weight"], source["projector.weight"])
    card = (out / "README.md").read_text()
    assert f"**Adapted from:** `{trained_run.name}`" in card
    assert f"on 6 labelled clips and {record['pseudo_labelled_clips']} of 12 unlabelled recordings" in card
    assert "the trained model's neutral, calm, fearful, disgust, surprised dropped" in card
    assert (tmp_path / "adapted.adapt.yaml").is_file()  # the recipe that ran, kept beside the model
    # An ordinary ser-hf model: predict loads it through the pipeline.
    capsys.readouterr()
    assert cli_main(["predict", str(out), str(next(clips.glob("SPB_angry_*")))]) == 0
    assert any(label in capsys.readouterr().out for label in ("happy", "sad", "angry"))
