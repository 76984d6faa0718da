"""Reliability of folder corpora, as ``ser-hf data summary`` reads them: a file name that is not UTF-8 and regular
expressions that cannot do what they are asked (no ``label`` group, a speaker that can be empty, catastrophic
backtracking) answer in one line naming the file or the regex, exit non-zero (issue 67, points 10 and 11)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ser_hf.cli import main as cli_main
from tests.conftest import ser_hf_error_lines, write_audio

pytestmark = pytest.mark.reliability


def _folder(root: Path, names: list[str]) -> Path:
    """A flat folder corpus with one short clip per name."""
    for seed, name in enumerate(names):
        write_audio(root / name, seconds=0.1, seed=seed)
    return root


def _summary(data: Path, *options: str) -> int:
    flags = [flag for option in options for flag in ("--option", option)]
    return cli_main(["data", "summary", "--corpus", "folder", "--data-dir", str(data), "--json", *flags])


def test_a_file_name_that_is_not_utf8_is_named_escaped_and_skipped_with_skip_invalid(tmp_path, capsys):
    data = _folder(tmp_path / "data", ["SP01_angry_1.wav", "SP01_sad_1.wav", "SP02_angry_1.wav", "SP02_sad_1.wav"])
    latin1 = os.path.join(os.fsencode(data), b"SP03_sad_caf\xe9.wav")  # Latin-1 "café"
    shutil.copyfile(os.fsencode(data / "SP01_sad_1.wav"), latin1)
    options = (r"speaker_regex=^(?P<speaker>SP\d+)_", r"label_regex=_(?P<label>[a-z]+)_")
    assert _summary(data, *options) != 0
    (line,) = ser_hf_error_lines(capsys)
    assert f"{data}/SP03_sad_caf\\xe9.wav: the file name is not UTF-8 text: rename it in UTF-8" in line
    argv = ["data", "summary", "--corpus", "folder", "--data-dir", str(data), "--json", "--skip-invalid"]
    assert cli_main([*argv, *[flag for option in options for flag in ("--option", option)]]) == 0
    assert '"clips": 4' in capsys.readouterr().out


SPEAKERS_AND_LABELS = ["SP01_angry_1.wav", "SP01_sad_1.wav", "SP02_angry_1.wav", "SP02_sad_1.wav"]


def test_a_label_regex_without_a_label_group_is_refused_naming_its_groups(tmp_path, capsys):
    """Its first group (the speaker) would otherwise be read as the label: every clip "label 'SP01' is not an
    emotion"."""
    data = _folder(tmp_path / "data", SPEAKERS_AND_LABELS)
    pattern = r"^(?P<spk>SP\d+)_(?P<emotion>[a-z]+)_"
    assert _summary(data, f"label_regex={pattern}", r"speaker_regex=^(?P<speaker>SP\d+)_") != 0
    (line,) = ser_hf_error_lines(capsys)
    assert line == (
        f"ser-hf: error: label_regex '{pattern}' has no group named 'label' (its named groups: spk, emotion): mark "
        "the label with (?P<label>...)."
    )


def test_a_speaker_regex_that_matches_an_empty_speaker_is_one_error_naming_the_regex(tmp_path, capsys):
    pattern = r"^(?P<speaker>[A-Z]*)"  # matches at the start of every name, here with nothing
    data = _folder(tmp_path / "data", ["01_angry_1.wav", "01_sad_1.wav", "02_angry_1.wav", "02_sad_1.wav"])
    assert _summary(data, f"speaker_regex={pattern}", r"label_regex=_(?P<label>[a-z]+)_") != 0
    (line,) = ser_hf_error_lines(capsys)
    assert line == (
        f"ser-hf: error: speaker_regex '{pattern}' reads an empty speaker from '01_angry_1.wav' "
        f"({data / '01_angry_1.wav'}): its speaker group can match nothing; make it match at least one character "
        "(+, not * or ?)."
    )


def test_a_catastrophic_regex_stops_with_an_error_naming_it_instead_of_hanging(tmp_path, capsys, monkeypatch):
    import ser_hf.data.corpora.folder as folder

    monkeypatch.setattr(folder, "REGEX_TIMEOUT_SECONDS", 0.2)
    name = "angry/" + "a" * 40 + ".wav"  # the label from the folder, the speaker from the name
    data = _folder(tmp_path / "data", [name])
    pattern = r"(?P<speaker>(a|aa)+)+Z"
    assert _summary(data, f"speaker_regex={pattern}") != 0
    (line,) = ser_hf_error_lines(capsys)
    assert line.startswith(
        f"ser-hf: error: speaker_regex '{pattern}' took over 0.2 s on '{name}': it backtracks catastrophically"
    )


def test_two_folder_corpora_of_one_name_are_refused_rather_than_merging_their_speakers(tmp_path, capsys):
    """Two folders both called "clips" (or two folder corpora given the same corpus_name): six people would become
    three speakers ("clips:SP01" ...), and a speaker-independent split would not be (issue 67, point 4)."""
    first = _folder(tmp_path / "a" / "clips", SPEAKERS_AND_LABELS)
    second = _folder(tmp_path / "b" / "clips", SPEAKERS_AND_LABELS)
    regexes = [
        "--option",
        r"folder:speaker_regex=^(?P<speaker>SP\d+)_",
        "--option",
        "folder:label_regex=_(?P<label>[a-z]+)_",
    ]
    argv = ["data", "summary", "--corpus", "folder", "--data-dir", str(first), "--corpus", "folder", "--data-dir"]
    assert cli_main([*argv, str(second), *regexes]) != 0
    (line,) = ser_hf_error_lines(capsys)
    assert line.startswith("ser-hf: error: Two corpora are both called 'clips' (a folder corpus is named by its ")
    assert "Give each folder corpus a corpus_name of its own" in line
    other = _folder(tmp_path / "c" / "takes", SPEAKERS_AND_LABELS)
    assert cli_main([*argv, str(other), *regexes, "--json"]) == 0
    assert '"speakers": 4' in capsys.readouterr().out  # clips:SP01, clips:SP02, takes:SP01, takes:SP02
