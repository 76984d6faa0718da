"""Each clip's digest is read from its bytes once and kept between runs (``$HF_DATASETS_CACHE/ser_hf``): a run whose
clips did not change reads none of them, and one whose clip was rewritten (even with its size and modification time
put back) reads that one again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from ser_hf.data import file_digests as digests_module
from ser_hf.data.file_digests import digest_cache_path, file_digests
from tests.conftest import RAVDESS_SAMPLE


@pytest.fixture
def clips(tmp_path, monkeypatch):
    """Three real clips copied into a folder, this process knowing no digest yet."""
    monkeypatch.setattr(digests_module, "_KNOWN", {})
    sources = sorted((RAVDESS_SAMPLE / "Actor_01").glob("*.flac"))[:3]
    folder = tmp_path / "Actor_01"
    folder.mkdir()
    for source in sources:
        shutil.copyfile(source, folder / source.name)
    return sorted(folder.iterdir())


def _count_reads(monkeypatch) -> list[str]:
    read: list[str] = []
    real = digests_module.hashlib.file_digest

    def counted(file, digest):
        read.append(file.name)
        return real(file, digest)

    monkeypatch.setattr(digests_module.hashlib, "file_digest", counted)
    return read


def test_a_second_run_reads_no_unchanged_clip_and_a_rewritten_one_again(clips, monkeypatch, tmp_path):
    read = _count_reads(monkeypatch)
    first = file_digests(clips + [tmp_path / "no such clip.wav"])
    assert len(read) == 3 and first[-1] is None and len(set(first[:3])) == 3
    cached = json.loads(digest_cache_path().read_text())["files"]
    assert {os.path.realpath(clip) for clip in clips} <= set(cached)

    # A new process (nothing known in memory) with the same files reads none of them.
    monkeypatch.setattr(digests_module, "_KNOWN", {})
    read.clear()
    assert file_digests(clips) == first[:3] and read == []

    # A clip rewritten with another clip's bytes of the same size, its modification time put back (cp -p): read
    # again, since its change time moved. A link to a clip is that clip.
    target = clips[0]
    stamp = target.stat()
    replacement = bytearray(target.read_bytes())
    replacement[-1] ^= 0xFF
    target.write_bytes(bytes(replacement))
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    link = tmp_path / "link.flac"
    link.symlink_to(clips[1])
    monkeypatch.setattr(digests_module, "_KNOWN", {})
    read.clear()
    again = file_digests([*clips, link])
    assert read == [os.path.realpath(target)] and again[0] != first[0] and again[1:3] == first[1:3]
    assert again[3] == first[1]


def test_a_read_only_cache_costs_time_never_a_digest(clips, monkeypatch, tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache folder would be: it cannot be written
    monkeypatch.setattr(digests_module, "digest_cache_path", lambda: blocked / "file_digests.json")
    expected = [hashlib.blake2b(clip.read_bytes(), digest_size=16).hexdigest() for clip in clips]
    with caplog.at_level("WARNING"):
        assert file_digests(clips) == expected
    assert "not updated" in caplog.text and "read again next time" in caplog.text
