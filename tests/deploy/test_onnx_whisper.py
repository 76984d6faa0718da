"""ONNX export of Whisper classifiers whose encoder states are standardised with statistics (``normalization`` global,
corpus or speaker: every general recipe, every adapted model). The graph takes the statistics as inputs (the saved
feature extractor gives the stored ones, or a speaker's own) and outputs the pooled states a speaker's statistics are
taken over, so that ``ser-hf predict`` and ``ser-hf evaluate`` run the export with the torch model's speaker and corpus
handling.

One quick check exports a tiny speaker-statistics model (TorchScript's exporter, a fraction of a second) and classifies
a folder with speakers through it. The slow ones train the shipped recipes' settings at sample size (statistics fitted
on real clips, calibration fitted), export them with ``ser-hf export`` and compare ``ser-hf predict`` and
``ser-hf evaluate`` on the export with the torch model's, and export a model ``ser-hf adapt`` made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import soundfile
import torch
from transformers import AutoFeatureExtractor, WhisperConfig

from ser_hf.cli import main as cli_main
from ser_hf.deploy.classify import classify_files
from ser_hf.deploy.onnx_export import export_onnx
from ser_hf.deploy.pipelines import load_classifier
from ser_hf.deploy.speakers import speakers_from_folders
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
from ser_hf.models.feature_normalization import RunningStatistics
from ser_hf.models.runtime.onnx_runtime import OnnxModelForAudioClassification
from tests.adaptation.test_user_journey import REPO, adapt_flags, flat_folder, trained_as_shipped
from tests.conftest_models import LABELS, SAMPLE_DIR, TINY_WHISPER, load_clip

#: The general recipes (global, corpus and speaker statistics) and the demo's, whose encoder reads each batch up to its
#: longest clip only (trim_window): the graph must encode the whole window for clips longer than it was traced on.
RECIPES = ("general_whisper_base_single_clip", "general_whisper_base", "general_whisper_base_speaker", "demo_whisper")
NORMALIZATION = {
    "general_whisper_base_single_clip": "global",
    "general_whisper_base": "corpus",
    "general_whisper_base_speaker": "speaker",
    "demo_whisper": "global",
}


def clip_files(actors: tuple[str, ...], per: int) -> list[str]:
    return [str(path) for actor in actors for path in sorted((SAMPLE_DIR / f"Actor_{actor}").glob("*.flac"))[:per]]


def scores_of(predictions) -> np.ndarray:
    return np.array([[window.scores[label] for label in LABELS.names] for p in predictions for window in p.windows])


def test_a_speaker_statistics_whisper_model_exports_and_classifies_each_speaker_with_their_own_statistics(tmp_path):
    torch.manual_seed(0)
    config = WhisperConfig(**{**TINY_WHISPER, "encoder_layers": 1, "max_source_positions": 100})  # a 2-s window
    model = build_ssl_classifier(
        config, LABELS, freeze_base_model=True, use_weighted_layer_sum=True, pooling_mode="layer_statistics"
    ).eval()
    with torch.no_grad():  # scores far from uniform, so that the statistics tell
        model.classifier.weight.normal_(0, 0.5)
    extractor = build_ssl_feature_extractor(model.config, normalization="speaker")
    # The stored statistics as training fits them: over the pooled states of training clips.
    clips = [load_clip(index, 2.0) for index in range(0, 240, 24)]
    features = extractor(clips, sampling_rate=16000, return_tensors="pt", return_state_statistics=False)
    with torch.no_grad():
        states = model.pooled_encoder_states(features["input_features"], features["attention_mask"])
    training = RunningStatistics()
    training.add(states.reshape(len(states), -1).numpy())
    extractor.set_global_statistics(*training.statistics(extractor.variance_floor))
    model.save_pretrained(tmp_path / "model")
    extractor.save_pretrained(tmp_path / "model")

    export = export_onnx(
        model,
        tmp_path / "onnx",
        feature_extractor=extractor,
        parity_audio=[SAMPLE_DIR / "Actor_01"],
        exporter="torchscript",
    )
    assert export.parity.passed and export.parity.max_abs_state_difference < 1e-5, export.parity.summary()
    width = 2 * 2 * 16  # the input embeddings and one layer, each layer's means and deviations
    assert export.manifest["inputs"] == [
        {"name": "input_features", "dtype": "float32", "shape": ["batch", 16, 200]},
        {"name": "attention_mask", "dtype": "int32", "shape": ["batch", 200]},
        {"name": "state_mean", "dtype": "float32", "shape": ["batch", width]},
        {"name": "state_std", "dtype": "float32", "shape": ["batch", width]},
    ]
    assert export.manifest["outputs"][1] == {
        "name": "pooled_encoder_states",
        "dtype": "float32",
        "shape": ["batch", 2, 32],
    }
    assert export.manifest["state_statistics"]["normalization"] == "speaker"
    # The saved extractor's numpy output (the stored statistics among it) runs in a bare InferenceSession.
    saved = AutoFeatureExtractor.from_pretrained(export.path)
    saved._fallback_said = True
    inputs = saved([load_clip(3, 1.5), load_clip(40, 2.0)], sampling_rate=16000, return_tensors="np")
    session = onnxruntime.InferenceSession(str(export.path / "model.onnx"), providers=["CPUExecutionProvider"])
    logits, pooled = session.run(None, dict(inputs))
    tensors = dict(inputs.convert_to_tensors("pt"))
    with torch.no_grad():
        expected = model(**tensors)
        expected_states = model.pooled_encoder_states(tensors["input_features"], tensors["attention_mask"])
    np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(pooled, expected_states.numpy(), atol=1e-5)

    # ser-hf predict's path: each speaker's statistics over the pooled states of their windows, through the export.
    files = clip_files(("01", "02"), 12)
    speakers = speakers_from_folders(files)
    results = {}
    for name, folder in (("torch", tmp_path / "model"), ("onnx", export.path)):
        classifier = load_classifier(str(folder))
        results[name] = list(classify_files(classifier, files, speakers=speakers, progress=False))
        results[name, "stored"] = list(classify_files(classifier, files, progress=False))
    assert all(prediction.error is None for prediction in results["onnx"])
    np.testing.assert_allclose(scores_of(results["onnx"]), scores_of(results["torch"]), atol=1e-4)
    assert [p.label for p in results["onnx"]] == [p.label for p in results["torch"]]
    np.testing.assert_allclose(scores_of(results["onnx", "stored"]), scores_of(results["torch", "stored"]), atol=1e-4)
    # ... and the speakers' own statistics are what standardised them, not the stored ones.
    assert np.abs(scores_of(results["onnx"]) - scores_of(results["onnx", "stored"])).max() > 1e-2


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, tiny_ravdess):
    """Each of RECIPES trained at sample size (as the adaptation tests train them) and exported with `ser-hf export`:
    {recipe: (run folder, export folder, what the command printed)}."""
    root = tmp_path_factory.mktemp("onnx_whisper")
    models = {}
    for recipe in RECIPES:
        run = trained_as_shipped(REPO / "recipes" / f"{recipe}.yaml", tiny_ravdess, root / recipe)
        export = root / f"{recipe}-onnx"
        printed = _cli_output(["export", str(run), str(export), f"--parity-audio={SAMPLE_DIR}"])
        models[recipe] = (run, export, printed)
    return models


def _cli_output(args: list[str]) -> str:
    from contextlib import redirect_stdout
    from io import StringIO

    with redirect_stdout(StringIO()) as out:
        assert cli_main(args) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, tiny_ravdess) -> Path:
    """The clips of four actors, one folder each, and in Actor_04's a recording longer than the models' 6-s window
    (two clips end to end), which predict classifies in windows, the first a whole window long."""
    root = tmp_path_factory.mktemp("recordings")
    for actor in ("01", "02", "03", "04"):
        (root / f"Actor_{actor}").mkdir()
        for clip in sorted((tiny_ravdess / f"Actor_{actor}").iterdir()):
            (root / f"Actor_{actor}" / clip.name).symlink_to(clip.resolve())
    soundfile.write(root / "Actor_04" / "long.wav", np.concatenate([load_clip(90), load_clip(91)]), 16000)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_every_general_recipe_exports_with_its_statistics_and_passes_parity_on_real_clips(shipped, recipe):
    _, export, printed = shipped[recipe]
    where, parity = printed.splitlines()
    assert where.startswith("Exported ") and "parity on 8 clip(s)" in parity and "argmax identical" in parity
    manifest = json.loads((export / "onnx_export.json").read_text())
    assert manifest["parity"]["max_abs_logit_difference"] < 1e-3 and manifest["parity"]["max_abs_state_difference"]
    assert [item["name"] for item in manifest["inputs"]][2:] == ["state_mean", "state_std"]
    assert [item["name"] for item in manifest["outputs"]] == ["logits", "pooled_encoder_states"]
    assert manifest["state_statistics"]["normalization"] == NORMALIZATION[recipe]
    stored = json.loads((export / "preprocessor_config.json").read_text())
    assert (
        stored["normalization"] == NORMALIZATION[recipe]
        and len(stored["feature_mean"]) == manifest["inputs"][2]["shape"][1]
    )


def _predictions(model: Path, recordings: Path, output: Path, *flags: str) -> list[dict]:
    _cli_output(["predict", str(model), str(recordings), "--no-progress", "--output", str(output), *flags])
    return json.loads(output.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_predict_through_the_export_equals_the_torch_models_predictions(shipped, recordings, recipe, tmp_path):
    run, export, _ = shipped[recipe]
    flags = ("--speaker-from", "folder") if NORMALIZATION[recipe] == "speaker" else ()
    torch_rows = _predictions(run, recordings, tmp_path / "torch.json", *flags)
    onnx_rows = _predictions(export, recordings, tmp_path / "onnx.json", *flags)
    assert len(onnx_rows) == 33 and not any(row["error"] for row in onnx_rows)
    assert [row["label"] for row in onnx_rows] == [row["label"] for row in torch_rows]
    for ours, theirs in zip(onnx_rows, torch_rows):
        assert len(ours["windows"]) == len(theirs["windows"])
        assert ours["scores"] == pytest.approx(theirs["scores"], abs=1e-4)
    long = next(row for row in onnx_rows if row["file"].endswith("long.wav"))
    assert len(long["windows"]) == 2 and long["windows"][0]["end"] - long["windows"][0]["start"] == pytest.approx(6)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["general_whisper_base_single_clip", "general_whisper_base_speaker"])
def test_evaluate_through_the_export_equals_the_torch_models_report(shipped, recipe, tmp_path):
    run, export, _ = shipped[recipe]
    reports = []
    # The export standardises each speaker with their own statistics, unchecked (its manifest says so): the torch
    # model is evaluated so too.
    unchecked = ["--no-speaker-statistics-check"] if recipe == "general_whisper_base_speaker" else []
    for name, model in (("torch", run), ("onnx", export)):
        command = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(SAMPLE_DIR)]
        flags = unchecked if name == "torch" else []
        _cli_output([*command, "--split", "all", "--output-dir", str(tmp_path / name), *flags])
        reports.append(json.loads((tmp_path / name / "eval_report.json").read_text()))
    torch_report, onnx_report = reports
    assert onnx_report["normalization"] == torch_report["normalization"]
    if unchecked:
        manifest = OnnxModelForAudioClassification(export).manifest["state_statistics"]
        assert "not exported" in manifest["speaker_statistics_check"]
    assert onnx_report["setup_shift"] == torch_report["setup_shift"]  # measured under global statistics only
    assert (onnx_report["setup_shift"] is not None) == (recipe == "general_whisper_base_single_clip")
    (ours,), (theirs,) = onnx_report["evaluation"].values(), torch_report["evaluation"].values()
    assert ours["clips"] == theirs["clips"] == 240
    assert ours["unweighted_accuracy"] == theirs["unweighted_accuracy"]


@pytest.mark.slow
def test_an_adapted_model_exports_and_predicts_per_speaker_as_torch(shipped, tmp_path):
    run, _, _ = shipped["general_whisper_base_speaker"]
    labelled = flat_folder(tmp_path / "labelled", {"05": "AB", "06": "CD"}, 2)
    assert cli_main(["adapt", str(run), *adapt_flags(labelled, tmp_path / "adapted", "--test_speakers", "CD")]) == 0
    printed = _cli_output(
        ["export", str(tmp_path / "adapted"), str(tmp_path / "onnx"), f"--parity-audio={SAMPLE_DIR}"]
    )
    assert "argmax identical" in printed
    assert OnnxModelForAudioClassification(tmp_path / "onnx").manifest["state_statistics"]["normalization"] == (
        "speaker"
    )
    clips = SAMPLE_DIR / "Actor_07"
    flags = ("--speaker-from", "folder")
    torch_rows = _predictions(tmp_path / "adapted", clips, tmp_path / "torch.json", *flags)
    onnx_rows = _predictions(tmp_path / "onnx", clips, tmp_path / "onnx.json", *flags)
    assert [row["label"] for row in onnx_rows] == [row["label"] for row in torch_rows]
    for ours, theirs in zip(onnx_rows, torch_rows):
        assert ours["scores"] == pytest.approx(theirs["scores"], abs=1e-4)
