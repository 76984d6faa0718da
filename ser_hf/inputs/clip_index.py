"""Encoder states reused clip by clip, across datasets.

An encoder cache file (:func:`~ser_hf.inputs.encoder_states.encode_dataset`) is keyed by the dataset's fingerprint, so
the same clips loaded another way (several corpora merged, some labels dropped, another order) would be encoded again.
Each cache file therefore has an index beside it, ``encoder-<dataset key>.<encoder key>.clips.json``: a digest of each
clip's decoded samples, row by row, under the key of the encoder alone (its weights, settings, window, cached depth and
precision; no dataset). A dataset without its own cache file takes the states of every clip that a cache of the same
encoder already holds (a merged corpus from each corpus's cache) and encodes only the others; the result is written as
the dataset's own cache file, with its index, so the next run reads it directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from datasets import Dataset, concatenate_datasets

from ..atomic_files import write_text_atomic
from ..data.decode import WAVEFORM_COLUMN

logger = logging.getLogger(__name__)

#: The end of an index file's name (after the encoder's key).
INDEX_SUFFIX = ".clips.json"
# Clips hashed per batch read from the Arrow file.
_DIGEST_BATCH = 64

#: Where a clip's states are: ``(cache file, row)``.
ClipLocation = tuple[Path, int]


def clip_digests(dataset: Dataset, column: str = WAVEFORM_COLUMN) -> list[str]:
    """A digest (BLAKE2b, 128 bits, hex) of each row's decoded samples (their dtype, shape and bytes): equal for the
    same clip decoded the same way, whichever dataset holds it. About a second per 1,000 clips of a few seconds."""
    digests = []
    for batch in dataset.select_columns([column]).with_format("numpy").iter(batch_size=_DIGEST_BATCH):
        for waveform in batch[column]:
            samples = np.ascontiguousarray(waveform)
            hasher = hashlib.blake2b(digest_size=16)
            hasher.update(f"{samples.dtype}:{samples.shape}\0".encode())
            hasher.update(samples.tobytes())
            digests.append(hasher.hexdigest())
    return digests


def index_path(cache_file: Path, encoder_key: str) -> Path:
    """The index beside `cache_file` of the clips it holds, encoded by the encoder of `encoder_key`."""
    return cache_file.with_name(f"{cache_file.stem}.{encoder_key}{INDEX_SUFFIX}")


def write_clip_index(cache_file: Path, encoder_key: str, digests: Sequence[str]) -> None:
    """Write the index of `cache_file`'s rows (`digests`, in row order); atomically, after the cache file is whole."""
    record = {"cache_file": cache_file.name, "clips": list(digests)}
    write_text_atomic(index_path(cache_file, encoder_key), json.dumps(record) + "\n")


def find_cached_clips(
    cache_dir: Path,
    encoder_key: str,
    digests: Sequence[str],
    usable: Callable[[Path, int], bool] = lambda cache_file, rows: True,
) -> list[Optional[ClipLocation]]:
    """Where a cache of the encoder of `encoder_key` in `cache_dir` holds each clip of `digests` (`None`: in none).
    An index whose cache file is gone, holds another number of rows or is not `usable(cache_file, rows)` (checked
    only for the files that hold a clip wanted) is skipped."""
    found: list[Optional[ClipLocation]] = [None] * len(digests)
    for index in sorted(cache_dir.glob(f"encoder-*.{encoder_key}{INDEX_SUFFIX}")):
        try:
            record = json.loads(index.read_text(encoding="utf-8"))
            cache_file = index.parent / record["cache_file"]
            clips = record["clips"]
            rows = {digest: row for row, digest in enumerate(clips)}  # a clip a corpus holds twice: its last row
            # Only an encoder cache beside its index (the reuse may delete a damaged one): never a path elsewhere.
            if (
                not _is_cache_name(record["cache_file"])
                or not cache_file.exists()
                or Dataset.from_file(str(cache_file)).num_rows != len(clips)
            ):
                continue
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("Skipping the encoder cache index %s, which does not read back: %s", index, error)
            continue
        wanted = [position for position, digest in enumerate(digests) if found[position] is None and digest in rows]
        if not wanted or not usable(cache_file, len(clips)):
            continue
        for position in wanted:
            found[position] = (cache_file, rows[digests[position]])
        if all(location is not None for location in found):
            break
    return found


def _is_cache_name(name: str) -> bool:
    """Whether `name` is an encoder cache file's own name (``encoder-<key>.arrow``), no folder in it."""
    return Path(name).name == name and name.startswith("encoder-") and name.endswith(".arrow")


def assemble_states(locations: Sequence[ClipLocation], cache_file: Path, key: str) -> Dataset:
    """The rows at `locations`, in their order, written to `cache_file` (the dataset's own cache, fingerprint
    `key`)."""
    files = list(dict.fromkeys(path for path, _ in locations))
    parts = [Dataset.from_file(str(path)) for path in files]
    offsets = dict(zip(files, np.cumsum([0] + [len(part) for part in parts[:-1]])))
    rows = [int(offsets[path]) + row for path, row in locations]
    merged = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    return merged.select(rows).flatten_indices(cache_file_name=str(cache_file), new_fingerprint=key)


__all__ = [
    "INDEX_SUFFIX",
    "assemble_states",
    "clip_digests",
    "find_cached_clips",
    "index_path",
    "write_clip_index",
]
