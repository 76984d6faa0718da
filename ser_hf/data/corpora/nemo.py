"""nEMO: emotional speech in Polish, ``SPEAKER_EMOTION_N.wav`` (``EB0_anger_10.wav``): nine actors (five male, four
female, aged 23-28), every text spoken in all six emotions. ``data.tsv`` beside the clips (or one folder up) gives each
file's speaker, gender, age and text."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..errors import CorpusError, InvalidClipError
from .spec import Clip, CorpusSpec, find_audio_files

if TYPE_CHECKING:
    from datasets import Dataset

SPEC = CorpusSpec(
    name="nemo",
    full_name="nEMO",
    homepage="https://github.com/amu-cai/nEMO",
    license="cc-by-nc-sa-4.0",
    citation=(
        "@inproceedings{christop2024nemo,\n  title={nEMO: Dataset of Emotional Speech in Polish},\n"
        "  author={Christop, Iwona},\n  booktitle={Proceedings of the 2024 Joint International Conference on "
        "Computational Linguistics, Language Resources and Evaluation (LREC-COLING 2024)},\n  year={2024}\n}"
    ),
    language="pl",
    example_file="EB0_anger_10.wav",
    license_name="CC BY-NC-SA 4.0",
    speakers="9 actors (5 male, 4 female) aged 23-28, Polish",
    texts="nEMO: 90 Polish sentences, each spoken in every emotion",
    emotion_codes={
        "anger": "angry",
        "fear": "fearful",
        "happiness": "happy",
        "neutral": "neutral",
        "sadness": "sad",
        "surprised": "surprised",
    },
    metadata={"text": "string", "sex": "string", "age": "int32", "sentence_number": "int32"},
    text_column="text",
)

#: The metadata table published with the clips.
METADATA_FILE = "data.tsv"
_NAME = re.compile(r"^(?P<speaker>[A-Z]{2}\d)_(?P<emotion>[a-z]+)_(?P<number>\d+)$")


def parse(path: Path) -> Clip:
    match = _NAME.match(path.stem)
    if match is None:
        raise InvalidClipError(
            path, f"file name {path.stem!r} does not follow nEMO's SPEAKER_emotion_N pattern (e.g. EB0_anger_10)"
        )
    return Clip(
        path=str(path),
        speaker_id=match["speaker"],
        emotion_code=match["emotion"],
        metadata={"sentence_number": int(match["number"])},
    )


def find_metadata(data_dir: Path) -> Optional[Path]:
    for folder in (data_dir, data_dir.parent):
        if (folder / METADATA_FILE).is_file():
            return folder / METADATA_FILE
    return None


def metadata_join(tsv_path: Path):
    """A ``join`` for :func:`build_corpus` adding text, sex and age from nEMO's ``data.tsv`` (rows by file stem, so
    the published ``.wav`` names match converted ``.flac`` files)."""
    with open(tsv_path, newline="", encoding="utf-8") as handle:
        rows = {Path(row["file_id"]).stem: row for row in csv.DictReader(handle, delimiter="\t")}
    expected = {"file_id", "raw_text", "speaker_id", "gender", "age"}
    if not rows or not expected <= set(next(iter(rows.values()))):
        raise CorpusError(f"{tsv_path}: expected nEMO's tab-separated columns {', '.join(sorted(expected))}.")

    def join(clips: list[Clip]) -> None:
        for clip in clips:
            row = rows.get(Path(clip.path).stem)
            if row is None:
                raise CorpusError(f"{tsv_path}: {Path(clip.path).name} is not listed.")
            if row["speaker_id"].strip() != clip.speaker_id:
                raise CorpusError(
                    f"{tsv_path}: {Path(clip.path).name} is listed as spoken by {row['speaker_id']!r}, but its name "
                    f"says {clip.speaker_id!r}."
                )
            clip.metadata.update(text=row["raw_text"].strip(), sex=row["gender"].strip().lower(), age=int(row["age"]))

    return join


def load(data_dir: Path, metadata_tsv: Optional[str] = None, **build_options) -> Dataset:
    """nEMO from its folder of clips; the text, sex and age columns come from ``data.tsv`` (in `data_dir` or its
    parent, or `metadata_tsv`) and stay empty without one."""
    from .base import build_corpus  # imports datasets: the file names parse without it

    if metadata_tsv is not None and not Path(metadata_tsv).is_file():
        raise CorpusError(f"nEMO metadata file {metadata_tsv!r} does not exist.")
    table = Path(metadata_tsv) if metadata_tsv is not None else find_metadata(data_dir)
    join = metadata_join(table) if table is not None else None
    return build_corpus(SPEC, find_audio_files(data_dir), parse, join=join, **build_options)
