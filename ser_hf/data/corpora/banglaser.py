"""BanglaSER: emotional speech in Bangla, ``MM-VC-EE-II-SS-RR-AA.wav`` (``03-01-01-01-01-01-01.wav``): 34
nonprofessional actors (odd numbers male, even female) say three sentences with two intensities in five emotions.
The names follow RAVDESS's pattern with BanglaSER's own emotion codes (01 happy, 02 sad, 03 angry, 04 surprised, 05
neutral); a few published files say modality 01 instead of 03 and read like the rest."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidClipError
from .spec import Clip, CorpusSpec

SPEC = CorpusSpec(
    name="banglaser",
    full_name="BanglaSER",
    homepage="https://doi.org/10.17632/t9h6p943xy",
    license="cc-by-4.0",
    citation=(
        "@article{das2022banglaser,\n"
        "  title={BanglaSER: A speech emotion recognition dataset for the Bangla language},\n"
        "  author={Das, Rakesh Kumar and Islam, Nahidul and Ahmed, Md. Rayhan and Islam, Salekul and "
        "Shatabda, Swakkhar and Islam, A. K. M. Muzahidul},\n"
        "  journal={Data in Brief}, volume={42}, pages={108091}, year={2022},\n"
        "  doi={10.1016/j.dib.2022.108091}\n}"
    ),
    language="bn",
    example_file="03-01-01-01-01-01-01.wav",
    license_name="CC BY 4.0",
    speakers="34 nonprofessional actors (17 male, 17 female), Bangla",
    texts="BanglaSER: three Bangla sentences, each in every emotion",
    emotion_codes={"01": "happy", "02": "sad", "03": "angry", "04": "surprised", "05": "neutral"},
    metadata={"intensity": "string", "statement": "string", "repetition": "int32", "sex": "string"},
)

INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = ("01", "02", "03")
# The published modality is audio-only (03); the few files that say 01 are audio like the rest.
MODALITIES = ("01", "03")
VOCAL_CHANNELS = ("01",)
SPEAKERS = range(1, 35)


def parse(path: Path) -> Clip:
    fields = path.stem.split("-")
    if len(fields) != 7 or not all(len(f) == 2 and f.isdigit() for f in fields):
        raise InvalidClipError(path, "file name does not follow BanglaSER's MM-VC-EE-II-SS-RR-AA pattern")
    modality, channel, emotion, intensity, statement, repetition, speaker = fields
    for value, known, what in (
        (modality, MODALITIES, "modality"),
        (channel, VOCAL_CHANNELS, "vocal channel"),
        (intensity, INTENSITIES, "intensity"),
        (statement, STATEMENTS, "statement"),
    ):
        if value not in known:
            raise InvalidClipError(path, f"unknown BanglaSER {what} code {value!r}")
    if int(speaker) not in SPEAKERS:
        raise InvalidClipError(path, f"BanglaSER speaker {speaker!r} is not one of its speakers 01-34")
    return Clip(
        path=str(path),
        speaker_id=speaker,
        emotion_code=emotion,
        metadata={
            "intensity": INTENSITIES[intensity],
            "statement": statement,
            "repetition": int(repetition),
            "sex": "male" if int(speaker) % 2 else "female",
        },
    )
