"""The labelling sheet under real use (issue 85): an answer goes to the clip it was given for whatever the sheet's
order on disk, two processes answering in one sheet lose no answer and a second app on a served sheet is warned,
and a sheet edited by hand is read leniently where nothing depends on it and refused, where something does, in the
user's own terms (their sheet, its line and column, the value, the allowed answers and the closest one), before any
derived file is written."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ser_hf.adaptation.sheet import (
    NOT_SPEECH,
    SKIP,
    SheetError,
    SheetRow,
    claim_sheet,
    labelled_rows_csv,
    read_sheet,
    record_answer,
    write_sheet,
)
from tests.conftest import REPO

MODEL_LABELS = ["angry", "happy", "sad"]


def sheet_of(path: Path, count: int) -> Path:
    """A sheet of `count` clips (two speakers), none answered."""
    write_sheet(path, [SheetRow(path=f"SP{n % 2}_{n:03d}.flac", speaker=f"SP{n % 2}") for n in range(count)])
    return path


def test_an_answer_goes_to_its_clip_after_the_sheet_is_sorted_on_disk(tmp_path):
    sheet = sheet_of(tmp_path / "sheet.csv", 6)
    shown = read_sheet(sheet)[0].path  # the clip a page plays
    write_sheet(sheet, list(reversed(read_sheet(sheet))))  # a spreadsheet's sort, meanwhile
    record_answer(sheet, shown, "angry", MODEL_LABELS)
    rows = read_sheet(sheet)
    assert [(row.path, row.label) for row in rows if row.label] == [(shown, "angry")]
    assert rows[-1].path == shown  # on its own row, now the last


# A process of its own, as a second ``ser-hf app`` on the sheet is: answers every clip of its share, as fast as it can.
ANSWERING = """
import sys, time
from pathlib import Path
from ser_hf.adaptation.sheet import read_sheet, record_answer
sheet, label, parity, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
paths = [row.path for row in read_sheet(sheet)][parity::2]
while not go.exists():
    time.sleep(0.005)
for path in paths:
    record_answer(sheet, path, label, ["angry", "happy", "sad"])
"""


def test_two_processes_answering_one_sheet_at_once_lose_no_answer(tmp_path):
    sheet = sheet_of(tmp_path / "sheet.csv", 96)
    go = tmp_path / "go"
    processes = [
        subprocess.Popen([sys.executable, "-c", ANSWERING, str(sheet), label, str(parity), str(go)], cwd=REPO)
        for parity, label in enumerate(["angry", "sad"])
    ]
    time.sleep(1.0)  # both started and waiting: they then write at once
    go.touch()
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    rows = read_sheet(sheet)
    assert len(rows) == 96
    assert [row.label for row in rows] == ["angry", "sad"] * 48  # every answer of both, each on its own clip


HOLDING = """
import sys, time
from ser_hf.adaptation.sheet import claim_sheet
lock = claim_sheet(sys.argv[1])
print("served" if lock else "refused", flush=True)
time.sleep(600)
"""


def test_a_second_app_on_a_served_sheet_is_warned_and_a_dead_apps_claim_is_gone(tmp_path, caplog):
    sheet = sheet_of(tmp_path / "sheet.csv", 2)
    holder = subprocess.Popen([sys.executable, "-c", HOLDING, str(sheet)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "served"
        with caplog.at_level(logging.WARNING, logger="ser_hf.adaptation.sheet"):
            assert claim_sheet(sheet) is None
        (warning,) = [record.getMessage() for record in caplog.records]
        assert warning.startswith(f"{sheet} is served by another ser-hf app already")
    finally:
        holder.kill()  # as a crash would: the process never releases its claim itself
        holder.wait()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ser_hf.adaptation.sheet"):
        claim = claim_sheet(sheet)
    try:
        assert claim is not None and caplog.records == []
    finally:
        claim.release()


def test_number_columns_a_spreadsheet_re_saved_are_read_and_written_back_as_they_were(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "path,speaker,label,model_guess,model_probability\n"
        'SP0_000.flac,SP0,,angry,"0,183"\n'
        "SP0_001.flac,SP0,,sad,n/a\n"
        "SP0_002.flac,SP0,,sad,61%\n",
        encoding="utf-8",
    )
    rows = read_sheet(sheet)
    assert [row.model_probability for row in rows] == [pytest.approx(0.183), None, pytest.approx(0.61)]
    record_answer(sheet, "SP0_001.flac", SKIP, MODEL_LABELS)
    assert sheet.read_text().splitlines()[1:] == [
        'SP0_000.flac,SP0,,angry,"0,183"',
        "SP0_001.flac,SP0,skip,sad,n/a",
        "SP0_002.flac,SP0,,sad,61%",
    ]


def hand_edited(tmp_path: Path, lines: list[str]) -> Path:
    sheet = tmp_path / "my labels.csv"
    sheet.write_text("path,speaker,label,model_guess,model_probability\n" + "".join(f"{line}\n" for line in lines))
    return sheet


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        (
            "SP1_009.flac,SP1,angy,,",
            "line 10, column 3 (label): 'angy' is not an answer; the answers are the model's emotions (angry, happy, "
            "sad), 'skip' or 'not speech'; did you mean 'angry'?",
        ),
        (
            "../elsewhere/SP1_009.flac,SP1,sad,,",
            "line 10, column 1 (path): '../elsewhere/SP1_009.flac' leads outside the folder of recordings (the paths "
            "are relative to it).",
        ),
        (
            "SP0_000.flac,SP0,sad,,",
            "lines 2 and 10, column 3 (label): the clip 'SP0_000.flac' is answered twice, 'angry' and 'sad'; keep one "
            "answer (clear the other's label).",
        ),
        ("SP1_009.flac,,sad,,", "line 10, column 2 (speaker): no speaker for the clip 'SP1_009.flac'"),
    ],
    ids=["misspelt emotion", "outside the folder", "answered twice", "no speaker"],
)
def test_a_refused_sheet_names_the_users_sheet_and_line_and_leaves_no_derived_file(tmp_path, bad_line, expected):
    answered = [f"SP{n % 2}_{n:03d}.flac,SP{n % 2},{('angry', 'happy', 'sad')[n % 3]},," for n in range(8)]
    sheet = hand_edited(tmp_path, answered + [bad_line])
    derived = tmp_path / "out.labels.csv"
    with pytest.raises(SheetError) as error:
        labelled_rows_csv(sheet, derived, labels=MODEL_LABELS)
    assert str(error.value).startswith(f"{sheet}, {expected}")
    assert not derived.exists()


def test_hand_typed_answers_in_another_case_or_spelling_are_the_sheets_answers(tmp_path):
    sheet = hand_edited(
        tmp_path,
        ["a.flac,SP0,Angry,,", "b.flac,SP0,not_speech,,", "c.flac,SP0,Not-Speech,,", "d.flac,SP1,SKIP,,"]
        + ["e.flac,SP1,anger,,", "f.flac,SP1,,,", "a.flac,SP0,angry,,"],  # an alias; unanswered; a.flac again, alike
    )
    derived = tmp_path / "out.labels.csv"
    counts = labelled_rows_csv(sheet, derived, labels=MODEL_LABELS)
    assert counts == {"emotion": 3, SKIP: 1, NOT_SPEECH: 2, "unanswered": 1}
    assert derived.read_text() == "path,label,speaker\na.flac,angry,SP0\ne.flac,angry,SP1\n"


def test_a_sheet_of_problems_tells_the_first_whole_and_where_the_others_are(tmp_path):
    sheet = hand_edited(tmp_path, ["a.flac,SP0,angry,,", "b.flac,SP0,hapy,,", "c.flac,SP0,xyz,,", "/d.flac,SP0,sad,,"])
    with pytest.raises(SheetError) as error:
        labelled_rows_csv(sheet, tmp_path / "out.csv", labels=MODEL_LABELS)
    message = str(error.value)
    assert message.startswith(f"{sheet}, line 3, column 3 (label): 'hapy' is not an answer;")
    assert "did you mean 'happy'?" in message
    assert message.endswith("(2 more problem(s) in the sheet: line 4, column 3 (label); line 5, column 1 (path))")


def test_given_the_folder_a_path_that_names_no_recording_is_refused_on_its_line(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "a.flac").write_bytes(b"")
    sheet = hand_edited(tmp_path, ["a.flac,SP0,angry,,", "b.flac,SP0,sad,,"])
    with pytest.raises(SheetError, match=r"line 3, column 1 \(path\): 'b.flac' is no file of the folder"):
        labelled_rows_csv(sheet, tmp_path / "out.csv", labels=MODEL_LABELS, data_dir=folder)


def test_a_sheet_that_is_not_utf8_or_lacks_a_column_names_its_line(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes("path,speaker,label\na.flac,SP0,angry\nb.flac,Jos\xe9,sad\n".encode("latin-1"))
    with pytest.raises(SheetError, match=rf"^{sheet}, line 3: not UTF-8 text .* save the sheet as UTF-8"):
        read_sheet(sheet)
    sheet.write_text("path,label\na.flac,angry\n")
    with pytest.raises(SheetError, match=r"line 1: missing column\(s\) \['speaker'\]"):
        read_sheet(sheet)
    with pytest.raises(SheetError, match="no such labelling sheet"):
        read_sheet(tmp_path / "missing.csv")
