import os
import sys

import librosa
import numpy as np
import pytest
import soundfile
from datasets import Audio

from ser_hf import InvalidClipError, get_ser_info, load_corpus, prepare_audio
from ser_hf.data import decode as prepare_module
from tests.conftest import RAVDESS_48K_SAMPLE, write_audio


def waveforms(dataset) -> list[np.ndarray]:
    return [row["waveform"] for row in dataset.select_columns(["waveform"]).with_format("numpy")]


def assert_same_waveforms(one, two) -> None:
    assert len(one) == len(two)
    for left, right in zip(waveforms(one), waveforms(two)):
        np.testing.assert_array_equal(left, right)


def test_prepare_decodes_48k_stereo_to_16k_mono_like_librosa(tmp_path):
    ds = load_corpus("ravdess", RAVDESS_48K_SAMPLE)
    prepared = prepare_audio(ds, num_proc=1, cache_dir=tmp_path)
    assert "waveform" in prepared.column_names and len(prepared) == len(ds)
    for row in prepared.with_format("numpy"):
        waveform = row["waveform"]
        assert waveform.dtype == np.float32 and waveform.ndim == 1
        reference, _ = librosa.load(row["path"], sr=16000, mono=True)
        assert len(waveform) == len(reference)
        np.testing.assert_allclose(waveform, reference, atol=1e-4)


def test_second_prepare_reads_the_cache_and_a_changed_file_is_decoded_again(tmp_path, monkeypatch):
    clip = write_audio(tmp_path / "data" / "Actor_01" / "03-01-05-01-01-01-01.wav", sampling_rate=44100)
    write_audio(tmp_path / "data" / "Actor_02" / "03-01-04-01-01-01-02.wav", sampling_rate=44100)
    ds = load_corpus("ravdess", tmp_path / "data")
    first = prepare_audio(ds, num_proc=1, cache_dir=tmp_path / "cache")
    cache_files = {f["filename"] for f in first.cache_files}
    assert cache_files and all(f.startswith(str(tmp_path / "cache")) for f in cache_files)

    def fail(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(prepare_module, "decode_waveform", fail)
    second = prepare_audio(ds, num_proc=1, cache_dir=tmp_path / "cache")
    assert {f["filename"] for f in second.cache_files} == cache_files
    assert_same_waveforms(second, first)

    monkeypatch.undo()
    write_audio(clip, seconds=0.5, sampling_rate=44100, seed=5)  # new content, size and mtime
    os.utime(clip, ns=(1, 1))
    third = prepare_audio(load_corpus("ravdess", tmp_path / "data"), num_proc=1, cache_dir=tmp_path / "cache")
    assert len(third[0]["waveform"]) == 8000


def test_prepare_in_two_processes_matches_one(tmp_path):
    for actor in range(1, 5):
        for emotion in range(1, 9):
            write_audio(
                tmp_path / "data" / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav",
                seed=actor * 10 + emotion,
                sampling_rate=22050,
            )
    ds = load_corpus("ravdess", tmp_path / "data")
    one = prepare_audio(ds, num_proc=1, cache_dir=tmp_path / "one")
    two = prepare_audio(ds, num_proc=2, cache_dir=tmp_path / "two")
    assert len(two.cache_files) == 2
    assert one["path"] == two["path"]
    assert_same_waveforms(one, two)


def _corpus_with_nan_clip(root):
    write_audio(root / "Actor_01" / "03-01-05-01-01-01-01.wav")
    bad = root / "Actor_02" / "03-01-05-01-01-01-02.wav"
    samples = np.zeros(1600, dtype=np.float32)
    samples[100] = np.nan
    bad.parent.mkdir(parents=True)
    soundfile.write(bad, samples, 16000, subtype="FLOAT")
    return bad


def test_a_clip_that_fails_to_decode_is_named_or_skipped_on_request(tmp_path):
    bad = _corpus_with_nan_clip(tmp_path / "data")
    ds = load_corpus("ravdess", tmp_path / "data")
    with pytest.raises(InvalidClipError, match="NaN or infinite") as error:
        prepare_audio(ds, num_proc=1, cache_dir=tmp_path / "cache")
    assert error.value.path == str(bad)
    prepared = prepare_audio(ds, num_proc=1, cache_dir=tmp_path / "cache2", skip_invalid=True)
    assert len(prepared) == 1
    assert get_ser_info(prepared)["skipped"] == [
        {"path": str(bad), "problem": "the audio contains NaN or infinite sample values"}
    ]


def test_cache_never_returns_stale_labels_after_a_new_label_policy(tmp_path):
    from tests.conftest import RAVDESS_SAMPLE

    first = prepare_audio(load_corpus("ravdess", RAVDESS_SAMPLE / "Actor_01"), num_proc=1, cache_dir=tmp_path)
    merged = load_corpus("ravdess", RAVDESS_SAMPLE / "Actor_01", label_map={"calm": "neutral"})
    second = prepare_audio(merged, num_proc=1, cache_dir=tmp_path)
    assert second.cache_files[-1]["filename"] in {f["filename"] for f in first.cache_files}  # the cache was used
    assert second.features["label"].names == merged.features["label"].names
    assert second["label"] == merged["label"] and second["path"] == merged["path"]
    assert max(second["label"]) < len(merged.features["label"].names)


def test_a_bad_clip_in_a_multiprocess_prepare_is_named_not_hung(tmp_path):
    bad = _corpus_with_nan_clip(tmp_path / "data")
    for actor in range(3, 6):
        for emotion in range(1, 9):
            for statement in (1, 2):
                name = f"03-01-{emotion:02d}-01-{statement:02d}-01-{actor:02d}.wav"
                write_audio(tmp_path / "data" / f"Actor_{actor:02d}" / name, seed=actor * 10 + emotion)
    ds = load_corpus("ravdess", tmp_path / "data")
    assert len(ds) >= 32  # enough for two decoding processes
    with pytest.raises(InvalidClipError, match="NaN") as error:
        prepare_audio(ds, num_proc=2, cache_dir=tmp_path / "cache")
    assert error.value.path == str(bad)
    # The same cache then serves a run that asked to skip.
    assert len(prepare_audio(ds, num_proc=2, cache_dir=tmp_path / "cache", skip_invalid=True)) == len(ds) - 1


@pytest.mark.parametrize("decoder", ["soundfile", "ffmpeg"])
def test_a_bound_on_the_length_stops_decoding_there(tmp_path, monkeypatch, decoder):
    """`max_seconds`: a longer recording is refused having decoded no more than the bound (and half a second), by
    libsndfile and by FFmpeg alike (a browser's WebM, which declares no duration, goes through FFmpeg)."""
    from torchcodec.decoders import AudioDecoder

    from ser_hf.data.decode import decode_waveform
    from ser_hf.data.errors import RecordingTooLongError

    path = tmp_path / "six-seconds.wav"
    soundfile.write(path, np.sin(np.arange(6 * 16000) / 5.0).astype(np.float32) * 0.1, 16000)
    decoded = []
    if decoder == "ffmpeg":
        monkeypatch.setattr(soundfile, "SoundFile", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no")))
        original = AudioDecoder.get_samples_played_in_range

        def played(self, start_seconds=0.0, stop_seconds=None):
            samples = original(self, start_seconds, stop_seconds)
            decoded.append(samples.data.shape[-1])
            return samples

        monkeypatch.setattr(AudioDecoder, "get_samples_played_in_range", played)
        monkeypatch.setattr(AudioDecoder, "get_all_samples", lambda self: pytest.fail("decoded the whole file"))
    else:
        original = soundfile.SoundFile.read

        def read(self, frames=-1, *args, **kwargs):
            samples = original(self, frames, *args, **kwargs)
            decoded.append(len(samples))
            return samples

        monkeypatch.setattr(soundfile.SoundFile, "read", read)
    with pytest.raises(RecordingTooLongError, match=r"six-seconds\.wav: the recording is longer than 2 s"):
        decode_waveform(str(path), 16000, max_seconds=2.0)
    assert decoded and max(decoded) <= 2.5 * 16000
    assert len(decode_waveform(str(path), 16000, max_seconds=6.0)) == 6 * 16000


class _NoFFmpeg:
    """An import hook under which torchcodec fails to import, as it does where FFmpeg's libraries are missing."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torchcodec":
            raise ImportError("torchcodec: FFmpeg's libraries are missing (test)")
        return None


def test_a_corpus_loads_and_decodes_without_ffmpeg(tmp_path, monkeypatch, tiny_ravdess):
    """Building a corpus of FLAC files and decoding it need libsndfile only, not FFmpeg: datasets encodes an Audio
    column through torchcodec when a dataset is built with it, so ser-hf builds with the paths and casts them."""
    monkeypatch.setattr(sys, "meta_path", [_NoFFmpeg(), *sys.meta_path])
    for name in [name for name in sys.modules if name.split(".")[0] == "torchcodec"]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match="FFmpeg"):
        import torchcodec.encoders  # noqa: F401
    corpus = load_corpus("ravdess", tiny_ravdess)
    assert isinstance(corpus.features["audio"], Audio) and corpus.features["audio"].sampling_rate == 16000
    assert (
        corpus.info.license
        and corpus.cast_column("audio", Audio(decode=False))[0]["audio"]["path"] == corpus["path"][0]
    )
    prepared = prepare_audio(corpus.select(range(2)), num_proc=1, cache_dir=tmp_path)
    first = prepared.select_columns(["path", "waveform"])[0]  # a row with its Audio column would decode it: FFmpeg
    reference, _ = librosa.load(first["path"], sr=16000)
    np.testing.assert_allclose(np.asarray(first["waveform"], np.float32), reference, atol=1e-4)


def test_every_unusable_clip_of_every_kind_is_named_once_or_skipped_with_one_warning(tmp_path, caplog):
    """Issue 78: clips that do not decode (NaN, infinite, silent) and clips shorter than the model's shortest
    (``shortest_clip``) are found in one pass: one error names them all with the remedy, or skip_invalid leaves them
    all out with one warning and lists them in the record."""
    import logging

    from ser_hf.data.decode import ShortestClip
    from ser_hf.data.errors import InvalidClipsError

    root = tmp_path / "data"
    good = write_audio(root / "Actor_01" / "03-01-05-01-01-01-01.wav", seconds=0.5)
    bad = {}
    for index, (samples, what) in enumerate(
        [(np.full(1600, np.nan), "nan"), (np.full(1600, np.inf), "inf"), (np.zeros(1600), "silent")]
    ):
        bad[what] = root / "Actor_02" / f"03-01-05-01-01-0{index + 1}-02.wav"
        bad[what].parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(bad[what], samples.astype(np.float32), 16000, subtype="FLOAT")
    bad["short"] = write_audio(root / "Actor_03" / "03-01-05-01-01-01-03.wav", seconds=0.01)
    corpus = load_corpus("ravdess", root)
    shortest = ShortestClip(0.06, "one openSMILE frame ({ms} ms)")
    with pytest.raises(InvalidClipsError) as error:
        prepare_audio(corpus, num_proc=1, cache_dir=tmp_path / "cache", shortest_clip=shortest)
    message = str(error.value)
    assert message.startswith("4 unusable ravdess clip(s):\n") and len(error.value.errors) == 4
    assert f"{bad['short']}: 10.0 ms, shorter than one openSMILE frame (60.0 ms)" in message
    assert f"{bad['silent']}: the audio is digital silence" in message and "skip_invalid: true" in message
    # Without a shortest clip, the short one is usable: the same cache, three clips named.
    with pytest.raises(InvalidClipsError) as error:
        prepare_audio(corpus, num_proc=1, cache_dir=tmp_path / "cache")
    assert len(error.value.errors) == 3 and str(bad["short"]) not in str(error.value)
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        prepared = prepare_audio(
            corpus, num_proc=1, cache_dir=tmp_path / "cache", shortest_clip=shortest, skip_invalid=True
        )
    (warning,) = [record.getMessage() for record in caplog.records if record.getMessage().startswith("Skipping")]
    assert warning.startswith("Skipping 4 unusable ravdess clip(s):\n")
    assert all(str(path) in warning for path in bad.values())
    assert prepared["path"] == [str(good)] and len(prepared[0]["waveform"]) == 8000
    assert {item["path"] for item in get_ser_info(prepared)["skipped"]} == {str(path) for path in bad.values()}
