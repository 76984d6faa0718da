import json
import subprocess
import sys

from datasets import DatasetDict, load_from_disk

from ser_hf.cli import main
from tests.conftest import RAVDESS_SAMPLE, REPO


def test_summary_json(capsys):
    assert (
        main(
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
        main(
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
    assert main(["data", "audit", str(output), "--json"]) == 0


def test_kfold_split_writes_one_folder_per_fold_and_random_is_flagged(tmp_path, capsys):
    assert (
        main(
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
        main(
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
        main(
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
        main(["data", "summary", "--corpus", "ravdess", "--data-dir", str(RAVDESS_SAMPLE), "--labels", "joyful"]) == 2
    )
    assert "Unknown emotion 'joyful'" in capsys.readouterr().err
    assert main(["data", "audit", str(tmp_path / "nowhere")]) == 2


# Libraries that building the parser must not import: each command imports its own when it runs.
HEAVY_LIBRARIES = ("torch", "transformers", "datasets", "peft", "sklearn", "matplotlib", "pandas", "gradio")
HELP_WITHOUT_HEAVY_IMPORTS = """
import json, sys
from ser_hf.cli import main
commands = [[], ["data"], ["data", "summary"], ["data", "split"], ["data", "audit"], ["predict"], ["evaluate"],
            ["export"], ["ensemble"], ["push"], ["sweep"], ["compare"], ["leakage-study"], ["embed"], ["app"]]
for command in commands:
    try:
        main([*command, "--help"])
    except SystemExit as exit_:
        assert exit_.code == 0, (command, exit_.code)
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {libraries})))
"""


def test_help_of_every_command_imports_no_heavy_library(tmp_path):
    """`ser-hf --help` and `ser-hf COMMAND --help` build the parsers only: no torch, transformers, datasets ..."""
    script = HELP_WITHOUT_HEAVY_IMPORTS.format(libraries=set(HEAVY_LIBRARIES))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: ser-hf [-h] [-v]" in result.stdout and "usage: ser-hf sweep RECIPE.yaml" in result.stdout
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_python_m_ser_hf_cli_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "ser_hf.cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    for command in (
        "data",
        "train",
        "predict",
        "evaluate",
        "export",
        "ensemble",
        "push",
        "sweep",
        "compare",
        "leakage-study",
        "embed",
        "app",
    ):
        assert command in result.stdout
