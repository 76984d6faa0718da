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
    files: list[str] = []
    suffixes = {ext.lower() for ext in AUDIO_EXTENSIONS}
    for name in paths:
        if URL.match(str(name)):
            raise ValueError(
                f"{name}: URLs are not supported; download the file first (curl -LO URL) and pass its path."
            )
        path = Path(name)
        if path.is_dir():
            found = [str(p) for p in walk_audio_files(path)[0]]
            if not found:
                raise FileNotFoundError(f"No audio files ({', '.join(sorted(suffixes))}) found under {path}.")
            files += found
        elif path.is_file():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"{path} is neither an audio file nor a folder.")
    return list(dict.fromkeys(files))  # a file named twice (or inside a folder also named) gets one result


__all__ = ["URL", "find_audio_inputs"]
