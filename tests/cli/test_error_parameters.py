"""The line between the library and the command line (issue 93): the library's errors derive from one base
(:class:`ser_hf.errors.SerHfError`) and name parameters (``data_dir``), which the command line writes as the running
command's flags (``--data-dir``) from one table (:data:`ser_hf.cli.errors.PARAMETER_FLAGS` and the parsers)."""

from __future__ import annotations

import pickle

import pytest

from ser_hf.adaptation.errors import AdaptationError
from ser_hf.cli import build_parser
from ser_hf.cli.errors import USER_ERRORS, command_spelling, error_line, in_flags
from ser_hf.cli.flags import command_parser
from ser_hf.data.errors import CorpusError, LeakageError, SplitError
from ser_hf.errors import InputError, RecipeError, RunRecordError, SerHfError
from tests.conftest import last_error_line


def test_every_error_of_input_derives_from_the_one_base_the_command_line_catches():
    for kind in (RecipeError, InputError, RunRecordError, CorpusError, SplitError, LeakageError, AdaptationError):
        assert issubclass(kind, SerHfError), kind
    assert issubclass(LeakageError, RuntimeError)  # as before the base existed
    assert SerHfError in USER_ERRORS
    error = AdaptationError("data_dir x: no such folder.", parameter="data_dir", mentions=("labels",))
    assert (error.parameter, error.parameters) == ("data_dir", ("data_dir", "labels"))
    again = pickle.loads(pickle.dumps(error))  # raised in worker processes too
    assert (str(again), again.parameters) == (str(error), error.parameters)
    assert AdaptationError("no parameter").parameters == ()


def test_the_command_line_writes_the_parameters_an_error_names_as_its_own_flags():
    parser = build_parser()
    adapt = command_spelling(command_parser(parser, "adapt"))
    assert adapt.flag("data_dir") == "--data-dir"
    assert adapt.flag("corpus_options") == "--option"  # PARAMETER_FLAGS: another name on the command line
    assert adapt.flag("folds") is None
    error = AdaptationError(
        "unlabelled_dir needs speaker_regex: each recording's speaker is read with it.",
        parameter="speaker_regex",
        mentions=("unlabelled_dir",),
    )
    assert str(error).startswith("unlabelled_dir needs speaker_regex")  # a Python caller reads parameters
    assert (
        error_line(error, adapt) == "--unlabelled-dir needs --speaker-regex: each recording's speaker is read with it."
    )
    suggest = command_spelling(command_parser(parser, "suggest"))
    assert (
        error_line(AdaptationError("sheet s.csv is inside f", parameter="sheet"), suggest)
        == "--output s.csv is inside f"
    )
    # Only whole names, once each; a parameter the command has no flag for stays as it is.
    assert (
        in_flags("data_dirs and data_dir, data_dir", ["data_dir"], adapt.flag) == "data_dirs and --data-dir, data_dir"
    )
    assert in_flags("folds 3", ["folds"], adapt.flag) == "folds 3"
    learning_curve = command_spelling(command_parser(parser, "learning-curve"))
    message = "output.json was written with k = 1: give another output to run other settings"
    assert in_flags(message, ["output"], learning_curve.flag) == message.replace("another output", "another --output")


def test_an_adaptation_error_names_the_flag_on_the_command_line_and_the_parameter_in_python(tmp_path, capsys):
    from ser_hf.adaptation import suggest
    from ser_hf.cli import main

    with pytest.raises(AdaptationError, match=r"^speaker_regex is needed") as error:
        suggest("model", tmp_path, tmp_path.parent / "sheet.csv")
    assert error.value.parameter == "speaker_regex"
    assert main(["suggest", "model", str(tmp_path), "--output", str(tmp_path.parent / "sheet.csv")]) == 2
    assert last_error_line(capsys).startswith("ser-hf: error: --speaker-regex is needed")
