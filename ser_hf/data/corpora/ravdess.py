"""RAVDESS (speech): ``Actor_XX/MM-VC-EE-II-SS-RR-AA.wav``, 24 actors, odd numbers male, even female."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidClipError
from .spec import Clip, CorpusSpec

SPEC = CorpusSpec(
    name="ravdess",
    full_name="RAVDESS",
    homepage="https://zenodo.org/record/1188976",
    license="cc-by-nc-sa-4.0",
    citation=(
        "@article{livingstone2018ravdess,\n"
        "  title={The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS): A dynamic, multimodal "
        "set of facial and vocal expressions in North American English},\n"
        "  author={Livingstone, Steven R. and Russo, Frank A.},\n"
        "  journal={PLoS ONE}, volume={13}, number={5}, pages={e0196391}, year={2018},\n"
        "  doi={10.1371/journal.pone.0196391}\n}"
    ),
    language="en",
    example_file="Actor_01/03-01-05-01-01-01-01.wav",
    license_name="CC BY-NC-SA 4.0",
    speakers="24 professional actors (12 female, 12 male), North American English",
    texts="RAVDESS: two statements, 'Kids are talking by the door' and 'Dogs are sitting by the door'",
    emotion_codes={
        "01": "neutral",
        "02": "calm",
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "fearful",
        "07": "disgust",
        "08": "surprised",
    },
    metadata={
        "intensity": "string",
        "statement": "string",
        "text": "string",
        "repetition": "int32",
        "sex": "string",
        "vocal_channel": "string",
    },
    text_column="text",
)

INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
MODALITIES = {"01": "audio-video", "02": "video-only", "03": "audio-only"}


def parse(path: Path) -> Clip:
    fields = path.stem.split("-")
    if len(fields) != 7 or not all(len(f) == 2 and f.isdigit() for f in fields):
        raise InvalidClipError(path, "file name does not follow RAVDESS' MM-VC-EE-II-SS-RR-AA.wav pattern")
    modality, channel, emotion, intensity, statement, repetition, actor = fields
    for value, table, what in (
        (modality, MODALITIES, "modality"),
        (channel, VOCAL_CHANNELS, "vocal channel"),
        (intensity, INTENSITIES, "intensity"),
        (statement, STATEMENTS, "statement"),
    ):
        if value not in table:
            raise InvalidClipError(path, f"unknown RAVDESS {what} code {value!r}")
    if modality == "02":
        raise InvalidClipError(path, "RAVDESS video-only file has no audio")
    return Clip(
        path=str(path),
        speaker_id=actor,
        emotion_code=emotion,
        metadata={
            "intensity": INTENSITIES[intensity],
            "statement": statement,
            "text": STATEMENTS[statement],
            "repetition": int(repetition),
            "sex": "male" if int(actor) % 2 else "female",
            "vocal_channel": VOCAL_CHANNELS[channel],
        },
    )
