"""A trained model's preprocessor_config.json edited by hand (or copied from another model) is checked against the
model when it is loaded, before any clip: mel bins, the statistics' length, finite statistics and positive standard
deviations are each one error naming the file and the key, where every clip failed with torch's channel error or
was scored NaN with exit status 0. No NaN score reaches an output of predict or evaluate."""

from __future__ import annotations

import json

import pytest

from ser_hf.cli import main as cli_main
from ser_hf.models.runtime.loading import FeatureExtractorMismatchError, load_model
from ser_hf.train import main as train_main
from tests.conftest import REPO, model_copy, ser_hf_error_lines, write_audio
from tests.conftest_models import TINY_WHISPER
from tests.recipe.test_parser import write_recipe

pytestmark = pytest.mark.reliability

RESTORE = "restore the preprocessor_config.json saved with the model."


@pytest.fixture(scope="module")
def cnn_global(tmp_path_factory, tiny_ravdess):
    """A tiny log-mel CNN trained with globally standardised features (64 mel bins, statistics of 64)."""
    folder = tmp_path_factory.mktemp("cnn_global")
    recipe = write_recipe(
        folder / "r.yaml",
        tiny_ravdess,
        model_config={"conv_channels": [4, 8]},
        feature_extractor_config={"normalization": "global"},
        eval_strategy="no",
        save_strategy="no",
        max_steps=2,
    )
    train_main([str(recipe)])
    return folder / "run"


@pytest.fixture(scope="module")
def whisper_global(tmp_path_factory, tiny_ravdess):
    """A tiny Whisper classifier trained in FAST mode on layer statistics, standardised globally."""
    folder = tmp_path_factory.mktemp("whisper_global")
    recipe = write_recipe(
        folder / "r.yaml",
        tiny_ravdess,
        model_type="whisper",
        model_config=TINY_WHISPER,
        freeze_base_model=True,
        cache_encoder_outputs=True,
        use_weighted_layer_sum=True,
        pooling_mode="layer_statistics",
        feature_extractor_config={"normalization": "global"},
        eval_strategy="no",
        save_strategy="no",
        max_steps=2,
    )
    train_main([str(recipe)])
    return folder / "run"


def _edited(source, folder, **changes):
    model = model_copy(source, folder)
    path = model / "preprocessor_config.json"
    config = json.loads(path.read_text())
    for key, change in changes.items():
        config[key] = change(config[key]) if callable(change) else change
    path.write_text(json.dumps(config))
    return model, path


def test_the_trained_models_load_as_saved(cnn_global, whisper_global):
    for folder in (cnn_global, whisper_global):
        _, extractor = load_model(folder)
        assert extractor.normalization == "global" and extractor.feature_std


def test_standard_deviations_of_zero_are_named_before_any_clip(tmp_path, cnn_global, capsys):
    model, path = _edited(cnn_global, tmp_path / "model", feature_std=lambda std: [0.0] * len(std))
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    line = (
        f"ser-hf: error: {path}: feature_std must be positive, but holds 0.0 at index 0, 0.0 at index 1, 0.0 at "
        f"index 2 (and 61 more): standardising by it gives NaN or infinite scores; {RESTORE}"
    )
    for command in (["predict", str(model), str(clip), "--no-progress"], evaluate):
        assert cli_main(command) == 2, command
        assert ser_hf_error_lines(capsys) == [line], command


def test_non_finite_statistics_are_named(tmp_path, cnn_global):
    model, path = _edited(cnn_global, tmp_path / "model", feature_mean=lambda mean: [float("nan"), *mean[1:]])
    with pytest.raises(FeatureExtractorMismatchError) as error:
        load_model(model)
    assert str(error.value) == (
        f"{path}: feature_mean holds values that are not finite (nan at index 0): every score would be NaN; {RESTORE}"
    )


def test_a_changed_feature_size_is_named_with_the_models_mel_bins(tmp_path, cnn_global, whisper_global, capsys):
    model, path = _edited(cnn_global, tmp_path / "cnn", n_mels=48, feature_size=48)
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    assert cli_main(["predict", str(model), str(clip), "--no-progress"]) == 2
    assert ser_hf_error_lines(capsys) == [
        f"ser-hf: error: {path}: feature_size is 48, but the model takes 64 features per frame (num_mel_bins in "
        f"config.json): the feature extractor was edited or comes from another model; {RESTORE}"
    ]
    model, path = _edited(whisper_global, tmp_path / "whisper", feature_size=128)
    assert cli_main(["export", str(model), str(tmp_path / "out")]) == 2
    assert ser_hf_error_lines(capsys) == [
        f"ser-hf: error: {path}: feature_size is 128, but the model takes 16 features per frame (num_mel_bins in "
        f"config.json): the feature extractor was edited or comes from another model; {RESTORE}"
    ]
    assert not (tmp_path / "out").exists()


def test_halved_statistics_are_named_with_what_the_model_standardises(tmp_path, cnn_global, whisper_global, capsys):
    model, path = _edited(cnn_global, tmp_path / "cnn", feature_mean=lambda mean: mean[: len(mean) // 2])
    with pytest.raises(FeatureExtractorMismatchError) as error:
        load_model(model)
    assert str(error.value) == (
        f"{path}: feature_mean holds 32 values, but the model standardises 64 (one per feature, num_mel_bins 64 in "
        f"config.json): the statistics were edited or fitted for another model; {RESTORE}"
    )
    halve = {key: (lambda values: values[: len(values) // 2]) for key in ("feature_mean", "feature_std")}
    model, path = _edited(whisper_global, tmp_path / "whisper", **halve)
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    assert cli_main(["predict", str(model), str(clip), "--no-progress"]) == 2
    # 3 states (the input embeddings and 2 layers) of 16, mean and standard deviation of each: 96 values.
    assert ser_hf_error_lines(capsys) == [
        f"ser-hf: error: {path}: feature_mean holds 48 values, but the model standardises 96 (3 layer(s) of 16 "
        f"encoder states, mean and std of each): the statistics were edited or fitted for another model; {RESTORE}"
    ]


def test_no_nan_score_reaches_predict_or_evaluate(tmp_path, cnn_global, capsys):
    """Weights that give NaN (here the classifier's bias): predict gives the file an error row and exits 1, evaluate
    stops with one line; neither writes a NaN score."""
    import torch
    from safetensors.torch import load_file, save_file

    model = model_copy(cnn_global, tmp_path / "model")
    state = load_file(model / "model.safetensors")
    state["classifier.bias"] = torch.full_like(state["classifier.bias"], float("nan"))
    save_file(state, model / "model.safetensors", metadata={"format": "pt"})
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    output = tmp_path / "out" / "predictions.json"
    assert cli_main(["predict", str(model), str(clip), "--no-progress", "--output", str(output)]) == 1
    capsys.readouterr()
    (row,) = json.loads(output.read_text())
    assert row["scores"] == {} and row["predictions"] == [] and row["label"] is None
    assert row["error"].startswith("the model could not classify it: ValueError: its scores are not finite (")
    evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    assert cli_main([*evaluate, "--output-dir", str(tmp_path / "report")]) == 2
    (line,) = ser_hf_error_lines(capsys)
    assert line.startswith("ser-hf: error: The model's scores are not finite (NaN or infinite) for "), line
