"""The one emotion vocabulary of ser-hf, and the policy that maps a corpus' labels onto a task's label set.

Every corpus module maps its own emotion codes onto :data:`EMOTIONS`. A task then decides what to do with labels it
does not use (RAVDESS ``calm`` is the usual case): keep them, merge them into another label, or drop the clips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional, Sequence

from datasets import ClassLabel

#: The canonical label set, in the order every ``ClassLabel`` built by ser-hf follows.
EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

#: Spellings met in corpora, folder names and CSV files, mapped onto :data:`EMOTIONS`.
EMOTION_ALIASES: dict[str, str] = {
    "neu": "neutral",
    "neutrality": "neutral",
    "cal": "calm",
    "hap": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "ang": "angry",
    "anger": "angry",
    "fea": "fearful",
    "fear": "fearful",
    "dis": "disgust",
    "disgusted": "disgust",
    "sur": "surprised",
    "surprise": "surprised",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
}


def canonical_emotion(name: str) -> Optional[str]:
    """Return the canonical spelling of an emotion name (case-insensitive, aliases resolved), or ``None``."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if key in EMOTIONS:
        return key
    return EMOTION_ALIASES.get(key)


@dataclass
class LabelPolicy:
    """How a corpus' labels become a task's labels.

    Args:
        label_map (`Mapping[str, Optional[str]]`, *optional*):
            Merges and drops applied to the corpus labels: ``{"calm": "neutral"}`` merges calm into neutral,
            ``{"calm": None}`` drops calm clips. Labels not named are kept as they are.
        labels (`Sequence[str]`, *optional*):
            The task's label set. Clips whose (mapped) label is not in it are dropped. Defaults to every label that
            occurs, in the order of :data:`EMOTIONS`.
    """

    label_map: dict[str, Optional[str]] = field(default_factory=dict)
    labels: Optional[list[str]] = None

    def __post_init__(self):
        self.label_map = {
            _require_emotion(k, "label_map key", allow_unknown=True): _optional_emotion(v)
            for k, v in dict(self.label_map or {}).items()
        }
        if self.labels is not None:
            self.labels = _ordered(_require_emotion(label, "labels") for label in self.labels)

    def apply(self, label: str) -> Optional[str]:
        """Map one corpus label to the task label, or ``None`` when the clip is dropped."""
        mapped = self.label_map.get(label, label)
        if mapped is None or (self.labels is not None and mapped not in self.labels):
            return None
        return mapped

    def class_label(self, used: Iterable[str]) -> ClassLabel:
        """The task's ``ClassLabel``: the given label set, or the labels used, in canonical order."""
        names = self.labels if self.labels is not None else _ordered(used)
        return ClassLabel(names=list(names))

    def to_dict(self) -> dict:
        return asdict(self)


def _require_emotion(name: str, what: str, allow_unknown: bool = False) -> str:
    canonical = canonical_emotion(name)
    if canonical is None:
        if allow_unknown:
            # Corpus labels outside the vocabulary (EmoDB "boredom") may be named so they can be merged or dropped.
            return name.strip().lower()
        raise ValueError(f"Unknown emotion {name!r} in {what}; ser-hf's vocabulary is {list(EMOTIONS)}.")
    return canonical


def _optional_emotion(name: Optional[str]) -> Optional[str]:
    if name is None or str(name).lower() in ("none", "drop", "null", ""):
        return None
    return _require_emotion(str(name), "label_map value")


def _ordered(names: Iterable[str]) -> list[str]:
    """Unique names in the order of :data:`EMOTIONS`."""
    unique = set(names)
    return [name for name in EMOTIONS if name in unique]


def shared_labels(label_sets: Sequence[Sequence[str]]) -> list[str]:
    """The labels every set has, in canonical order (for cross-corpus tasks)."""
    common = set(label_sets[0]) if label_sets else set()
    for names in label_sets[1:]:
        common &= set(names)
    return _ordered(common)


def union_labels(label_sets: Sequence[Sequence[str]]) -> list[str]:
    """The labels any set has, in canonical order (for merged corpora)."""
    return _ordered(name for names in label_sets for name in names)
