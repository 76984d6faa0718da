"""The audio files a command is given (files, and the audio files below folders), found before any model is loaded:
this module imports neither ``torch`` nor ``datasets``, so that a wrong path is answered at once."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from ..data.audio_files import walk_audio_files
from ..data.constants import AUDIO_EXTENSIONS

#: ``scheme://...``: a URL, which ``predict`` does not download (``Path`` would turn ``https://`` into ``https:/``).
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def find_audio_inputs(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The audio files named, and those below the folders named (sorted; folders reached through links too, as a corpus
    load finds them), each once; errors name a path that is neither."""
    return list(audio_inputs(paths))


def audio_inputs(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
    """The files of :func:`find_audio_inputs`, each with the path a corpus' ``speaker_regex`` is searched in: its path
    relative to the folder named, ``/`` between folders, as a folder corpus reads it (a file named: its name)."""
    files: dict[str, str] = {}
    suffixes = {ext.lower() for ext in AUDIO_EXTENSIONS}
    for name in paths:
        if URL.match(str(name)):
            raise ValueError(
                f"{name}: URLs are not supported; download the file first (curl -LO URL) and pass its path."
            )
        path = Path(name)
        if path.is_dir():
            found = walk_audio_files(path)[0]
            if not found:
                raise FileNotFoundError(f"No audio files ({', '.join(sorted(suffixes))}) found under {path}.")
            for file in found:
                files.setdefault(str(file), file.relative_to(path).as_posix())
        elif path.is_file():
            files.setdefault(str(path), path.name)
        else:
            raise FileNotFoundError(f"{path} is neither an audio file nor a folder.")
    return files  # a file named twice (or inside a folder also named) gets one result


__all__ = ["URL", "audio_inputs", "find_audio_inputs"]
