"""A diarisation given as an RTTM file (NIST RTTM, as pyannote and most diarisation tools write it): its speaker
turns, and speech segments cut at the turns' boundaries, for ``ser-hf predict --timeline --rttm``."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

#: The fields of an RTTM ``SPEAKER`` line (NIST RTTM, as pyannote and most diarisation tools write it).
RTTM_FIELDS = (
    "type",
    "file",
    "channel",
    "start",
    "duration",
    "ortho",
    "subtype",
    "speaker",
    "confidence",
    "lookahead",
)


@dataclass(frozen=True)
class SpeakerTurn:
    """One line of an RTTM file: ``speaker`` talks from ``start`` to ``end`` seconds of recording ``file``."""

    file: str
    start: float
    end: float
    speaker: str


def read_rttm(path: str | os.PathLike) -> list[SpeakerTurn]:
    """The ``SPEAKER`` turns of an RTTM file (other line types and ``;;`` comments are skipped). A malformed line is
    an error naming the file and the line."""
    path = Path(path)
    turns = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0].startswith(";;") or fields[0] != "SPEAKER":
                continue
            problem = None
            if len(fields) < 8:
                problem = f"{len(fields)} fields, expected at least 8"
            else:
                try:
                    start, duration = float(fields[3]), float(fields[4])
                except ValueError:
                    problem = f"start {fields[3]!r} and duration {fields[4]!r} must be numbers"
                else:
                    if not (math.isfinite(start) and math.isfinite(duration)) or start < 0 or duration < 0:
                        problem = f"start {fields[3]} and duration {fields[4]} must be non-negative"
            if problem is not None:
                raise ValueError(
                    f"{path} line {number}: {problem} ({' '.join(RTTM_FIELDS)}, e.g. "
                    f"'SPEAKER meeting 1 12.30 4.05 <NA> <NA> alice <NA> <NA>'); got: {line.strip()!r}"
                )
            turns.append(SpeakerTurn(fields[1], start, start + duration, fields[7]))
    return turns


def turns_of(turns: Sequence[SpeakerTurn], file: str, source: str = "the RTTM file") -> list[SpeakerTurn]:
    """The turns of recording ``file``: those whose file id is its name without extension (RTTM's convention), or
    every turn when the RTTM names a single recording."""
    file_id = Path(file).stem
    ids = sorted({turn.file for turn in turns})
    if file_id in ids:
        return [turn for turn in turns if turn.file == file_id]
    if len(ids) == 1:
        return list(turns)
    raise ValueError(
        f"{source} has no turns for {file} (file id {file_id!r}); it names {', '.join(ids[:10]) or 'no turns'}."
    )


def split_by_speaker(
    bounds: Sequence[tuple[float, float]], turns: Sequence[SpeakerTurn]
) -> list[tuple[float, float, Optional[str]]]:
    """Cut each ``(start, end)`` speech segment at the speaker turn boundaries inside it; each piece gets the speaker
    whose turns overlap it most (`None` where no turn does), and neighbouring pieces of one speaker are joined."""
    edges = sorted({t for turn in turns for t in (turn.start, turn.end)})
    pieces: list[tuple[float, float, Optional[str]]] = []
    for start, end in bounds:
        cuts = [start, *(edge for edge in edges if start < edge < end), end]
        joined: list[list] = []
        for low, high in zip(cuts, cuts[1:]):
            overlap: dict[str, float] = {}
            for turn in turns:
                seconds = min(high, turn.end) - max(low, turn.start)
                if seconds > 0:
                    overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + seconds
            speaker = max(overlap, key=overlap.get) if overlap else None
            if joined and joined[-1][2] == speaker:
                joined[-1][1] = high
            else:
                joined.append([low, high, speaker])
        pieces += [tuple(piece) for piece in joined]
    return pieces


__all__ = ["RTTM_FIELDS", "SpeakerTurn", "read_rttm", "split_by_speaker", "turns_of"]
