"""Leakage audit of a split: shared speakers, identical files and shared sentences between splits.

Speaker overlap is the leak that inflates SER results, so it fails the audit unless the split was made as a random
split on purpose (to measure that inflation). Identical files (same content hash) are reported and also fail: the
same recording on both sides of a split is never intended. Shared sentences are normal in acted corpora (every
actor reads the same sentences) and are reported for information only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Mapping, Optional

from datasets import Dataset, DatasetDict

from .dataset_info import column_values, get_ser_info
from .errors import LeakageError
from .file_digests import file_digests

logger = logging.getLogger(__name__)


@dataclass
class LeakageReport:
    """What :func:`audit_leakage` found. Pair keys are ``"train/test"``-style split pairs."""

    protocol: Optional[str]
    clips: dict[str, int]
    speakers: dict[str, list[str]]
    speaker_overlap: dict[str, list[str]] = field(default_factory=dict)
    file_overlap: dict[str, list[list[str]]] = field(default_factory=dict)
    text_overlap: dict[str, list[str]] = field(default_factory=dict)
    text_column: Optional[str] = None
    files_checked: bool = True
    speaker_overlap_allowed: bool = False

    @property
    def speaker_independent(self) -> bool:
        return not any(self.speaker_overlap.values())

    @property
    def passed(self) -> bool:
        """No identical files across splits, and no shared speaker unless the split is a random one."""
        return not any(self.file_overlap.values()) and (self.speaker_independent or self.speaker_overlap_allowed)

    def describe_failures(self) -> str:
        problems = []
        for pair, shared in self.speaker_overlap.items():
            if shared and not self.speaker_overlap_allowed:
                problems.append(f"{len(shared)} speaker(s) in both {pair.replace('/', ' and ')}: {shared[:10]}")
        for pair, groups in self.file_overlap.items():
            if groups:
                problems.append(
                    f"{len(groups)} identical file(s) in both {pair.replace('/', ' and ')}, e.g. {groups[0]}"
                )
        return "Leakage audit failed: " + "; ".join(problems) if problems else "Leakage audit passed."

    def to_dict(self) -> dict:
        return asdict(self) | {"speaker_independent": self.speaker_independent, "passed": self.passed}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        lines = [
            f"## Leakage audit ({self.protocol or 'unknown'} protocol): {'passed' if self.passed else 'FAILED'}",
            "",
            "| split | clips | speakers |",
            "|---|---:|---:|",
        ]
        lines += [f"| {name} | {self.clips[name]} | {len(self.speakers[name])} |" for name in self.clips]
        lines += ["", "| splits | shared speakers | identical files | shared sentences |", "|---|---:|---:|---:|"]
        for pair in self.speaker_overlap:
            text = len(self.text_overlap.get(pair, [])) if self.text_column else "n/a"
            files = len(self.file_overlap.get(pair, [])) if self.files_checked else "n/a"
            lines.append(f"| {pair} | {len(self.speaker_overlap[pair])} | {files} | {text} |")
        if self.protocol == "random":
            lines += [
                "",
                "**Random split: speakers are shared between splits on purpose; its scores are inflated "
                "by speaker leakage and are not speaker-independent results.**",
            ]
        return "\n".join(lines) + "\n"


def _hashes(dataset: Dataset) -> dict[str, list[str]]:
    """The split's clips grouped by the digest of their bytes (:func:`~.file_digests.file_digests`)."""
    paths = column_values(dataset, "path")
    by_hash: dict[str, list[str]] = {}
    for path, digest in zip(paths, file_digests(paths)):
        if digest is None:
            raise FileNotFoundError(f"{path}: no such file, so it cannot be checked for copies in other splits.")
        by_hash.setdefault(digest, []).append(path)
    return by_hash


def audit_leakage(
    splits: DatasetDict | Mapping[str, Dataset],
    *,
    check_files: bool = True,
    text_column: Optional[str] = None,
    raise_on_leakage: bool = True,
    allow_speaker_overlap: bool = False,
) -> LeakageReport:
    """Audit a split for speaker, file and sentence overlap between every pair of splits.

    Args:
        splits (`DatasetDict`): the split (each split needs ``speaker_id``; ``path`` for the file check).
        check_files (`bool`, *optional*, defaults to `True`): hash every file (sha256) to find identical recordings;
            a file is hashed once per process (again only when its size or modification time changes).
        text_column (`str`, *optional*): column holding what was said; defaults to the corpus' text column.
        raise_on_leakage (`bool`, *optional*, defaults to `True`): raise :class:`LeakageError` when the audit fails.
        allow_speaker_overlap (`bool`, *optional*, defaults to `False`): accept shared speakers (as for a split
            recorded as ``random``, which is always accepted).
    """
    names = list(splits)
    if not names:
        raise ValueError("audit_leakage needs at least one split.")
    first = splits[names[0]]
    record = get_ser_info(first)
    protocols = {get_ser_info(splits[name]).get("split_protocol") for name in names}
    protocol = protocols.pop() if len(protocols) == 1 else None
    if text_column is None:
        text_column = record.get("text_column")
    if text_column is not None and any(text_column not in splits[n].column_names for n in names):
        text_column = None

    speakers = {name: sorted(set(column_values(splits[name], "speaker_id"))) for name in names}
    report = LeakageReport(
        protocol=protocol,
        clips={name: len(splits[name]) for name in names},
        speakers=speakers,
        text_column=text_column,
        files_checked=check_files,
        speaker_overlap_allowed=allow_speaker_overlap or protocol == "random",
    )
    hashes = {name: _hashes(splits[name]) for name in names} if check_files else {}
    texts = {name: set(column_values(splits[name], text_column)) - {None} for name in names} if text_column else {}
    for a, b in combinations(names, 2):
        pair = f"{a}/{b}"
        report.speaker_overlap[pair] = sorted(set(speakers[a]) & set(speakers[b]))
        if check_files:
            report.file_overlap[pair] = [hashes[a][h] + hashes[b][h] for h in sorted(hashes[a].keys() & hashes[b])]
        if text_column:
            report.text_overlap[pair] = sorted(texts[a] & texts[b])
    if not report.speaker_independent and report.speaker_overlap_allowed:
        logger.warning(
            "%d speaker(s) are shared between splits: scores on this split are inflated by speaker leakage.",
            len(set().union(*report.speaker_overlap.values())),
        )
    if raise_on_leakage and not report.passed:
        raise LeakageError(report)
    return report
