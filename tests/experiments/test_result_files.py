"""A protocol's result file is bound to what it measured: resumed with other recipe values, another model or another
ser-hf version, it refuses in one line naming the first setting that differs; a malformed file is one line too."""

from __future__ import annotations

import json

import pytest

from ser_hf import __version__
from ser_hf.errors import RecipeError
from ser_hf.experiments.results import ResultFile


def result_file(path, settings):
    return ResultFile(path, "kfold", settings, lambda cells: {"cells": len(cells)})


def test_a_recipe_edited_between_two_runs_is_named_down_to_the_key_that_changed(tmp_path):
    path = tmp_path / "kfold.json"
    first = result_file(path, {"recipe_values": {"labels": ["angry", "sad"], "seed": 42}})
    first.add({"key": "fold/0", "unweighted_accuracy": 50.0})
    assert json.loads(path.read_text())["settings"]["ser_hf_version"] == __version__
    again = result_file(path, {"recipe_values": {"labels": ["angry", "sad"], "seed": 42}})
    assert [cell["key"] for cell in again.cells] == ["fold/0"]  # the same values resume
    with pytest.raises(RecipeError, match=r"recipe_values\.labels = \['angry', 'sad'\], not \['angry'\]"):
        result_file(path, {"recipe_values": {"labels": ["angry"], "seed": 42}})
    with pytest.raises(RecipeError, match="delete the file to start over"):
        result_file(path, {"recipe_values": {"labels": ["angry", "sad"], "seed": 7}})


def test_another_ser_hf_version_is_another_experiment(tmp_path):
    path = tmp_path / "kfold.json"
    result_file(path, {"folds": 5}).write()
    document = json.loads(path.read_text())
    document["settings"]["ser_hf_version"] = "0.0.1"
    path.write_text(json.dumps(document))
    with pytest.raises(RecipeError, match="ser_hf_version = '0.0.1'"):
        result_file(path, {"folds": 5})


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[]", "a JSON list"),
        ('{"experiment": "kfold", "settings": null}', "no settings"),
        ('{"experiment": "kfold", "settings": {}, "cells": [{"fold": 0}]}', "a cell without its key"),
        ("{not json", "cannot be read back"),
    ],
)
def test_a_malformed_result_file_is_one_line_naming_it(tmp_path, text, problem):
    path = tmp_path / "kfold.json"
    path.write_text(text)
    with pytest.raises(RecipeError, match=problem) as error:
        result_file(path, {"folds": 5})
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_other_clips_are_named_by_their_counts_per_speaker(tmp_path):
    from ser_hf.data.splits import rows_fingerprint
    from ser_hf.experiments.results import CLIPS_SETTING

    path = tmp_path / "loco.json"
    paths, labels, speakers = ["a.wav", "b.wav", "c.wav"], ["sad", "angry", "sad"], ["01", "01", "02"]
    result_file(path, {CLIPS_SETTING: rows_fingerprint(paths, labels, speakers)}).write()
    # The same clips listed in another order are the same clips.
    assert result_file(path, {CLIPS_SETTING: rows_fingerprint(paths[::-1], labels[::-1], speakers[::-1])}).cells == []
    with pytest.raises(RecipeError, match=r"other clips than the corpora hold now \(corpora: 3 clips then, 2 now "):
        result_file(path, {CLIPS_SETTING: rows_fingerprint(paths[:2], labels[:2], speakers[:2])})
    with pytest.raises(RecipeError, match=r"3 clips then and now, but other files or labels"):
        result_file(path, {CLIPS_SETTING: rows_fingerprint(paths, ["sad", "sad", "sad"], speakers)})
    document = json.loads(path.read_text())
    del document["settings"][CLIPS_SETTING]  # as an earlier ser-hf wrote it
    path.write_text(json.dumps(document))
    with pytest.raises(RecipeError, match="it records none: an earlier ser-hf wrote it") as error:
        result_file(path, {CLIPS_SETTING: rows_fingerprint(paths, labels, speakers)})
    assert "\n" not in str(error.value)


def test_the_machine_line_names_the_cpu_without_trademark_signs_and_the_gpu_only_where_it_runs(monkeypatch):
    """Result files record the machine; BENCHMARKS.md reads "N cores (CPU)" from it, so the CPU's name holds no
    parenthesis of its own, and a CPU run on a machine with a GPU does not claim the GPU."""
    import builtins
    import io
    import re

    import torch

    from ser_hf.experiments import results

    cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480C CPU @ 2.0GHz (TM)\n"
    real_open = builtins.open
    monkeypatch.setattr(
        builtins,
        "open",
        lambda path, *a, **k: io.StringIO(cpuinfo) if path == "/proc/cpuinfo" else real_open(path, *a, **k),
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "NVIDIA H200")
    on_cpu, on_gpu = results.machine_description("cpu"), results.machine_description("cuda")
    assert re.match(r"[^:]*: \d+ cores \(Intel Xeon Platinum 8480C CPU @ 2.0GHz\), torch", on_cpu)
    assert "GPU" not in on_cpu and ", GPU NVIDIA H200, torch" in on_gpu
    assert "GPU NVIDIA H200" in results.run_fields("cmd")["machine"]  # by default: wherever torch sees one


def test_the_recorded_command_is_the_command_line_as_it_can_be_typed_again(monkeypatch):
    """Unless a caller names it, the command is how this process was started (``python -m bench.inference ...``), not
    ``sys.argv``, whose first item is the module's file."""
    import sys

    from ser_hf.experiments import results

    monkeypatch.setattr(sys, "orig_argv", ["/opt/venv/bin/python3.11", "-m", "bench.inference", "--json", "a b.json"])
    assert results.run_fields()["command"] == "python -m bench.inference --json 'a b.json'"
    assert results.run_fields("ser-hf kfold r.yaml")["command"] == "ser-hf kfold r.yaml"
