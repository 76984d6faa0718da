"""Any corpus laid out as folders or described by a CSV file.

* Folder layout: ``DATA_DIR/<emotion>/<file>`` (label from the parent folder), or files named by their label
  (``label_regex``, e.g. ``r"_(?P<label>[a-z]+)_\\d+\\.\\w+$"`` for ``EB0_anger_10.wav``), and a speaker taken from the
  path by a regular expression (``speaker_regex``, e.g. ``r"^(?P<speaker>[A-Z]+\\d)_"``). Both regexes are searched
  (``re.search``) in the file's path relative to the data directory, with ``/`` between folders: ``anger/EB0_10.wav``
  in a folder layout, ``EB0_anger_10.wav`` for files in the data directory itself.
* CSV layout: one row per clip with a path column (relative to the data directory) and label / speaker columns;
  every other column becomes metadata.

Labels are matched to ser-hf's vocabulary case-insensitively with the usual aliases (anger, happiness, fear,
surprise ...); anything else must be merged or dropped with ``label_map``.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

# The regex module (a dependency of transformers) takes re's syntax and bounds each match's time: a regex that
# backtracks catastrophically on a long file name, such as (a|aa)+)+Z, would otherwise hang the load silently.
import regex

from ..errors import CorpusError, InvalidClipError
from .spec import Clip, CorpusSpec, find_audio_files

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

#: How long ``speaker_regex`` or ``label_regex`` may take on one file's path; a file name takes microseconds.
REGEX_TIMEOUT_SECONDS = 2.0


def load_folder(
    data_dir: str,
    *,
    csv_path: Optional[str] = None,
    path_column: str = "path",
    label_column: Optional[str] = None,
    speaker_column: Optional[str] = None,
    speaker_regex: Optional[str] = None,
    label_regex: Optional[str] = None,
    text_column: Optional[str] = None,
    corpus_name: Optional[str] = None,
    label_map: Optional[Mapping[str, Optional[str]]] = None,
    **build_options,
) -> Dataset:
    """Load a folder or CSV corpus (see the module docstring). ``build_options`` go to :func:`build_corpus`. Without
    a ``corpus_name`` the corpus is named after its folder (:func:`folder_corpus_name`), and the log says so."""
    # Imported here, not with the module (they load datasets): the recipe's checks read this loader's options first.
    from ..dataset_info import get_ser_info, set_ser_info
    from .base import build_corpus

    root = Path(data_dir).expanduser().resolve()
    corpus_name = corpus_name or _named_after_folder(root)
    if speaker_column is None and speaker_regex is None:
        raise CorpusError(
            "A folder corpus needs speaker_column (with csv_path) or speaker_regex so that splits "
            "can keep each speaker in one split."
        )
    speaker_pattern = _compile_regex("speaker_regex", speaker_regex, "speaker") if speaker_regex else None
    label_pattern = _compile_regex("label_regex", label_regex, "label") if label_regex else None
    if label_pattern is not None and csv_path is not None:
        raise CorpusError("label_regex reads labels from file names; with csv_path the labels come from label_column.")
    label_map = {str(k).strip().lower(): v for k, v in dict(label_map or {}).items()}
    label_column = label_column or "label"

    if csv_path is not None:
        files, table, metadata_columns, csv_skipped = _csv_clips(
            Path(csv_path), root, path_column, label_column, speaker_column, build_options.get("skip_invalid", False)
        )
    else:
        if speaker_column is not None:
            raise CorpusError("speaker_column needs csv_path; for a folder layout use speaker_regex.")
        files, table, metadata_columns, csv_skipped = find_audio_files(root), {}, [], []
    reader = _FolderClips(
        root=root,
        table=table,
        label_column=label_column,
        label_pattern=label_pattern,
        speaker_column=speaker_column,
        speaker_pattern=speaker_pattern,
        metadata_columns=metadata_columns,
    )
    reader.codes = reader.known_codes(files, label_map)
    spec = _folder_spec(corpus_name, reader.codes, metadata_columns, text_column)
    dataset = build_corpus(spec, files, reader.parse, label_map=label_map, **build_options)
    if csv_skipped:
        info = get_ser_info(dataset)
        dataset = set_ser_info(dataset, skipped=csv_skipped + info.get("skipped", []))
    return dataset


def _named_after_folder(root: Path) -> str:
    """The name of a folder corpus given without ``corpus_name`` (:func:`folder_corpus_name`), logged, since it names
    the corpus everywhere its name shows."""
    corpus_name = folder_corpus_name(root)
    logger.info(
        "The folder corpus at %s has no corpus_name: it is called %r after its folder (in its corpus column, "
        "speaker prefixes, reports and output folders); set corpus_name to name it otherwise.",
        root,
        corpus_name,
    )
    return corpus_name


def _folder_spec(
    corpus_name: str, codes: dict[str, str], metadata_columns: list[str], text_column: Optional[str]
) -> CorpusSpec:
    """The corpus spec of a folder or CSV corpus: its name, the label codes its clips use, its metadata columns (all
    strings) and its transcript column when the CSV has it; none of a published corpus's facts."""
    return CorpusSpec(
        name=corpus_name,
        full_name=corpus_name,
        homepage="",
        license="unknown",
        citation="",
        language="",
        emotion_codes=codes,
        metadata={column: "string" for column in metadata_columns},
        text_column=text_column if text_column in metadata_columns else None,
    )


def _csv_clips(
    csv_path: Path,
    root: Path,
    path_column: str,
    label_column: str,
    speaker_column: Optional[str],
    skip_invalid: bool,
) -> tuple[list[Path], dict[str, dict], list[str], list[dict[str, str]]]:
    """The clips a metadata CSV lists (:func:`read_clips_csv`): their paths, each one's row by path, the metadata
    columns (every column but the path, label and speaker) and the rows skipped. A metadata column named as one of
    ser-hf's own is refused, since it would overwrite it."""
    from .base import RESERVED_COLUMNS

    rows, skipped = read_clips_csv(
        csv_path, root, path_column, label_column, speaker_column, skip_invalid=skip_invalid
    )
    metadata_columns = [c for c in rows[0][1] if c not in {path_column, label_column, speaker_column}]
    clashes = sorted(set(metadata_columns) & set(RESERVED_COLUMNS))
    if clashes:
        raise CorpusError(
            f"{csv_path}: column(s) {clashes} would overwrite ser-hf's own columns "
            f"{list(RESERVED_COLUMNS)}; rename them in the CSV."
        )
    return [path for path, _ in rows], {str(path): row for path, row in rows}, metadata_columns, skipped


@dataclass
class _FolderClips:
    """Reads each clip of a folder or CSV corpus: its label from the CSV row, the label regex or its parent folder,
    its speaker from the CSV row or the speaker regex, its metadata from the CSV row."""

    root: Path
    #: Each clip's CSV row by its path; empty for a folder layout.
    table: dict[str, dict]
    label_column: str
    label_pattern: Optional[regex.Pattern]
    speaker_column: Optional[str]
    speaker_pattern: Optional[regex.Pattern]
    metadata_columns: list[str]
    #: The label codes ser-hf can place, and the label each gives (:meth:`known_codes`).
    codes: dict[str, str] = field(default_factory=dict)

    def searched(self, path: Path) -> str:
        """What the regexes are tried on: the path relative to the data directory, ``/`` between folders."""
        return path.relative_to(self.root).as_posix()

    def raw_label(self, path: Path) -> Optional[str]:
        """The clip's label as the corpus writes it; `None` when the label regex does not match its path."""
        if self.table:
            return self.table[str(path)][self.label_column]
        if self.label_pattern is None:
            return path.parent.name
        match = _search("label_regex", self.label_pattern, self.searched(path))
        return _group(match, self.label_pattern, "label") if match else None

    def known_codes(self, files: Sequence[Path], label_map: Mapping[str, Optional[str]]) -> dict[str, str]:
        """The codes ser-hf can place: vocabulary names and aliases, and labels the user maps. Any other label (or a
        name the label regex does not match) fails in :meth:`parse`, per file, so that skip_invalid can skip it."""
        from ...emotions import canonical_emotion

        codes = {}
        for path in files:
            code = (self.raw_label(path) or "").strip()
            if canonical_emotion(code) is not None or code.lower() in label_map:
                codes[code] = canonical_emotion(code) or code.lower()
        return codes

    def parse(self, path: Path) -> Clip:
        """The clip at `path`, or an `InvalidClipError` saying what it lacks."""
        from ...emotions import EMOTIONS

        code = self.raw_label(path)
        if code is None:
            label_regex = self.label_pattern.pattern
            raise InvalidClipError(
                path,
                f"label_regex '{label_regex}' does not match '{self.searched(path)}'",
                kind=f"label_regex '{label_regex}' does not match their paths",
            )
        code = code.strip()
        if code not in self.codes:
            raise InvalidClipError(
                path,
                f"label {code!r} is not an emotion ser-hf knows ({', '.join(EMOTIONS)}); "
                f"map it with label_map={{{code.lower()!r}: ...}} or drop it with None",
            )
        row = self.table.get(str(path), {})
        speaker = row[self.speaker_column].strip() if self.speaker_column is not None else self.regex_speaker(path)
        if not speaker:
            raise InvalidClipError(path, "empty speaker id")
        return Clip(
            path=str(path),
            speaker_id=speaker,
            emotion_code=code,
            metadata={column: row.get(column) for column in self.metadata_columns},
        )

    def regex_speaker(self, path: Path) -> str:
        """The speaker the speaker regex reads from the clip's path."""
        speaker_regex = self.speaker_pattern.pattern
        match = _search("speaker_regex", self.speaker_pattern, self.searched(path))
        if match is None:
            raise InvalidClipError(
                path,
                f"speaker_regex '{speaker_regex}' does not match '{self.searched(path)}'",
                kind=f"speaker_regex '{speaker_regex}' does not match their paths",
            )
        speaker = _group(match, self.speaker_pattern, "speaker")
        if not speaker:
            # The regex is at fault, not the clip: one error, not one per clip it leaves without a speaker.
            raise CorpusError(
                f"speaker_regex '{speaker_regex}' reads an empty speaker from '{self.searched(path)}' ({path}): its "
                "speaker group can match nothing; make it match at least one character (+, not * or ?)."
            )
        return speaker


def folder_corpus_name(data_dir: str | os.PathLike) -> str:
    """The name of a folder corpus given without ``corpus_name``: its folder's (resolved, so ``.`` names the current
    folder), so that two folder corpora read one after the other are told apart in reports and output folders;
    ``folder`` for a file-system root."""
    return Path(data_dir).expanduser().resolve().name or "folder"


def _compile_regex(option: str, pattern: str, group: str) -> regex.Pattern:
    """`pattern` compiled, refused in one line when it has no group, or named groups but none called `group` (whose
    first group, read instead, would be the wrong part of the name: a speaker read as the label)."""
    try:
        compiled = regex.compile(pattern)
    except regex.error as error:
        raise CorpusError(f"{option} '{pattern}' is not a valid regular expression: {error}") from error
    if compiled.groups == 0:
        raise CorpusError(f"{option} '{pattern}' needs a group: (?P<{group}>...) or (...).")
    if compiled.groupindex and group not in compiled.groupindex:
        raise CorpusError(
            f"{option} '{pattern}' has no group named {group!r} (its named groups: "
            f"{', '.join(compiled.groupindex)}): mark the {group} with (?P<{group}>...)."
        )
    return compiled


def _search(option: str, pattern: regex.Pattern, text: str) -> Optional[regex.Match]:
    """``pattern.search(text)``, or an error naming the regex when it takes longer than :data:`REGEX_TIMEOUT_SECONDS`
    (it backtracks catastrophically: a repeated group inside a repeated group)."""
    try:
        return pattern.search(text, timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError:
        raise CorpusError(
            f"{option} '{pattern.pattern}' took over {REGEX_TIMEOUT_SECONDS:g} s on '{text}': it backtracks "
            "catastrophically (a repeated group inside a repeated group, as in (a|aa)+)+); rewrite it so that each "
            "part of a name can match one way only."
        ) from None


def _group(match: regex.Match, pattern: regex.Pattern, name: str) -> str:
    """The named group `name` of `match`, or its first group."""
    return match.group(name) if name in pattern.groupindex else match.group(1)


def read_clips_csv(
    csv_path: Path,
    root: Path,
    path_column: str,
    label_column: Optional[str],
    speaker_column: Optional[str],
    skip_invalid: bool = False,
    inside_root: bool = True,
) -> tuple[list[tuple[Path, dict]], list[dict[str, str]]]:
    """The CSV's rows as ``(audio path, row)``, and the rows skipped (``skip_invalid``); errors name the CSV's line.

    The CSV is read as UTF-8, with or without the byte-order mark Excel writes. A row's path is taken relative to the
    data directory without following links (a symlinked clip inside the corpus is fine; ``..`` or an absolute path
    leading outside it is not, unless ``inside_root`` is `False`), and a file listed twice is an error naming both
    lines. Also reads ``ser-hf predict --speakers`` (root: the CSV's folder, no label column).
    """
    if not csv_path.is_file():
        raise CorpusError(f"Metadata CSV {str(csv_path)!r} does not exist.")
    if not root.is_dir():
        raise CorpusError(f"Data directory {str(root)!r} does not exist.")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            required: Sequence[str] = [c for c in (path_column, label_column, speaker_column) if c]
            missing = [c for c in required if c not in header]
            if missing:
                raise CorpusError(f"{csv_path}: missing column(s) {missing}; the header is {header}.")
            rows = list(reader)
    except UnicodeDecodeError as error:
        line = _line_of_byte(csv_path, error.start)
        raise CorpusError(
            f"{csv_path}, line {line}: not UTF-8 text ({error.reason} at byte {error.start}). Save the "
            "CSV as UTF-8 (in Excel: 'CSV UTF-8'; or iconv -f latin1 -t utf-8)."
        ) from None
    if not rows:
        raise CorpusError(f"{csv_path}: no rows.")
    resolved, skipped, first_line = [], [], {}
    for line, row in enumerate(rows, start=2):
        try:
            path = _csv_row_path(csv_path, line, row, root, required, inside_root)
            if path in first_line:
                raise CorpusError(
                    f"{csv_path}, lines {first_line[path]} and {line} both list {str(path)!r}; each "
                    "clip must appear once (remove one of the lines)."
                )
        except CorpusError as error:
            if not skip_invalid:
                raise
            logger.warning("Skipping %s", error)
            skipped.append({"path": str(row.get(path_column)), "problem": str(error)})
            continue
        first_line[path] = line
        resolved.append((path, row))
    return resolved, skipped


def _csv_row_path(
    csv_path: Path, line: int, row: dict, root: Path, required: Sequence[str], inside_root: bool = True
) -> Path:
    empty = [column for column in required if not (row.get(column) or "").strip()]
    if empty:
        raise CorpusError(
            f"{csv_path}, line {line}: no value in column(s) {empty} (the row has "
            f"{len([v for k, v in row.items() if k is not None and v is not None])} of "
            f"{len([k for k in row if k is not None])} fields)."
        )
    path_column = required[0]
    # Normalised without following links: a link inside the corpus may point anywhere.
    path = Path(os.path.normpath(root / row[path_column].strip()))
    if inside_root and not path.is_relative_to(root):
        raise CorpusError(
            f"{csv_path}, line {line}: path {row[path_column]!r} points outside the data directory {str(root)!r}."
        )
    if not path.is_file():
        raise CorpusError(f"{csv_path}, line {line}: audio file {str(path)!r} does not exist.")
    return path


def _line_of_byte(path: Path, offset: int) -> int:
    with open(path, "rb") as handle:
        return handle.read(offset).count(b"\n") + 1
