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
