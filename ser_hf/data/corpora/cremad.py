"""CREMA-D: ``AudioWAV/ActorID_Sentence_Emotion_Level.wav``, 91 actors (1001-1091), 12 sentences, 6 emotions.

Actor sex, age, race and ethnicity are joined from ``VideoDemographics.csv`` when it is found (in the data
directory, its parent, or at ``demographics_csv``).
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..errors import CorpusError, InvalidClipError
from .spec import Clip, CorpusSpec, find_audio_files

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

SPEC = CorpusSpec(
    name="cremad",
    full_name="CREMA-D",
    homepage="https://github.com/CheyneyComputerScience/CREMA-D",
    license="odbl",
    citation=(
        "@article{cao2014cremad,\n"
        "  title={CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset},\n"
        "  author={Cao, Houwei and Cooper, David G. and Keutmann, Michael K. and Gur, Ruben C. and Nenkova, Ani "
        "and Verma, Ragini},\n"
        "  journal={IEEE Transactions on Affective Computing}, volume={5}, number={4}, pages={377--390}, "
        "year={2014},\n  doi={10.1109/TAFFC.2014.2336244}\n}"
    ),
    language="en",
    example_file="AudioWAV/1001_DFA_ANG_XX.wav",
    license_name="ODbL 1.0 (database), DbCL 1.0 (contents)",
    speakers=(
        "91 actors (48 male, 43 female) aged 20 to 74, African American, Asian, Caucasian, Hispanic and "
        "unspecified, American English"
    ),
    texts="CREMA-D: 12 sentences",
    emotion_codes={"NEU": "neutral", "HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fearful", "DIS": "disgust"},
    metadata={
        "sentence": "string",
        "text": "string",
        "level": "string",
        "sex": "string",
        "age": "int32",
        "race": "string",
        "ethnicity": "string",
    },
    text_column="text",
)

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")
DEMOGRAPHICS_FILE = "VideoDemographics.csv"


def parse(path: Path) -> Clip:
    match = _NAME.match(path.stem)
    if match is None:
        raise InvalidClipError(path, "file name does not follow CREMA-D's ActorID_Sentence_Emotion_Level.wav pattern")
    if match["sentence"] not in SENTENCES:
        raise InvalidClipError(path, f"unknown CREMA-D sentence code {match['sentence']!r}")
    if match["level"] not in LEVELS:
        raise InvalidClipError(path, f"unknown CREMA-D emotion level code {match['level']!r}")
    return Clip(
        path=str(path),
        speaker_id=match["actor"],
        emotion_code=match["emotion"],
        metadata={
            "sentence": match["sentence"],
            "text": SENTENCES[match["sentence"]],
            "level": LEVELS[match["level"]],
        },
    )


def find_demographics(data_dir: Path, demographics_csv: Optional[str]) -> Optional[Path]:
    if demographics_csv is not None:
        path = Path(demographics_csv)
        if not path.is_file():
            raise CorpusError(f"CREMA-D demographics file {str(path)!r} does not exist.")
        return path
    for folder in (data_dir, data_dir.parent):
        if (folder / DEMOGRAPHICS_FILE).is_file():
            return folder / DEMOGRAPHICS_FILE
    return None


def demographics_join(csv_path: Path):
    """A ``join`` for :func:`build_corpus` adding sex/age/race/ethnicity from ``VideoDemographics.csv``."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = {row["ActorID"].strip(): row for row in csv.DictReader(handle)}
    if not rows or "Sex" not in next(iter(rows.values())):
        raise CorpusError(f"{csv_path}: expected CREMA-D's columns ActorID, Age, Sex, Race, Ethnicity.")

    def join(clips: list[Clip]) -> None:
        for clip in clips:
            row = rows.get(clip.speaker_id)
            if row is None:
                raise CorpusError(f"{csv_path}: actor {clip.speaker_id} (from {clip.path}) is not listed.")
            clip.metadata.update(
                sex=row["Sex"].strip().lower(),
                age=int(row["Age"]),
                race=row["Race"].strip(),
                ethnicity=row["Ethnicity"].strip(),
            )

    return join


def load(data_dir: Path, demographics_csv: Optional[str] = None, **build_options) -> Dataset:
    """CREMA-D from its ``AudioWAV`` folder, with the actors' demographics joined where the table is found."""
    from .base import build_corpus  # imports datasets: the file names parse without it

    demographics = find_demographics(data_dir, demographics_csv)
    if demographics is None:
        logger.info("CREMA-D: no %s found next to %s; sex/age/race columns stay empty.", DEMOGRAPHICS_FILE, data_dir)
    join = demographics_join(demographics) if demographics is not None else None
    return build_corpus(SPEC, find_audio_files(data_dir), parse, join=join, **build_options)
