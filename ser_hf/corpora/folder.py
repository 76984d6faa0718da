"""Any corpus laid out as folders or described by a CSV file.

* Folder layout: ``DATA_DIR/<emotion>/<file>`` (label from the parent folder) and a speaker taken from the path by
  a regular expression, e.g. ``speaker_regex=r"^(?P<speaker>spk\\d+)_"`` on the file name.
* CSV layout: one row per clip with a path column (relative to the data directory) and label / speaker columns;
  every other column becomes metadata.

Labels are matched to ser-hf's vocabulary case-insensitively with the usual aliases (anger, happiness, fear,
surprise ...); anything else must be merged or dropped with ``label_map``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Mapping, Optional, Sequence

from datasets import Dataset

from ..emotions import EMOTIONS, canonical_emotion
from .base import RESERVED_COLUMNS, Clip, CorpusError, CorpusSpec, InvalidClipError, build_corpus, find_audio_files


def load_folder(
    data_dir: str,
    *,
    csv_path: Optional[str] = None,
    path_column: str = "path",
    label_column: Optional[str] = None,
    speaker_column: Optional[str] = None,
    speaker_regex: Optional[str] = None,
    text_column: Optional[str] = None,
    corpus_name: str = "folder",
    label_map: Optional[Mapping[str, Optional[str]]] = None,
    **build_options,
) -> Dataset:
    """Load a folder or CSV corpus (see the module docstring). ``build_options`` go to :func:`build_corpus`."""
    root = Path(data_dir).expanduser().resolve()
    if speaker_column is None and speaker_regex is None:
        raise CorpusError("A folder corpus needs speaker_column (with csv_path) or speaker_regex so that splits "
                          "can keep each speaker in one split.")
    speaker_pattern = _compile_speaker_regex(speaker_regex) if speaker_regex else None
    label_map = {str(k).strip().lower(): v for k, v in dict(label_map or {}).items()}

    if csv_path is not None:
        rows = _read_csv(Path(csv_path), root, path_column, label_column or "label", speaker_column)
        metadata_columns = [c for c in rows[0][1] if c not in {path_column, label_column or "label", speaker_column}]
        clashes = sorted(set(metadata_columns) & set(RESERVED_COLUMNS))
        if clashes:
            raise CorpusError(f"{csv_path}: column(s) {clashes} would overwrite ser-hf's own columns "
                              f"{list(RESERVED_COLUMNS)}; rename them in the CSV.")
        files = [path for path, _ in rows]
        table = {str(path): row for path, row in rows}
    else:
        if speaker_column is not None:
            raise CorpusError("speaker_column needs csv_path; for a folder layout use speaker_regex.")
        files, table, metadata_columns = find_audio_files(root), {}, []

    def raw_label(path: Path) -> str:
        return table[str(path)][label_column or "label"] if table else path.parent.name

    # Codes ser-hf can place: vocabulary names and aliases, and labels the user maps. Any other label fails in
    # parse(), per file, so that skip_invalid can skip it.
    codes = {}
    for path in files:
        code = raw_label(path).strip()
        if canonical_emotion(code) is not None or code.lower() in label_map:
            codes[code] = canonical_emotion(code) or code.lower()

    spec = CorpusSpec(
        name=corpus_name, full_name=corpus_name, homepage="", license="unknown", citation="", language="",
        emotion_codes=codes, metadata={column: "string" for column in metadata_columns},
        text_column=text_column if text_column in metadata_columns else None,
    )

    def parse(path: Path) -> Clip:
        code = raw_label(path).strip()
        if code not in codes:
            raise InvalidClipError(path, f"label {code!r} is not an emotion ser-hf knows ({', '.join(EMOTIONS)}); "
                                         f"map it with label_map={{{code.lower()!r}: ...}} or drop it with None")
        row = table.get(str(path), {})
        if speaker_column is not None:
            speaker = row[speaker_column].strip()
        else:
            match = speaker_pattern.search(str(path.relative_to(root)))
            if match is None:
                raise InvalidClipError(path, f"speaker_regex {speaker_regex!r} does not match the path")
            speaker = match.group("speaker") if "speaker" in speaker_pattern.groupindex else match.group(1)
        if not speaker:
            raise InvalidClipError(path, "empty speaker id")
        return Clip(path=str(path), speaker_id=speaker, emotion_code=code,
                    metadata={column: row.get(column) for column in metadata_columns})

    return build_corpus(spec, files, parse, label_map=label_map, **build_options)


def _compile_speaker_regex(pattern: str) -> re.Pattern:
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise CorpusError(f"speaker_regex {pattern!r} is not a valid regular expression: {error}") from error
    if compiled.groups == 0:
        raise CorpusError(f"speaker_regex {pattern!r} needs a group: (?P<speaker>...) or (...).")
    return compiled


def _read_csv(csv_path: Path, root: Path, path_column: str, label_column: str,
              speaker_column: Optional[str]) -> list[tuple[Path, dict]]:
    if not csv_path.is_file():
        raise CorpusError(f"Metadata CSV {str(csv_path)!r} does not exist.")
    if not root.is_dir():
        raise CorpusError(f"Data directory {str(root)!r} does not exist.")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        required: Sequence[str] = [c for c in (path_column, label_column, speaker_column) if c]
        missing = [c for c in required if c not in header]
        if missing:
            raise CorpusError(f"{csv_path}: missing column(s) {missing}; the header is {header}.")
        rows = list(reader)
    if not rows:
        raise CorpusError(f"{csv_path}: no rows.")
    base = root.resolve()
    resolved = []
    for line, row in enumerate(rows, start=2):
        path = (root / row[path_column]).resolve()
        # A path in a metadata file must not point outside the corpus (../../etc/passwd, absolute paths).
        if not path.is_relative_to(base):
            raise CorpusError(f"{csv_path}, line {line}: path {row[path_column]!r} points outside the data "
                              f"directory {str(root)!r}.")
        if not path.is_file():
            raise CorpusError(f"{csv_path}, line {line}: audio file {str(path)!r} does not exist.")
        resolved.append((path, row))
    return resolved
