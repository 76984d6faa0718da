"""The labelling sheet: the CSV ``ser-hf suggest`` writes, a person (or the labelling page) fills in, and ``ser-hf
adapt --labels_csv`` reads.

One row per suggested clip, in the order to label them: ``path`` (relative to the folder of recordings, ``/`` between
folders), ``speaker``, ``label`` (empty until answered: one of the model's emotions, or :data:`SKIP` or
:data:`NOT_SPEECH`, which the adaptation leaves out), then what helps a person decide (the model's guess and its
probability). Every write replaces the whole file atomically (:mod:`ser_hf.atomic_files`), so a reader never sees half
a sheet, and :func:`record_answer` reads the file again under a lock before writing one answer, so that two pages (two
tabs, a reload) never overwrite each other's answers.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..atomic_files import write_text_atomic
from ..errors import RecipeError

#: The answer for a clip the person chose not to label (unclear, two emotions at once...): left out of the adaptation.
SKIP = "skip"
#: The answer for a clip that holds no speech (noise, music, silence): left out of the adaptation.
NOT_SPEECH = "not speech"
#: Answers that are not emotions.
NOT_EMOTIONS = (SKIP, NOT_SPEECH)
#: The sheet's columns, in order: those the adaptation reads first, then the model's guess and its probability.
SHEET_COLUMNS = ("path", "speaker", "label", "model_guess", "model_probability")

# One lock per process for every sheet: answers are rare (a person's clicks), so one lock costs nothing.
_WRITE_LOCK = threading.Lock()


@dataclass
class SheetRow:
    """One clip of the sheet: its path relative to the folder of recordings, its speaker, the answer (empty: none
    yet), and the model's guess with its probability."""

    path: str
    speaker: str
    label: str = ""
    model_guess: str = ""
    model_probability: Optional[float] = None
    #: Columns a person added to the sheet, kept as they are.
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return bool(self.label)

    @property
    def is_emotion(self) -> bool:
        """Whether the answer is an emotion, which the adaptation trains on (not empty, skip or not speech)."""
        return bool(self.label) and self.label.strip().lower() not in NOT_EMOTIONS


def read_sheet(sheet: str | os.PathLike) -> list[SheetRow]:
    """The rows of `sheet`; a missing file or a missing column is a :class:`~ser_hf.errors.RecipeError` naming it."""
    sheet = Path(sheet)
    try:
        text = sheet.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RecipeError(f"{sheet}: no such labelling sheet (ser-hf suggest writes one).") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"{sheet}: cannot be read as UTF-8 text ({error}).") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in ("path", "speaker", "label") if column not in (reader.fieldnames or [])]
    if missing:
        raise RecipeError(f"{sheet}: missing column(s) {missing}; the header is {reader.fieldnames}.")
    rows = []
    for row in reader:
        probability = (row.get("model_probability") or "").strip()
        rows.append(
            SheetRow(
                path=(row["path"] or "").strip(),
                speaker=(row["speaker"] or "").strip(),
                label=(row["label"] or "").strip(),
                model_guess=(row.get("model_guess") or "").strip(),
                model_probability=float(probability) if probability else None,
                extra={key: value for key, value in row.items() if key not in SHEET_COLUMNS and key is not None},
            )
        )
    return rows


def sheet_text(rows: Sequence[SheetRow]) -> str:
    """`rows` as the sheet's CSV text (:data:`SHEET_COLUMNS`, then any column a person added)."""
    extra = list(dict.fromkeys(key for row in rows for key in row.extra))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*SHEET_COLUMNS, *extra])
    for row in rows:
        probability = "" if row.model_probability is None else f"{row.model_probability:.3f}"
        values = [row.path, row.speaker, row.label, row.model_guess, probability]
        writer.writerow(values + [row.extra.get(key, "") for key in extra])
    return buffer.getvalue()


def write_sheet(sheet: str | os.PathLike, rows: Sequence[SheetRow]) -> None:
    """Write `rows` to `sheet`, atomically: a reader sees the old sheet or the new one, never half of one."""
    write_text_atomic(Path(sheet), sheet_text(rows))


def record_answer(sheet: str | os.PathLike, path: str, label: str, allowed: Sequence[str]) -> list[SheetRow]:
    """Set the answer of the clip `path` to `label` (one of `allowed`, :data:`NOT_EMOTIONS` or ``""`` to clear it)
    in `sheet`, read again under a lock so that answers given elsewhere meanwhile are kept; returns the rows."""
    if label and label not in allowed and label not in NOT_EMOTIONS:
        raise ValueError(f"{label!r} is not an answer of this sheet ({', '.join([*allowed, *NOT_EMOTIONS])}).")
    with _WRITE_LOCK:
        rows = read_sheet(sheet)
        matching = [row for row in rows if row.path == path]
        if not matching:
            raise ValueError(f"{path!r} is not a clip of {sheet}.")
        for row in matching:
            row.label = label
        write_sheet(sheet, rows)
    return rows


def labelled_rows_csv(sheet: str | os.PathLike, destination: Path) -> dict[str, int]:
    """Write the rows of `sheet` answered with an emotion to `destination` (``path,label,speaker``, the folder
    corpus' CSV layout), atomically; returns how many rows were answered each way (``emotion``, ``skip``, ``not
    speech``, ``unanswered``). A sheet with no emotion answered yet is refused, naming it."""
    rows = read_sheet(sheet)
    counts = {"emotion": 0, SKIP: 0, NOT_SPEECH: 0, "unanswered": 0}
    kept = []
    for row in rows:
        if row.is_emotion:
            counts["emotion"] += 1
            kept.append(row)
        elif row.answered:
            counts[row.label.strip().lower()] += 1
        else:
            counts["unanswered"] += 1
    if not kept:
        raise RecipeError(
            f"--labels_csv {sheet}: no row has an emotion in its label column yet ({len(rows)} rows: "
            f"{counts[SKIP]} skipped, {counts[NOT_SPEECH]} not speech, {counts['unanswered']} unanswered): label some "
            "clips first (ser-hf app MODEL --label FOLDER, or any spreadsheet)."
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label", "speaker"])
    writer.writerows([row.path, row.label, row.speaker] for row in kept)
    write_text_atomic(destination, buffer.getvalue())
    return counts


__all__ = [
    "NOT_EMOTIONS",
    "NOT_SPEECH",
    "SHEET_COLUMNS",
    "SKIP",
    "SheetRow",
    "labelled_rows_csv",
    "read_sheet",
    "record_answer",
    "sheet_text",
    "write_sheet",
]
