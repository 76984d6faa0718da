"""``ser-hf data summary|split|audit`` as a user runs it: the summary (text or --json), the splits and leakage audit
it writes, its output folder rules (never a model folder, a corpus or a folder of other files), an interrupted split
that leaves the previous one, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from datasets import Dataset, DatasetDict, load_from_disk

from ser_hf.cli import main as cli_main
from tests.conftest import RAVDESS_SAMPLE, REPO, folder_bytes


def test_summary_json(capsys):
    assert (
        cli_main(
            [
                "data",
                "summary",
                "--corpus",
                "ravdess",
                "--data-dir",
                str(RAVDESS_SAMPLE),
                "--json",
                "--label-map",
                "calm=neutral",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 240 and summary["speakers"] == 8
    assert summary["labels"]["neutral"] == 48 and "calm" not in summary["labels"]
    assert summary["clips_per_speaker"]["03"] == 30
    assert 0.2 < summary["durations"]["total_hours"] < 0.3


def test_split_writes_datasets_with_their_audit(tmp_path, capsys):
    output = tmp_path / "split"
    assert (
        cli_main(
            [
                "data",
                "split",
                "--corpus",
                "ravdess",
                "--data-dir",
                str(RAVDESS_SAMPLE),
                "--protocol",
                "speaker",
                "--test-speakers",
                "07,08",
                "--validation-speakers",
                "06",
                "--output",
                str(output),
                "--prepare",
                "--num-proc",
                "1",
            ]
        )
        == 0
    )
    assert "Leakage audit passed" in capsys.readouterr().out
    splits = load_from_disk(str(output))
    assert isinstance(splits, DatasetDict) and set(splits["test"]["speaker_id"]) == {"07", "08"}
    assert len(splits["train"][0]["waveform"]) > 16000
    audit = json.loads((output / "audit.json").read_text())
    assert audit["passed"] and audit["speakers"]["validation"] == ["06"]
    assert "Leakage audit" in (output / "audit.md").read_text()
    assert cli_main(["data", "audit", str(output), "--json"]) == 0


def test_kfold_split_writes_one_folder_per_fold_and_random_is_flagged(tmp_path, capsys):
    assert (
        cli_main(
            [
                "data",
                "split",
                "--corpus",
                "ravdess",
                "--data-dir",
                str(RAVDESS_SAMPLE),
                "--protocol",
                "kfold",
                "--n-splits",
                "4",
                "--output",
                str(tmp_path / "kfold"),
                "--no-file-check",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "kfold").iterdir()) == ["fold_0", "fold_1", "fold_2", "fold_3"]
    assert (
        cli_main(
            [
                "data",
                "split",
                "--corpus",
                "ravdess",
                "--data-dir",
                str(RAVDESS_SAMPLE),
                "--protocol",
                "random",
                "--output",
                str(tmp_path / "random"),
            ]
        )
        == 0
    )
    audit = json.loads((tmp_path / "random" / "audit.json").read_text())
    assert audit["protocol"] == "random" and not audit["speaker_independent"]


def test_errors_are_one_line_naming_the_problem(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ser_hf.cli",
            "data",
            "summary",
            "--corpus",
            "ravdess",
            "--data-dir",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert f"ser-hf: error: Data directory '{tmp_path / 'missing'}' does not exist." in result.stderr
    assert "Traceback" not in result.stderr


def test_corpus_options_are_typed_and_input_errors_are_one_line(tmp_path, capsys):
    assert (
        cli_main(
            [
                "data",
                "summary",
                "--corpus",
                "RAVDESS",
                "--data-dir",
                str(RAVDESS_SAMPLE / "Actor_01"),
                "--json",
                "--option",
                "check_audio=false",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 30 and summary["durations"] is None  # headers were not read
    assert (
        cli_main(["data", "summary", "--corpus", "ravdess", "--data-dir", str(RAVDESS_SAMPLE), "--labels", "joyful"])
        == 2
    )
    assert "Unknown emotion 'joyful'" in capsys.readouterr().err
    assert cli_main(["data", "audit", str(tmp_path / "nowhere")]) == 2


@pytest.mark.reliability
def test_an_interrupted_data_split_leaves_the_previous_split_and_no_partial_folder(
    tmp_path, tiny_ravdess, monkeypatch, capsys
):
    output = tmp_path / "splits" / "ravdess"
    split = [
        "data",
        "split",
        "--corpus",
        "ravdess",
        "--data-dir",
        str(tiny_ravdess),
        "--output",
        str(output),
        "--train-speakers",
        "01,02",
    ]
    assert cli_main([*split, "--validation-speakers", "03", "--test-speakers", "04"]) == 0
    before = folder_bytes(output)
    assert {"dataset_dict.json", "audit.json", "audit.md", "summary.json", "test/state.json"} <= set(before)

    save_to_disk, saved = Dataset.save_to_disk, []

    def dying_save(self, path, *args, **kwargs):  # the disk fills up after the first split is written
        if saved:
            raise OSError(28, "No space left on device")
        saved.append(path)
        return save_to_disk(self, path, *args, **kwargs)

    monkeypatch.setattr(Dataset, "save_to_disk", dying_save)
    capsys.readouterr()
    assert cli_main([*split, "--validation-speakers", "04", "--test-speakers", "03"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "ser-hf: error: [Errno 28] No space left on device"
    assert folder_bytes(output) == before
    assert [path.name for path in output.parent.iterdir()] == ["ravdess"]  # no temporary folder left behind

    monkeypatch.setattr(Dataset, "save_to_disk", save_to_disk)
    assert cli_main([*split, "--validation-speakers", "04", "--test-speakers", "03"]) == 0
    assert json.loads((output / "summary.json").read_text()) != json.loads(before["summary.json"])
    assert cli_main(["data", "audit", str(output)]) == 0  # the new split, whole


@pytest.mark.reliability
def test_an_unknown_corpus_option_lists_the_options_the_corpus_takes(capsys):
    data_dir = str(REPO / "data" / "ravdess_sample")
    assert cli_main(["data", "summary", "--corpus", "ravdess", "--data-dir", data_dir, "--option", "foo=bar"]) == 2
    assert (
        "ser-hf: error: --option foo=...: corpus ravdess has no option 'foo'; its options are check_audio."
        in capsys.readouterr().err
    )
    assert (
        cli_main(["data", "summary", "--corpus", "folder", "--data-dir", data_dir, "--option", "speaker_col=x"]) == 2
    )
    assert (
        "its options are check_audio, corpus_name, csv_path, label_column, label_regex, path_column, "
        "speaker_column, speaker_regex, text_column." in capsys.readouterr().err
    )


@pytest.mark.reliability
def test_data_split_refuses_a_model_folder_a_corpus_and_a_folder_of_other_files(tmp_path, tiny_ravdess, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("chapter 1")
    split = ["data", "split", "--corpus", "ravdess", "--data-dir", str(tiny_ravdess), "--test-speakers", "04"]
    cases = {
        model: f"--output {model}: {model} is a model folder (it holds config.json)",
        tiny_ravdess: f"--output {tiny_ravdess}: {tiny_ravdess} is the data directory {tiny_ravdess}",
        tiny_ravdess / "splits": f"{tiny_ravdess / 'splits'} is inside the data directory {tiny_ravdess}",
        mine: f"--output {mine} already holds files that ser-hf did not write (thesis.txt): choose a new or empty "
        "folder, or give --overwrite",
    }
    for output, message in cases.items():
        assert cli_main([*split, "--output", str(output)]) == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert [path.name for path in model.iterdir()] == ["config.json"] and not (tiny_ravdess / "splits").exists()
    assert sorted(path.name for path in tiny_ravdess.iterdir()) == ["Actor_01", "Actor_02", "Actor_03", "Actor_04"]
    for output in (model, tiny_ravdess):  # --overwrite does not open a model or a corpus
        assert cli_main([*split, "--output", str(output), "--overwrite"]) == 2
    assert cli_main([*split, "--output", str(mine), "--overwrite"]) == 0
    assert (mine / "thesis.txt").read_text() == "chapter 1" and (mine / "dataset_dict.json").is_file()
    assert cli_main([*split, "--output", str(mine / "again")]) == 0
    assert cli_main([*split, "--output", str(mine / "again")]) == 0  # an earlier split is replaced without asking
