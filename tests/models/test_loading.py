"""The one loader of a trained classifier (ser_hf.models.runtime.loading.load_model), which predict, evaluate, embed,
export, the app and ensembles all call: a folder of LoRA adapters loads merged on its base model, an ONNX export is
refused where the torch model is needed, and no other module loads a trained classifier itself."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ser_hf.deploy.pipelines import load_classifier
from ser_hf.models import apply_lora, ssl_lora_config
from ser_hf.models.runtime.loading import is_lora_adapter, load_model
from ser_hf.models.runtime.location import ModelWeightsError
from ser_hf.models.runtime.onnx_runtime import MANIFEST_FILE, OnnxExportError
from tests.conftest import model_copy
from tests.conftest_models import build_tiny, featurize, load_clip

PACKAGE = Path(__file__).resolve().parents[2] / "ser_hf"


def test_a_folder_of_lora_adapters_loads_merged_on_its_base_model(tmp_path):
    model, extractor = build_tiny("wav2vec2-mean", config_overrides={"num_hidden_layers": 1})
    base_folder, adapter_folder = tmp_path / "base", tmp_path / "adapters"
    model.save_pretrained(base_folder)
    extractor.save_pretrained(base_folder)
    adapted = apply_lora(model, ssl_lora_config(r=4)).eval()
    with torch.no_grad():  # trained adapters: B is zero at initialisation, which would make merging a no-op
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    adapted.peft_config["default"].base_model_name_or_path = str(base_folder)
    adapted.save_pretrained(adapter_folder)  # adapter_config.json and the adapters, no config.json
    assert is_lora_adapter(adapter_folder) and not is_lora_adapter(base_folder)

    loaded, loaded_extractor = load_model(adapter_folder)
    assert type(loaded) is type(model)  # merged: the plain transformers classifier, no peft wrapper
    assert loaded_extractor.to_dict() == extractor.to_dict()  # the base model's, as the adapter folder has none
    features = featurize(extractor, [load_clip(3), load_clip(4, 1.5)])
    with torch.no_grad():
        np.testing.assert_allclose(loaded(**features).logits.numpy(), adapted(**features).logits.numpy(), atol=1e-5)
    # ser-hf predict's pipeline loads it the same way.
    scores = load_classifier(adapter_folder)(load_clip(3), top_k=None)
    assert {score["label"] for score in scores} == set(loaded.config.id2label.values())


def test_lora_adapters_whose_base_is_gone_or_on_the_hub_offline_are_named_without_a_request(tmp_path, monkeypatch):
    model, _ = build_tiny("wav2vec2-mean", config_overrides={"num_hidden_layers": 1})
    adapted = apply_lora(model, ssl_lora_config(r=2))
    folder = tmp_path / "adapters"
    for base, expected in [
        (str(tmp_path / "deleted-base"), f"No such folder: {tmp_path / 'deleted-base'}"),
        ("someone/whisper-ser-base", "HF_HUB_OFFLINE is set, so the Hub was not asked"),
    ]:
        adapted.peft_config["default"].base_model_name_or_path = base
        adapted.save_pretrained(folder)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
        monkeypatch.setattr("huggingface_hub.HfApi.model_info", lambda *a, **k: pytest.fail("the Hub was asked"))
        with pytest.raises(FileNotFoundError) as error:
            load_model(folder)
        message = str(error.value)
        assert message.startswith(
            f"{folder / 'adapter_config.json'} holds LoRA adapters for base_model_name_or_path {base!r}"
        )
        assert expected in message


@pytest.mark.parametrize("purpose", ["embedding", "an ensemble", "an export"])
def test_an_onnx_export_is_refused_where_the_torch_model_is_needed(tmp_path, purpose):
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / MANIFEST_FILE).write_text(json.dumps({"inputs": [{"name": "input_values"}]}))
    with pytest.raises(OnnxExportError, match=f"{folder} is an ONNX export: {purpose} needs the trained model folder"):
        load_model(folder, allow_onnx=False, purpose=purpose)


def test_no_module_but_the_loader_loads_a_trained_classifier_itself():
    """predict, evaluate, embed, export, the app and ensembles load through load_model: no other module calls
    AutoModelForAudioClassification.from_pretrained (models/runtime/ssl.py loads a pre-trained encoder to fine-tune,
    not a trained classifier)."""
    callers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) == "AutoModelForAudioClassification.from_pretrained"
            ):
                callers.append(path.relative_to(PACKAGE).as_posix())
    assert sorted(set(callers)) == ["models/runtime/loading.py"], callers


def test_a_cut_short_weights_file_is_named_before_loading(tmp_path, tiny_crnn_folder):
    folder = model_copy(tiny_crnn_folder, tmp_path / "model")
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    with pytest.raises(ModelWeightsError, match=rf"{weights} is damaged and cannot be loaded"):
        load_model(folder)


def test_where_a_model_is_is_checked_once(tmp_path, tiny_crnn_folder, monkeypatch):
    """One location check per load (for a Hub id not in the cache, each check is a request to the Hub)."""
    import ser_hf.models.runtime.feature_extraction_auto as feature_extraction_auto
    import ser_hf.models.runtime.loading as loading

    checked = []
    real = loading.check_model_location

    def counting(name, **kwargs):
        checked.append(str(name))
        return real(name, **kwargs)

    monkeypatch.setattr(loading, "check_model_location", counting)
    monkeypatch.setattr(feature_extraction_auto, "check_model_location", counting)
    load_model(tiny_crnn_folder)
    assert checked == [str(tiny_crnn_folder)]


def test_the_loader_registers_ser_hf_model_types_itself(tiny_crnn_folder, monkeypatch):
    """load_model calls register_auto_classes itself (no import of the models package as a side effect): with the
    CRNN's types taken out of transformers' Auto tables, the Auto classes no longer know the folder, and load_model
    still loads it as ser-hf's own classes, without trust_remote_code."""
    from transformers import (
        CONFIG_MAPPING,
        FEATURE_EXTRACTOR_MAPPING,
        MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING,
        AutoConfig,
    )

    from ser_hf.models import CRNNConfig, CRNNForAudioClassification, LogMelFeatureExtractor

    monkeypatch.delitem(CONFIG_MAPPING._extra_content, "ser_crnn")
    monkeypatch.delitem(MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING._extra_content, CRNNConfig)
    monkeypatch.delitem(FEATURE_EXTRACTOR_MAPPING._extra_content, CRNNConfig)
    with pytest.raises(ValueError):  # unknown type: transformers asks for trust_remote_code (the saved auto_map)
        AutoConfig.from_pretrained(tiny_crnn_folder, trust_remote_code=False)

    model, feature_extractor = load_model(tiny_crnn_folder)
    assert type(model) is CRNNForAudioClassification and type(feature_extractor) is LogMelFeatureExtractor
    assert CONFIG_MAPPING["ser_crnn"] is CRNNConfig
