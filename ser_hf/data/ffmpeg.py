"""Whether FFmpeg's shared libraries are there for torchcodec, which decodes ``datasets``' ``Audio`` columns and the
formats libsndfile does not read; where they are not, one line that says so and how to install them, instead of
torchcodec's "Could not load libtorchcodec" traceback over every FFmpeg version it tried.

ser-hf reads WAV, FLAC, OGG and MP3 itself with libsndfile (:func:`ser_hf.data.decode.decode_waveform`), so training,
evaluation and prediction on those need no FFmpeg; ``dataset[i]["audio"]`` and other containers (M4A, WebM ...) do.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys

logger = logging.getLogger(__name__)

#: The FFmpeg major versions torchcodec loads, and the major version of libavutil each ships.
LIBAVUTIL_VERSIONS = {8: 60, 7: 59, 6: 58, 5: 57, 4: 56}
#: The formats ser-hf reads without FFmpeg (libsndfile's).
FORMATS_WITHOUT_FFMPEG = "WAV, FLAC, OGG and MP3"


class FFmpegMissingError(OSError):
    """FFmpeg's shared libraries are not installed, and what was asked needs them; the message says how to install
    them. An `OSError`, as a shared library the loader cannot find is (the command line prints it as one line)."""


def install_command(platform: str | None = None) -> str:
    """The command that installs FFmpeg's shared libraries on ``platform`` (``sys.platform`` by default)."""
    platform = platform or sys.platform
    if platform == "darwin":
        return "brew install ffmpeg"
    if platform.startswith(("win", "cygwin")):
        return "conda install -c conda-forge ffmpeg"
    return "sudo apt-get install ffmpeg (or conda install -c conda-forge ffmpeg)"


def ffmpeg_missing() -> bool:
    """Whether torchcodec cannot load FFmpeg's shared libraries (computed once per process). The probe tests
    monkeypatch to simulate a machine without them."""
    return _ffmpeg_missing()


@functools.lru_cache(maxsize=None)
def _ffmpeg_missing() -> bool:
    # Loading libavutil takes milliseconds; where the dynamic loader does not find it by name (a Homebrew or conda
    # prefix that only torchcodec's own search path holds), torchcodec itself answers, at the cost of importing torch.
    if any(_loads(name) for name in _libavutil_names()):
        return False
    try:
        import torchcodec._core  # noqa: F401 - loading it is the test
    except RuntimeError as error:
        if "Could not load libtorchcodec" in str(error):
            return True
        raise
    return False


def _libavutil_names() -> list[str]:
    if sys.platform == "darwin":
        return [f"libavutil.{major}.dylib" for major in LIBAVUTIL_VERSIONS.values()]
    if sys.platform.startswith(("win", "cygwin")):
        return [f"avutil-{major}.dll" for major in LIBAVUTIL_VERSIONS.values()]
    return [f"libavutil.so.{major}" for major in LIBAVUTIL_VERSIONS.values()]


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def missing_ffmpeg_message(needed_for: str) -> str:
    """One line: ``needed_for`` (what is asked, as the sentence's subject) needs FFmpeg's libraries, which are missing;
    what works without them; how to install them."""
    return (
        f"{needed_for} needs FFmpeg's shared libraries, which are not installed (torchcodec decodes with them); "
        f"ser-hf reads {FORMATS_WITHOUT_FFMPEG} without them (ser-hf train, evaluate and predict, prepare_audio's "
        f"waveform column). Install FFmpeg (4 to 8): {install_command()}."
    )


def check_audio_column_decoding(decodes_now: bool = False) -> None:
    """For the functions that hand a user a dataset with an ``Audio`` column (:func:`ser_hf.load_corpus`): where
    FFmpeg's libraries are missing, raise :class:`FFmpegMissingError` if the caller decodes that column now
    (``decodes_now``: ``verify="full"``), else say once per process, in one line, that ``dataset[i]["audio"]`` will not
    decode here."""
    if not ffmpeg_missing():
        return
    if decodes_now:
        raise FFmpegMissingError(
            missing_ffmpeg_message('load_corpus(..., verify="full"), which decodes every clip with torchcodec,')
        )
    _warn_once(missing_ffmpeg_message('Decoding a corpus\' "audio" column (dataset[i]["audio"])'))


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    logger.warning("%s", message)


__all__ = [
    "check_audio_column_decoding",
    "FORMATS_WITHOUT_FFMPEG",
    "FFmpegMissingError",
    "ffmpeg_missing",
    "install_command",
    "missing_ffmpeg_message",
]
