"""Finding audio files below a folder: the one walk a corpus load and the files a command is given share. Imports
neither ``torch`` nor ``datasets``, so that a command answers a wrong path at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .constants import AUDIO_EXTENSIONS


def walk_audio_files(
    root: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS
) -> tuple[list[Path], dict[str, int]]:
    """The audio files below ``root`` (sorted), and how many files of each other suffix were passed over.

    Folders and files reached through symbolic links count like any other (each real folder is visited once, so a
    link cycle ends); a file keeps the path of its link, whose name a corpus parses. macOS's ``._`` resource files and
    hidden files are passed over.
    """
    suffixes = {ext.lower() for ext in extensions}
    files, other_suffixes, visited = [], {}, set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:
            subfolders[:] = []
            continue
        visited.add(real)
        for name in names:
            path = Path(folder, name)
            suffix = path.suffix.lower()
            if name.startswith("._") or not path.is_file():
                continue
            if suffix in suffixes:
                files.append(path)
            elif suffix and not name.startswith("."):
                other_suffixes[suffix] = other_suffixes.get(suffix, 0) + 1
    return sorted(files), other_suffixes


__all__ = ["walk_audio_files"]
