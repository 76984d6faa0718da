"""A protocol's result file is bound to what it measured: resumed with other recipe values, another model or another
ser-hf version, it refuses in one line naming the first setting that differs; a malformed file is one line too."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


def _copied_corpus(tiny_ravdess, folder):
    """Copies (not links) of the tiny RAVDESS corpus, whose bytes a test may replace."""
    for clip in sorted(tiny_ravdess.rglob("*.flac")):
        (folder / clip.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / clip.parent.name / clip.name).write_bytes(clip.read_bytes())
    return folder


def _clips_setting(folder):
    from ser_hf.data.corpora import load_corpus
    from ser_hf.data.splits import clip_fingerprint
    from ser_hf.experiments.results import CLIPS_SETTING

    return {CLIPS_SETTING: clip_fingerprint({"all": load_corpus("ravdess", folder)})["all"]}


def test_clips_whose_bytes_were_replaced_are_refused_naming_five_and_the_count(tmp_path, tiny_ravdess):
    corpus = _copied_corpus(tiny_ravdess, tmp_path / "ravdess")
    path = tmp_path / "kfold.json"
    result_file(path, _clips_setting(corpus)).add({"key": "fold/0", "unweighted_accuracy": 42.19})
    clips = sorted((corpus / "Actor_02").iterdir())
    for clip in clips:  # touched, or the whole corpus moved: the same bytes, the same experiment
        os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))
    moved = corpus.rename(tmp_path / "moved")
    assert [cell["key"] for cell in result_file(path, _clips_setting(moved)).cells] == ["fold/0"]

    # Four clips' bytes replaced by other recordings, their names (so labels and speakers) kept.
    clips = sorted((moved / "Actor_02").iterdir())
    others = sorted((moved / "Actor_03").iterdir())
    for clip, other in zip(clips[:4], others):
        clip.write_bytes(other.read_bytes())
    with pytest.raises(RecipeError) as error:
        result_file(path, _clips_setting(moved))
    message = str(error.value)
    named = ", ".join(f"Actor_02/{clip.name} (other contents)" for clip in clips[:4])
    assert message.startswith(f"{path}: 4 clips changed since the result file was written: {named}; give another")
    assert "\n" not in message and "more" not in message
    assert json.loads(path.read_text())["cells"][0]["unweighted_accuracy"] == 42.19  # nothing lost

    # Seven changed clips: five named, the rest counted; a relabelled clip (renamed) is gone and new.
    for clip, other in zip(clips[4:], others[4:]):
        clip.write_bytes(other.read_bytes())
    fields = clips[0].name.split("-")
    fields[2] = "05" if fields[2] != "05" else "04"  # the emotion code
    clips[0].rename(clips[0].with_name("-".join(fields)))
    with pytest.raises(RecipeError, match=r"9 clips changed since the result file was written: .* \(and 4 more\); "):
        result_file(path, _clips_setting(moved))


def test_other_clips_and_an_earlier_record_without_contents_are_refused_in_one_line(tmp_path, tiny_ravdess):
    from ser_hf.data.splits import rows_fingerprint
    from ser_hf.experiments.results import CLIPS_SETTING

    corpus = _copied_corpus(tiny_ravdess, tmp_path / "ravdess")
    paths = [str(clip) for clip in sorted((corpus / "Actor_01").iterdir())[:3]]
    labels, speakers = ["sad", "angry", "sad"], ["01", "01", "02"]
    path = tmp_path / "loco.json"
    result_file(path, {CLIPS_SETTING: rows_fingerprint(paths, labels, speakers)}).write()
    # The same clips listed in another order are the same clips.
    assert result_file(path, {CLIPS_SETTING: rows_fingerprint(paths[::-1], labels[::-1], speakers[::-1])}).cells == []
    name = f"Actor_01/{Path(paths[2]).name}"
    with pytest.raises(RecipeError, match=rf"1 clip changed since the result file was written: {name} \(gone\); "):
        result_file(path, {CLIPS_SETTING: rows_fingerprint(paths[:2], labels[:2], speakers[:2])})
    with pytest.raises(RecipeError, match=rf"1 clip changed .*: Actor_01/{Path(paths[1]).name} \(angry -> sad\); "):
        result_file(path, {CLIPS_SETTING: rows_fingerprint(paths, ["sad", "sad", "sad"], speakers)})
    with pytest.raises(RecipeError, match=rf": {name} \(speaker 02 -> 01\); "):
        result_file(path, {CLIPS_SETTING: rows_fingerprint(paths, labels, ["01", "01", "01"])})
    document = json.loads(path.read_text())
    for earlier in ({"clips": 3, "speakers": {"01": 2, "02": 1}, "sha256": "0" * 64}, None):  # as earlier ser-hf wrote
        document["settings"][CLIPS_SETTING] = earlier
        path.write_text(json.dumps(document))
        with pytest.raises(RecipeError, match="earlier ser-hf, which did not record the clips' contents") as error:
            result_file(path, {CLIPS_SETTING: rows_fingerprint(paths, labels, speakers)})
        assert str(path) in str(error.value) and "\n" not in str(error.value)


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
