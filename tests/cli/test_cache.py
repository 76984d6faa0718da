"""``ser-hf cache list`` / ``ser-hf cache delete``: what ser-hf keeps in ``$HF_DATASETS_CACHE/ser_hf``, deleted by age
or all, never a file ser-hf did not write (issue 94)."""

from __future__ import annotations

import os
import time

import pytest

from ser_hf import load_corpus, prepare_audio
from ser_hf.cli import main
from ser_hf.data.cache_dir import ser_hf_cache_dir
from ser_hf.inputs.cache_folder import human_size, scan_cache
from tests.conftest import write_audio

DAY = 86400


def prepared_corpus(root, actor: int):
    """A two-clip corpus decoded into ser-hf's default cache folder; its decoded-audio cache file."""
    for emotion in (3, 4):
        write_audio(root / f"Actor_0{actor}" / f"03-01-0{emotion}-01-01-01-0{actor}.wav", seed=actor * 10 + emotion)
    before = set(ser_hf_cache_dir().glob("waveforms-*.arrow"))
    prepare_audio(load_corpus("ravdess", root), num_proc=1)
    (cache_file,) = set(ser_hf_cache_dir().glob("waveforms-*.arrow")) - before
    return cache_file


def age(path, days: float) -> None:
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp))


@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
    """Two corpora's decoded audio, one unused for 40 days, and a file ser-hf did not write, 100 days old, in a
    $HF_DATASETS_CACHE of its own."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets_cache")
    old = prepared_corpus(tmp_path / "old", 1)
    recent = prepared_corpus(tmp_path / "recent", 2)
    foreign = ser_hf_cache_dir() / "notes.txt"
    foreign.write_text("mine, not ser-hf's")
    for path in ser_hf_cache_dir().glob(f"{old.stem}*"):
        age(path, 40)
    age(foreign, 100)
    return {"old": old, "recent": recent, "foreign": foreign}


def test_cache_list_shows_each_file_with_its_kind_size_clips_and_source(cache_folder, tmp_path, capsys):
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert str(ser_hf_cache_dir()) in out
    rows = {
        name: line for line in out.splitlines() for name in line.split() if name.startswith(("waveforms-", "notes"))
    }
    for name in ("old", "recent"):
        cache_file = cache_folder[name]
        line = rows[cache_file.name]
        size = sum(path.stat().st_size for path in ser_hf_cache_dir().glob(f"{cache_file.stem}*"))
        assert line.startswith("decoded audio") and human_size(size) in line
        assert " 2 " in line and str(tmp_path / name / "Actor_0") in line  # two clips, from that folder
    assert rows["notes.txt"].startswith("other")
    assert "decoded audio: 2 file(s)" in out

    assert main(["cache", "scan", "--json"]) == 0
    listed = {entry["path"]: entry for entry in __import__("json").loads(capsys.readouterr().out)}
    entry = listed[str(cache_folder["old"])]
    assert entry["kind"] == "decoded audio" and entry["clips"] == 2 and len(entry["files"]) == 2  # with its index
    assert entry["last_used"] < time.time() - 39 * DAY


def test_cache_delete_older_than_deletes_only_ser_hfs_old_files(cache_folder, capsys):
    old, recent, foreign = cache_folder["old"], cache_folder["recent"], cache_folder["foreign"]
    old_files = list(ser_hf_cache_dir().glob(f"{old.stem}*"))
    assert len(old_files) == 2  # the cache file and its clip index

    # Without --yes and no terminal to ask on: a dry run, which says so.
    assert main(["cache", "delete", "--older-than", "30"]) == 0
    out = capsys.readouterr().out
    assert "Dry run" in out and old.name in out and recent.name not in out and "notes.txt" not in out
    assert all(path.exists() for path in old_files)

    assert main(["cache", "delete", "--older-than", "30", "--yes"]) == 0
    assert "Deleted 1 cache(s)" in capsys.readouterr().out
    assert not any(path.exists() for path in old_files)
    assert recent.exists() and foreign.exists()  # the foreign file is older still, and kept
    assert [entry.kind for entry in scan_cache()].count("decoded audio") == 1

    assert main(["cache", "delete", "--all", "--yes"]) == 0
    remaining = {entry.kind for entry in scan_cache()}
    assert foreign.exists() and not recent.exists() and remaining <= {"other", "lock"}


def test_cache_delete_needs_an_age_or_all_and_refuses_a_negative_age(capsys):
    for argv in (["cache", "delete"], ["cache", "delete", "--older-than", "-1"], ["cache", "delete", "--older-than"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert "must be 0 or more days" in capsys.readouterr().err
