"""Reliability of finding and loading a model folder, whichever command reads it (train, evaluate, predict, export,
embed): a missing feature extractor, a typo in a local path, a Hub id offline or unreachable, pickled weights,
weights of the wrong shape and a model with code of its own are each one error naming the folder and the fix."""

from __future__ import annotations

import ast
import json
import re
import socket
import subprocess
import sys
import time

import huggingface_hub
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForAudioClassification

from ser_hf.cli import main as cli_main
from ser_hf.evaluation.evaluate_model import load_trained_model
from ser_hf.experiments.embed import load_embedding_model
from ser_hf.model_location import ModelNotFoundError
from ser_hf.models import (
    MissingFeatureExtractorError,
    build_ssl_feature_extractor,
    load_feature_extractor,
)
from ser_hf.models.runtime.ssl import check_config_overrides
from ser_hf.train import main
from tests.conftest import HUB_TOKEN, REPO, last_error_line, model_copy, ser_hf_error_lines, write_audio
from tests.conftest_models import TINY_SSL
from tests.recipe.test_parser import write_recipe

pytestmark = pytest.mark.reliability


def test_a_model_folder_without_its_feature_extractor_is_named_with_the_fix(tmp_path, tiny_ravdess, capsys):
    """Training from, evaluating, predicting or embedding with a model folder that lacks preprocessor_config.json
    stops with the folder, the file and the fix, before any weights are read; the fix it gives works."""
    checkpoint = tmp_path / "wav2vec2-without-feature-extractor"
    config = AutoConfig.for_model("wav2vec2", **TINY_SSL)
    AutoModelForAudioClassification.from_config(config).save_pretrained(checkpoint)
    message = (
        f"The model folder {checkpoint} has no feature extractor: preprocessor_config.json is missing. Add the "
        'one the model was trained with, e.g. AutoFeatureExtractor.from_pretrained("facebook/wav2vec2-base")'
        f".save_pretrained('{checkpoint}') for a model fine-tuned from wav2vec2-base (ser-hf's own runs save "
        "it beside the weights)."
    )
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        model_type="wav2vec2",
        model_config={},
        model_name_or_path=str(checkpoint),
        output_dir=str(tmp_path / "run"),
    )
    with pytest.raises(MissingFeatureExtractorError) as error:
        main([str(recipe)])
    assert str(error.value) == message and isinstance(error.value, FileNotFoundError)
    assert not any((tmp_path / "run").glob("checkpoint-*"))
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(checkpoint),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "04",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"ser-hf: error: {message}"
    clip = str(sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0])
    assert cli_main(["predict", str(checkpoint), clip, "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"ser-hf: error: {message}"
    with pytest.raises(MissingFeatureExtractorError, match=re.escape(message)):
        load_embedding_model(str(checkpoint))

    build_ssl_feature_extractor(config).save_pretrained(checkpoint)
    assert load_trained_model(str(checkpoint), device="cpu").feature_extractor.sampling_rate == 16000


@pytest.fixture
def no_hub_lookups(monkeypatch) -> list:
    """Record (and refuse) every repository lookup: a local-looking name must never reach the Hub."""
    lookups = []

    def refuse(self, repo_id, **kwargs):
        lookups.append(repo_id)
        raise AssertionError(f"{repo_id} was looked up on the Hub")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", refuse)
    return lookups


def test_a_typo_in_a_local_model_path_is_no_such_folder_at_once(
    tmp_path, tiny_ravdess, monkeypatch, capsys, no_hub_lookups
):
    """`ser-hf predict outputs/dmeo` and `ser-hf evaluate --model outputs/dmeo` (outputs/ exists) answer in well
    under 2 s with the folder named and the closest one suggested; names written as paths, and names that are no
    valid repository id, never reach the Hub either."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "demo").mkdir(parents=True)
    clip = str(sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0])
    message = (
        "ser-hf: error: No such folder: outputs/dmeo (outputs/ is a folder here, so it is read as a path, not "
        "as a Hub repository id). Did you mean outputs/demo?"
    )
    started = time.monotonic()
    assert cli_main(["predict", "outputs/dmeo", clip, "--no-progress"]) == 2
    assert time.monotonic() - started < 2
    assert last_error_line(capsys) == message
    started = time.monotonic()
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                "outputs/dmeo",
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "04",
            ]
        )
        == 2
    )
    assert time.monotonic() - started < 2
    assert last_error_line(capsys) == message
    for name, reason in (
        ("./outputs/dmeo", "it is written as a path"),
        ("runs/2024/demo", "it is not a valid Hub repository id (namespace/name) either"),
        ("../elsewhere/model", "it is written as a path"),
    ):
        with pytest.raises(ModelNotFoundError, match=re.escape(f"No such folder: {name} ({reason}).")):
            load_feature_extractor(name)
    with pytest.raises(ModelNotFoundError, match=re.escape(f"{clip} is a file, not a model folder")):
        load_embedding_model(clip)
    # A recipe's model_name_or_path: refused before transformers asks the Hub for its config (5 retries offline).
    with pytest.raises(ModelNotFoundError, match=re.escape("Did you mean outputs/demo?")):
        check_config_overrides("outputs/dmeo", {})
    assert no_hub_lookups == []


def test_an_ssl_recipe_offline_names_the_missing_encoder_without_retries(
    tmp_path, tiny_ravdess, monkeypatch, no_hub_lookups
):
    """With HF_HUB_OFFLINE, a model_name_or_path that is no folder and not in the Hub cache stops the run with one
    line, and the Hub is not asked."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    name = "ser-hf-tests/no-such-encoder"
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        model_type="wav2vec2",
        model_config={},
        model_name_or_path=name,
        output_dir=str(tmp_path / "run"),
    )
    with pytest.raises(ModelNotFoundError) as error:
        main([str(recipe)])
    assert str(error.value) == (
        f"No such folder: {name}, and {name} is not in the Hub cache "
        f"({huggingface_hub.constants.HF_HUB_CACHE}); HF_HUB_OFFLINE is set, so the Hub was "
        "not asked."
    )
    assert no_hub_lookups == [] and not any((tmp_path / "run").glob("checkpoint-*"))


def test_a_hub_id_is_asked_once_and_an_unreachable_hub_is_one_line(tmp_path, tiny_ravdess, monkeypatch, capsys):
    from tests.hub_server import LocalHub

    clip = str(sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0])
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    started = time.monotonic()
    assert cli_main(["predict", "someone/ser-model", clip, "--no-progress"]) == 2
    assert time.monotonic() - started < 2
    assert re.fullmatch(
        rf"ser-hf: error: No such folder: someone/ser-model, and the Hub at {closed} could not be "
        r"reached to download it \(ConnectError: .*\)\. Check the connection, or pass the folder of a "
        r"model saved locally\.",
        last_error_line(capsys),
    )
    with LocalHub(token=HUB_TOKEN) as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        assert cli_main(["predict", "someone/ser-model", clip, "--no-progress"]) == 2
        assert last_error_line(capsys) == (
            "ser-hf: error: No such folder: someone/ser-model, and no Hub repository "
            "someone/ser-model (or it is private and your token cannot read it: "
            "`hf auth login`)."
        )
        assert hub.requests == [("GET", "/api/models/someone/ser-model")]


def test_a_model_folder_with_pickled_weights_only_is_refused_naming_the_conversion(tmp_path, tiny_crnn_folder, capsys):
    """torch's weights_only refuses this pickle (it holds a Namespace): transformers raised its UnpicklingError."""
    import argparse

    model = model_copy(tiny_crnn_folder, tmp_path / "model")
    state = load_file(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    torch.save({**state, "args": argparse.Namespace(lr=0.1)}, model / "pytorch_model.bin")
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    for command in (["predict", str(model), str(clip), "--no-progress"], evaluate, ["export", str(model), "out"]):
        assert cli_main(command) == 2
        (line,) = ser_hf_error_lines(capsys)
        assert line.startswith(
            f"ser-hf: error: {model} (pytorch_model.bin): pickled weights refused: ser-hf loads safetensors only "
            "(unpickling a file can run any code it holds), and there is no model.safetensors. Convert the "
            "checkpoint, if you trust where it came from: python -c "
        ), line
    assert not (tmp_path / "out").exists()
    # The conversion the message gives works: the folder then loads, with the same weights.
    command = line.split("python -c ", 1)[1]
    subprocess.run([sys.executable, "-c", ast.literal_eval(command)], check=True, cwd=tmp_path)
    converted = load_file(model / "model.safetensors")
    assert converted.keys() == state.keys() and all(torch.equal(converted[k], state[k]) for k in state)
    assert cli_main(["predict", str(model), str(clip), "--no-progress"]) == 0


def test_a_tensor_of_the_wrong_shape_is_named_with_both_shapes(tmp_path, tiny_crnn_folder, capsys):
    model = model_copy(tiny_crnn_folder, tmp_path / "model")
    state = load_file(model / "model.safetensors")
    state["classifier.weight"] = torch.zeros(9, *state["classifier.weight"].shape[1:])
    needed = list(load_file(tiny_crnn_folder / "model.safetensors")["classifier.weight"].shape)
    save_file(state, model / "model.safetensors", metadata={"format": "pt"})
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    for command in (["predict", str(model), str(clip), "--no-progress"], ["export", str(model), str(tmp_path / "o")]):
        assert cli_main(command) == 2
        assert ser_hf_error_lines(capsys) == [
            f"ser-hf: error: {model}: the weights do not fit the model its config.json describes: classifier.weight "
            f"is [9, {needed[1]}] in model.safetensors, the model needs {needed}. The weights and config.json come "
            "from different models (or config.json was edited): keep the config.json saved with these weights, or "
            "save the model again with save_pretrained."
        ]
    # A header cut short is named too (safetensors' own error names no file).
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert cli_main(["predict", str(model), str(clip), "--no-progress"]) == 2
    (line,) = ser_hf_error_lines(capsys)
    assert line.startswith(f"ser-hf: error: {model / 'model.safetensors'} is damaged and cannot be loaded (")


def test_a_model_with_code_of_its_own_names_the_flag_and_the_python_argument(tmp_path, tiny_crnn_folder, capsys):
    model = model_copy(tiny_crnn_folder, tmp_path / "foreign")
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "someone_elses_model"
    config["auto_map"] = {"AutoConfig": "configuration_x.XConfig", "AutoModelForAudioClassification": "modeling_x.X"}
    (model / "config.json").write_text(json.dumps(config))
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    for command in (["predict", str(model), str(clip), "--no-progress"], evaluate, ["export", str(model), "o"]):
        assert cli_main(command) == 2
        assert ser_hf_error_lines(capsys) == [
            f"ser-hf: error: {model} holds model code of its own (auto_map in its config.json names code that is not "
            "ser-hf's), which runs only if you allow it: pass --trust-remote-code on the command line (ser-hf "
            "predict, evaluate, export, ensemble, app) or trust_remote_code=True in Python, once you have read that "
            f"code (the .py files in {model}) and trust it."
        ]


def test_a_weight_index_naming_a_shard_outside_the_folder_or_a_pickle_is_refused(tmp_path, tiny_crnn_folder, capsys):
    """transformers reads the shards a model.safetensors.index.json names wherever they are, and unpickles a shard
    that is not safetensors: each is one line naming the index and the shard, in predict and export alike."""
    import argparse

    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    state = load_file(tiny_crnn_folder / "model.safetensors")
    (tmp_path / "other").mkdir()
    save_file(state, tmp_path / "other" / "model.safetensors", metadata={"format": "pt"})
    cases = {
        "../other/model.safetensors": "which is not inside",
        str(tmp_path / "other" / "model.safetensors"): "which is not inside",
        "pytorch_model.bin": "which is not a safetensors file: pickled weights refused: ser-hf loads safetensors only",
    }
    for number, (shard, refusal) in enumerate(cases.items()):
        model = model_copy(tiny_crnn_folder, tmp_path / f"model{number}")
        (model / "model.safetensors").unlink()
        torch.save({**state, "args": argparse.Namespace(lr=0.1)}, model / "pytorch_model.bin")
        index = model / "model.safetensors.index.json"
        index.write_text(json.dumps({"metadata": {}, "weight_map": {name: shard for name in state}}))
        out = tmp_path / f"out{number}"
        for command in (["predict", str(model), str(clip), "--no-progress"], ["export", str(model), str(out)]):
            assert cli_main(command) == 2
            (line,) = ser_hf_error_lines(capsys)
            assert line.startswith(f"ser-hf: error: {index}: weight_map names the shard {shard!r}, {refusal}"), line
        assert not out.exists()


def test_a_pickle_torch_refuses_to_load_is_pickled_weights_refused_not_a_traceback(tmp_path, capsys):
    """A LoRA adapter's adapter_model.bin is unpickled by peft with weights_only: a pickle holding more than tensors
    raised a raw UnpicklingError."""
    import argparse

    from ser_hf.models import apply_lora, ssl_lora_config
    from tests.conftest_models import build_tiny

    model, extractor = build_tiny("wav2vec2-mean", config_overrides={"num_hidden_layers": 1})
    base_folder, adapter_folder = tmp_path / "base", tmp_path / "adapters"
    model.save_pretrained(base_folder)
    extractor.save_pretrained(base_folder)
    adapted = apply_lora(model, ssl_lora_config(r=2))
    adapted.peft_config["default"].base_model_name_or_path = str(base_folder)
    adapted.save_pretrained(adapter_folder)
    adapters = load_file(adapter_folder / "adapter_model.safetensors")
    (adapter_folder / "adapter_model.safetensors").unlink()
    torch.save({**adapters, "args": argparse.Namespace(lr=0.1)}, adapter_folder / "adapter_model.bin")
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    for command in (
        ["predict", str(adapter_folder), str(clip), "--no-progress"],
        ["export", str(adapter_folder), str(tmp_path / "o")],
    ):
        assert cli_main(command) == 2
        (line,) = ser_hf_error_lines(capsys)
        assert line.startswith(
            f"ser-hf: error: {adapter_folder}: pickled weights refused: ser-hf loads safetensors only (unpickling a "
            "file can run any code it holds), and torch would not unpickle one of its files ("
        ), line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "edit, key, message",
    [
        ("name twice", "id2label", "id2label names a label twice ('happy' is given to ids 1, 3)"),
        ("maps removed, num_labels kept", "id2label", "id2label is missing"),
        ("maps and num_labels removed", "id2label", "id2label is missing"),
        ("num_labels changed", "num_labels", "num_labels is 8, but id2label names 7 labels"),
    ],
)
def test_edited_labels_in_config_json_are_refused_before_any_weight_is_read(
    tmp_path, tiny_crnn_folder, capsys, edit, key, message
):
    """A name given twice merged two outputs' scores under one (predict exited 0 with the wrong top label); removed
    maps gave LABEL_0... or 'the weights do not fit ... needs [2]'. The weights here are damaged too: the labels are
    answered first, from config.json alone (with no labels at all, as save_pretrained writes transformers' default
    two, the head's size is read from the safetensors header, and no weight is loaded)."""
    model = model_copy(tiny_crnn_folder, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    if edit == "name twice":
        config["id2label"]["3"] = config["id2label"]["1"]
    elif edit == "num_labels changed":
        config["num_labels"] = 8
    else:
        config["num_labels"] = len(config.pop("id2label"))
        del config["label2id"]
        if edit == "maps and num_labels removed":
            del config["num_labels"]
    (model / "config.json").write_text(json.dumps(config))
    if edit != "maps and num_labels removed":
        data = (model / "model.safetensors").read_bytes()
        (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    out = tmp_path / "out"
    for command in (
        ["predict", str(model), str(clip), "--no-progress", "--top-k", "8"],
        evaluate,
        ["export", str(model), str(out)],
    ):
        assert cli_main(command) == 2
        (line,) = ser_hf_error_lines(capsys)
        assert line.startswith(f"ser-hf: error: {model / 'config.json'}: {message}"), line
        assert key in line and "restore the config.json saved with the model" in line
    assert not out.exists()


@pytest.mark.parametrize("model_type", ["ser_crnnn", None, "someone_elses_model"])
def test_an_edited_model_type_is_named_not_sent_to_trust_remote_code(tmp_path, tiny_crnn_folder, capsys, model_type):
    """A ser-hf model's config.json names ser-hf's own code in its auto_map: with its model_type misspelt or gone,
    transformers asked for --trust-remote-code; without auto_map, an unknown type got 'upgrade transformers'."""
    import transformers

    model = model_copy(tiny_crnn_folder, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    assert config["auto_map"]["AutoConfig"] == "configuration_crnn.CRNNConfig"
    config.pop("model_type")
    if model_type is not None:
        config["model_type"] = model_type
    if model_type == "someone_elses_model":
        del config["auto_map"]
    (model / "config.json").write_text(json.dumps(config))
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    path = model / "config.json"
    known = "(known: ser_cnn1d, ser_cnn2d, ser_cnn_attention_lstm, ser_crnn, ser_data2vec_audio, ser_ensemble, "
    if model_type is None:
        start = f"ser-hf: error: {path} names no model_type {known}"
    else:
        start = f"ser-hf: error: {path}: {model_type!r} is not a ser-hf model type {known}"
    if model_type == "someone_elses_model":
        end = f", nor one this transformers ({transformers.__version__}) defines: restore the config.json saved "
    else:
        end = ", though its auto_map names ser-hf's CRNNConfig, whose model_type is 'ser_crnn': config.json was edited"
    export = ["export", str(model), str(tmp_path / "out")]
    for command in (["predict", str(model), str(clip), "--no-progress"], evaluate, export):
        assert cli_main(command) == 2
        (line,) = ser_hf_error_lines(capsys)
        assert line.startswith(start), line
        assert end in line and "trust-remote-code" not in line, line
