"""TESS: ``OAF_back_angry.wav`` / ``YAF_dog_ps.wav``, two female speakers (aged 64 and 26) saying
"Say the word ..." for 200 target words in 7 emotions."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InvalidClipError
from .spec import Clip, CorpusSpec

SPEC = CorpusSpec(
    name="tess",
    full_name="TESS",
    homepage="https://doi.org/10.5683/SP2/E8H2MF",
    license="cc-by-nc-nd-4.0",
    citation=(
        "@misc{dupuis2010tess,\n  title={Toronto Emotional Speech Set (TESS)},\n"
        "  author={Pichora-Fuller, M. Kathleen and Dupuis, Kate},\n  publisher={Borealis}, year={2020},\n"
        "  doi={10.5683/SP2/E8H2MF}\n}"
    ),
    language="en",
    example_file="OAF_back_angry.wav",
    license_name="CC BY-NC-ND 4.0",
    speakers="2 female speakers aged 26 and 64, Canadian English (Toronto)",
    texts="TESS: 200 words in the carrier phrase 'Say the word ...'",
    emotion_codes={
        "neutral": "neutral",
        "happy": "happy",
        "sad": "sad",
        "angry": "angry",
        "fear": "fearful",
        "disgust": "disgust",
        "ps": "surprised",
        "pleasant_surprise": "surprised",
        "pleasant_surprised": "surprised",
    },
    metadata={"word": "string", "text": "string", "sex": "string", "age": "int32"},
    text_column="text",
)

# A few published files are named "OA_..." instead of "OAF_...".
SPEAKERS = {"OAF": ("OAF", 64), "OA": ("OAF", 64), "YAF": ("YAF", 26)}
_NAME = re.compile(r"^(?P<speaker>OAF|OA|YAF)_(?P<word>[a-z]+)_(?P<emotion>[a-z_]+)$", re.IGNORECASE)


def parse(path: Path) -> Clip:
    match = _NAME.match(path.stem)
    if match is None:
        raise InvalidClipError(path, "file name does not follow TESS' SPEAKER_word_emotion.wav pattern")
    speaker, age = SPEAKERS[match["speaker"].upper()]
    word = match["word"].lower()
    return Clip(
        path=str(path),
        speaker_id=speaker,
        emotion_code=match["emotion"].lower(),
        metadata={"word": word, "text": f"Say the word {word}", "sex": "female", "age": age},
    )
