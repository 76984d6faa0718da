"""Reliability of deployment: a truncated ONNX graph and an exported config.json that lost its labels are named, an
ensemble is refused for export before any work (naming each member's export), and predict gives a clip too short
for openSMILE functionals an error row instead of scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from transformers import AutoModelForAudioClassification

from ser_hf.cli import main as cli_main
from ser_hf.models import (
    load_feature_extractor,
)
from tests.conftest import REPO, model_copy, ser_hf_error_lines, write_audio

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def tiny_onnx_export(tmp_path_factory, tiny_crnn_folder) -> Path:
    """The tiny CRNN exported by `ser-hf export` (TorchScript's exporter: dynamo cannot trace its LSTM)."""
    folder = tmp_path_factory.mktemp("tiny_onnx") / "export"
    assert cli_main(["export", str(tiny_crnn_folder), str(folder), "--exporter", "torchscript"]) == 0
    return folder


def test_a_truncated_onnx_graph_and_a_config_that_lost_its_labels_are_named(tmp_path, tiny_onnx_export, capsys):
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    assert cli_main(["predict", str(tiny_onnx_export), str(clip), "--no-progress"]) == 0
    capsys.readouterr()
    truncated = model_copy(tiny_onnx_export, tmp_path / "truncated")
    graph = truncated / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:3000])
    assert cli_main(["predict", str(truncated), str(clip), "--no-progress"]) == 2
    (line,) = ser_hf_error_lines(capsys)
    assert line.startswith(f"ser-hf: error: {graph} cannot be loaded by onnxruntime: it is truncated or corrupt (")
    source = json.loads((truncated / "onnx_export.json").read_text())["source_model"]
    assert line.endswith(f"Export the model again: ser-hf export {source} --format onnx {truncated}.")

    relabelled = model_copy(tiny_onnx_export, tmp_path / "relabelled")
    config = json.loads((relabelled / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(["neutral", "happy", "sad", "angry"])}
    config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
    (relabelled / "config.json").write_text(json.dumps(config))
    evaluate = ["evaluate", "--model", str(relabelled), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    for command in (["predict", str(relabelled), str(clip), "--no-progress"], evaluate):
        assert cli_main(command) == 2  # not a KeyError: 4 in each clip's row
        (line,) = ser_hf_error_lines(capsys)
        assert line.startswith(
            f"ser-hf: error: {relabelled}: config.json has 4 labels, the graph outputs 7: config.json is not the "
            "one exported with model.onnx (edited, or copied from another model)."
        ), line


def test_exporting_an_ensemble_is_refused_before_any_work_naming_each_members_export(
    tmp_path, tiny_crnn_folder, monkeypatch, capsys
):
    import ser_hf.deploy.onnx_export as onnx_export

    first, second = model_copy(tiny_crnn_folder, tmp_path / "a"), model_copy(tiny_crnn_folder, tmp_path / "b")
    ensemble, out = tmp_path / "ensemble", tmp_path / "exported"
    assert cli_main(["ensemble", str(first), str(second), "--output-dir", str(ensemble)]) == 0
    capsys.readouterr()

    def never(*args, **kwargs):
        raise AssertionError("the ensemble was loaded for an export that cannot succeed")

    monkeypatch.setattr(onnx_export, "load_model_for_export", never)
    assert cli_main(["export", str(ensemble), "--format", "onnx", str(out)]) == 2
    assert ser_hf_error_lines(capsys) == [
        f"ser-hf: error: {ensemble} is an ensemble of 2 models (a, b): ensembles are not exportable to ONNX yet, "
        "since each member has its own inputs (member0_..., member1_..., each made by the member's own feature "
        "extractor) and an export runs one feature extractor before one graph. Export each member instead "
        f"(ser-hf export {first} --format onnx {out / 'a'}; ser-hf export {second} --format onnx {out / 'b'}), and "
        f"run the ensemble itself in torch: ser-hf predict and ser-hf evaluate take {ensemble}."
    ]
    assert not out.exists()
    loaded = AutoModelForAudioClassification.from_pretrained(ensemble)
    with pytest.raises(ValueError, match="ensembles are not exportable to ONNX yet"):
        onnx_export.export_onnx(loaded, out, feature_extractor=load_feature_extractor(ensemble))


def test_a_clip_too_short_for_opensmile_functionals_is_an_error_row_not_scores(
    tmp_path, tiny_opensmile_folder, capsys
):
    one_sample = tmp_path / "click.wav"
    soundfile.write(one_sample, np.array([0.1], dtype=np.float32), 16000)
    blip = write_audio(tmp_path / "blip.wav", seconds=0.05)
    sentence = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    assert cli_main(["predict", str(tiny_opensmile_folder), str(tmp_path), "--no-progress"]) == 1
    rows = {Path(row["file"]).name: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    for clip, milliseconds in ((one_sample, "0.1"), (blip, "50.0")):
        assert rows[clip.name]["scores"] == {} and rows[clip.name]["error"] == (
            f"the clip is {milliseconds} ms long, shorter than one openSMILE frame (60.0 ms), below which its "
            "eGeMAPSv02 functionals are all NaN"
        )
    assert rows[sentence.name]["error"] is None and rows[sentence.name]["label"] is not None
