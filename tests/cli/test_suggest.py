"""``ser-hf suggest`` from the command line: what it refuses before the model loads (a sheet among the recordings, a
sheet that holds answers, no speaker pattern). The suggestions themselves, and ``ser-hf adapt --labels_csv`` on them,
are tested in tests/adaptation/test_suggest.py."""

from __future__ import annotations

from ser_hf.cli import main as cli_main

SPEAKER_REGEX = r"^(?P<speaker>[A-Z]+)_"


def test_suggest_refuses_a_sheet_inside_the_folder_and_one_that_holds_answers(tmp_path, capsys):
    folder = tmp_path / "recordings"
    folder.mkdir()
    flags = ["--speaker_regex", SPEAKER_REGEX]
    status = cli_main(["suggest", "model", str(folder), *flags, "--output", str(folder / "sheet.csv")])
    assert status == 2 and "never writes its outputs among the files it reads" in capsys.readouterr().err
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("path,speaker,label\nSPA_00.flac,SPA,angry\n")
    status = cli_main(["suggest", "model", str(folder), *flags, "--output", str(sheet)])
    assert status == 2 and "holds 1 answers already" in capsys.readouterr().err
    assert sheet.read_text() == "path,speaker,label\nSPA_00.flac,SPA,angry\n"


def test_suggest_needs_a_speaker_pattern(tmp_path, capsys):
    status = cli_main(["suggest", "model", str(tmp_path), "--output", str(tmp_path / "s.csv")])
    assert status == 2 and "--speaker-regex" in capsys.readouterr().err
