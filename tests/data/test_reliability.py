"""Reliability of reading audio: every WAV sample format, channel layout and native rate decodes to the same
waveform; each kind of bad audio (corrupt, truncated, empty, silent, NaN) is named with its problem, stops the load
or is skipped and listed; verify="full" names a clip cut short past its header."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser_hf.data.corpora import load_corpus
from ser_hf.data.corpora.base import CorpusError, InvalidClipError
from ser_hf.data.dataset_info import get_ser_info
from ser_hf.data.decode import decode_waveform, prepare_audio
from tests.conftest import write_audio

pytestmark = pytest.mark.reliability


TONE_SECONDS = 1.0


def _tone(sampling_rate: int, seconds: float = TONE_SECONDS, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_wav_sample_format_decodes_to_the_same_float_waveform(tmp_path, subtype):
    path = tmp_path / f"{subtype}.wav"
    soundfile.write(path, _tone(16000), 16000, subtype=subtype)
    waveform = decode_waveform(str(path), 16000)
    assert waveform.dtype == np.float32 and waveform.shape == (16000,)
    tolerance = 1 / 64 if subtype == "PCM_U8" else 1e-4  # 8-bit audio has 256 levels
    np.testing.assert_allclose(waveform, _tone(16000), atol=tolerance)


@pytest.mark.parametrize("channels", [2, 6], ids=["stereo", "5.1"])
def test_multichannel_audio_is_averaged_to_mono(tmp_path, channels):
    path = tmp_path / "multi.wav"
    soundfile.write(path, _tone(16000, channels=channels), 16000, subtype="FLOAT")
    np.testing.assert_allclose(decode_waveform(str(path), 16000), _tone(16000), atol=1e-6)


@pytest.mark.parametrize("native_rate", [8000, 22050, 44100, 96000])
def test_any_native_rate_is_resampled_to_the_models_rate(tmp_path, native_rate):
    path = tmp_path / "rate.wav"
    soundfile.write(path, _tone(native_rate), native_rate, subtype="FLOAT")
    waveform = decode_waveform(str(path), 16000)
    assert waveform.shape == (16000,)
    # The 220 Hz tone survives resampling (away from the edges, where the filter rings).
    np.testing.assert_allclose(waveform[1000:-1000], _tone(16000)[1000:-1000], atol=2e-3)


def _truncated(path: Path) -> Path:
    soundfile.write(path, _tone(16000), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy cut off half way: the header still promises the whole clip
    return path


def _with_sample(value: float):
    def write(path: Path) -> Path:
        samples = _tone(16000).astype(np.float32)
        samples[100] = value
        soundfile.write(path, samples, 16000, subtype="FLOAT")
        return path

    return write


def _text_named_flac(path):
    path = path.with_suffix(".flac")
    path.write_text("not audio")
    return path


BAD_AUDIO = {
    "corrupt header": (lambda p: p.write_bytes(b"RIFX" + b"\0" * 40) or p, "cannot be decoded as audio"),
    # Not torchcodec's "This should never happen. Please report an issue" for a file that is no audio at all.
    "text": (
        _text_named_flac,
        r"cannot be decoded as audio \(FFmpeg finds no audio stream in it: not an audio file\?\)$",
    ),
    "truncated": (_truncated, "the file is truncated: its header declares 32000 bytes of audio but only 159"),
    "zero-length": (lambda p: soundfile.write(p, np.zeros((0, 1)), 16000) or p, "no samples"),
    "all silent": (lambda p: soundfile.write(p, np.zeros(16000), 16000) or p, "digital silence"),
    "NaN samples": (_with_sample(np.nan), "NaN or infinite sample values"),
    "Inf samples": (_with_sample(np.inf), "NaN or infinite sample values"),
}


@pytest.mark.parametrize("problem", list(BAD_AUDIO))
def test_bad_audio_is_named_with_its_problem(tmp_path, problem):
    write, message = BAD_AUDIO[problem]
    path = write(tmp_path / "clip.wav")
    with pytest.raises(InvalidClipError, match=message) as error:
        decode_waveform(str(path), 16000)
    assert error.value.path == str(path)


def test_bad_clips_stop_prepare_before_training_or_are_skipped_and_listed(tmp_path, caplog):
    """Every problem above in one RAVDESS folder: the load stops at the first (naming it), or with skip_invalid skips
    each, logs it, and lists it in the dataset's record (and so in the run's report)."""
    root = tmp_path / "ravdess"
    good = write_audio(root / "Actor_01" / "03-01-05-01-01-01-01.wav", seconds=1.0)
    bad = {}
    for index, (problem, (write, _)) in enumerate(BAD_AUDIO.items()):
        if problem in ("corrupt header", "zero-length", "text"):
            continue  # the header probe at load time already rejects these (tests/data/test_corpora.py)
        bad[problem] = write(root / "Actor_01" / f"03-01-0{index % 7 + 2}-02-01-01-01.wav")
    corpus = load_corpus("ravdess", root, skip_invalid=True)
    with pytest.raises(InvalidClipError):
        prepare_audio(corpus, cache_dir=tmp_path / "cache", num_proc=1)
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        prepared = prepare_audio(corpus, cache_dir=tmp_path / "cache", num_proc=1, skip_invalid=True)
    assert prepared["path"] == [str(good)]
    skipped = {
        item["path"]: item["problem"]
        for item in prepared.info.description and json.loads(prepared.info.description)["ser_hf"]["skipped"]
    }
    assert set(skipped) == {str(path) for path in bad.values()}
    for path in bad.values():
        assert str(path) in caplog.text


def test_verify_full_names_a_clip_that_is_cut_short_past_its_header(tmp_path, tiny_ravdess):
    """A FLAC cut short keeps a readable header, so the default load takes it and `ds[i]["audio"]` fails later
    with torchcodec's error, unnamed; verify="full" names it at load time, or skips and lists it."""
    data = tmp_path / "ravdess"
    shutil.copytree(tiny_ravdess / "Actor_01", data / "Actor_01")
    bad = sorted((data / "Actor_01").glob("*.flac"))[2]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 3])
    dataset = load_corpus("ravdess", data)
    assert len(dataset) == 8
    with pytest.raises(RuntimeError) as unnamed:
        dataset[2]["audio"].get_all_samples()
    assert str(bad) not in str(unnamed.value)
    with pytest.raises(InvalidClipError) as error:
        load_corpus("ravdess", data, verify="full")
    assert error.value.path == str(bad.resolve())
    assert error.value.problem.startswith("cannot be decoded as audio past its header, cut short or corrupt (")
    verified = load_corpus("ravdess", data, verify="full", skip_invalid=True)
    assert len(verified) == 7 and str(bad.resolve()) not in verified["path"]
    assert [entry["path"] for entry in get_ser_info(verified)["skipped"]] == [str(bad.resolve())]
    assert all(verified[i]["audio"].get_all_samples().data.numel() for i in range(len(verified)))
    with pytest.raises(CorpusError, match=r"verify='deep' is not one of header, full"):
        load_corpus("ravdess", data, verify="deep")
