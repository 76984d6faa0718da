"""``ser-hf export MODEL OUT`` as a user runs it: the two lines it prints (where the export is, how close it is to
torch), the folder it writes and replaces, and its one-line errors. What the graph computes is tested in
tests/deploy."""

from __future__ import annotations

import json

import pytest

from ser_hf.cli import main as cli_main
from tests.conftest import last_error_line


def test_export_prints_where_and_how_close_and_replaces_only_its_own_exports(tmp_path, tiny_crnn_folder, capsys):
    output = tmp_path / "onnx"
    export = ["export", str(tiny_crnn_folder), str(output), "--exporter", "torchscript"]
    assert cli_main(export) == 0
    where, parity = capsys.readouterr().out.splitlines()
    assert where == f"Exported {tiny_crnn_folder} to {output} (torch.onnx.export (torchscript), opset 18)"
    assert parity.startswith(
        "parity on 3 clip(s) of generated noise (no --parity-audio given): max |logit difference|"
    )
    assert parity.endswith("(tolerance 1e-03), argmax identical")
    assert {"model.onnx", "onnx_export.json", "config.json", "preprocessor_config.json"} <= {
        path.name for path in output.iterdir()
    }
    assert json.loads((output / "onnx_export.json").read_text())["source_model"] == str(tiny_crnn_folder)

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    assert cli_main(["export", str(tiny_crnn_folder), str(mine)]) == 2
    assert last_error_line(capsys) == (
        f"ser-hf: error: {mine} already holds files and is not an ONNX export (no onnx_export.json): export into a "
        "new folder (an earlier export is replaced)."
    )
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]


def test_export_options_are_checked_before_the_model_is_loaded(tmp_path, capsys):
    missing, output = tmp_path / "no-such-model", tmp_path / "onnx"
    assert cli_main(["export", str(missing), str(output), "--tolerance", "0"]) == 2
    assert last_error_line(capsys) == "ser-hf: error: --tolerance must be positive, got 0.0."
    assert cli_main(["export", str(missing), str(output)]) == 2
    assert last_error_line(capsys) == f"ser-hf: error: No such folder: {missing} (it is written as a path)."
    with pytest.raises(SystemExit) as exit_:
        cli_main(["export", str(missing), str(output), "--format", "tflite"])
    assert exit_.value.code == 2 and "argument --format: invalid choice: 'tflite'" in capsys.readouterr().err
    assert not output.exists()
