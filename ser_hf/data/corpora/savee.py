"""SAVEE: four male British English speakers (DC, JE, JK, KL), 7 emotions, TIMIT sentences.

Both published layouts load: ``AudioData/DC/a01.wav`` (speaker from the folder) and ``ALL/DC_a01.wav``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InvalidClipError
from .spec import Clip, CorpusSpec

SPEC = CorpusSpec(
    name="savee",
    full_name="SAVEE",
    homepage="http://kahlan.eps.surrey.ac.uk/savee/",
    license="other",
    citation=(
        "@inproceedings{haq2008savee,\n"
        "  title={Audio-visual feature selection and reduction for emotion classification},\n"
        "  author={Haq, Sanaul and Jackson, Philip J. B. and Edge, James D.},\n"
        "  booktitle={Proc. Int. Conf. on Auditory-Visual Speech Processing (AVSP)}, pages={185--190}, "
        "year={2008}\n}"
    ),
    language="en",
    example_file="AudioData/DC/a01.wav",
    license_name="free for research use; no open licence (see the corpus site)",
    speakers="4 male speakers aged 27 to 31, British English",
    texts="SAVEE: TIMIT sentences",
    emotion_codes={
        "n": "neutral",
        "h": "happy",
        "sa": "sad",
        "a": "angry",
        "f": "fearful",
        "d": "disgust",
        "su": "surprised",
    },
    metadata={"sentence": "string", "sex": "string"},
    text_column="sentence",
)

SPEAKERS = ("DC", "JE", "JK", "KL")
_NAME = re.compile(r"^(?:(?P<speaker>[A-Z]{2})_)?(?P<emotion>sa|su|[nhafd])(?P<number>\d{2})$")


def parse(path: Path) -> Clip:
    match = _NAME.match(path.stem)
    if match is None:
        raise InvalidClipError(path, "file name does not follow SAVEE's [SPEAKER_]<emotion><number>.wav pattern")
    speaker = match["speaker"] or path.parent.name
    if speaker not in SPEAKERS:
        raise InvalidClipError(path, f"unknown SAVEE speaker {speaker!r} (expected one of {', '.join(SPEAKERS)})")
    # The same emotion code and number is the same sentence for every speaker.
    return Clip(
        path=str(path),
        speaker_id=speaker,
        emotion_code=match["emotion"],
        metadata={"sentence": f"{match['emotion']}{match['number']}", "sex": "male"},
    )
