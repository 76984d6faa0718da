"""What a cache computed from clips holds, clip by clip, so that other datasets reuse it.

A cache file written for one dataset (the decoded audio of :func:`~ser_hf.data.decode.prepare_audio`, the encoder
states of :func:`~ser_hf.inputs.encoder_states.encode_dataset`) would otherwise be computed again for the same clips
loaded another way (several corpora merged, some labels dropped, another order, a fold, an adaptation pool). Each
cache file therefore has an index beside it, ``<prefix>-<file key>.<key>.clips.json``: one digest per row, in row
order, under a key of what computed the rows (the encoder's weights and settings; the decoder, rate and storage type),
no dataset. A dataset takes every clip a cache of the same key already holds and computes only the others.

- Encoder states: a clip's digest is that of its decoded samples (:func:`clip_digests`).
- Decoded audio: a clip's digest is that of its file (path, size, modification time, :mod:`~ser_hf.data.decode`).

Either way the rows found are read where they are (:func:`select_clips`: memory-mapped slices, no copy), and the clips
no cache held are computed into a cache file of their own, indexed in turn: each clip's audio and states are on disk
once, whichever sets (corpora merged, folds, adaptation pools, learning-curve cells) they are part of, and a dataset
with an indices mapping is read the same way (:func:`rows_in_place`), never flattened into a copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from datasets import Dataset

from ..atomic_files import write_text_atomic

logger = logging.getLogger(__name__)

#: The end of an index file's name (after the encoder's key).
INDEX_SUFFIX = ".clips.json"
# Clips hashed per batch read from the Arrow file.
_DIGEST_BATCH = 64

#: Where a clip's states are: ``(cache file, row)``.
ClipLocation = tuple[Path, int]


def clip_digests(dataset: Dataset, column: str) -> list[str]:
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


def index_path(cache_file: Path, key: str) -> Path:
    """The index beside `cache_file` of the clips it holds, computed by what `key` names (an encoder, a decoder)."""
    return cache_file.with_name(f"{cache_file.stem}.{key}{INDEX_SUFFIX}")


def write_clip_index(cache_file: Path, key: str, digests: Sequence[str]) -> None:
    """Write the index of `cache_file`'s rows (`digests`, in row order); atomically, after the cache file is whole."""
    record = {"cache_file": cache_file.name, "clips": list(digests)}
    write_text_atomic(index_path(cache_file, key), json.dumps(record) + "\n")


def find_cached_clips(
    cache_dir: Path,
    key: str,
    digests: Sequence[str],
    usable: Callable[[Path, int], bool] = lambda cache_file, rows: True,
    *,
    prefix: str,
) -> list[Optional[ClipLocation]]:
    """Where a cache file ``<prefix>-*.arrow`` in `cache_dir` indexed under `key` holds each clip of `digests`
    (`None`: in none). An index whose cache file is gone, holds another number of rows or is not
    `usable(cache_file, rows)` (checked only for the files that hold a clip wanted) is skipped."""
    found: list[Optional[ClipLocation]] = [None] * len(digests)
    for index in sorted(cache_dir.glob(f"{prefix}-*.{key}{INDEX_SUFFIX}")):
        try:
            record = json.loads(index.read_text(encoding="utf-8"))
            cache_file = index.parent / record["cache_file"]
            clips = record["clips"]
            rows = {digest: row for row, digest in enumerate(clips)}  # a clip a corpus holds twice: its last row
            # Only a cache file of this kind beside its index (the reuse may delete a damaged one): never a path
            # elsewhere.
            if (
                not _is_cache_name(record["cache_file"], prefix)
                or not cache_file.exists()
                or Dataset.from_file(str(cache_file)).num_rows != len(clips)
            ):
                continue
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("Skipping the cache index %s, which does not read back: %s", index, error)
            continue
        wanted = [position for position, digest in enumerate(digests) if found[position] is None and digest in rows]
        if not wanted or not usable(cache_file, len(clips)):
            continue
        for position in wanted:
            found[position] = (cache_file, rows[digests[position]])
        if all(location is not None for location in found):
            break
    return found


def _is_cache_name(name: str, prefix: str) -> bool:
    """Whether `name` is a cache file's own name (``<prefix>-<key>.arrow``), no folder in it."""
    return Path(name).name == name and name.startswith(f"{prefix}-") and name.endswith(".arrow")


def select_clips(locations: Sequence[ClipLocation]) -> Dataset:
    """The rows at `locations` (at least one), in their order, read where they are: each run of consecutive rows of
    one file is a memory-mapped slice of it, the slices concatenated (no indices mapping, nothing copied or written).
    A few runs for a merged set of corpora; one per row, at worst, for rows in random order (about 0.3 ms each)."""
    from datasets.fingerprint import Hasher

    files = {path: Dataset.from_file(str(path)) for path in dict.fromkeys(path for path, _ in locations)}
    runs: list[list] = []  # [file, first row, number of rows]
    for path, row in locations:
        if runs and runs[-1][0] == path and runs[-1][1] + runs[-1][2] == row:
            runs[-1][2] += 1
        else:
            runs.append([path, row, 1])
    first = next(iter(files.values()))
    fingerprint = Hasher.hash([(files[path]._fingerprint, start, length) for path, start, length in runs])
    return _from_slices([(files[path], start, length) for path, start, length in runs], first, fingerprint)


def rows_in_place(dataset: Dataset) -> Dataset:
    """`dataset` without its indices mapping (after `select`, `filter` or a split), its rows read where they are
    (memory-mapped slices of its table, as :func:`select_clips`) rather than flattened into a new cache file, which
    `Dataset.flatten_indices` writes beside the data for every selection. Its format is kept."""
    if dataset._indices is None:
        return dataset
    from datasets.fingerprint import Hasher

    rows = dataset._indices.column(0).to_numpy()
    runs: list[list[int]] = []  # [first row, number of rows]
    for row in rows.tolist():
        if runs and runs[-1][0] + runs[-1][1] == row:
            runs[-1][1] += 1
        else:
            runs.append([row, 1])
    fingerprint = Hasher.hash((dataset._fingerprint, "rows in place"))
    result = _from_slices([(dataset, start, length) for start, length in runs or [[0, 0]]], dataset, fingerprint)
    form = dataset.format
    return result.with_format(
        form["type"], columns=form["columns"], output_all_columns=form["output_all_columns"], **form["format_kwargs"]
    )


def _from_slices(slices: Sequence[tuple[Dataset, int, int]], like: Dataset, fingerprint: str) -> Dataset:
    """One `Dataset` of the `(dataset, first row, number of rows)` slices of the datasets' tables, concatenated."""
    from datasets.table import concat_tables

    # The tables themselves: one `Dataset` per run (`select`, `concatenate_datasets`) costs milliseconds each.
    table = concat_tables([part.data.slice(start, length) for part, start, length in slices])
    return Dataset(table, info=like.info.copy(), split=like.split, fingerprint=fingerprint)


__all__ = [
    "INDEX_SUFFIX",
    "clip_digests",
    "find_cached_clips",
    "index_path",
    "rows_in_place",
    "select_clips",
    "write_clip_index",
]
