"""Where FFmpeg's shared libraries are missing (simulated by the probe's answer: FFmpeg stays installed), ser-hf says
so in one line naming the install command, before torchcodec's "Could not load libtorchcodec" traceback, and still
reads WAV, FLAC, OGG and MP3 itself (issue 78)."""

from __future__ import annotations

import logging

import pytest

from ser_hf import load_corpus, prepare_audio
from ser_hf.data import ffmpeg
from ser_hf.data.decode import decode_waveform
from ser_hf.data.errors import InvalidClipError
from ser_hf.data.ffmpeg import FFmpegMissingError, install_command
from tests.conftest import write_audio


@pytest.fixture
def no_ffmpeg(monkeypatch):
    """A machine without FFmpeg's shared libraries, as the probe answers it; the once-per-process warning said anew."""
    monkeypatch.setattr(ffmpeg, "ffmpeg_missing", lambda: True)
    ffmpeg._warn_once.cache_clear()
    yield
    ffmpeg._warn_once.cache_clear()


def _corpus(root):
    write_audio(root / "Actor_01" / "03-01-05-01-01-01-01.wav")
    write_audio(root / "Actor_02" / "03-01-04-01-01-01-02.flac", seed=1)
    write_audio(root / "Actor_03" / "03-01-03-01-01-01-03.ogg", seed=2)
    return root


def test_load_corpus_says_in_one_line_that_the_audio_column_needs_ffmpeg_and_ser_hf_still_reads_the_clips(
    tmp_path, no_ffmpeg, caplog
):
    root = _corpus(tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        corpus = load_corpus("ravdess", root)
        load_corpus("ravdess", root)  # said once per process, not at every load
    (warning,) = [record.getMessage() for record in caplog.records if "FFmpeg" in record.getMessage()]
    assert "\n" not in warning and warning.startswith('Decoding a corpus\' "audio" column (dataset[i]["audio"]) needs')
    assert "WAV, FLAC, OGG and MP3" in warning and install_command() in warning
    # ser-hf's own reader (libsndfile) decodes the WAV, FLAC and OGG clips without FFmpeg.
    prepared = prepare_audio(corpus, num_proc=1, cache_dir=tmp_path / "cache")
    assert len(prepared) == 3 and all(len(row["waveform"]) == 4000 for row in prepared)


def test_what_decodes_with_torchcodec_is_refused_in_one_line_naming_ffmpeg_before_torchcodec_runs(
    tmp_path, no_ffmpeg, monkeypatch
):
    import torchcodec.decoders

    def torchcodec_called(*args, **kwargs):
        raise AssertionError("torchcodec was asked to decode")

    monkeypatch.setattr(torchcodec.decoders, "AudioDecoder", torchcodec_called)
    root = _corpus(tmp_path / "data")
    with pytest.raises(FFmpegMissingError) as error:
        load_corpus("ravdess", root, verify="full")
    assert "\n" not in str(error.value) and str(error.value).startswith('load_corpus(..., verify="full")')
    assert isinstance(error.value, OSError) and install_command() in str(error.value)  # the CLI's one-line errors
    # A container libsndfile does not read: the clip is named with the reason, not torchcodec's traceback.
    webm = tmp_path / "clip.webm"
    webm.write_bytes(b"\x1aE\xdf\xa3" + bytes(64))
    with pytest.raises(InvalidClipError) as error:
        decode_waveform(str(webm), 16000)
    assert error.value.path == str(webm)
    assert error.value.problem.startswith("libsndfile does not read it, and decoding it needs FFmpeg's shared")
    assert install_command() in error.value.problem


def test_the_install_command_is_the_platforms():
    assert install_command("darwin") == "brew install ffmpeg"
    assert install_command("linux").startswith("sudo apt-get install ffmpeg")
    assert "conda install -c conda-forge ffmpeg" in install_command("linux")
    assert install_command("win32") == "conda install -c conda-forge ffmpeg"


def test_the_probe_finds_ffmpeg_through_torchcodec_where_the_loader_does_not_find_libavutil_by_name(monkeypatch):
    """On a machine with FFmpeg (this one: make installs it), a libavutil the loader cannot find by name (a Homebrew
    or conda prefix) is not taken for a missing FFmpeg: torchcodec's own loading answers."""
    monkeypatch.setattr(ffmpeg, "_loads", lambda name: False)
    ffmpeg._ffmpeg_missing.cache_clear()
    try:
        assert ffmpeg._ffmpeg_missing() is False
    finally:
        ffmpeg._ffmpeg_missing.cache_clear()
