"""Every hint a command prints names a flag that command takes: the remedies the library words as parameters
(``skip_invalid``) are spelt per command in one place (:func:`ser_hf.cli.errors.command_spelling`), and the error
messages of each command's own modules name only flags its parser (or, for a command that runs a recipe, the recipe)
takes. ``ser-hf adapt`` on a folder whose speaker regex matches no file says so in three lines, naming no flag it
lacks."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

from ser_hf.cli import build_parser
from ser_hf.cli import main as cli_main
from ser_hf.cli.commands import COMMANDS
from ser_hf.cli.errors import command_spelling, error_line, recipe_spelling
from ser_hf.cli.flags import command_parser, option_strings
from ser_hf.cli.sweep import build_sweep_parser
from ser_hf.data.errors import InvalidClipError, InvalidClipsError
from ser_hf.errors import SettingHint
from ser_hf.recipe.schema import ser_hf_keys, training_arguments_keys
from tests.conftest import RAVDESS_SAMPLE, REPO
from tests.training.test_adaptation import write_model_config

#: A long flag as messages write it.
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
#: Besides its command-line module, the library modules whose error messages each command prints as its own.
COMMAND_MODULES = {
    "evaluate": ["evaluation/evaluate_model.py", "evaluation/cross_corpus.py"],
    "predict": ["deploy/predict.py", "deploy/classify.py", "deploy/audio_inputs.py"],
    "adapt": ["adaptation/adapt.py"],
    "suggest": ["adaptation/suggest.py"],
    "kfold": ["experiments/kfold.py"],
    "loco": ["experiments/loco.py"],
    "learning-curve": ["experiments/learning_curve.py"],
    "sweep": ["experiments/sweep.py"],
    "embed": ["experiments/embed.py"],
    "compare": ["experiments/compare.py"],
    "leakage-study": ["experiments/leakage.py"],
}
#: Flags a command's messages name to refuse them (``ser-hf adapt --set``: adapt trains no recipe any more).
REFUSED_FLAGS = {"adapt": {"--set"}}


def parser_of(name: str) -> argparse.ArgumentParser:
    return command_parser(build_parser({name}), name)


def takes_recipe(name: str, parser: argparse.ArgumentParser) -> bool:
    """Whether the command passes flags it does not know to a recipe (train, kfold, loco, the sweep, the study)."""
    return (
        name == "train"
        or bool(parser.get_default("takes_recipe_flags"))
        or any(action.nargs == argparse.REMAINDER for action in parser._actions)
    )


def accepts(name: str, flag: str) -> bool:
    parser = parser_of(name)
    known = set(option_strings(parser)) | {"--help"}
    if name == "sweep":  # its own parser reads the arguments
        known |= set(option_strings(build_sweep_parser()))
    recipe_keys = ser_hf_keys() | (training_arguments_keys() or frozenset())
    return flag in known or (takes_recipe(name, parser) and flag[2:].replace("-", "_") in recipe_keys)


def hinted_errors() -> list[type]:
    """Every error type whose remedy is a library parameter."""
    found, todo = [], list(SettingHint.__subclasses__())
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo += kind.__subclasses__()
    return found


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_parameter_a_remedy_names_is_spelt_with_a_flag_the_command_takes(name):
    parser = parser_of(name)
    spell = command_spelling(parser, takes_recipe(name, parser))
    assert InvalidClipsError in hinted_errors()
    for error_type in hinted_errors():
        for parameter, value in error_type.hint_parameters:
            spelt = spell(parameter, value)
            if spelt is not None:
                flags = FLAG.findall(spelt)
                assert flags and all(accepts(name, flag) for flag in flags), (name, spelt)


def test_skip_invalid_is_spelt_as_each_command_sets_it():
    spelt = {
        name: command_spelling(parser_of(name), takes_recipe(name, parser_of(name)))("skip_invalid", True)
        for name in ("evaluate", "train", "kfold", "adapt", "learning-curve", "push")
    }
    split = build_parser({"data"})
    spelt["data"] = command_spelling(command_parser(split, "data", argparse.Namespace(data_command="split")))(
        "skip_invalid", True
    )
    assert spelt["evaluate"] == spelt["data"] == "--skip-invalid"
    assert spelt["train"] == spelt["kfold"] == "skip_invalid: true in the recipe (--skip_invalid true)"
    assert spelt["train"] == recipe_spelling("skip_invalid", True)
    assert spelt["adapt"] == spelt["learning-curve"] == "--option skip_invalid=true"
    assert spelt["push"] is None  # it reads no corpus
    error = InvalidClipsError("RAVDESS", [InvalidClipError("a.wav", "empty"), InvalidClipError("b.wav", "empty")], 3)
    assert error_line(error, command_spelling(parser_of("evaluate"))).endswith(
        "Fix them, or leave them out with --skip-invalid (each one it leaves out is logged)."
    )
    assert str(error).endswith("leave them out with skip_invalid: true (each one it leaves out is logged).")
    assert error_line(error, command_spelling(parser_of("push"))).endswith("or move them out of the folder.")


def _messages(path: Path) -> list[str]:
    """The text of every error a module raises and every ``parser.error``/``logger.warning`` it calls."""
    texts = []
    for node in ast.walk(ast.parse(path.read_text())):
        raised = isinstance(node, ast.Raise)
        called = isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("error", "warning")
        if raised or called:
            texts.append(
                "".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))
            )
    return texts


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_errors_of_each_commands_modules_name_flags_it_takes(name):
    modules = [f"cli/{COMMANDS[name].module}.py", *COMMAND_MODULES.get(name, [])]
    wrong = []
    for module in modules:
        for text in _messages(REPO / "ser_hf" / module):
            if re.search(rf"ser-hf (?!{re.escape(name)}\b)[a-z]", text):
                continue  # advice about another command, named as such
            wrong += [
                f"{module}: {flag} in {text[:80]!r}"
                for flag in FLAG.findall(text)
                if flag not in REFUSED_FLAGS.get(name, set()) and not accepts(name, flag)
            ]
    assert not wrong


def test_adapt_with_a_speaker_regex_matching_no_file_says_so_in_three_lines(tmp_path, capsys):
    folder = write_model_config(tmp_path / "model", model_type="ser_whisper", id2label={"0": "angry", "1": "happy"})
    clips = tmp_path / "clips"
    clips.mkdir()
    source = sorted(RAVDESS_SAMPLE.glob("Actor_01/*.flac"))
    for number in range(25):
        (clips / f"SPA_{('angry', 'happy')[number % 2]}_{number}.flac").symlink_to(source[number % len(source)])
    status = cli_main(
        ["adapt", str(folder), "--data_dir", str(clips), "--output_dir", str(tmp_path / "out")]
        + ["--label_regex", r"_(?P<label>[a-z]+)_\d+\.flac$", "--speaker_regex", r"^(?P<speaker>\d+)_"]
    )
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    error = lines[lines.index(next(line for line in lines if line.startswith("ser-hf: error:"))) :]
    assert error == [
        "ser-hf: error: 25 unusable clips clip(s):",
        rf"  25 clips: speaker_regex '^(?P<speaker>\d+)_' does not match their paths ({clips / 'SPA_angry_0.flac'}, "
        f"{clips / 'SPA_angry_10.flac'}, {clips / 'SPA_angry_12.flac'} and 22 more)",
        "No clip of clips is usable: fix what is named above.",
    ]
    assert all(accepts("adapt", flag) for flag in FLAG.findall("\n".join(error)))
