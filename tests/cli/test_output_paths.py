"""Where a command writes what its user names, checked before any work (:mod:`ser_hf.cli.output_paths`): a protocol's
``--output`` result file (``kfold``, ``loco``, ``learning-curve``) that is a folder, a link or another file, and an
``evaluate --output-dir`` that is a link to no folder, are one line naming the user's path (and where a link points),
before a recipe, a corpus or a model is read; an atomic write that fails names the user's path, never its temporary
``.partial`` name, and leaves nothing behind."""

from __future__ import annotations

import json
import os

import pytest

from ser_hf.atomic_files import write_text_atomic
from ser_hf.cli import main as cli_main
from ser_hf.cli.errors import error_line
from ser_hf.cli.output_paths import check_result_file
from tests.conftest import RAVDESS_SAMPLE, last_error_line

#: Each protocol's command line around its ``--output`` (nothing else it names exists: the check comes first).
PROTOCOLS = {
    "kfold": ["kfold", "recipe.yaml", "--folds", "2"],
    "loco": ["loco", "recipe.yaml"],
    "learning-curve": [
        "learning-curve",
        "model",
        "--data_dir",
        "clips",
        "--adapt_speakers",
        "A",
        "--test_speakers",
        "B",
    ],
}


def _folder(tmp_path):
    (tmp_path / "results").mkdir()
    return tmp_path / "results", "is a folder: name a file to write."


def _link_to_folder(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "result.json").symlink_to(tmp_path / "results")
    return tmp_path / "result.json", f"is a link to {tmp_path / 'results'} (a folder): ser-hf writes a file whole"


def _link_to_null(tmp_path):
    (tmp_path / "result.json").symlink_to(os.devnull)
    return (
        tmp_path / "result.json",
        "is a link to /dev/null (a device or other special file): ser-hf writes a file whole under a temporary",
    )


def _another_file(tmp_path):
    (tmp_path / "notes.json").write_text('{"mine": 1}\n')
    return tmp_path / "notes.json", "already exists and is not a file ser-hf wrote: a "


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("case", [_folder, _link_to_folder, _link_to_null, _another_file])
def test_a_protocols_output_is_refused_before_any_work_naming_the_users_path(
    tmp_path, capsys, monkeypatch, protocol, case
):
    monkeypatch.chdir(tmp_path)  # where the runs' and the cells' folders would go
    output, reason = case(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert cli_main([*PROTOCOLS[protocol], "--output", str(output)]) == 2
    error = last_error_line(capsys)
    assert error.startswith(f"ser-hf: error: --output {output} ") and reason in error
    assert ".partial" not in error
    assert sorted(tmp_path.rglob("*")) == before  # no run folder, no work folder, nothing replaced
    if case is _another_file:
        assert f"a {protocol} result file is read back to resume its run" in error


def test_a_result_file_of_the_same_protocol_is_resumed_and_one_of_another_refused(tmp_path):
    written = tmp_path / "kfold.json"
    written.write_text(json.dumps({"experiment": "kfold", "settings": {}, "cells": []}, indent=2) + "\n")
    check_result_file("--output", written, "kfold")  # read back by the run to skip its finished folds
    check_result_file("--output", tmp_path / "new.json", "kfold")
    with pytest.raises(ValueError, match="is not a file ser-hf wrote: a loco result file is read back"):
        check_result_file("--output", written, "loco")


def test_evaluate_output_dir_linked_to_no_folder_is_refused_before_the_model_loads(tmp_path, capsys):
    evaluate = ["evaluate", "--model", str(tmp_path / "no_model"), "--corpus", "ravdess"]
    evaluate += ["--data-dir", str(RAVDESS_SAMPLE)]
    (tmp_path / "reports").symlink_to(os.devnull)
    assert cli_main([*evaluate, "--output-dir", str(tmp_path / "reports")]) == 2
    assert last_error_line(capsys) == (
        f"ser-hf: error: --output-dir {tmp_path / 'reports'} is a link to /dev/null, not a folder: choose a folder "
        "to write into."
    )
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    assert cli_main([*evaluate, "--output-dir", str(tmp_path / "gone")]) == 2
    assert f"is a link to {tmp_path / 'nowhere'}, which does not exist" in last_error_line(capsys)
    assert cli_main([*evaluate, "--output-dir", str(RAVDESS_SAMPLE / "Actor_01" / "reports")]) == 2
    assert "is inside the data directory" in last_error_line(capsys)


def test_a_failed_atomic_write_names_the_users_path_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "result.json"
    target.mkdir()  # the rename onto it fails
    with pytest.raises(IsADirectoryError) as error:
        write_text_atomic(target, "{}\n")
    assert error_line(error.value) == f"{target}: Is a directory"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["result.json"]
