"""Every model kind saves as safetensors, reloads through the Auto classes in a fresh process with identical logits,
loads without ser-hf installed through its saved code (`trust_remote_code=True`), and runs in the pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
import torch
from transformers import pipeline

from tests.conftest_models import LABELS, MODEL_KINDS, build_tiny, featurize, load_clip

# Kinds whose classes are transformers' own: their folders need (and carry) no code.
PLAIN_KINDS = tuple(kind for kind in MODEL_KINDS if kind.endswith("-mean"))

# Run in a fresh interpreter: loads every saved folder through the Auto classes and writes the logits it gets.
RELOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    mode, root, kinds = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    if mode == "remote_code":
        # Python was started with -S (no site: the editable install of ser-hf is not on the path); add the
        # environment's packages by hand.
        sys.path.append(sys.argv[4])
        try:
            import ser_hf  # noqa: F401
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("ser_hf is importable: this process cannot prove the saved code is self-sufficient")
    else:
        import ser_hf  # noqa: F401  (registers the model types once transformers loads: no remote code needed)
    import numpy as np
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

    trust = mode == "remote_code"
    clips = np.load(f"{root}/clips.npz")
    results = {}
    for kind in kinds:
        folder = f"{root}/{kind}"
        extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=trust)
        model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=trust).eval()
        inputs = extractor([clips["long"], clips["short"]], sampling_rate=16000, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits
        classify = pipeline("audio-classification", model=folder, trust_remote_code=trust)
        results[kind] = {
            "logits": logits.tolist(),
            "model_module": type(model).__module__,
            "pipeline_labels": sorted(p["label"] for p in classify(clips["long"], top_k=None)),
        }
    results["ser_hf_imported"] = "ser_hf" in sys.modules
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Save a tiny model of every kind with its feature extractor; keep the logits each gives on two real clips."""
    root = tmp_path_factory.mktemp("saved_models")
    clips = {"long": load_clip(6, 1.1), "short": load_clip(7, 0.6)}
    np.savez(root / "clips.npz", **clips)
    logits = {}
    for kind in MODEL_KINDS:
        torch.manual_seed(0)
        model, feature_extractor = build_tiny(kind)
        model.eval()
        with torch.no_grad():
            logits[kind] = model(**featurize(feature_extractor, [clips["long"], clips["short"]])).logits
        model.save_pretrained(root / kind)
        feature_extractor.save_pretrained(root / kind)
    return root, logits


def _reload_in_fresh_process(root, mode):
    environment = {
        **os.environ,
        "HF_HOME": str(root / "hf_home"),  # the dynamic-module cache for remote code
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }
    command = [sys.executable, "-c", RELOAD_SCRIPT, mode, str(root), ",".join(MODEL_KINDS)]
    if mode == "remote_code":
        # -I: ignore PYTHON* variables and user site; -S: skip site-packages' .pth files, which install ser-hf's
        # editable import hook. The script then adds site-packages itself.
        command[1:1] = ["-I", "-S"]
        command.append(sysconfig.get_paths()["purelib"])
    completed = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reloaded_with_ser_hf(saved_models):
    return _reload_in_fresh_process(saved_models[0], "registered")


@pytest.fixture(scope="module")
def reloaded_without_ser_hf(saved_models):
    return _reload_in_fresh_process(saved_models[0], "remote_code")


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_saved_folder_holds_safetensors_and_the_code_it_needs(saved_models, kind):
    folder = saved_models[0] / kind
    files = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
    assert not files & {"pytorch_model.bin", "training_args.bin"}
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {str(index): name for index, name in enumerate(LABELS.names)}
    if kind in PLAIN_KINDS:
        assert "auto_map" not in config and not any(name.endswith(".py") for name in files)
        return
    assert config["model_type"].startswith("ser_")
    for reference in config["auto_map"].values():
        assert f"{reference.split('.')[0]}.py" in files
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    if preprocessor["feature_extractor_type"] != "Wav2Vec2FeatureExtractor":
        assert f"{preprocessor['auto_map']['AutoFeatureExtractor'].split('.')[0]}.py" in files


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.slow
def test_fresh_process_reloads_identical_logits_through_auto_classes(saved_models, reloaded_with_ser_hf, kind):
    result = reloaded_with_ser_hf[kind]
    assert not result["model_module"].startswith("transformers_modules")  # registered classes, not remote code
    torch.testing.assert_close(torch.tensor(result["logits"]), saved_models[1][kind], rtol=1e-5, atol=1e-6)
    assert result["pipeline_labels"] == sorted(LABELS.names)


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.slow
def test_process_without_ser_hf_loads_the_saved_code(saved_models, reloaded_without_ser_hf, kind):
    result = reloaded_without_ser_hf[kind]
    assert reloaded_without_ser_hf["ser_hf_imported"] is False
    if kind not in PLAIN_KINDS:
        assert result["model_module"].startswith("transformers_modules")
    torch.testing.assert_close(torch.tensor(result["logits"]), saved_models[1][kind], rtol=1e-5, atol=1e-6)
    assert result["pipeline_labels"] == sorted(LABELS.names)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_pipeline_names_the_emotions_of_a_real_clip(saved_models, kind):
    classify = pipeline("audio-classification", model=str(saved_models[0] / kind))
    clip = load_clip(10)
    predictions = classify({"raw": clip, "sampling_rate": 16000}, top_k=None)
    assert sorted(prediction["label"] for prediction in predictions) == sorted(LABELS.names)
    assert sum(prediction["score"] for prediction in predictions) == pytest.approx(1.0, abs=1e-5)
    top = classify(clip, top_k=1)[0]
    model = classify.model
    with torch.no_grad():
        logits = model(**classify.feature_extractor(clip, sampling_rate=16000, return_tensors="pt")).logits[0]
    assert top["label"] == model.config.id2label[int(logits.argmax())]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_model_trains_under_autocast(kind, dtype):
    """`precision: auto` turns bf16 (or fp16) autocast on for GPU runs: a training step of every model must run under
    it, keep its float32 batch-norm statistics float32, and give logits close to float32's."""
    torch.manual_seed(0)
    model, feature_extractor = build_tiny(kind)
    inputs = {**featurize(feature_extractor, [load_clip(0, 0.9), load_clip(1, 0.5)]), "labels": torch.tensor([1, 3])}
    model.train()
    with torch.autocast("cpu", dtype=dtype):
        loss = model(**inputs).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(buffer.dtype != dtype for buffer in model.buffers())
    assert any(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in model.parameters())
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        logits = model(**inputs).logits
    # The training step moved the batch-norm running statistics, so compare with a float32 pass after it.
    with torch.no_grad():
        reference = model(**inputs).logits
    torch.testing.assert_close(logits.float(), reference, atol=0.1, rtol=0.1)
