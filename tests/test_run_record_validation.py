"""Run records edited by hand (metrics.json, run_config.json) are validated when read: a value of the wrong type or
out of its range is one error naming the file, the key and the value, the same in ser-hf compare, push (nothing is
published), the model card and evaluate; where compare showed UA 7.5 as 750.0 % and pushed it as 7.5, and a string
or a missing key ended in a KeyError, TypeError or AttributeError traceback."""

from __future__ import annotations

import json
import shutil

import huggingface_hub
import pytest

from ser_hf.cli import main as cli_main
from ser_hf.errors import RunRecordError
from ser_hf.hub.card import write_model_card
from ser_hf.run_folder import METRICS_FILE, RUN_CONFIG_FILE, RunDir
from ser_hf.run_record import RunConfig, RunReport
from tests.conftest import REPO, ser_hf_error_lines
from tests.hub_server import LocalHub

pytestmark = pytest.mark.reliability

TOKEN = "hf_localTestToken0123456789abcdefXYZ"
USER = "ser-hf-tester"
RESTORE = "(the file was edited or damaged: restore the value the run wrote, or train the run again)."


def _set(record: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for name in parents:
        record = record[name]
    if value is KeyError:
        del record[last]
    else:
        record[last] = value


#: (file, dotted key, edited value, how the error ends)
EDITS = [
    (METRICS_FILE, "evaluation.test.unweighted_accuracy", 7.5, f"is 7.5, not a proportion in [0, 1] {RESTORE}"),
    (METRICS_FILE, "evaluation.test.unweighted_accuracy", "0.5", f"is '0.5', not a proportion in [0, 1] {RESTORE}"),
    (
        METRICS_FILE,
        "evaluation.test.unweighted_accuracy",
        KeyError,
        "is missing: every ser-hf run writes it (the file was edited or damaged: restore it, or train the run again).",
    ),
    (METRICS_FILE, "training.wall_seconds", "fast", f"is 'fast', not a time in seconds, 0 or more {RESTORE}"),
    (METRICS_FILE, "training.wall_seconds", -3.0, f"is -3.0, not a time in seconds, 0 or more {RESTORE}"),
    (RUN_CONFIG_FILE, "model", "whisper", f"is 'whisper', not a mapping (a JSON object) {RESTORE}"),
    (RUN_CONFIG_FILE, "model.model_type", 42, f"is 42, not a string {RESTORE}"),
]


@pytest.fixture
def edited_run(tmp_path, cnn_run):
    """A copy of a trained run, and a function editing one key of one of its records."""
    run = tmp_path / "run"
    shutil.copytree(cnn_run, run, ignore=shutil.ignore_patterns("checkpoint-*"))

    def edit(name: str, path: str, value) -> str:
        record = json.loads((run / name).read_text())
        _set(record, path, value)
        (run / name).write_text(json.dumps(record, indent=2))
        return f"{run / name}: {path} "

    return run, edit


@pytest.mark.parametrize("name,path,value,ending", EDITS, ids=[f"{e[1]}={e[2]!r}" for e in EDITS])
def test_compare_names_the_file_the_key_and_the_value(edited_run, cnn_run, capsys, name, path, value, ending):
    run, edit = edited_run
    line = edit(name, path, value) + ending
    assert cli_main(["compare", str(cnn_run), str(run), "--output-dir", str(run.parent / "cmp")]) == 2
    assert ser_hf_error_lines(capsys) == [f"ser-hf: error: {line}"]
    with pytest.raises(RunRecordError) as error:  # the model card reads the run the same way
        write_model_card(run)
    assert str(error.value) == line


@pytest.fixture(scope="module")
def hub():
    with LocalHub(token=TOKEN, user=USER) as server:
        yield server


def test_push_publishes_nothing_of_an_edited_run(edited_run, hub, monkeypatch, capsys):
    run, edit = edited_run
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    original = {name: (run / name).read_text() for name in (METRICS_FILE, RUN_CONFIG_FILE)}
    for index, (name, path, value, ending) in enumerate(EDITS):
        for restored, text in original.items():
            (run / restored).write_text(text)
        line = edit(name, path, value) + ending
        repo_id = f"{USER}/edited-{index}"
        for no_card in ([], ["--no-card"]):  # metrics.json is pushed as it is, card or not
            assert cli_main(["push", str(run), "--repo-id", repo_id, *no_card]) == 2
            assert ser_hf_error_lines(capsys) == [f"ser-hf: error: {line}"]
        assert ("model", repo_id) not in hub.repos
    # The run as it was written pushes.
    for restored, text in original.items():
        (run / restored).write_text(text)
    assert cli_main(["push", str(run), "--repo-id", f"{USER}/as-written"]) == 0
    assert ("model", f"{USER}/as-written") in hub.repos


def test_evaluate_reads_the_run_through_the_same_checks(edited_run, capsys):
    run, edit = edited_run
    line = edit(METRICS_FILE, "evaluation.test.accuracy", 1.5) + f"is 1.5, not a proportion in [0, 1] {RESTORE}"
    command = ["evaluate", "--model", str(run), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    assert cli_main([*command, "--output-dir", str(run.parent / "report")]) == 2
    assert ser_hf_error_lines(capsys) == [f"ser-hf: error: {line}"]


def test_a_fold_and_a_nested_value_are_named_by_their_path(tmp_path):
    report = {"fold": 0, "evaluation": {"test": {"unweighted_accuracy": 0.5, "per_speaker": {"04": {"accuracy": 2}}}}}
    folder = tmp_path / "run" / "fold-0"
    folder.mkdir(parents=True)
    (folder / METRICS_FILE).write_text(json.dumps(report))
    with pytest.raises(RunRecordError) as error:
        RunDir(tmp_path / "run").fold(0).read_report()
    assert str(error.value) == (
        f"{folder / METRICS_FILE}: evaluation.test.per_speaker.04.accuracy is 2, not a proportion in [0, 1] {RESTORE}"
    )
    with pytest.raises(RunRecordError, match=r"data\.corpus\[1\] is 3, not a string"):
        RunConfig.from_dict({"data": {"corpus": ["ravdess", 3]}}, "run_config.json")
    with pytest.raises(RunRecordError, match=r"run_config\.json: the file holds \['model'\], not a JSON object\."):
        RunConfig.from_dict(["model"], "run_config.json")


def test_unknown_keys_and_missing_optional_keys_still_read():
    report = RunReport.from_dict(
        {"evaluation": {"test": {"unweighted_accuracy": 0.5, "new_metric": "text"}}, "training": {}, "new": [1]},
        "metrics.json",
    )
    assert report.unknown_keys() == ["new", "evaluation.test.new_metric"]
    assert report.training.wall_seconds is None and report.evaluation["test"].accuracy is None
    assert RunConfig.from_dict({"model": {"model_type": None, "x": 1}}).model_type is None
