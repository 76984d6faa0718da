"""ONNX export of the SSL classifiers (one per encoder family, both pooling heads) and of a LoRA model, merged first:
onnxruntime gives torch's logits on real clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ser_hf.export.onnx import export_onnx
from ser_hf.export.onnx_runtime import OnnxModelForAudioClassification
from ser_hf.models import ssl_lora_config
from tests.conftest_models import SAMPLE_DIR, build_tiny, featurize, load_clip

PARITY_AUDIO = [SAMPLE_DIR / "Actor_02"]
pytestmark = pytest.mark.slow  # the dynamo exporter takes seconds per encoder

SSL_KINDS = ("wav2vec2-mean", "hubert-attentive_statistics", "wavlm-mean", "data2vec-audio-attentive_statistics")


@pytest.mark.parametrize("kind", SSL_KINDS)
def test_onnxruntime_gives_torchs_logits_on_real_clips(tmp_path, kind):
    model, extractor = build_tiny(kind)
    export = export_onnx(model, tmp_path / kind, feature_extractor=extractor, parity_audio=PARITY_AUDIO)
    assert export.parity.argmax_identical and export.parity.max_abs_logit_difference < 1e-4, export.parity
    assert export.manifest["exporter"] == "torch.onnx.export (dynamo)"
    assert [i["name"] for i in export.manifest["inputs"]] == ["input_values", "attention_mask"]


def test_a_lora_model_is_merged_and_keeps_its_adapted_logits(tmp_path):
    model, extractor = build_tiny("wav2vec2-attentive_statistics", lora_config=ssl_lora_config(r=4))
    model.eval()
    with torch.no_grad():  # trained adapters: B is zero at initialisation, which would make merging a no-op
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    export = export_onnx(model, tmp_path / "lora", feature_extractor=extractor, parity_audio=PARITY_AUDIO)
    assert export.parity.passed and type(model).__name__ == "PeftModel"  # the model given keeps its adapters
    config = json.loads((tmp_path / "lora" / "config.json").read_text())
    assert config["model_type"] == "ser_wav2vec2"
    features = featurize(extractor, [load_clip(3), load_clip(4, 1.5)])
    with torch.no_grad():
        adapted = model(**features).logits.numpy()
        base = model.get_base_model()
        with model.disable_adapter():
            plain = base(**features).logits.numpy()
    onnx_logits = OnnxModelForAudioClassification(tmp_path / "lora")(**features).logits.numpy()
    np.testing.assert_allclose(onnx_logits, adapted, atol=1e-4)
    assert np.abs(onnx_logits - plain).max() > 1e-3
