"""EmoDB (Berlin Database of Emotional Speech): ``wav/03a01Fa.wav``, 10 German actors, 10 sentences, 7 emotions.

Boredom is not in ser-hf's vocabulary: it is dropped unless ``label_map`` merges it (``{"boredom": "calm"}``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InvalidClipError
from .spec import Clip, CorpusSpec

SPEC = CorpusSpec(
    name="emodb",
    full_name="EmoDB",
    homepage="http://emodb.bilderbar.info/",
    license="other",
    citation=(
        "@inproceedings{burkhardt2005emodb,\n  title={A database of German emotional speech},\n"
        "  author={Burkhardt, Felix and Paeschke, Astrid and Rolfes, Miriam and Sendlmeier, Walter F. and "
        "Weiss, Benjamin},\n  booktitle={Proc. Interspeech}, pages={1517--1520}, year={2005}\n}"
    ),
    language="de",
    example_file="wav/03a01Fa.wav",
    license_name=(
        "no licence published with the corpus; distributed free of charge for research (check the corpus site "
        "before redistributing)"
    ),
    speakers="10 professional actors (5 female, 5 male), German",
    texts="EmoDB: 10 everyday German sentences",
    # German initials: Wut/Aerger, Langeweile, Ekel, Angst, Freude, Trauer, Neutral.
    emotion_codes={
        "W": "angry",
        "L": "boredom",
        "E": "disgust",
        "A": "fearful",
        "F": "happy",
        "T": "sad",
        "N": "neutral",
    },
    metadata={"sentence": "string", "version": "string", "sex": "string", "age": "int32"},
    default_label_map={"boredom": None},
    text_column="sentence",
)

# Speaker number -> (sex, age at recording), from the corpus documentation.
SPEAKERS = {
    "03": ("male", 31),
    "08": ("female", 34),
    "09": ("female", 21),
    "10": ("male", 32),
    "11": ("male", 26),
    "12": ("male", 30),
    "13": ("female", 32),
    "14": ("female", 35),
    "15": ("male", 25),
    "16": ("female", 31),
}
_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<sentence>[ab]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])$")


def parse(path: Path) -> Clip:
    match = _NAME.match(path.stem)
    if match is None:
        raise InvalidClipError(
            path,
            "file name does not follow EmoDB's <speaker><sentence><emotion><version>.wav pattern (e.g. 03a01Fa.wav)",
        )
    if match["speaker"] not in SPEAKERS:
        raise InvalidClipError(path, f"unknown EmoDB speaker {match['speaker']!r}")
    sex, age = SPEAKERS[match["speaker"]]
    return Clip(
        path=str(path),
        speaker_id=match["speaker"],
        emotion_code=match["emotion"],
        metadata={"sentence": match["sentence"], "version": match["version"], "sex": sex, "age": age},
    )
