"""The labelling sheet: the CSV ``ser-hf suggest`` writes, a person (or the labelling page) fills in, and ``ser-hf
adapt --labels-csv`` reads.

One row per suggested clip, in the order to label them: ``path`` (relative to the folder of recordings, ``/`` between
folders), ``speaker``, ``label`` (empty until answered: one of the model's emotions, or :data:`SKIP` or
:data:`NOT_SPEECH`, which the adaptation leaves out), then what helps a person decide (the model's guess and its
probability). Every write replaces the whole file atomically (:mod:`ser_hf.atomic_files`), so a reader never sees half
a sheet, and :func:`record_answer` reads the file again under a file lock (``.SHEET.lock`` beside it, held across
processes) before writing one answer, so that two pages (two tabs, a reload, two ``ser-hf app`` processes) never
overwrite each other's answers. :func:`claim_sheet` tells a second app that the sheet is served already.

A sheet edited by hand (or re-saved by a spreadsheet) is read leniently where the adaptation does not care and refused
where it does, always naming the sheet, its line and its column: see :func:`read_sheet` and :func:`labelled_rows`.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..atomic_files import write_text_atomic
from .errors import AdaptationError

logger = logging.getLogger(__name__)

#: The answer for a clip the person chose not to label (unclear, two emotions at once...): left out of the adaptation.
SKIP = "skip"
#: The answer for a clip that holds no speech (noise, music, silence): left out of the adaptation.
NOT_SPEECH = "not speech"
#: Answers that are not emotions.
NOT_EMOTIONS = (SKIP, NOT_SPEECH)
#: The sheet's columns, in order: those the adaptation reads first, then the model's guess and its probability.
SHEET_COLUMNS = ("path", "speaker", "label", "model_guess", "model_probability")
#: How long a write waits for another writer of the same sheet (a page of another process) before it gives up.
LOCK_SECONDS = 10.0


class SheetError(AdaptationError):
    """A labelling sheet that cannot be used as it is: the message names the sheet, and where it can, the line, the
    column and the value at fault."""


class ClipNotInSheet(ValueError):
    """An answer for a clip the sheet (as read now) does not list: it was changed on disk since the page showed it."""


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
    #: The line of the sheet the row starts on (0: not read from a file), for the errors that name it.
    line: int = field(default=0, compare=False)
    #: ``model_probability`` as the sheet wrote it, written back as it was (a spreadsheet's ``0,183`` stays so).
    probability_text: str = field(default="", compare=False, repr=False)

    @property
    def answered(self) -> bool:
        return bool(self.label)

    @property
    def is_emotion(self) -> bool:
        """Whether the answer is an emotion, which the adaptation trains on (not empty, skip or not speech)."""
        return bool(self.label) and answer_spelling(self.label) not in NOT_EMOTIONS


def answer_spelling(label: str) -> str:
    """`label` with case, spaces, ``_`` and ``-`` made uniform, so that a hand-typed ``Not_Speech`` or ``SKIP`` is the
    answer it means (``not speech``, ``skip``); an emotion comes back in lower case."""
    return " ".join(label.strip().lower().replace("_", " ").replace("-", " ").split())


def _probability(text: str) -> Optional[float]:
    """``model_probability`` read leniently: the page shows it and the adaptation never reads it, so a value a
    spreadsheet re-saved (``0,183`` in a comma-decimal locale, ``18.3%``) is read, and anything else is no probability
    rather than an error."""
    text = text.strip().replace(",", ".")
    scale = 100.0 if text.endswith("%") else 1.0
    try:
        value = float(text.rstrip("%").strip()) / scale
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _line_of_byte(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def _read(sheet: Path) -> tuple[list[str], list[SheetRow]]:
    """The header and the rows of `sheet`, each row with the line it starts on."""
    try:
        data = sheet.read_bytes()
    except FileNotFoundError:
        raise SheetError(f"{sheet}: no such labelling sheet (ser-hf suggest writes one).") from None
    except OSError as error:
        raise SheetError(f"{sheet}: cannot be read ({error.strerror or error}).") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SheetError(
            f"{sheet}, line {_line_of_byte(data, error.start)}: not UTF-8 text ({error.reason} at byte "
            f"{error.start}); save the sheet as UTF-8 (in a spreadsheet: 'CSV UTF-8')."
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    records = []
    try:
        header = [name.strip() for name in next(reader, [])]
        last_line = reader.line_num
        for record in reader:
            records.append((last_line + 1, record))
            last_line = reader.line_num
    except csv.Error as error:
        raise SheetError(f"{sheet}, line {reader.line_num}: not a CSV line ({error}).") from None
    missing = [column for column in ("path", "speaker", "label") if column not in header]
    if missing:
        raise SheetError(f"{sheet}, line 1: missing column(s) {missing}; the header is {header}.")
    rows = []
    for line, record in records:
        if not any(value.strip() for value in record):
            continue  # a blank line a spreadsheet left
        values = dict(zip(header, record))
        probability = (values.get("model_probability") or "").strip()
        rows.append(
            SheetRow(
                path=values.get("path", "").strip(),
                speaker=values.get("speaker", "").strip(),
                label=values.get("label", "").strip(),
                model_guess=(values.get("model_guess") or "").strip(),
                model_probability=_probability(probability),
                extra={key: value for key, value in values.items() if key not in SHEET_COLUMNS and key},
                line=line,
                probability_text=probability,
            )
        )
    return header, rows


def read_sheet(sheet: str | os.PathLike) -> list[SheetRow]:
    """The rows of `sheet`. A missing file, text that is not UTF-8 or CSV, or a missing column is a
    :class:`SheetError` naming the sheet (and the line). Nothing else is checked here (the page shows a row as it is;
    :func:`labelled_rows` checks what the adaptation reads), and ``model_probability`` is parsed leniently (see
    :func:`_probability`)."""
    return _read(Path(sheet))[1]


def sheet_text(rows: Sequence[SheetRow]) -> str:
    """`rows` as the sheet's CSV text (:data:`SHEET_COLUMNS`, then any column a person added)."""
    extra = list(dict.fromkeys(key for row in rows for key in row.extra))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*SHEET_COLUMNS, *extra])
    for row in rows:
        if row.probability_text:
            probability = row.probability_text
        else:
            probability = "" if row.model_probability is None else f"{row.model_probability:.3f}"
        values = [row.path, row.speaker, row.label, row.model_guess, probability]
        writer.writerow(values + [row.extra.get(key, "") for key in extra])
    return buffer.getvalue()


def write_sheet(sheet: str | os.PathLike, rows: Sequence[SheetRow]) -> None:
    """Write `rows` to `sheet`, atomically: a reader sees the old sheet or the new one, never half of one."""
    write_text_atomic(Path(sheet), sheet_text(rows))


def sheet_order(rows: Sequence[SheetRow]) -> str:
    """A short digest of the clips of `rows` in their order: the page compares it with the sheet read later to see
    that the sheet was sorted, or rows added or removed, on disk meanwhile."""
    return hashlib.blake2b("\n".join(row.path for row in rows).encode(), digest_size=8).hexdigest()


def _lock_path(sheet: Path, purpose: str) -> Path:
    return sheet.with_name(f".{sheet.name}.{purpose}")


def record_answer(sheet: str | os.PathLike, path: str, label: str, allowed: Sequence[str]) -> list[SheetRow]:
    """Set the answer of the clip `path` to `label` (one of `allowed`, :data:`NOT_EMOTIONS` or ``""`` to clear it)
    in `sheet`, read again under a file lock (``.SHEET.lock``, held across processes) so that answers given elsewhere
    meanwhile are kept; returns the rows. The clip is found by its path, never by its row: a sheet sorted on disk
    meanwhile gets the answer on the clip's own row. A clip the sheet no longer lists is :class:`ClipNotInSheet`."""
    from filelock import FileLock, Timeout

    if label and label not in allowed and label not in NOT_EMOTIONS:
        raise ValueError(f"{label!r} is not an answer of this sheet ({', '.join([*allowed, *NOT_EMOTIONS])}).")
    sheet = Path(sheet)
    lock = FileLock(_lock_path(sheet, "lock"))
    try:
        with lock.acquire(timeout=LOCK_SECONDS):
            rows = read_sheet(sheet)
            matching = [row for row in rows if row.path == path]
            if not matching:
                raise ClipNotInSheet(f"{path!r} is no longer a clip of {sheet}: the answer was not written.")
            for row in matching:
                row.label = label
            write_sheet(sheet, rows)
    except Timeout:
        raise SheetError(
            f"{sheet}: another process has been writing it for over {LOCK_SECONDS:g} s (it holds "
            f"{_lock_path(sheet, 'lock')}): the answer was not written; try again."
        ) from None
    return rows


def claim_sheet(sheet: str | os.PathLike):
    """Mark `sheet` as served by this process for as long as the returned lock is held (a ``filelock.FileLock`` on
    ``.SHEET.served``; released by ``release()`` or when the process ends, however it ends, so a crashed app leaves no
    stale claim). Where another process (or app) holds it already, log a warning and return `None`: both apps may
    answer, every answer is kept, but each page sees the other's answers only at its next step."""
    from filelock import FileLock, Timeout

    sheet = Path(sheet)
    lock = FileLock(_lock_path(sheet, "served"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning(
            "%s is served by another ser-hf app already (it holds %s): every answer of both is kept, each written "
            "under a lock, but each page sees the other's answers only at its next step; stop one of the apps to "
            "label alone.",
            sheet,
            _lock_path(sheet, "served"),
        )
        return None
    return lock


def _closest(value: str, candidates: Sequence[str]) -> str:
    match = difflib.get_close_matches(answer_spelling(value), list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else "."


def labelled_rows(
    sheet: str | os.PathLike,
    *,
    labels: Optional[Sequence[str]] = None,
    data_dir: Optional[str | os.PathLike] = None,
) -> tuple[list[SheetRow], dict[str, int]]:
    """The rows of `sheet` answered with an emotion (each label in the vocabulary's spelling, a clip answered on two
    lines kept once) and how many rows were answered each way (``emotion``, ``skip``, ``not speech``,
    ``unanswered``), every row checked first. A problem is a :class:`SheetError` naming the sheet, the line, the
    column, the value and what is allowed: an answer that is no emotion of ser-hf's vocabulary nor an answer of the
    sheet (with the closest allowed one), an answered clip with no path or speaker, a path leading outside the folder
    of recordings (or, given `data_dir`, naming no file in it), the same clip answered differently on two lines, and a
    sheet with no emotion answered yet.

    Args:
        sheet (`str` or `os.PathLike`): the labelling sheet.
        labels (`Sequence[str]`, *optional*): the model's emotions, which the errors name as the answers (the other
            emotions of ser-hf's vocabulary are accepted too: an adaptation can learn a new one).
        data_dir (`str` or `os.PathLike`, *optional*): the folder of recordings the paths are relative to.
    """
    from ..emotions import EMOTIONS, canonical_emotion

    sheet = Path(sheet)
    header, rows = _read(sheet)
    column = {name: f"column {header.index(name) + 1} ({name})" for name in ("path", "speaker", "label")}
    shown_emotions = list(labels) if labels else list(EMOTIONS)
    whose = "the model's emotions" if labels else "ser-hf's emotions"
    allowed = f"{whose} ({', '.join(shown_emotions)}), {SKIP!r} or {NOT_SPEECH!r}"
    candidates = [*shown_emotions, *EMOTIONS, *NOT_EMOTIONS]
    root = Path(data_dir).expanduser() if data_dir is not None else None
    problems: list[tuple[str, str]] = []  # (where, what): the first is told whole, the others by where
    counts = {"emotion": 0, SKIP: 0, NOT_SPEECH: 0, "unanswered": 0}
    kept: dict[str, SheetRow] = {}
    for row in rows:
        spelling = answer_spelling(row.label)
        if not spelling:
            counts["unanswered"] += 1
            continue
        answer = spelling if spelling in NOT_EMOTIONS else canonical_emotion(row.label)
        if answer is None:
            problems.append(
                (
                    f"line {row.line}, {column['label']}",
                    f"{row.label!r} is not an answer; the answers are {allowed}{_closest(row.label, candidates)}",
                )
            )
            continue
        counts["emotion" if answer not in NOT_EMOTIONS else answer] += 1
        if not row.path:
            if answer not in NOT_EMOTIONS:
                problems.append(
                    (f"line {row.line}, {column['path']}", f"no path for the clip answered {row.label!r}.")
                )
            continue
        clip = os.path.normpath(row.path.replace("\\", "/"))
        if clip in kept:
            if kept[clip].label != answer:
                problems.append(
                    (
                        f"lines {kept[clip].line} and {row.line}, {column['label']}",
                        f"the clip {row.path!r} is answered twice, {kept[clip].label!r} and {answer!r}; keep one "
                        "answer (clear the other's label).",
                    )
                )
            continue  # the same clip with the same answer: kept once
        kept[clip] = SheetRow(path=row.path, speaker=row.speaker, label=answer, line=row.line)
        if answer in NOT_EMOTIONS:
            continue
        where = f"line {row.line}, {column['path']}"
        if os.path.isabs(clip) or clip == ".." or clip.startswith("../"):
            problems.append(
                (where, f"{row.path!r} leads outside the folder of recordings (the paths are relative to it).")
            )
        elif root is not None and not (root / clip).is_file():
            problems.append((where, f"{row.path!r} is no file of the folder of recordings {root}."))
        elif not row.speaker:
            problems.append(
                (
                    f"line {row.line}, {column['speaker']}",
                    f"no speaker for the clip {row.path!r}; an answered clip needs one.",
                )
            )
    if problems:
        (where, what), others = problems[0], [where for where, _ in problems[1:]]
        more = f" ({len(others)} more problem(s) in the sheet: {'; '.join(others)})" if others else ""
        raise SheetError(f"{sheet}, {where}: {what}{more}")
    emotions = [row for row in kept.values() if row.label not in NOT_EMOTIONS]
    if not emotions:
        raise SheetError(
            f"labels_csv {sheet}: no row has an emotion in its label column yet ({len(rows)} rows: "
            f"{counts[SKIP]} skipped, {counts[NOT_SPEECH]} not speech, {counts['unanswered']} unanswered): label some "
            "clips first (ser-hf app MODEL --label FOLDER, or any spreadsheet).",
            parameter="labels_csv",
        )
    return emotions, counts


def speech_rows(sheet: str | os.PathLike, data_dir: str | os.PathLike) -> dict[str, str]:
    """The sheet's clips of speech answered with no emotion (unanswered or skipped, with a speaker and a file in
    `data_dir`) -> their speakers: recordings that give their speaker's statistics, as at inference (no label read).
    Clips answered "not speech" are left out."""
    root = Path(data_dir).expanduser()
    rows = {}
    for row in read_sheet(sheet):
        if row.is_emotion or answer_spelling(row.label) == NOT_SPEECH or not row.speaker or not row.path:
            continue
        path = root / row.path
        if path.is_file():
            rows[str(path)] = row.speaker
    return rows


def labelled_rows_csv(
    sheet: str | os.PathLike,
    destination: Path,
    *,
    labels: Optional[Sequence[str]] = None,
    data_dir: Optional[str | os.PathLike] = None,
) -> dict[str, int]:
    """Write the rows of `sheet` answered with an emotion to `destination` (``path,label,speaker``, the folder
    corpus' CSV layout), atomically; returns how many rows were answered each way (``emotion``, ``skip``, ``not
    speech``, ``unanswered``). The whole sheet is checked first (:func:`labelled_rows`, `labels` and `data_dir` as
    there): a sheet refused leaves no `destination` behind, and its error names the sheet's own line."""
    kept, counts = labelled_rows(sheet, labels=labels, data_dir=data_dir)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label", "speaker"])
    writer.writerows([row.path, row.label, row.speaker] for row in kept)
    write_text_atomic(destination, buffer.getvalue())
    return counts


__all__ = [
    "LOCK_SECONDS",
    "NOT_EMOTIONS",
    "NOT_SPEECH",
    "SHEET_COLUMNS",
    "SKIP",
    "ClipNotInSheet",
    "SheetError",
    "SheetRow",
    "answer_spelling",
    "claim_sheet",
    "labelled_rows",
    "labelled_rows_csv",
    "speech_rows",
    "read_sheet",
    "record_answer",
    "sheet_order",
    "sheet_text",
    "write_sheet",
]
