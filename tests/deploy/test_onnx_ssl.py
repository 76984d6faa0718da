"""ONNX export of an SSL classifier and of a LoRA model, merged first: onnxruntime gives torch's logits on real clips.

One encoder family, wav2vec2 (ser-hf's default), with one transformer layer: every family takes the same path through
ser-hf (the dynamo exporter, a graph from `input_values` and `attention_mask` to logits, the same pooling heads), and
they differ only inside transformers' encoders, which HuBERT and data2vec-audio copy from wav2vec2's. Whatever a
family's encoder does, `ser-hf export` runs it against torch on real clips before it writes anything, so an encoder
that did not export right fails there with its figures (tests/deploy/test_onnx.py checks that path). Both pooling
heads are exported: mean pooling plain, attentive statistics under LoRA.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import torch
from transformers import AutoFeatureExtractor

from ser_hf.deploy.onnx_export import export_onnx
from ser_hf.models import ssl_lora_config
from ser_hf.models.runtime.onnx_runtime import OnnxModelForAudioClassification
from tests.conftest_models import SAMPLE_DIR, build_tiny, featurize, load_clip

PARITY_AUDIO = [SAMPLE_DIR / "Actor_02"]
#: The tiny test geometry with one transformer layer: the exporter traces every layer, at seconds a layer.
ONE_LAYER = {"config_overrides": {"num_hidden_layers": 1}}


@pytest.mark.slow
def test_onnxruntime_gives_torchs_logits_on_real_clips(tmp_path):
    model, extractor = build_tiny("wav2vec2-mean", **ONE_LAYER)
    export = export_onnx(model, tmp_path / "wav2vec2", feature_extractor=extractor, parity_audio=PARITY_AUDIO)
    assert export.parity.argmax_identical and export.parity.max_abs_logit_difference < 1e-4, export.parity
    assert export.manifest["exporter"] == "torch.onnx.export (dynamo)"
    assert export.manifest["inputs"] == [
        {"name": "input_values", "dtype": "float32", "shape": ["batch", "samples"]},
        {"name": "attention_mask", "dtype": "int32", "shape": ["batch", "samples"]},
    ]
    # The saved Wav2Vec2FeatureExtractor's numpy output, as it comes, runs in a bare InferenceSession (issue 33).
    saved = AutoFeatureExtractor.from_pretrained(export.path)
    inputs = saved([load_clip(5, 1.2), load_clip(50)], sampling_rate=16000, padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(export.path / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], dict(inputs))
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(**inputs.convert_to_tensors("pt")).logits.numpy(), atol=1e-4)
    # Clips the check did not see, at other lengths and batch sizes: the axes are dynamic.
    features = featurize(extractor, [load_clip(5, 1.2), load_clip(50), load_clip(70, 2.3)])
    with torch.no_grad():
        expected = model(**features).logits.numpy()
    onnx_logits = OnnxModelForAudioClassification(export.path)(**features).logits.numpy()
    np.testing.assert_allclose(onnx_logits, expected, atol=1e-4)


# In `make test-slow`, to keep `make test` under 5 minutes (LoRA merging is also in the fast training tests).
@pytest.mark.slow
def test_a_lora_model_is_merged_and_keeps_its_adapted_logits(tmp_path):
    model, extractor = build_tiny("wav2vec2-attentive_statistics", lora_config=ssl_lora_config(r=4), **ONE_LAYER)
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
