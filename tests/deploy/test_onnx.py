"""ONNX export of the baselines: onnxruntime gives torch's logits on real clips (each alone and in one padded batch),
the exported folder says what its graph takes, and `ser-hf predict` / `ser-hf evaluate` run it through the CLI. The
SSL classifiers and LoRA are in test_onnx_ssl.py (a file of their own, so that the slower exports run in parallel).

Each baseline kind is exported once, in a module fixture that every test here shares: exports cost seconds each (the
exporter traces the model), the checks on them milliseconds."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from transformers import AutoFeatureExtractor

from ser_hf.cli import main as cli_main
from ser_hf.deploy.onnx_export import export_onnx
from ser_hf.models import OpenSmileFeatureExtractor, build_baseline
from ser_hf.models.runtime.onnx_runtime import OnnxExportError, OnnxModelForAudioClassification
from tests.conftest_models import BASELINE_KINDS, LABELS, SAMPLE_DIR, build_tiny, featurize, load_clip

#: Every baseline kind exported and run in onnxruntime: minutes of exports (make test-slow); test_onnx_ssl.py keeps an
#: export with its parity check in the quick suite.
pytestmark = pytest.mark.slow

PARITY_AUDIO = [SAMPLE_DIR / "Actor_01", SAMPLE_DIR / "Actor_08"]
#: Every baseline of the registry (with the MFCC model's CNN head) and openSMILE functionals. They take the dynamo
#: exporter (cnn2d, cnn1d, mfcc, parallel_cnn_transformer, opensmile) or TorchScript's where dynamo cannot trace them
#: (the LSTMs of crnn and cnn_attention_lstm, the MFCC CNN head).
KINDS = (*BASELINE_KINDS, "opensmile")
#: The kinds exported through `ser-hf export` in a subprocess, as a user runs it (the others through export_onnx, which
#: the command calls): one through the dynamo exporter, one through TorchScript's, each with its libraries' own noise.
CLI_KINDS = ("cnn2d", "crnn")
CLI_KIND = CLI_KINDS[0]


def build_opensmile():
    extractor = OpenSmileFeatureExtractor(
        feature_set="eGeMAPSv02", normalization="speaker", feature_mean=[0.5] * 88, feature_std=[2.0] * 88
    )
    return build_baseline("opensmile", LABELS, feature_extractor=extractor, hidden_sizes=(16,))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Each baseline exported once: {kind: (torch model, feature extractor, export folder)}; under ("cli", kind) what
    `ser-hf export` printed for each of CLI_KINDS, exported from its saved folder (CLI_KIND's under "model")."""
    root = tmp_path_factory.mktemp("onnx")
    built = {kind: build_tiny(kind) for kind in BASELINE_KINDS}
    built["opensmile"] = build_opensmile()
    exports = {}
    for kind, (model, extractor) in built.items():
        model.eval()  # as export_onnx sets it, and from_pretrained in `ser-hf export`
        if kind in CLI_KINDS:
            saved = root / "model" if kind == CLI_KIND else root / f"{kind}-model"
            model.save_pretrained(saved)
            extractor.save_pretrained(saved)
            command = ["export", str(saved), "--format", "onnx", str(root / kind)]
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ser_hf.cli",
                    *command,
                    *(f"--parity-audio={folder}" for folder in PARITY_AUDIO),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert run.returncode == 0, run.stderr
            exports["cli", kind] = run
            if kind == CLI_KIND:
                exports["cli"] = run.stdout
        else:
            export = export_onnx(model, root / kind, feature_extractor=extractor, parity_audio=PARITY_AUDIO)
            assert export.manifest == json.loads((export.path / "onnx_export.json").read_text())
        exports[kind] = (model, extractor, root / kind)
    exports["model"] = root / "model"
    return exports


@pytest.mark.parametrize("kind", KINDS)
def test_onnxruntime_gives_torchs_logits_on_real_clips(exports, kind):
    model, extractor, folder = exports[kind]
    manifest = json.loads((folder / "onnx_export.json").read_text())
    parity = manifest["parity"]
    assert parity["clips"] == 8 and parity["argmax_identical"] and parity["max_abs_logit_difference"] < 1e-4, parity
    assert manifest["labels"] == LABELS.names and manifest["feature_extractor"]["runs_before_graph"]
    # Clips the check did not see, at other lengths and batch sizes: the axes are dynamic.
    clips = [load_clip(20, 1.3), load_clip(40), load_clip(60, 2.1)]
    features = featurize(extractor, clips)
    onnx_model = OnnxModelForAudioClassification(folder)
    expected = model(**{name: features[name] for name in onnx_model.inputs}).logits.detach().numpy()
    np.testing.assert_allclose(onnx_model(**features).logits.numpy(), expected, atol=1e-4)


def test_the_manifest_says_what_the_graph_takes(exports):
    manifests = {kind: json.loads((exports[kind][2] / "onnx_export.json").read_text()) for kind in KINDS}
    inputs = {kind: manifest["inputs"] for kind, manifest in manifests.items()}
    assert inputs["cnn2d"] == [
        {"name": "input_features", "dtype": "float32", "shape": ["batch", "frames", 32]},
        {"name": "attention_mask", "dtype": "int32", "shape": ["batch", "frames"]},
    ]
    assert inputs["cnn1d"][0] == {"name": "input_values", "dtype": "float32", "shape": ["batch", "samples"]}
    # openSMILE functionals: one vector per clip, computed in Python, standardised with the speaker's statistics.
    assert inputs["opensmile"] == [{"name": "input_features", "dtype": "float32", "shape": ["batch", 88]}]
    assert manifests["opensmile"]["feature_extractor"]["normalization"] == "speaker"
    assert {"model.onnx", "config.json", "preprocessor_config.json"} <= {p.name for p in exports["cnn2d"][2].iterdir()}
    exporters = {kind: manifest["exporter"].removeprefix("torch.onnx.export ") for kind, manifest in manifests.items()}
    assert exporters["parallel_cnn_transformer"] == exporters["cnn2d"] == "(dynamo)"
    assert exporters["crnn"] == "(torchscript)" and manifests["crnn"]["dynamo_error"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bare_inference_session_runs_on_the_saved_extractors_output(exports, kind):
    """What a user of the folder alone does (issue 33): the saved feature extractor's numpy output, as it comes, into
    onnxruntime.InferenceSession; the graph takes exactly the names and dtypes the extractor gives."""
    import onnxruntime

    model, _, folder = exports[kind]
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    clips = [load_clip(20, 1.3), load_clip(40)]
    features = extractor(clips, sampling_rate=16000, padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    graph_inputs = {item.name: item.type for item in session.get_inputs()}
    given = {
        name: f"tensor({'float' if value.dtype == np.float32 else value.dtype})" for name, value in features.items()
    }
    assert given == graph_inputs
    (logits,) = session.run(["logits"], dict(features))
    expected = model(**featurize(extractor, clips)).logits.detach().numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_ser_hf_export_prints_only_its_own_lines(exports):
    """No onnx_ir/onnxscript notes, torch.onnx warnings, C++ warnings of TorchScript's exporter or progress bars:
    the two lines of the result, and for the CRNN ser-hf's own line on the exporter it fell back to."""
    for kind, exporter in zip(CLI_KINDS, ("dynamo", "torchscript")):
        run = exports["cli", kind]
        lines = run.stdout.splitlines()
        assert len(lines) == 2 and f"(torch.onnx.export ({exporter}), opset 18)" in lines[0], run.stdout
        assert lines[1].startswith("parity on 8 clip(s) of ") and "argmax identical" in lines[1]
        # The CRNN's LSTM takes TorchScript's exporter: ser-hf says so in one line of its own.
        loggers = [line.split(": ")[0] for line in run.stderr.splitlines()]
        assert loggers == ([] if exporter == "dynamo" else ["WARNING ser_hf.deploy.onnx_export"]), run.stderr
        assert exporter == "dynamo" or "trying TorchScript's exporter" in run.stderr


def test_ser_hf_export_verbose_shows_the_exporters_libraries(monkeypatch, tmp_path, capsys):
    """With --verbose (after the command, or before it) the exporter's loggers and transformers' bars are left as
    they are; without it, quiet during the export and put back after."""
    import logging
    from types import SimpleNamespace

    from transformers.utils import logging as transformers_logging

    import ser_hf.deploy.onnx_export

    seen = []

    def export_onnx(model, output_dir, **options):
        seen.append((logging.getLogger("onnx_ir").getEffectiveLevel(), transformers_logging.is_progress_bar_enabled()))
        parity = SimpleNamespace(summary=lambda: "parity")
        return SimpleNamespace(path=output_dir, manifest={"exporter": "torch.onnx.export (dynamo)"}, parity=parity)

    monkeypatch.setattr(ser_hf.deploy.onnx_export, "export_onnx", export_onnx)
    # From a known state (an in-process training earlier in this worker may have turned transformers' bars off), put
    # back at the end.
    onnx_ir, bars = logging.getLogger("onnx_ir"), transformers_logging.is_progress_bar_enabled()
    level = onnx_ir.level
    onnx_ir.setLevel(logging.INFO)
    transformers_logging.enable_progress_bar()
    try:
        command = ["export", str(tmp_path / "model"), str(tmp_path / "out")]
        for argv in (command, [*command, "--verbose"], ["--verbose", *command]):
            assert cli_main(argv) == 0
        assert seen == [(logging.ERROR, False), (logging.INFO, True), (logging.INFO, True)]
        assert onnx_ir.level == logging.INFO and transformers_logging.is_progress_bar_enabled()  # put back
    finally:
        onnx_ir.setLevel(level)
        if not bars:
            transformers_logging.disable_progress_bar()


def test_a_model_whose_graph_cannot_run_fails_and_writes_nothing(tmp_path):
    model, extractor = build_tiny("parallel_cnn_transformer")
    with pytest.raises(OnnxExportError, match="Nothing was written"):
        export_onnx(
            model,
            tmp_path / "out",
            feature_extractor=extractor,
            parity_audio=[SAMPLE_DIR / "Actor_01"],
            # TorchScript's tracer fixes the transformer branch's pooled length (Python arithmetic on the example's
            # shape): only dynamo exports this model (tested above).
            exporter="torchscript",
        )
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_export_predict_and_evaluate_through_the_cli(exports, tmp_path):
    out = exports["cli"]
    assert "torch.onnx.export (dynamo)" in out and "argmax identical" in out and "max |logit difference|" in out
    model, onnx = exports["model"], exports[CLI_KIND][2]

    clips = str(SAMPLE_DIR / "Actor_08")
    for name, folder in (("torch", model), ("onnx", onnx)):
        assert (
            cli_main(["predict", str(folder), clips, "--no-progress", "--output", str(tmp_path / f"{name}.json")]) == 0
        )
    torch_rows, onnx_rows = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("torch", "onnx"))
    assert len(onnx_rows) == 30 and [r["label"] for r in onnx_rows] == [r["label"] for r in torch_rows]
    for ours, theirs in zip(onnx_rows, torch_rows):
        assert ours["scores"] == pytest.approx(theirs["scores"], abs=1e-4)

    evaluate = ["evaluate", "--corpus", "ravdess", "--data-dir", str(SAMPLE_DIR), "--speakers", "08"]
    reports = {}
    for name, folder in (("torch", model), ("onnx", onnx)):
        assert cli_main([*evaluate, "--model", str(folder), "--output-dir", str(tmp_path / f"eval-{name}")]) == 0
        reports[name] = json.loads((tmp_path / f"eval-{name}" / "eval_report.json").read_text())
    metrics = [next(iter(report["evaluation"].values())) for report in (reports["torch"], reports["onnx"])]
    assert metrics[0]["clips"] == metrics[1]["clips"] == 26  # RAVDESS "calm" is not a label of the model
    assert metrics[0]["unweighted_accuracy"] == metrics[1]["unweighted_accuracy"]


def test_a_folder_that_is_neither_a_model_nor_an_export_is_named(tmp_path, capsys):
    clip = str(sorted((SAMPLE_DIR / "Actor_01").glob("*.flac"))[0])
    (tmp_path / "notes.txt").write_text("not a model")
    assert cli_main(["predict", str(tmp_path), clip, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is neither a trained model (no config.json) nor an ONNX export (no onnx_export.json)" in err
    (tmp_path / "model.onnx").write_bytes(b"")
    evaluate = ["evaluate", "--model", str(tmp_path), "--corpus", "ravdess", "--data-dir", str(SAMPLE_DIR)]
    assert cli_main([*evaluate, "--speakers", "01"]) == 2
    assert f"{tmp_path} holds model.onnx but no onnx_export.json" in capsys.readouterr().err


def test_an_export_never_overwrites_another_folder(tmp_path, exports):
    model, extractor, _ = exports["mfcc"]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(OnnxExportError, match="already holds files and is not an ONNX export"):
        export_onnx(model, tmp_path / "run", feature_extractor=extractor)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["config.json"]


def test_without_onnxruntime_the_error_says_how_to_install_it(exports, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    clip = str(sorted((SAMPLE_DIR / "Actor_01").glob("*.flac"))[0])
    assert cli_main(["predict", str(exports["cnn2d"][2]), clip, "--no-progress"]) == 2
    assert "needs onnxruntime, which is not installed: pip install 'ser-hf[onnx]'" in capsys.readouterr().err
