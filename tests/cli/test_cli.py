"""The ``ser-hf`` command line as a whole: ``--help`` of every command answers without importing a heavy library,
``python -m ser_hf.cli`` lists every command, ``--debug``/``SER_HF_DEBUG`` show the traceback behind a one-line
error, and the flags the commands share are checked alike. Each command's own tests are in test_<command>.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ser_hf
from ser_hf.cli import main as cli_main
from ser_hf.model_location import ModelNotFoundError
from tests.conftest import REPO, ser_hf_error_lines, write_audio

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


@pytest.mark.reliability
@pytest.mark.parametrize("command", ["data summary", "data split", "evaluate", "embed"])
@pytest.mark.parametrize("rate", ["0", "-16000"])
def test_a_sampling_rate_below_one_is_a_usage_error_of_every_command(tmp_path, capsys, command, rate):
    extra = {
        "data split": ["--output", str(tmp_path / "split")],
        "evaluate": ["--model", str(tmp_path)],
        "embed": ["--model", str(tmp_path)],
    }.get(command, [])
    with pytest.raises(SystemExit) as exit_:
        cli_main(
            [
                *command.split(),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(REPO / "data" / "ravdess_sample"),
                "--sampling-rate",
                rate,
                *extra,
            ]
        )
    assert exit_.value.code == 2
    assert f"error: argument --sampling-rate: must be a positive integer, got {int(rate)}" in capsys.readouterr().err


@pytest.mark.reliability
def test_train_and_sweep_help_print_their_options(capsys):
    assert cli_main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ser-hf train RECIPE.yaml [--key value ...]")
    assert "--model_name_or_path" in out and "num_train_epochs" in out  # the latter named, behind --help-all
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert out.count("options:") == 1 and "--grid KEY=V1,V2" in out
    with pytest.raises(SystemExit) as exit_status:
        cli_main(["predict", "--bogus", "model", "clip.wav"])
    assert exit_status.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    # No recipe: the usage and where the recipes are, at once (the recipe parser is not imported for it).
    assert cli_main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ser-hf: error: give a recipe, e.g. ser-hf train recipes/demo_whisper.yaml (usage: ser-hf")
    with pytest.raises(SystemExit) as exit_status:
        cli_main(["--version"])
    assert exit_status.value.code == 0 and capsys.readouterr().out.strip() == f"ser-hf {ser_hf.__version__}"


@pytest.mark.reliability
def test_debug_and_ser_hf_debug_show_the_traceback_behind_the_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SER_HF_DEBUG", raising=False)
    clip = str(write_audio(tmp_path / "sentence.wav", seconds=1.0))
    predict = ["predict", "./missing-model", clip, "--no-progress"]
    assert cli_main(predict) == 2
    assert ser_hf_error_lines(capsys) == ["ser-hf: error: No such folder: ./missing-model (it is written as a path)."]
    for argv in (["--debug", *predict], [*predict, "--debug"]):
        with pytest.raises(ModelNotFoundError, match="No such folder: ./missing-model"):
            cli_main(argv)
    monkeypatch.setenv("SER_HF_DEBUG", "1")
    with pytest.raises(ModelNotFoundError):
        cli_main(predict)
    monkeypatch.setenv("SER_HF_DEBUG", "0")
    assert cli_main(predict) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert "--debug (or SER_HF_DEBUG=1) shows its traceback" in " ".join(capsys.readouterr().out.split())
    # python -m ser_hf.train reads the variable too: Python prints the traceback and exits with status 1.
    trained = subprocess.run(
        [sys.executable, "-m", "ser_hf.train", str(tmp_path / "missing.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SER_HF_DEBUG": "1", "PYTHONWARNINGS": "ignore"},
    )
    assert trained.returncode == 1
    assert "Traceback (most recent call last)" in trained.stderr
    assert trained.stderr.strip().splitlines()[-1] == (
        f"ser_hf.errors.RecipeError: Recipe file {tmp_path / 'missing.yaml'} does not exist."
    )


@pytest.mark.parametrize(
    ("argv", "closest"),
    [
        (["predict", "model", "clip.wav", "--top_kk", "3"], "--top-k"),
        (["predict", "model", "clip.wav", "--window-second", "4"], "--window-seconds"),
        (["data", "summary", "--corpus", "ravdess", "--data-dir", "d", "--jso"], "--json"),
    ],
)
def test_a_flag_is_never_taken_by_its_prefix_and_a_misspelt_one_names_the_closest(argv, closest, capsys):
    """argparse's allow_abbrev=True took a prefix (`--window-second`, `--jso`) for the whole flag: every ser-hf parser
    refuses it, naming the flag meant, before the command runs."""
    with pytest.raises(SystemExit) as exit_status:
        cli_main(argv)
    err = capsys.readouterr().err
    assert exit_status.value.code == 2
    assert f"error: unrecognized arguments: {' '.join(argv[-2:] if argv[-1].isdigit() else argv[-1:])}" in err
    assert f"(did you mean {closest}?)" in err


def test_every_flag_of_every_command_is_taken_in_both_spellings_and_shown_in_kebab_case(capsys):
    """One spelling across commands (issue 93): each long flag is shown in kebab-case by --help and its usage line, and
    taken with underscores too (the recipe keys' spelling), so that ``adapt --data_dir`` and ``evaluate --data_dir``
    both work as ``--data-dir`` does; argparse's own errors name the kebab-case spelling."""
    import argparse

    from ser_hf.cli import build_parser
    from ser_hf.cli.flags import HIDDEN_SPELLINGS, command_parser

    def parsers(parser):
        yield parser.prog, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_parser in action.choices.values():
                    yield from parsers(sub_parser)

    parser = build_parser()
    for name, command in parsers(parser):
        shown = command.format_help()
        flags = [
            option
            for action in command._actions
            for option in action.option_strings
            if option.startswith("--") and option not in getattr(action, HIDDEN_SPELLINGS, ())
        ]
        for flag in flags:
            assert "_" not in flag, (name, flag)
            assert flag in shown, (name, flag)
            if "-" in flag[2:] and not flag.startswith("--no-"):
                snake = "--" + flag[2:].replace("-", "_")
                assert snake in command._option_string_actions, (name, snake)
                listed = [line for line in shown.splitlines() if line.lstrip().startswith("-")]
                assert not any(snake in line.split() or f"{snake}," in line for line in listed), (name, snake)
    adapt = command_parser(parser, "adapt")
    taken = adapt.parse_args(["m", "--data_dir", "a", "--output-dir", "b", "--no-self-train"])
    assert (taken.data_dir, taken.output_dir, taken.self_train) == ("a", "b", False)
    with pytest.raises(SystemExit):
        cli_main(["adapt", "m", "--output_dir", "b", "--data_dir"])
    assert "argument --data-dir: expected one argument" in capsys.readouterr().err


def test_the_command_lines_docstring_shows_every_command():
    """The usage lines at the top of ``ser_hf.cli`` (what ``help(ser_hf.cli)`` and the API reference show) name every
    command the parser registers."""
    import ser_hf.cli
    from ser_hf.cli.commands import COMMANDS

    usage = ser_hf.cli.__doc__.split("\n\n")[1]
    missing = [name for name in COMMANDS if f"ser-hf {name} " not in usage]
    assert not missing, f"ser_hf/cli/__init__.py's usage lines lack {missing}"


def test_key_value_and_id_folder_flags_are_read_once_with_the_flag_named():
    from ser_hf.cli.flags import key_value_pairs, model_paths
    from ser_hf.errors import RecipeError

    assert key_value_pairs(["csv_path=a.csv", "corpus_name = mine", "calm="], "--option") == {
        "csv_path": "a.csv",
        "corpus_name": "mine",
        "calm": "",  # --label-map calm= drops a label
    }
    with pytest.raises(RecipeError, match="--option 'csv_path' is not of the form KEY=VALUE"):
        key_value_pairs(["csv_path"], "--option")
    assert model_paths(["openai/whisper-base=/m/wb"]) == {"openai/whisper-base": "/m/wb"}
    for item in ("openai/whisper-base", "openai/whisper-base=", "=/m/wb"):
        with pytest.raises(RecipeError, match=f"--model-path '{item}' is not of the form ID=FOLDER"):
            model_paths([item], "--model-path")
