"""A model folder whose classification head was never trained (a pretrained encoder's, as the embedded Whisper
encoder ships) is refused by every command that loads a model, in one line saying what it is and how to train one,
before any weight is read; transformers would fill the head with random weights and classify at random."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file, save_file

from ser_hf.cli import main as cli_main
from ser_hf.models.runtime.loading import load_model
from ser_hf.models.runtime.location import UntrainedHeadError
from tests.conftest import REPO, model_copy, ser_hf_error_lines, write_audio

pytestmark = pytest.mark.reliability

ENCODER = REPO / "pretrained" / "whisper-tiny.en-encoder"


def _refusal(folder, reasons: str) -> str:
    return (
        f"{folder} holds a pretrained encoder without a trained classification head ({reasons}), so its predictions "
        f"would be random: train one with `ser-hf train RECIPE` (model_name_or_path: {folder}) and pass the run's "
        "output folder instead."
    )


ENCODER_REASONS = (
    "its config.json describes WhisperForConditionalGeneration, not an audio classifier; model.safetensors holds "
    "no classifier.* weights"
)


def test_predict_evaluate_and_export_refuse_the_embedded_encoder_in_one_line(tmp_path, capsys):
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    evaluate = ["evaluate", "--model", str(ENCODER), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    out = tmp_path / "export"
    for command in (
        ["predict", str(ENCODER), str(clip), "--no-progress"],
        evaluate,
        ["export", str(ENCODER), str(out)],
    ):
        assert cli_main(command) == 2, command
        assert ser_hf_error_lines(capsys) == [f"ser-hf: error: {_refusal(ENCODER, ENCODER_REASONS)}"], command
    assert not out.exists()


def test_the_loader_refuses_it_before_reading_any_weight(monkeypatch):
    """The loader of predict, evaluate, export, embed, ensembles and the app: the head is checked from the config and
    the safetensors header, so neither the feature extractor nor the weights are loaded."""
    import ser_hf.models.runtime.loading as loading

    def no_loading(*args, **kwargs):
        raise AssertionError("loaded before the head was checked")

    monkeypatch.setattr(loading, "load_feature_extractor", no_loading)
    with pytest.raises(UntrainedHeadError) as error:
        load_model(ENCODER)
    assert str(error.value) == _refusal(ENCODER, ENCODER_REASONS)
    assert isinstance(error.value, ValueError)


def test_a_classifier_whose_head_weights_are_missing_is_refused_too(tmp_path, tiny_crnn_folder, capsys):
    """A classifier's config with weights that lack the classifier (saved from the encoder alone, or cut down by
    hand): the tensors missing are named."""
    model = model_copy(tiny_crnn_folder, tmp_path / "model")
    state = load_file(model / "model.safetensors")
    del state["classifier.bias"]
    save_file(state, model / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UntrainedHeadError) as error:
        load_model(model)
    assert str(error.value) == _refusal(model, "model.safetensors lacks classifier.bias")
    state = {name: tensor for name, tensor in state.items() if not name.startswith("classifier.")}
    save_file(state, model / "model.safetensors", metadata={"format": "pt"})
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    assert cli_main(["predict", str(model), str(clip), "--no-progress"]) == 2
    assert ser_hf_error_lines(capsys) == [
        f"ser-hf: error: {_refusal(model, 'model.safetensors holds no classifier.* weights')}"
    ]


def test_a_trained_classifier_still_loads(tiny_crnn_folder, tiny_classifier):
    for folder in (tiny_crnn_folder, tiny_classifier):
        model, _ = load_model(folder)
        assert json.loads((folder / "config.json").read_text())["architectures"][0].endswith("Classification")
        assert model.config.num_labels > 1
