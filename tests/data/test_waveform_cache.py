"""The decoded audio cached once per clip (issue 94): a merged set, a fold or a pool of clips prepared before is read
from the corpora's cache files by row selection, nothing decoded nor written; only an edited or new clip is decoded;
16-bit PCM storage reads back as float32 within half a quantisation step."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest
from datasets import Dataset

from ser_hf import get_ser_info, load_corpus, prepare_audio
from ser_hf.data import decode as decode_module
from ser_hf.data.corpora.loading import merge_corpora
from ser_hf.data.decode import PCM16_SCALE, Pcm16Waveform, decode_waveform, pcm16_samples
from tests.conftest import write_audio


def cache_files(folder) -> set[str]:
    return {path.name for path in folder.glob("waveforms-*.arrow")}


def waveforms(dataset) -> list[np.ndarray]:
    return [row["waveform"] for row in dataset.select_columns(["waveform"]).with_format("numpy")]


def counting_decoder(monkeypatch) -> list[str]:
    """The files decoded from now on."""
    decoded: list[str] = []
    decode = decode_module.decode_waveform

    def counting(path, *args, **kwargs):
        decoded.append(path)
        return decode(path, *args, **kwargs)

    monkeypatch.setattr(decode_module, "decode_waveform", counting)
    return decoded


def test_a_merged_set_of_prepared_corpora_writes_no_audio_and_reads_the_same_waveforms(
    tiny_ravdess, cremad_clips, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    ravdess, cremad = load_corpus("ravdess", tiny_ravdess), load_corpus("cremad", cremad_clips)
    alone = {
        name: prepare_audio(corpus, cache_dir=cache, num_proc=1)
        for name, corpus in (("ravdess", ravdess), ("cremad", cremad))
    }
    written = cache_files(cache)
    sizes = {name: os.path.getsize(cache / name) for name in written}

    decoded = counting_decoder(monkeypatch)
    merged = prepare_audio(merge_corpora([cremad, ravdess]), cache_dir=cache, num_proc=1)
    assert decoded == [] and cache_files(cache) == written
    assert {name: os.path.getsize(cache / name) for name in written} == sizes
    # Row selection over the corpora's own files (memory-mapped slices), no copy and no indices mapping to flatten.
    assert {os.path.basename(f["filename"]) for f in merged.cache_files} == written
    assert merged._indices is None
    expected = {row["path"]: row["waveform"] for prepared in alone.values() for row in prepared.with_format("numpy")}
    assert len(merged) == len(expected)
    for path, waveform in zip(merged["path"], waveforms(merged)):
        np.testing.assert_array_equal(waveform, expected[path])
    assert set(get_ser_info(merged)["prepared_cache"]) == {str(cache / name) for name in written}

    # A fold (some clips, another order) and a pool of clips from both: nothing decoded or written either.
    fold = merged.remove_columns("waveform").select([7, 3, 40, 1, 25])
    prepared_fold = prepare_audio(fold, cache_dir=cache, num_proc=1)
    assert decoded == [] and cache_files(cache) == written
    for path, waveform in zip(prepared_fold["path"], waveforms(prepared_fold)):
        np.testing.assert_array_equal(waveform, expected[path])


def test_an_edited_or_new_clip_alone_is_decoded_into_a_file_of_its_own(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    clips = [
        write_audio(data / f"Actor_0{actor}" / f"03-01-0{emotion}-01-01-01-0{actor}.wav", seed=actor * 10 + emotion)
        for actor in (1, 2)
        for emotion in (1, 3, 4)
    ]
    first = prepare_audio(load_corpus("ravdess", data), cache_dir=cache, num_proc=1)
    before = cache_files(cache)

    edited = clips[2]
    write_audio(edited, seconds=0.5, seed=99)  # new content, size and modification time
    os.utime(edited, ns=(1, 1))
    added = write_audio(data / "Actor_03" / "03-01-05-01-01-01-03.wav", seed=7)
    decoded = counting_decoder(monkeypatch)
    second = prepare_audio(load_corpus("ravdess", data), cache_dir=cache, num_proc=1)
    assert sorted(decoded) == sorted([str(edited), str(added)])
    new = cache_files(cache) - before
    assert len(new) == 1 and Dataset.from_file(str(cache / new.pop())).num_rows == 2
    lengths = dict(zip(second["path"], map(len, waveforms(second))))
    assert lengths[str(edited)] == 8000 and lengths[str(added)] == 4000
    unchanged = {path: waveform for path, waveform in zip(first["path"], waveforms(first)) if path != str(edited)}
    for path, waveform in zip(second["path"], waveforms(second)):
        if path in unchanged:
            np.testing.assert_array_equal(waveform, unchanged[path])


def test_16_bit_pcm_reads_back_within_half_a_step_at_half_the_bytes_of_float32(tmp_path):
    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.uniform(-1, 1, 10_000), [1.0, -1.0, 0.0, 1.5, -3.0]]).astype(np.float32)
    stored = pcm16_samples(samples)
    assert stored.dtype == np.int16 and stored.max() == PCM16_SCALE - 1 and stored.min() == -PCM16_SCALE
    read = Pcm16Waveform().decode_example(stored)
    assert read.dtype == np.float32
    largest = (PCM16_SCALE - 1) / PCM16_SCALE  # the largest sample, 32767 / 32768: 1.0 itself is past it
    inside = (samples >= -1) & (samples <= largest)
    assert np.abs(read - samples)[inside].max() <= 0.5 / PCM16_SCALE + 1e-7
    beyond = np.where(samples[~inside] > 0, (PCM16_SCALE - 1) / PCM16_SCALE, -1.0).astype(np.float32)
    np.testing.assert_array_equal(read[~inside], beyond)  # beyond full scale: clipped
    # Arrow's cast (a map returning float waveforms into the column) stores what pcm16_samples stores.
    cast = Pcm16Waveform().cast_storage(pa.array([samples[:5000], samples[5000:]], pa.list_(pa.float32())))
    np.testing.assert_array_equal(np.concatenate(cast.to_pylist()), stored)
    # A batch whose every clip could not be read arrives as a column of nulls: nulls, not an AttributeError.
    nulls = Pcm16Waveform().cast_storage(pa.nulls(3))
    assert nulls.type == Pcm16Waveform.pa_type and nulls.null_count == 3

    for actor in (1, 2):
        write_audio(tmp_path / "data" / f"Actor_0{actor}" / f"03-01-05-01-01-01-0{actor}.wav", sampling_rate=22050)
    corpus = load_corpus("ravdess", tmp_path / "data")
    prepared = {
        precision: prepare_audio(corpus, cache_dir=tmp_path / precision, num_proc=1, precision=precision)
        for precision in ("int16", "float32")
    }
    assert get_ser_info(prepared["int16"])["waveform_precision"] == "int16"
    for path, waveform in zip(corpus["path"], waveforms(prepared["int16"])):
        reference = decode_waveform(path, 16000)
        assert waveform.dtype == np.float32 and np.abs(waveform).max() <= 1
        assert np.abs(waveform - reference).max() <= 0.5 / PCM16_SCALE + 1e-7
    sizes = {
        precision: sum(os.path.getsize(path) for path in get_ser_info(dataset)["prepared_cache"])
        for precision, dataset in prepared.items()
    }
    assert sizes["int16"] < 0.55 * sizes["float32"]


def test_a_clip_that_did_not_decode_is_remembered_and_named_again(tmp_path, monkeypatch):
    write_audio(tmp_path / "data" / "Actor_01" / "03-01-05-01-01-01-01.wav")
    bad = tmp_path / "data" / "Actor_02" / "03-01-05-01-01-01-02.wav"
    soundfile_write_silence(bad)
    corpus = load_corpus("ravdess", tmp_path / "data")
    with pytest.raises(Exception, match="digital silence"):
        prepare_audio(corpus, cache_dir=tmp_path / "cache", num_proc=1)
    decoded = counting_decoder(monkeypatch)
    kept = prepare_audio(corpus, cache_dir=tmp_path / "cache", num_proc=1, skip_invalid=True)
    assert decoded == [] and len(kept) == 1
    assert get_ser_info(kept)["skipped"][0]["path"] == str(bad)


def soundfile_write_silence(path) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros(1600, np.float32), 16000)


def test_a_folder_of_links_to_prepared_clips_decodes_and_writes_nothing(tiny_ravdess, tmp_path, monkeypatch):
    """Links to clips already decoded (the folders of links ser-hf learning-curve makes per cell, a user's folder of
    links) are the files they lead to: read from the cache, nothing decoded or written again."""
    from tests.conftest import linked_corpus

    cache = tmp_path / "cache"
    prepare_audio(load_corpus("ravdess", tiny_ravdess), cache_dir=cache, num_proc=1)
    written = cache_files(cache)
    decoded = counting_decoder(monkeypatch)
    links = linked_corpus(tiny_ravdess, tmp_path / "links")
    prepared = prepare_audio(load_corpus("ravdess", links), cache_dir=cache, num_proc=1)
    assert decoded == [] and cache_files(cache) == written and len(prepared) > 0
