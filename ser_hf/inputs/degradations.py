"""Recordings as users make them: noise, babble, the telephone channel, lossy codecs and rooms, each a function of a
mono clip and a `numpy.random.Generator` the caller seeds.

Training-time augmentation (:mod:`.augment`) and ``ser-hf evaluate --conditions``
(:mod:`ser_hf.evaluation.conditions`) both degrade clips through these functions, built on the field's libraries:
audiomentations' ``AddColorNoise`` (coloured noise), pyroomacoustics (rooms simulated by the image-source method at a
reverberation time), FFmpeg's encoders through torchcodec (Opus, MP3), scipy, soxr and torchaudio (the telephone
band, 8 kHz, mu-law).

A :class:`RecordingCondition` is one named, parametrised degradation (``pink_noise:snr=10``, ``telephone``,
``opus:bitrate=12k``, ``reverb:rt60=0.6``, ``babble:snr=5``): :data:`CONDITIONS` lists them, and
:func:`parse_condition` reads that syntax, refusing a bad condition by name with the valid ones listed.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import math
import random
import re
import threading
import zlib
from dataclasses import MISSING, dataclass, fields
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import numpy as np

#: Noise colours of :func:`add_colored_noise`: their power spectral density slope in dB per octave (pink: power
#: halves per octave), as audiomentations' ``AddColorNoise`` takes it.
NOISE_COLORS = {"white": 0.0, "pink": -10 * math.log10(2), "brown": -20 * math.log10(2)}
#: The telephone channel: ITU-T G.712's pass band in Hz, the narrowband rate, and 8-bit mu-law (G.711).
TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_RATE = 8000
MU_LAW_CHANNELS = 256
#: Codecs of :func:`codec_round_trip`: FFmpeg's format name, and the rate each encodes at (Opus works at 48 kHz; a clip
#: given at another rate is resampled by FFmpeg on the way in and out).
CODECS = {"opus": ("opus", 48000), "mp3": ("mp3", None)}
#: The bit rates (bits per second, a mono clip) each codec is given: FFmpeg's libopus wrapper refuses anything outside
#: 500-256,000 per channel (``avcodec_open2`` fails); LAME takes any number but encodes MPEG Layer III's 8-320 kbit/s
#: only, the nearest of them otherwise (``tests/inputs/test_degradations.py`` checks both against the FFmpeg
#: torchcodec loads).
CODEC_BITRATES = {"opus": (500, 256_000), "mp3": (8_000, 320_000)}
#: Signal-to-noise ratios (dB) a noise or babble condition takes: below -40 dB the noise is a hundred times the speech
#: and nothing of the clip is left to classify; above 100 dB it is under what 16-bit audio resolves (96 dB) and the
#: clip is clean. Outside, the gain ``10**(snr/20)`` overflows or turns the clip into inf/NaN.
SNR_RANGE_DB = (-40.0, 100.0)
#: Reverberation times (seconds) a room takes: from a small, damped room to a large hall.
RT60_RANGE = (0.1, 3.0)
#: How many other speakers' clips babble mixes into a clip: each one costs a pass over the clip, and beyond a few
#: dozen talkers babble is indistinguishable from stationary speech-shaped noise.
BABBLE_SPEAKERS_RANGE = (1, 20)
#: Rooms simulated per reverberation time: each clip is heard in one of them (drawn from its generator).
ROOMS_PER_RT60 = 4
#: RT60s are simulated on this grid (seconds), so that a range of them needs a handful of rooms, each simulated once.
RT60_STEP = 0.05

_LN_1000 = math.log(1000.0)  # 60 dB of amplitude decay


# Held while a call has seeded the process-wide generators, so that two threads augmenting at once cannot interleave
# their seeding and drawing (data-loader workers are processes, each with its own lock).
_GLOBAL_RNG_LOCK = threading.Lock()


@contextlib.contextmanager
def seeded_global_rngs(
    seed: int, *, python: bool = False, numpy: bool = False, torch_cpu: bool = False
) -> Iterator[None]:
    """The chosen global generators (`random`, `numpy.random`, torch's CPU one) seeded from `seed` inside the block,
    the caller's states restored after it: audiomentations and torchaudio draw from them and take no generator. Only
    those a transform reads are touched, as saving and restoring each costs time on every clip."""
    with _GLOBAL_RNG_LOCK, contextlib.ExitStack() as restore:
        if python:
            restore.callback(random.setstate, random.getstate())
            random.seed(seed)
        if numpy:
            restore.callback(np.random.set_state, np.random.get_state())
            np.random.seed([seed & 0xFFFFFFFF, seed >> 32])
        if torch_cpu:
            import torch

            restore.enter_context(torch.random.fork_rng(devices=[]))
            torch.manual_seed(seed)
        yield


def rms(waveform: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))) if waveform.size else 0.0


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled so that the clip's power over the noise's is ``snr_db`` (both over the whole
    clip, ``noise`` as long as ``speech``); a silent clip or noise is returned as it is."""
    speech_rms, noise_rms = rms(speech), rms(noise)
    if speech_rms == 0.0 or noise_rms == 0.0:
        return speech.astype(np.float32, copy=True)
    scale = speech_rms / (noise_rms * 10 ** (snr_db / 20))
    return (speech + scale * noise).astype(np.float32)


def add_colored_noise(
    waveform: np.ndarray, sampling_rate: int, snr_db: float, color: str, rng: np.random.Generator
) -> np.ndarray:
    """``waveform`` with noise of ``color`` (:data:`NOISE_COLORS`) at ``snr_db`` over the whole clip: audiomentations'
    ``AddColorNoise``, its draws seeded from ``rng``."""
    import audiomentations

    decay = NOISE_COLORS[color]
    transform = audiomentations.AddColorNoise(
        min_snr_db=snr_db, max_snr_db=snr_db, min_f_decay=decay, max_f_decay=decay, p=1.0
    )
    with seeded_global_rngs(int(rng.integers(0, 2**63)), python=True, numpy=True):
        return np.asarray(transform(np.asarray(waveform, dtype=np.float32), sample_rate=sampling_rate), np.float32)


def add_babble(
    waveform: np.ndarray, talkers: Sequence[np.ndarray], snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """``waveform`` with the babble of ``talkers`` (other speakers' clips, each brought to the same level, a random
    window of each, looped when shorter than the clip) at ``snr_db`` over the whole clip."""
    babble = np.zeros(len(waveform), dtype=np.float64)
    for talker in talkers:
        level = rms(talker)
        if level == 0.0 or not len(waveform):
            continue
        looped = np.tile(talker, int(np.ceil(len(waveform) / len(talker))) + 1)
        start = int(rng.integers(0, len(talker)))
        babble += looped[start : start + len(waveform)] / level
    return mix_at_snr(np.asarray(waveform, dtype=np.float32), babble, snr_db)


def telephone_channel(waveform: np.ndarray, sampling_rate: int) -> np.ndarray:
    """``waveform`` as a narrowband telephone call carries it: band-passed to :data:`TELEPHONE_BAND_HZ` (an 8th-order
    Butterworth, scipy), resampled to 8 kHz (soxr), 8-bit mu-law encoded and decoded (torchaudio), and resampled back
    to ``sampling_rate``, as long as it was."""
    import scipy.signal
    import soxr
    import torch
    import torchaudio.functional as F

    if not len(waveform):
        return np.asarray(waveform, dtype=np.float32)
    low, high = TELEPHONE_BAND_HZ
    sections = scipy.signal.butter(
        4, [low, min(high, 0.45 * sampling_rate)], "bandpass", fs=sampling_rate, output="sos"
    )
    band = scipy.signal.sosfiltfilt(sections, np.asarray(waveform, dtype=np.float64))
    narrow = soxr.resample(band, sampling_rate, TELEPHONE_RATE, quality="HQ")
    # mu-law codes samples in [-1, 1]: louder ones clip, as a telephone line's would.
    codes = F.mu_law_encoding(torch.from_numpy(np.clip(narrow, -1.0, 1.0)), MU_LAW_CHANNELS)
    decoded = F.mu_law_decoding(codes, MU_LAW_CHANNELS).numpy()
    return _same_length(soxr.resample(decoded, TELEPHONE_RATE, sampling_rate, quality="HQ"), len(waveform))


def codec_round_trip(waveform: np.ndarray, sampling_rate: int, codec: str, bitrate: int) -> np.ndarray:
    """``waveform`` encoded by FFmpeg's ``codec`` (:data:`CODECS`) at ``bitrate`` bits per second and decoded back to
    ``sampling_rate`` (torchcodec), as long as it was."""
    import torch
    from torchcodec.decoders import AudioDecoder
    from torchcodec.encoders import AudioEncoder

    if not len(waveform):
        return np.asarray(waveform, dtype=np.float32)
    form, rate = CODECS[codec]
    samples = torch.from_numpy(np.asarray(waveform, dtype=np.float32)).unsqueeze(0)
    encoded = AudioEncoder(samples, sample_rate=sampling_rate).to_tensor(form, bit_rate=bitrate, sample_rate=rate)
    decoded = AudioDecoder(encoded, sample_rate=sampling_rate).get_all_samples().data.mean(dim=0).numpy()
    return _same_length(decoded, len(waveform))


@functools.cache
def check_codec(codec: str) -> None:
    """Refuse, naming it, a codec the FFmpeg that torchcodec loads cannot encode (a build without libopus); a codec
    that encodes is tried once per process (recipe checks and every augmentation instance ask again)."""
    try:
        codec_round_trip(np.zeros(1600, dtype=np.float32), 16000, codec, 32000)
    except Exception as error:  # torchcodec raises RuntimeError from FFmpeg, or fails to load FFmpeg at all
        raise ValueError(f"{codec}: the FFmpeg libraries torchcodec loads cannot encode it ({error}).") from None


def simulated_rt60(rt60: float) -> float:
    """The RT60 (seconds) that is simulated for ``rt60``: the nearest point of the :data:`RT60_STEP` grid."""
    return max(RT60_STEP, round(rt60 / RT60_STEP) * RT60_STEP)


@functools.lru_cache(maxsize=512)
def room_impulse_response(rt60: float, room: int, sampling_rate: int) -> np.ndarray:
    """The impulse response of simulated room number ``room`` (its size, source and microphone drawn from ``room``
    and ``rt60``) with reverberation time ``rt60``: pyroomacoustics' image-source method, the walls' absorption from
    Sabine's formula (``inverse_sabine``). From its direct path, unit energy; cached per process.

    Reflections are simulated up to half the order ``inverse_sabine`` suggests (the cost grows with its cube; the IR
    still runs past the RT60, 60 dB down), then the decay is adjusted so that the IR's Schroeder T20 is ``rt60``: the
    image-source method's decay deviates from Sabine's by up to a fifth."""
    import pyroomacoustics as pra

    rng = np.random.default_rng([room, int(round(rt60 * 1000)), sampling_rate])
    dimensions = rng.uniform([4.0, 3.0, 2.5], [8.0, 6.0, 3.5])
    absorption, max_order = pra.inverse_sabine(rt60, dimensions)
    simulation = pra.ShoeBox(
        dimensions, fs=sampling_rate, materials=pra.Material(absorption), max_order=max(3, math.ceil(max_order / 2))
    )
    simulation.add_source(rng.uniform(0.5, dimensions - 0.5))
    simulation.add_microphone(rng.uniform(0.5, dimensions - 0.5))
    simulation.compute_rir()
    response = np.asarray(simulation.rir[0][0], dtype=np.float64)
    response = response[int(np.argmax(np.abs(response))) :]
    measured = schroeder_rt60(response, sampling_rate)
    if measured > 0:
        time = np.arange(len(response)) / sampling_rate
        response = response * np.exp(-_LN_1000 * time * (1.0 / rt60 - 1.0 / measured))
    response /= np.linalg.norm(response)
    response.flags.writeable = False  # shared by every caller through the cache
    return response.astype(np.float32)


def schroeder_rt60(response: np.ndarray, sampling_rate: int) -> float:
    """RT60 (seconds) from the slope of the backward-integrated energy between -5 and -25 dB (T20, ISO 3382); 0 when
    the response never decays that far."""
    energy = np.cumsum(np.square(response[::-1], dtype=np.float64))[::-1]
    if not len(energy) or energy[0] == 0:
        return 0.0
    with np.errstate(divide="ignore"):
        decay_db = 10 * np.log10(energy / energy[0])
    if not (decay_db <= -25).any():
        return 0.0
    return 3 * float(np.argmax(decay_db <= -25) - np.argmax(decay_db <= -5)) / sampling_rate


def reverberate(waveform: np.ndarray, impulse_response: np.ndarray) -> np.ndarray:
    """``waveform`` convolved with ``impulse_response`` (given from its direct path, so the speech is not delayed),
    cut to its length and brought back to its RMS: the room changes, not the loudness."""
    import scipy.fft
    import torch
    import torchaudio.functional as F

    waveform = np.asarray(waveform, dtype=np.float32)
    if not len(waveform):
        return waveform.copy()
    # Output samples before len(waveform) only see the first len(waveform) IR taps: a longer IR is cut there.
    impulse_response = np.asarray(impulse_response[: len(waveform)], dtype=np.float32)
    # Zero taps appended to the IR leave those samples unchanged and bring the FFT to a 5-smooth length: torch's FFT is
    # slow on lengths with large prime factors (76799 samples is several times slower than 76800).
    fast_length = scipy.fft.next_fast_len(len(waveform) + len(impulse_response) - 1, real=True)
    impulse_response = np.pad(impulse_response, (0, fast_length - len(waveform) + 1 - len(impulse_response)))
    reverberated = F.fftconvolve(torch.from_numpy(waveform), torch.from_numpy(impulse_response))
    reverberated = reverberated[: len(waveform)].numpy()
    output_rms = rms(reverberated)
    if output_rms == 0.0:
        return np.zeros_like(waveform)
    return (reverberated * np.float32(rms(waveform) / output_rms)).astype(np.float32)


def simulated_reverberation(
    waveform: np.ndarray, sampling_rate: int, rt60: float, rng: np.random.Generator
) -> np.ndarray:
    """``waveform`` heard in one of :data:`ROOMS_PER_RT60` simulated rooms of reverberation time ``rt60`` (on the
    :data:`RT60_STEP` grid), drawn from ``rng`` (:func:`room_impulse_response`, :func:`reverberate`)."""
    room = int(rng.integers(ROOMS_PER_RT60))
    return reverberate(waveform, room_impulse_response(simulated_rt60(rt60), room, sampling_rate))


def _same_length(waveform: np.ndarray, length: int) -> np.ndarray:
    waveform = np.asarray(waveform, dtype=np.float32)[:length]
    return np.pad(waveform, (0, length - len(waveform))) if len(waveform) < length else waveform


# --- Named conditions ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingCondition(abc.ABC):
    """One degradation with its parameters, applied to a clip by :meth:`apply`; ``str()`` writes it in the syntax
    :func:`parse_condition` reads (``pink_noise:snr=10``), which names it in reports.

    A subclass sets ``family``: Robuser's two, additive noise or a distortion of the signal."""

    family: ClassVar[str] = "signal distortion"

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The condition's name in the syntax (``pink_noise``)."""

    @property
    def talkers(self) -> int:
        """How many other speakers' clips :meth:`apply` mixes in (babble's); 0 for the others."""
        return 0

    def parameters(self) -> dict[str, str]:
        """The parameters as the syntax writes them (``{"snr": "10"}``)."""
        return {}

    @abc.abstractmethod
    def description(self) -> str:
        """What the condition is, in words (``pink noise, 10 dB SNR``)."""

    def __str__(self) -> str:
        parameters = ",".join(f"{key}={value}" for key, value in self.parameters().items())
        return f"{self.name}:{parameters}" if parameters else self.name

    @abc.abstractmethod
    def apply(
        self,
        waveform: np.ndarray,
        sampling_rate: int,
        rng: np.random.Generator,
        talkers: Sequence[np.ndarray] = (),
    ) -> np.ndarray:
        """The degraded clip: float32, mono, as long as ``waveform``; its draws from ``rng`` only."""

    def check_available(self) -> None:
        """Raise `ValueError` when a library this condition needs cannot run here (a codec FFmpeg lacks)."""

    def seed(self) -> int:
        """A number of this condition's own, for the clips' generators: two conditions draw independently."""
        return zlib.crc32(str(self).encode("utf-8"))


@dataclass(frozen=True)
class ColoredNoise(RecordingCondition):
    """Noise of a colour (:data:`NOISE_COLORS`) at a signal-to-noise ratio over the whole clip."""

    snr_db: float
    color: str = "pink"
    family: ClassVar[str] = "additive noise"

    def __post_init__(self):
        if self.color not in NOISE_COLORS:
            raise ValueError(f"noise color {self.color!r} is not one of {', '.join(NOISE_COLORS)}.")
        check_snr(self.snr_db)

    @property
    def name(self) -> str:
        return f"{self.color}_noise"

    def description(self) -> str:
        return f"{self.color} noise, {self.snr_db:g} dB SNR"

    def parameters(self) -> dict[str, str]:
        return {"snr": f"{self.snr_db:g}"}

    def apply(self, waveform, sampling_rate, rng, talkers=()):
        return add_colored_noise(waveform, sampling_rate, self.snr_db, self.color, rng)


@dataclass(frozen=True)
class Babble(RecordingCondition):
    """Other speakers talking over the clip: ``speakers`` clips of other speakers of the same set (each of a speaker
    of its own where the set has enough), at a signal-to-noise ratio over the whole clip."""

    snr_db: float
    speakers: int = 4
    family: ClassVar[str] = "additive noise"

    def __post_init__(self):
        check_snr(self.snr_db)
        low, high = BABBLE_SPEAKERS_RANGE
        if not low <= self.speakers <= high:
            raise ValueError(
                f"speakers must be between {low} and {high} (other speakers' clips mixed in), got {self.speakers}."
            )

    @property
    def name(self) -> str:
        return "babble"

    def description(self) -> str:
        return f"babble: {self.speakers} clips of other speakers, {self.snr_db:g} dB SNR"

    @property
    def talkers(self) -> int:
        return self.speakers

    def parameters(self) -> dict[str, str]:
        return {"snr": f"{self.snr_db:g}", "speakers": str(self.speakers)}

    def apply(self, waveform, sampling_rate, rng, talkers=()):
        if not talkers:
            raise ValueError("babble needs other speakers' clips to mix in.")
        return add_babble(waveform, talkers, self.snr_db, rng)


@dataclass(frozen=True)
class Telephone(RecordingCondition):
    """A narrowband telephone call: 300-3,400 Hz, 8 kHz, 8-bit mu-law (:func:`telephone_channel`)."""

    @property
    def name(self) -> str:
        return "telephone"

    def description(self) -> str:
        return "telephone: 300-3,400 Hz, 8 kHz, mu-law"

    def apply(self, waveform, sampling_rate, rng, talkers=()):
        return telephone_channel(waveform, sampling_rate)


@dataclass(frozen=True)
class Codec(RecordingCondition):
    """A lossy codec at a bit rate (:func:`codec_round_trip`): what an app or a browser sends."""

    codec: str
    bitrate: int

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r} is not one of {', '.join(CODECS)}.")
        check_bitrate(self.codec, self.bitrate)

    @property
    def name(self) -> str:
        return self.codec

    def description(self) -> str:
        return f"{'Opus' if self.codec == 'opus' else 'MP3'} at {self.bitrate / 1000:g} kbit/s"

    def parameters(self) -> dict[str, str]:
        bitrate = f"{self.bitrate // 1000}k" if self.bitrate % 1000 == 0 else str(self.bitrate)
        return {"bitrate": bitrate}

    def apply(self, waveform, sampling_rate, rng, talkers=()):
        return codec_round_trip(waveform, sampling_rate, self.codec, self.bitrate)

    def check_available(self) -> None:
        check_codec(self.codec)


@dataclass(frozen=True)
class Reverberation(RecordingCondition):
    """A room of reverberation time ``rt60`` seconds (:func:`simulated_reverberation`)."""

    rt60: float

    def __post_init__(self):
        check_rt60(self.rt60)

    @property
    def name(self) -> str:
        return "reverb"

    def description(self) -> str:
        return f"reverberation: simulated rooms, RT60 {self.rt60:g} s"

    def parameters(self) -> dict[str, str]:
        return {"rt60": f"{self.rt60:g}"}

    def apply(self, waveform, sampling_rate, rng, talkers=()):
        return simulated_reverberation(waveform, sampling_rate, self.rt60, rng)

    def check_available(self) -> None:
        try:
            import pyroomacoustics  # noqa: F401
        except ImportError as error:
            raise ValueError(f"reverb needs pyroomacoustics ({error}): pip install pyroomacoustics.") from None


def _check_between(name: str, value: float, low: float, high: float, unit: str) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be between {low:g} and {high:g} {unit}, got {value:g}.")


def check_snr(snr_db: float, name: str = "snr") -> None:
    """Refuse a signal-to-noise ratio outside :data:`SNR_RANGE_DB`, naming ``name`` and the range."""
    _check_between(name, snr_db, *SNR_RANGE_DB, "dB")


def check_rt60(rt60: float, name: str = "rt60") -> None:
    """Refuse a reverberation time outside :data:`RT60_RANGE`, naming ``name`` and the range."""
    _check_between(name, rt60, *RT60_RANGE, "seconds")


def check_bitrate(codec: str, bitrate: float, name: str = "bitrate") -> None:
    """Refuse a bit rate (bits per second) outside what ``codec`` encodes (:data:`CODEC_BITRATES`), naming ``name``
    and the codec's range."""
    low, high = CODEC_BITRATES[codec]
    if not (math.isfinite(bitrate) and low <= bitrate <= high):
        raise ValueError(
            f"{name} of {codec} must be between {_kbits(low)} and {_kbits(high)} bits per second (what FFmpeg's "
            f"{codec} encoder takes for a mono clip), got {_kbits(bitrate)}."
        )


def _kbits(bitrate: float) -> str:
    return f"{bitrate / 1000:g}k" if bitrate >= 1000 else f"{bitrate:g}"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _bitrate(text: str) -> int:
    """``12k``, ``12000`` or ``64K``: bits per second."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kK]?)", text)
    if not match:
        raise ValueError(f"{text!r} is not a bit rate (e.g. 12k or 12000)")
    return int(round(float(match.group(1)) * (1000 if match.group(2) else 1)))


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


@dataclass(frozen=True)
class ConditionSyntax:
    """How one condition name is written: its class, the fixed arguments the name implies, and each parameter's
    argument, reader and placeholder (required when it has no default in the class)."""

    build: Callable[..., RecordingCondition]
    fixed: Mapping[str, Any]
    parameters: Mapping[str, tuple[str, Callable[[str], Any], str]]

    def usage(self, name: str) -> str:
        """``NAME:KEY=PLACEHOLDER,[KEY=PLACEHOLDER]``: optional parameters in brackets."""
        text = name
        for key, (argument, _, placeholder) in self.parameters.items():
            separator = ":" if text == name else ","
            part = f"{separator}{key}={placeholder}"
            text += part if _is_required(self.build, argument) else f"[{part}]"
        return text


def _is_required(build: Any, argument: str) -> bool:
    return any(field.name == argument and field.default is MISSING for field in fields(build))


#: Every condition name :func:`parse_condition` reads: the one list the parser, its errors and ``--help`` read.
CONDITIONS: dict[str, ConditionSyntax] = {
    **{
        f"{color}_noise": ConditionSyntax(ColoredNoise, {"color": color}, {"snr": ("snr_db", _number, "DB")})
        for color in NOISE_COLORS
    },
    "babble": ConditionSyntax(Babble, {}, {"snr": ("snr_db", _number, "DB"), "speakers": ("speakers", _count, "N")}),
    "telephone": ConditionSyntax(Telephone, {}, {}),
    **{
        codec: ConditionSyntax(Codec, {"codec": codec}, {"bitrate": ("bitrate", _bitrate, "BITS")}) for codec in CODECS
    },
    "reverb": ConditionSyntax(Reverberation, {}, {"rt60": ("rt60", _number, "SECONDS")}),
}


def condition_usage() -> str:
    """Every condition as it is written (``pink_noise:snr=DB, ..., reverb:rt60=SECONDS``)."""
    return ", ".join(syntax.usage(name) for name, syntax in CONDITIONS.items())


def parse_condition(text: str) -> RecordingCondition:
    """A condition from ``NAME`` or ``NAME:KEY=VALUE[,KEY=VALUE]`` (``pink_noise:snr=10``, ``opus:bitrate=12k``):
    a `ValueError` naming ``text`` and listing the valid conditions for anything else."""
    name, _, rest = text.strip().partition(":")
    syntax = CONDITIONS.get(name)
    if syntax is None:
        raise ValueError(f"unknown condition {text!r}; the conditions are: {condition_usage()}.")
    arguments: dict[str, Any] = dict(syntax.fixed)
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        if not equals or key not in syntax.parameters:
            expected = ", ".join(syntax.parameters) or "none"
            raise ValueError(
                f"condition {text!r}: {item!r} is not a parameter of {name} (its parameters: {expected}); write it "
                f"as {syntax.usage(name)}."
            )
        argument, read, _ = syntax.parameters[key]
        try:
            arguments[argument] = read(value.strip())
        except ValueError as error:
            raise ValueError(f"condition {text!r}: {key}: {error}; write it as {syntax.usage(name)}.") from None
    missing = [key for key, (argument, _, _) in syntax.parameters.items() if argument not in arguments]
    missing = [key for key in missing if _is_required(syntax.build, syntax.parameters[key][0])]
    if missing:
        raise ValueError(f"condition {text!r} needs {', '.join(missing)}: write it as {syntax.usage(name)}.")
    try:
        return syntax.build(**arguments)
    except ValueError as error:
        raise ValueError(f"condition {text!r}: {error}") from None


def parse_conditions(texts: Sequence[str]) -> list[RecordingCondition]:
    """Each of ``texts`` parsed (:func:`parse_condition`); the same condition twice is an error naming it."""
    return distinct_conditions([parse_condition(text) for text in texts])


def distinct_conditions(conditions: Sequence[RecordingCondition]) -> list[RecordingCondition]:
    """``conditions`` as a list; the same condition twice is an error naming it."""
    names = [str(condition) for condition in conditions]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"condition {repeated[0]} is given more than once.")
    return list(conditions)


__all__ = [
    "BABBLE_SPEAKERS_RANGE",
    "CODEC_BITRATES",
    "CONDITIONS",
    "RT60_RANGE",
    "SNR_RANGE_DB",
    "Babble",
    "Codec",
    "ColoredNoise",
    "RecordingCondition",
    "Reverberation",
    "Telephone",
    "add_babble",
    "add_colored_noise",
    "check_bitrate",
    "check_rt60",
    "check_snr",
    "codec_round_trip",
    "condition_usage",
    "distinct_conditions",
    "mix_at_snr",
    "parse_condition",
    "parse_conditions",
    "reverberate",
    "room_impulse_response",
    "schroeder_rt60",
    "seeded_global_rngs",
    "simulated_reverberation",
    "telephone_channel",
]
