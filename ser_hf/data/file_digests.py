"""A digest of each file's bytes, kept between runs: the one way ser-hf tells that two clips are the same recording
(the leakage audit; the clips a result file or run folder measured, :func:`~ser_hf.data.splits.rows_fingerprint`).

Reading every clip of a corpus at every run costs as much as decoding it, so each digest is kept in
``$HF_DATASETS_CACHE/ser_hf/file_digests.json`` by the file's resolved path, with the size, modification time and
change time it was read at. A file written since is read again, even where its size and modification time were put
back (``cp -p``, ``rsync -t``): its change time (``st_ctime_ns``), which no user call sets, moved. The cache is
written atomically under a file lock, so concurrent runs only add to it; entries of files that are gone are dropped
whenever it is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Optional, Sequence

from ..atomic_files import write_text_atomic
from .cache_dir import ser_hf_cache_dir

logger = logging.getLogger(__name__)

#: The cache's file name, in ser-hf's folder of the datasets cache.
DIGEST_CACHE_FILE = "file_digests.json"
#: Bytes of each BLAKE2b digest: 128 bits, ample to tell files apart, short enough to list one per clip.
DIGEST_SIZE = 16
_CACHE_FORMAT = 1

# What this process knows: resolved path -> (size, mtime_ns, ctime_ns, digest). Every fold of a k-fold audits and
# fingerprints the same files; the cache file is read only for files not seen yet.
_KNOWN: dict[str, tuple[int, int, int, str]] = {}


def digest_cache_path() -> Path:
    """Where the digests are kept: ``file_digests.json`` in ``$HF_DATASETS_CACHE/ser_hf`` (read when called)."""
    return ser_hf_cache_dir() / DIGEST_CACHE_FILE


def _blake2b():
    return hashlib.blake2b(digest_size=DIGEST_SIZE)


def _stamp(path: str) -> Optional[tuple[str, tuple[int, int, int]]]:
    """The resolved path and (size, mtime_ns, ctime_ns) of a regular file; ``None`` for anything else."""
    resolved = os.path.realpath(path)
    try:
        status = os.stat(resolved)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return resolved, (status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def _read_cache(path: Path) -> dict[str, list]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        logger.warning("%s cannot be read (%s): the clips' digests are computed again.", path, error)
        return {}
    if not isinstance(document, dict) or document.get("format") != _CACHE_FORMAT:
        return {}
    files = document.get("files")
    return files if isinstance(files, dict) else {}


def _entry(value) -> Optional[tuple[int, int, int, str]]:
    if isinstance(value, list) and len(value) == 4 and isinstance(value[3], str):
        return tuple(value)  # type: ignore[return-value]
    return None


def _save(path: Path, new: dict[str, tuple[int, int, int, str]]) -> None:
    """Add `new` to the cache file, under its lock, dropping the entries of files that are gone."""
    from filelock import FileLock, Timeout

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=30):
            files = {name: value for name, value in _read_cache(path).items() if os.path.exists(name)}
            files.update({name: list(entry) for name, entry in new.items()})
            text = json.dumps({"format": _CACHE_FORMAT, "files": files}, separators=(",", ":"))
            write_text_atomic(path, text + "\n")
    except (OSError, Timeout) as error:  # a read-only or busy cache costs time, never a result
        logger.warning("%s not updated (%s): the clips' digests will be read again next time.", path, error)


def file_digests(paths: Sequence[str | os.PathLike]) -> list[Optional[str]]:
    """The BLAKE2b digest (hex, :data:`DIGEST_SIZE` bytes) of each file's bytes, read only where the file changed
    since ser-hf last read it (module docstring); ``None`` for a path that is not a file."""
    stamps = [_stamp(os.fspath(path)) for path in paths]
    wanted = {resolved: stamp for resolved, stamp in filter(None, stamps)}
    unknown = [name for name, stamp in wanted.items() if _KNOWN.get(name, (None,) * 4)[:3] != stamp]
    if unknown:
        cache = digest_cache_path()
        stored = _read_cache(cache)
        new = {}
        for name in unknown:
            entry = _entry(stored.get(name))
            if entry is not None and entry[:3] == wanted[name]:
                _KNOWN[name] = entry
                continue
            with open(name, "rb") as file:
                digest = hashlib.file_digest(file, _blake2b).hexdigest()
            entry = (*wanted[name], digest)
            _KNOWN[name] = entry
            # A file written while it was read gets another stamp: it is read again next time, not trusted now.
            if _stamp(name) == (name, wanted[name]):
                new[name] = entry
        if new:
            _save(cache, new)
    return [None if stamp is None else _KNOWN[stamp[0]][3] for stamp in stamps]


def file_digest(path: str | os.PathLike) -> Optional[str]:
    """:func:`file_digests` of one file."""
    return file_digests([path])[0]


__all__ = ["DIGEST_CACHE_FILE", "digest_cache_path", "file_digest", "file_digests"]
