"""What a corpus module declares, importable without ``datasets`` or ``torch``: its :class:`CorpusSpec`, the
:class:`Clip` its parser makes of one file name, and the files a corpus folder holds. The recipe's checks read a named
corpus' file names through these before any heavy library loads (:func:`~ser_hf.data.corpora.named.read_file_names`);
:mod:`ser_hf.data.corpora.base` builds the ``Dataset`` from the same parse.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from ..audio_files import walk_audio_files
from ..constants import AUDIO_EXTENSIONS
from ..errors import CorpusError, InvalidClipError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusSpec:
    """What ser-hf knows about a corpus: its codes, the metadata columns it adds, licence and citation.

    Args:
        name (`str`): the name ``load_corpus`` takes.
        full_name (`str`): the corpus' published name.
        emotion_codes (`Mapping[str, str]`): the corpus' emotion codes mapped onto ser-hf emotion names.
            A name outside the vocabulary (EmoDB "boredom") must be merged or dropped by ``default_label_map``.
        metadata (`Mapping[str, str]`): metadata columns and their ``datasets`` dtype (``"string"``, ``"int32"`` ...).
        default_label_map (`Mapping[str, Optional[str]]`): merges/drops applied unless the user gives a ``label_map``.
        text_column (`str`, *optional*): the metadata column holding what was said, used by the leakage audit.
        license_name (`str`, *optional*): the licence in words, as a model card names it (``license`` is its Hub id).
        speakers (`str`, *optional*): who speaks in the corpus (how many, sexes, ages, accent), for model cards.
        texts (`str`, *optional*): what they say, for model cards.
        example_file (`str`, *optional*): one file as the corpus publishes it, relative to its folder
            (``Actor_01/03-01-05-01-01-01-01.wav``): what an error about a folder none of whose names parse shows, and
            what docs/guides/corpora.md's row of the corpus shows; the corpus' parser reads it.

    A model card reads every corpus fact from here; ``tests/data/test_corpora.py`` checks every shipped corpus has
    each.
    """

    name: str
    full_name: str
    homepage: str
    license: str
    citation: str
    language: str
    emotion_codes: Mapping[str, str]
    metadata: Mapping[str, str] = field(default_factory=dict)
    default_label_map: Mapping[str, Optional[str]] = field(default_factory=dict)
    text_column: Optional[str] = None
    license_name: str = ""
    speakers: str = ""
    texts: str = ""
    example_file: str = ""


@dataclass
class Clip:
    """One audio file as a corpus module parsed it."""

    path: str
    speaker_id: str
    emotion_code: str
    metadata: dict[str, Any] = field(default_factory=dict)


ClipParser = Callable[[Path], Clip]


def find_audio_files(data_dir: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """Every audio file below ``data_dir``, sorted so that loads are deterministic; errors name the folder.

    Folders and files reached through symbolic links load like any other (each folder is visited once, so a link
    cycle ends); a file keeps the path of its link, whose name a corpus parses.
    """
    # Absolute paths: a split saved with save_to_disk must decode from any working directory.
    root = Path(data_dir).expanduser().resolve()
    if not root.exists():
        raise CorpusError(f"Data directory {str(root)!r} does not exist.")
    if not root.is_dir():
        raise CorpusError(f"Data directory {str(root)!r} is not a folder.")
    files, other_suffixes = walk_audio_files(root, extensions)
    if other_suffixes:
        logger.info(
            "%s: not loaded (not audio formats ser-hf reads): %s",
            root,
            ", ".join(f"{count} {suffix}" for suffix, count in sorted(other_suffixes.items())),
        )
    if not files:
        extensions = ", ".join(sorted({ext.lower() for ext in extensions}))
        raise CorpusError(f"No audio files ({extensions}) found under {str(root)!r}.")
    return files


def _check_file_name(path: Path) -> None:
    """A file name that is not UTF-8 (Latin-1 ``caf\\xe9.wav``) reaches Python with surrogate escapes, which neither
    libsndfile nor an Arrow string column takes: named with its bytes escaped, and what to do."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        raise InvalidClipError(
            shown,
            "the file name is not UTF-8 text: rename it in UTF-8 (e.g. convmv -f latin1 -t utf-8 --notest FILE)",
        ) from None


def parse_clip(spec: CorpusSpec, parse: ClipParser, path: Path) -> Clip:
    """One file of a corpus as its parser reads it, checked as every loader checks it: a UTF-8 file name that ``parse``
    accepts, whose emotion code the corpus knows. Raises :class:`InvalidClipError` naming the file and the problem."""
    _check_file_name(path)
    clip = parse(path)
    if clip.emotion_code not in spec.emotion_codes:
        raise InvalidClipError(
            path,
            f"unknown {spec.full_name} emotion code {clip.emotion_code!r} "
            f"(known codes: {', '.join(spec.emotion_codes)})",
        )
    return clip


__all__ = ["Clip", "ClipParser", "CorpusSpec", "find_audio_files", "parse_clip"]
