"""What ser-hf keeps in its cache folder, ``$HF_DATASETS_CACHE/ser_hf``: a scan and a deletion by age, for
``ser-hf cache`` (as ``huggingface-cli scan-cache`` and ``delete-cache`` do for the Hub's cache).

The folder holds the decoded audio (:func:`~ser_hf.data.decode.prepare_audio`), the encoder states
(:func:`~ser_hf.inputs.encoder_states.encode_dataset`), the feature-encoder outputs
(:mod:`~ser_hf.inputs.feature_encoder_cache`), each cache file with its clip index (:mod:`~ser_hf.data.clip_index`),
and the ``map`` caches ``datasets`` writes beside the files of a dataset ser-hf prepared (``cache-<fingerprint>``).
A file of no kind listed in :data:`CACHE_KINDS` (one another version of ser-hf or a user left there) is listed as
``other`` and never deleted; nor is a lock file, which a run may hold.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..data.cache_dir import ser_hf_cache_dir
from ..data.clip_index import INDEX_SUFFIX
from ..data.decode import WAVEFORM_CACHE_PREFIX

logger = logging.getLogger(__name__)

#: The kinds of cache file ser-hf writes, by the beginning of their names (the longest prefix first).
CACHE_KINDS: dict[str, str] = {
    "feature-encoder-": "feature-encoder outputs",
    "encoder-": "encoder states",
    f"{WAVEFORM_CACHE_PREFIX}-": "decoded audio",
    "cache-": "map cache",
}
#: Kinds that are listed but never deleted: a lock a run may hold, and files ser-hf does not know.
KEPT_KINDS = ("lock", "other")
# datasets writes a cache file under a temporary name (tmpXXXXXXXX) and renames it once whole.
_TEMPORARY_NAME = re.compile(r"^tmp[a-z0-9_]{6,}$")
_SECONDS_PER_DAY = 86400.0


@dataclass
class CacheEntry:
    """One cache of the folder: a cache file with the files that go with it (its clip indices), or one other file."""

    #: What it holds: one of :data:`CACHE_KINDS`' values, ``"clip index"`` (one whose cache file is gone),
    #: ``"temporary"`` (a write cut short), ``"lock"`` or ``"other"``.
    kind: str
    #: The cache file (or the file itself).
    path: Path
    #: Every file of the entry, the cache file first: deleting the entry deletes them all.
    files: list[Path] = field(default_factory=list)
    #: Their size in bytes.
    size: int = 0
    #: The clips (rows) a cache file holds; `None` where unknown.
    clips: Optional[int] = None
    #: The folder the decoded clips come from (the common folder of their paths), for decoded audio.
    source: Optional[str] = None
    #: Its last use, in seconds since the epoch: the latest access or modification time of its files.
    last_used: float = 0.0

    @property
    def deletable(self) -> bool:
        return self.kind not in KEPT_KINDS

    def age_days(self, now: Optional[float] = None) -> float:
        return ((time.time() if now is None else now) - self.last_used) / _SECONDS_PER_DAY

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "files": [str(path) for path in self.files],
            "size": self.size,
            "clips": self.clips,
            "source": self.source,
            "last_used": self.last_used,
        }


def cache_kind(name: str) -> str:
    """The kind of a file of the cache folder, by its name."""
    if name.endswith(".lock"):
        return "lock"
    if _TEMPORARY_NAME.match(name):
        return "temporary"
    if name.endswith(INDEX_SUFFIX):
        return "clip index"
    if name.endswith(".arrow"):
        for prefix, kind in CACHE_KINDS.items():
            if name.startswith(prefix):
                return kind
    return "other"


def scan_cache(cache_dir: Optional[str | os.PathLike] = None) -> list[CacheEntry]:
    """Every entry of ser-hf's cache folder (`cache_dir`, default :func:`ser_hf_cache_dir`), the least recently used
    first; an empty list where the folder does not exist."""
    folder = Path(cache_dir) if cache_dir is not None else ser_hf_cache_dir()
    if not folder.is_dir():
        return []
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.is_symlink())
    arrows = {path.stem: path for path in files if cache_kind(path.name) in CACHE_KINDS.values()}
    grouped: dict[Path, list[Path]] = {}
    for path in files:
        owner = path
        if cache_kind(path.name) == "clip index":  # <cache file stem>.<key>.clips.json
            stem = path.name[: -len(INDEX_SUFFIX)].rsplit(".", 1)[0]
            owner = arrows.get(stem, path)
        grouped.setdefault(owner, []).append(path)
    entries = []
    for path, members in grouped.items():
        members = [path] + [member for member in members if member != path]
        stats = [member.stat() for member in members if member.exists()]
        entry = CacheEntry(
            kind=cache_kind(path.name),
            path=path,
            files=members,
            size=sum(stat.st_size for stat in stats),
            last_used=max((max(stat.st_atime, stat.st_mtime) for stat in stats), default=0.0),
        )
        if entry.kind in CACHE_KINDS.values():
            entry.clips, entry.source = _describe_arrow_file(path)
            # Reading it is no use: its access time goes back to what it was, for the next scan's "last use".
            try:
                os.utime(path, ns=(stats[0].st_atime_ns, stats[0].st_mtime_ns))
            except OSError:  # a folder shared read-only: its access time is not ours to keep
                pass
        entries.append(entry)
    return sorted(entries, key=lambda entry: (entry.last_used, str(entry.path)))


def _describe_arrow_file(path: Path) -> tuple[Optional[int], Optional[str]]:
    """The rows of a cache file and, where it has a ``path`` column, the common folder of those paths."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_stream(source).read_all()
            paths = table.column("path").to_pylist() if "path" in table.column_names else []
            rows = table.num_rows
    except (OSError, pa.ArrowException) as error:
        logger.warning("The cache file %s does not read back: %s", path, error)
        return None, None
    paths = [value for value in paths if value]
    try:
        source_folder = os.path.commonpath([os.path.dirname(value) for value in paths]) if paths else None
    except ValueError:  # relative and absolute paths mixed
        source_folder = None
    return rows, source_folder


def entries_to_delete(
    entries: Sequence[CacheEntry], *, older_than_days: Optional[float] = None, now: Optional[float] = None
) -> list[CacheEntry]:
    """The entries that ser-hf wrote (never a lock, never an ``other`` file), unused for more than `older_than_days`
    days; every one of them where it is `None`."""
    if older_than_days is not None and older_than_days < 0:
        raise ValueError(f"older_than_days must be >= 0, got {older_than_days:g}.")
    return [
        entry
        for entry in entries
        if entry.deletable and (older_than_days is None or entry.age_days(now) > older_than_days)
    ]


def delete_entries(entries: Sequence[CacheEntry]) -> int:
    """Delete the files of `entries` (each ser-hf's own: :func:`entries_to_delete`), the clip indices first so that no
    run finds an index whose file is going; the bytes freed. A file already gone is skipped."""
    freed = 0
    for entry in entries:
        if not entry.deletable:
            raise ValueError(f"{entry.path} is not a cache file ser-hf wrote ({entry.kind}); it is not deleted.")
        for path in [*entry.files[1:], entry.files[0]]:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            freed += size
    return freed


def human_size(size: float) -> str:
    """`size` bytes as ``"858.0 MB"`` (powers of 1000, as ``du --si`` and ``huggingface-cli scan-cache``)."""
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            break
    return f"{size:.1f} {unit}"


__all__ = [
    "CACHE_KINDS",
    "KEPT_KINDS",
    "CacheEntry",
    "cache_kind",
    "delete_entries",
    "entries_to_delete",
    "human_size",
    "scan_cache",
]
