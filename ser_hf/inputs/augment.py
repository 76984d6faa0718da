"""Training-time audio augmentation: waveform perturbations (audiomentations) and SpecAugment masking (torchaudio).

Both augmenters take their randomness only from the `numpy.random.Generator` the caller passes. The collator builds
one generator per clip from (seed, epoch, clip id), so a run that is interrupted and resumed sees exactly the same
augmentations. audiomentations draws from `random` and `numpy.random`, torchaudio's masks from `torch`'s generator:
each call seeds the global generator it needs from the clip's generator and puts the caller's state back afterwards,
so the caller's global generators are left as they were.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional, Sequence

import numpy as np
import soxr
import torch
import torchaudio.transforms as T

from ..data.corpora.base import InvalidClipError
from ..data.decode import decode_waveform
from ..errors import RecipeError
from .degradations import (
    CODECS,
    NOISE_COLORS,
    add_colored_noise,
    check_bitrate,
    check_codec,
    check_rt60,
    check_snr,
    codec_round_trip,
    reverberate,
    seeded_global_rngs,
    simulated_reverberation,
    telephone_channel,
)

__all__ = ["PROBABILITIES", "SpecAugment", "WaveformAugmentation"]

logger = logging.getLogger(__name__)


#: A recipe's ``augmented_copy_conditions`` entry for a copy drawn as the recipe's waveform augmentation draws (every
#: perturbation at its probability), against a copy in one condition.
MIXED_COPY = "mixed"

#: Models whose inputs have one size for every clip, so that two clips' inputs can be mixed (``mixup_alpha``).
MIXUP_MODEL_TYPES = ("opensmile",)


@dataclass
class WaveformAugmentation:
    """Random waveform perturbations for the training split; each applied with its own probability.

    The perturbations run in a fixed order: speed, pitch, reverb, noise, gain, band-limiting, telephone, codec (the
    speaker's voice, then the room, then the background, then the recording level and channel, then the
    transmission). Each draws from its own child generator seeded from `rng`, so switching one on or off (an ablation)
    leaves the draws of the others unchanged.
    Pitch, recorded noise, gain and band-limiting are audiomentations' `PitchShift`, `AddBackgroundNoise`, `Gain` and
    `LowPassFilter`; coloured noise, reverberation, the telephone channel and the codecs are those of
    ``ser-hf evaluate --conditions`` (:mod:`.degradations`: audiomentations' `AddColorNoise`, rooms simulated by
    pyroomacoustics, the G.712 band at 8 kHz with G.711 mu-law, FFmpeg's Opus and MP3 encoders through torchcodec), so
    a model can be trained on the recordings it is then scored on; speed is a soxr resampling (see `_speed`).

    Args:
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate of the waveforms; noise and impulse-response files are resampled to it.
        noise_prob (`float`, *optional*, defaults to 0.0):
            Probability of adding noise to a clip.
        noise_snr_db (`tuple[float, float]`, *optional*, defaults to `(10.0, 30.0)`):
            Signal-to-noise ratio in dB, drawn uniformly in this range.
        noise_files (`Sequence[str]`, *optional*, defaults to `()`):
            Recorded noise clips; one is chosen uniformly and a random window of it is mixed in (tiled when shorter
            than the clip). Generated noise of `noise_colors` when empty.
        noise_colors (`Sequence[str]`, *optional*, defaults to `("white",)`):
            Colours of the generated noise (:data:`~.degradations.NOISE_COLORS`: white, pink, brown), one chosen
            uniformly per clip.
        gain_prob (`float`, *optional*, defaults to 0.0):
            Probability of changing the level of a clip.
        gain_db (`tuple[float, float]`, *optional*, defaults to `(-6.0, 6.0)`):
            Gain in dB, drawn uniformly in this range. Samples are not clipped: the pipeline is floating point.
        speed_prob (`float`, *optional*, defaults to 0.0):
            Probability of speed perturbation.
        speed_factors (`Sequence[float]`, *optional*, defaults to `(0.9, 1.1)`):
            One factor is chosen uniformly from this list. Kaldi-style speed perturbation (resampling): it changes
            tempo and pitch together, and a factor of 1.1 makes the clip 1.1 times shorter.
        pitch_prob (`float`, *optional*, defaults to 0.0):
            Probability of a pitch shift.
        pitch_semitones (`tuple[float, float]`, *optional*, defaults to `(-2.0, 2.0)`):
            Pitch shift in semitones (tempo kept), drawn uniformly in this range.
        reverb_prob (`float`, *optional*, defaults to 0.0):
            Probability of reverberation.
        reverb_rt60 (`tuple[float, float]`, *optional*, defaults to `(0.2, 0.8)`):
            Reverberation time in seconds of simulated rooms, drawn uniformly in this range and simulated on a grid
            of :data:`~.degradations.RT60_STEP` (each clip in one of a few rooms of that RT60, simulated once per
            process: :func:`~.degradations.simulated_reverberation`).
        impulse_responses (`Sequence[str]`, *optional*, defaults to `()`):
            Recorded room impulse responses, one chosen uniformly and used from its direct-path peak. Simulated rooms
            when empty.
        lowpass_prob (`float`, *optional*, defaults to 0.0):
            Probability of band-limiting a clip (audiomentations' `LowPassFilter`), as a narrowband channel
            (telephone: about 3.4 kHz) or a low-rate recording would.
        lowpass_hz (`tuple[float, float]`, *optional*, defaults to `(3000.0, 6000.0)`):
            Cut-off frequency in Hz, drawn uniformly in this range (below half the sampling rate).
        telephone_prob (`float`, *optional*, defaults to 0.0):
            Probability of passing a clip through a narrowband telephone channel
            (:func:`~.degradations.telephone_channel`: 300-3,400 Hz, 8 kHz, 8-bit mu-law), as ``ser-hf evaluate
            --conditions telephone`` does.
        codec_prob (`float`, *optional*, defaults to 0.0):
            Probability of a lossy codec round trip (:func:`~.degradations.codec_round_trip`).
        codecs (`Sequence[str]`, *optional*, defaults to `("opus", "mp3")`):
            Codecs to choose from, uniformly (:data:`~.degradations.CODECS`).
        codec_bitrate_kbps (`tuple[float, float]`, *optional*, defaults to `(8.0, 32.0)`):
            Bit rate in kbit/s, drawn uniformly in this range (rounded to whole kbit/s).

    Impulse-response files are decoded on first use and kept on the instance (so once per data-loader worker); noise
    files are checked on first use and then read by audiomentations, one window per clip.
    """

    sampling_rate: int = 16000
    noise_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    noise_files: Sequence[str] = ()
    noise_colors: Sequence[str] = ("white",)
    gain_prob: float = 0.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed_prob: float = 0.0
    speed_factors: Sequence[float] = (0.9, 1.1)
    pitch_prob: float = 0.0
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)
    reverb_prob: float = 0.0
    reverb_rt60: tuple[float, float] = (0.2, 0.8)
    impulse_responses: Sequence[str] = ()
    lowpass_prob: float = 0.0
    lowpass_hz: tuple[float, float] = (3000.0, 6000.0)
    telephone_prob: float = 0.0
    codec_prob: float = 0.0
    codecs: Sequence[str] = ("opus", "mp3")
    codec_bitrate_kbps: tuple[float, float] = (8.0, 32.0)
    # audiomentations transforms, built on first use (so once per data-loader worker) and kept out of repr/equality.
    _transforms: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _impulse_response_cache: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.sampling_rate = _check_count("sampling_rate", self.sampling_rate, minimum=1)
        for name in PROBABILITIES:
            setattr(self, name, _check_probability(name, getattr(self, name)))
        for name in ("noise_snr_db", "gain_db", "pitch_semitones", "reverb_rt60", "lowpass_hz", "codec_bitrate_kbps"):
            setattr(self, name, _check_range(name, getattr(self, name)))
        if not 0 < self.lowpass_hz[0] <= self.lowpass_hz[1] < self.sampling_rate / 2:
            raise ValueError(
                f"lowpass_hz must lie between 0 and half the sampling rate ({self.sampling_rate / 2:g} Hz), got "
                f"{self.lowpass_hz!r}"
            )
        if not -24.0 <= self.pitch_semitones[0] <= self.pitch_semitones[1] <= 24.0:  # audiomentations' bounds
            raise ValueError(f"pitch_semitones must lie within [-24, 24], got {self.pitch_semitones!r}")
        # The ranges ser-hf evaluate --conditions takes (degradations.py): past them the noise gain overflows, the
        # room simulation runs for minutes, or FFmpeg's encoder refuses the bit rate in the middle of training.
        for end in self.noise_snr_db:
            check_snr(end, "noise_snr_db")
        for end in self.reverb_rt60:
            check_rt60(end, "reverb_rt60")
        if self.codec_bitrate_kbps[0] < 1:
            raise ValueError(f"codec_bitrate_kbps must be at least 1 kbit/s, got {self.codec_bitrate_kbps!r}")
        self.noise_colors = _check_choices("noise_colors", self.noise_colors, NOISE_COLORS)
        self.codecs = _check_choices("codecs", self.codecs, CODECS)
        for codec in self.codecs:  # bits per second, as drawn: whole kbit/s
            for end in (math.floor(self.codec_bitrate_kbps[0]), math.ceil(self.codec_bitrate_kbps[1])):
                check_bitrate(codec, 1000 * end, "codec_bitrate_kbps")
        if self.codec_prob > 0:
            for codec in self.codecs:  # an FFmpeg without the encoder is refused here, before any clip is encoded
                check_codec(codec)
        self.speed_factors = _check_speed_factors(self.speed_factors)
        self.noise_files = _check_paths("noise_files", self.noise_files)
        self.impulse_responses = _check_paths("impulse_responses", self.impulse_responses)

    @property
    def enabled(self) -> bool:
        """Whether any perturbation can happen (some probability is above 0)."""
        return any(getattr(self, name) > 0 for name in PROBABILITIES)

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return an augmented float32 mono copy; all randomness comes from `rng`.

        Args:
            waveform (`np.ndarray`): 1-D mono waveform at `sampling_rate`, finite values.
            rng (`np.random.Generator`): the clip's generator. When `enabled` is False it is not drawn from.

        Returns:
            `np.ndarray`: a new float32 1-D array; as long as the input unless speed perturbation was applied.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        augmented = np.array(waveform, dtype=np.float32, copy=True)
        if augmented.ndim != 1:
            raise ValueError(f"waveform must be 1-D (mono), got shape {augmented.shape}")
        if not self.enabled:
            return augmented
        if not np.isfinite(augmented).all():
            raise ValueError("waveform contains NaN or infinite values")
        steps: list[tuple[float, Callable[[np.ndarray, np.random.Generator], np.ndarray]]] = [
            (self.speed_prob, self._speed),
            (self.pitch_prob, self._pitch),
            (self.reverb_prob, self._reverb),
            (self.noise_prob, self._noise),
            (self.gain_prob, self._gain),
            # Last, so that the other steps' seeds are those they had before it existed (it commutes with the gain).
            (self.lowpass_prob, self._lowpass),
            # The transmission after the recording; appended, for the same reason.
            (self.telephone_prob, self._telephone),
            (self.codec_prob, self._codec),
        ]
        # One seed per step drawn up front: `rng` advances by the same amount whatever is enabled or applied.
        seeds = rng.integers(0, 2**63, size=len(steps))
        for (probability, step), seed in zip(steps, seeds):
            step_rng = np.random.default_rng(int(seed))
            if probability > 0 and step_rng.random() < probability and augmented.size > 0:
                augmented = np.asarray(step(augmented, step_rng), dtype=np.float32)
        return np.ascontiguousarray(augmented, dtype=np.float32)

    def _speed(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        factor = self.speed_factors[int(rng.integers(len(self.speed_factors)))]
        if factor == 1.0:
            return waveform
        # Read the clip as if recorded at factor * sampling_rate and resample it back (what sox's `speed` does for
        # Kaldi). Ours, not audiomentations': its TimeStretch keeps the pitch, and its Resample (sampling-rate
        # augmentation) draws an integer rate from a range rather than a factor from a list, through this same soxr
        # call. soxr rather than torchaudio.functional.speed: torchaudio's sinc kernel grows with the reduced rate
        # ratio, so factors such as 1/1.1 (14545:16000) are orders of magnitude slower than 0.9 or 1.1; soxr's cost
        # does not depend on the factor.
        return soxr.resample(waveform, self.sampling_rate * factor, self.sampling_rate, quality="HQ")

    def _pitch(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._apply_transform("pitch", waveform, rng)

    def _reverb(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Recorded impulse responses are used from their direct path and the level is kept (audiomentations'
        # ApplyImpulseResponse convolves from the file's first sample, delaying the speech by the IR's silent lead-in,
        # and rescales the result to a 0.5 peak): a recipe's reverb changes the room only.
        if self.impulse_responses:
            path = self.impulse_responses[int(rng.integers(len(self.impulse_responses)))]
            return reverberate(waveform, self._recorded_impulse_response(path))
        return simulated_reverberation(waveform, self.sampling_rate, float(rng.uniform(*self.reverb_rt60)), rng)

    def _recorded_impulse_response(self, path: str) -> np.ndarray:
        if path not in self._impulse_response_cache:
            impulse_response = _load_audio(path, self.sampling_rate, "impulse_responses")
            # Start at the direct path, so the reverberated speech is not delayed by the source-microphone distance.
            impulse_response = impulse_response[int(np.argmax(np.abs(impulse_response))) :]
            norm = np.linalg.norm(impulse_response)
            if norm == 0.0:
                raise ValueError(f"impulse_responses: {path} is silent (all samples are zero)")
            self._impulse_response_cache[path] = (impulse_response / norm).astype(np.float32)
        return self._impulse_response_cache[path]

    def _noise(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.noise_files:
            snr_db = float(rng.uniform(*self.noise_snr_db))
            # One colour needs no draw: a white-noise recipe's clips are those it had before colours existed.
            colors = self.noise_colors
            color = colors[int(rng.integers(len(colors)))] if len(colors) > 1 else colors[0]
            return add_colored_noise(waveform, self.sampling_rate, snr_db, color, rng)
        return self._apply_transform("noise", waveform, rng)

    def _gain(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._apply_transform("gain", waveform, rng)

    def _lowpass(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._apply_transform("lowpass", waveform, rng)

    def _telephone(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return telephone_channel(waveform, self.sampling_rate)

    def _codec(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        codec = self.codecs[int(rng.integers(len(self.codecs)))]
        bitrate = 1000 * round(float(rng.uniform(*self.codec_bitrate_kbps)))
        return codec_round_trip(waveform, self.sampling_rate, codec, bitrate)

    def _apply_transform(self, name: str, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Run audiomentations' transform for `name` with the global generators it reads seeded from `rng`."""
        if name not in self._transforms:
            self._transforms[name] = self._build_transform(name)
        # Every transform draws its parameters from `random`.
        seed = int(rng.integers(0, 2**63))
        with seeded_global_rngs(seed, python=True), warnings.catch_warnings():
            # AddBackgroundNoise warns on every clip that it resampled a noise file (said once, in _check_noise_file)
            # or that a window of the recording is silent (nothing to add: the clip is returned as it is).
            warnings.filterwarnings("ignore", message=".*had to be resampled.*", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*too silent to be added as noise.*", category=UserWarning)
            return self._transforms[name](waveform, sample_rate=self.sampling_rate)

    def _build_transform(self, name: str):
        # Imported here: audiomentations imports librosa, which runs without augmentation need not pay for.
        import audiomentations

        if name == "gain":
            # Samples are not clipped: the pipeline is floating point.
            return audiomentations.Gain(min_gain_db=self.gain_db[0], max_gain_db=self.gain_db[1], p=1.0)
        if name == "lowpass":
            return audiomentations.LowPassFilter(
                min_cutoff_freq=self.lowpass_hz[0], max_cutoff_freq=self.lowpass_hz[1], p=1.0
            )
        if name == "pitch":
            # Signalsmith Stretch, audiomentations' default: faster than librosa's phase vocoder, and it keeps
            # syllable onsets sharp (librosa's default window is sized for music).
            return audiomentations.PitchShift(
                min_semitones=self.pitch_semitones[0], max_semitones=self.pitch_semitones[1], p=1.0
            )
        low, high = self.noise_snr_db
        from audiomentations.core.utils import SUPPORTED_EXTENSIONS

        for path in self.noise_files:
            _check_noise_file(path, self.sampling_rate)
            # AddBackgroundNoise would silently skip a file without an audio extension (a folder it would search).
            if not path.lower().endswith(SUPPORTED_EXTENSIONS):
                raise ValueError(f"noise_files: {path} does not end in an audio extension {SUPPORTED_EXTENSIONS}")
        return audiomentations.AddBackgroundNoise(
            sounds_path=list(self.noise_files), min_snr_db=low, max_snr_db=high, noise_rms="relative", p=1.0
        )


#: The perturbations' probabilities, each a field of :class:`WaveformAugmentation` (and a recipe key).
PROBABILITIES = tuple(item.name for item in fields(WaveformAugmentation) if item.name.endswith("_prob"))


@dataclass
class SpecAugment:
    """SpecAugment (Park et al., 2019) time and frequency masking of (frames, bins) features, for spectrogram models,
    through torchaudio's `TimeMasking` and `FrequencyMasking`.

    Args:
        num_time_masks (`int`, *optional*, defaults to 0):
            Time masks per clip.
        time_mask_width (`int`, *optional*, defaults to 20):
            Maximum frames per time mask; each width is drawn uniformly in `[0, time_mask_width)` (and cut to the
            clip's real frames), as torchaudio's `TimeMasking` does.
        num_freq_masks (`int`, *optional*, defaults to 0):
            Frequency masks per clip.
        freq_mask_width (`int`, *optional*, defaults to 8):
            Maximum bins per frequency mask, drawn the same way.
        mask_value (`float`, *optional*, defaults to 0.0):
            Value written into masked cells; features are standardised per clip, so 0 is the clip's mean.
    """

    num_time_masks: int = 0
    time_mask_width: int = 20
    num_freq_masks: int = 0
    freq_mask_width: int = 8
    mask_value: float = 0.0

    def __post_init__(self):
        for name in ("num_time_masks", "time_mask_width", "num_freq_masks", "freq_mask_width"):
            setattr(self, name, _check_count(name, getattr(self, name), minimum=0))
        if (
            isinstance(self.mask_value, bool)
            or not isinstance(self.mask_value, numbers.Real)
            or not math.isfinite(self.mask_value)
        ):
            raise ValueError(f"mask_value must be finite, got {self.mask_value!r}")

    @property
    def enabled(self) -> bool:
        """Whether any cell can be masked."""
        return (self.num_time_masks > 0 and self.time_mask_width > 0) or (
            self.num_freq_masks > 0 and self.freq_mask_width > 0
        )

    def __call__(
        self, features: torch.Tensor, num_frames: Sequence[int], rngs: Sequence[np.random.Generator]
    ) -> torch.Tensor:
        """Mask a padded batch `(batch, frames, bins)`: row i only within its first num_frames[i] real frames.

        Row i draws its masks from rngs[i]. Returns a new tensor; padding untouched.
        """
        if features.dim() != 3:
            raise ValueError(f"features must be (batch, frames, bins), got shape {tuple(features.shape)}")
        batch_size, max_frames, num_bins = features.shape
        if len(num_frames) != batch_size or len(rngs) != batch_size:
            raise ValueError(
                f"need one num_frames and one rng per row: batch of {batch_size}, "
                f"{len(num_frames)} num_frames, {len(rngs)} rngs"
            )
        masked = features.clone()
        time_masking = T.TimeMasking(time_mask_param=self.time_mask_width)
        frequency_masking = T.FrequencyMasking(freq_mask_param=self.freq_mask_width)
        for row, (frames, rng) in enumerate(zip(num_frames, rngs)):
            frames = int(frames)
            if not 0 <= frames <= max_frames:
                raise ValueError(f"num_frames[{row}] = {frames} is outside [0, {max_frames}]")
            # torchaudio draws from torch's global generator: seeded from the clip's own one (so a resumed run masks
            # the same cells) and restored after. Only the row's real frames are masked, never its padding.
            seed = int(rng.integers(0, 2**63))
            if frames == 0:
                continue
            spectrogram = masked[row, :frames].T  # (bins, frames): torchaudio's (..., freq, time)
            with seeded_global_rngs(seed, torch_cpu=True):
                for _ in range(self.num_time_masks):
                    spectrogram = time_masking(spectrogram, self.mask_value)
                for _ in range(self.num_freq_masks):
                    spectrogram = frequency_masking(spectrogram, self.mask_value)
            masked[row, :frames] = spectrogram.T
        return masked


def _check_noise_file(path: str, sampling_rate: int) -> None:
    """Refuse a missing or undecodable noise file by name, before audiomentations reads it clip after clip."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"noise_files: {path} does not exist")
    import librosa

    try:
        with warnings.catch_warnings():  # librosa's audioread fallback warns before failing
            warnings.simplefilter("ignore")
            file_rate = librosa.get_samplerate(path)
    except Exception as error:  # soundfile and audioread raise their own error types
        raise ValueError(f"noise_files: {path} cannot be decoded as audio ({error})") from None
    if file_rate != sampling_rate:
        logger.warning(
            "noise_files: %s is at %d Hz and is resampled to %d Hz on every use; resample it once beforehand to save "
            "that time",
            path,
            file_rate,
            sampling_rate,
        )


def _load_audio(path: str, sampling_rate: int, field_name: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{field_name}: {path} does not exist")
    try:
        waveform = decode_waveform(path, sampling_rate)
    except InvalidClipError as error:  # its message names the file
        raise ValueError(f"{field_name}: {error}") from error
    logger.debug("Loaded %s file %s (%d samples)", field_name, path, len(waveform))
    return waveform


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        raise ValueError(f"{name} must be {kind} integer, got {value!r}")
    return int(value)


def _check_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _check_range(name: str, value: Sequence[float]) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}")
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"{name} must be finite with low <= high, got {value!r}")
    return low, high


def _check_choices(name: str, value: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    choices = (value,) if isinstance(value, str) else tuple(value)
    unknown = [choice for choice in choices if choice not in known]
    if not choices or unknown:
        raise ValueError(f"{name} must name one or more of {', '.join(known)}, got {list(choices)!r}")
    return choices


def _check_speed_factors(value: Sequence[float]) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(f"speed_factors must be a non-empty list of factors, got {value!r}")
    try:
        factors = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"speed_factors must be numbers, got {value!r}") from None
    if not all(math.isfinite(f) and f > 0 for f in factors):
        raise ValueError(f"speed_factors must all be positive, got {value!r}")
    return factors


def _check_paths(name: str, value: Sequence[str]) -> tuple[str, ...]:
    # A single path string would otherwise be taken as a list of one-character paths.
    if isinstance(value, (str, bytes, os.PathLike)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of file paths, got {value!r}")
    return tuple(os.fspath(path) for path in value)


def waveform_augmentation(
    settings: Any, sampling_rate: int, condition: Optional[str] = None
) -> Optional[WaveformAugmentation]:
    """The :class:`WaveformAugmentation` a recipe's augmentation section (`settings`: any object with its attributes,
    :class:`~ser_hf.recipe.AugmentationArguments`) asks for, or `None` when it asks for none. A `condition` (a
    perturbation's name, as a cached copy in one recording condition has) puts that perturbation on every clip
    (probability 1, the section's ranges) and the others off."""
    names = [item.name for item in fields(WaveformAugmentation) if item.name.endswith("_prob")]
    probabilities = {name: getattr(settings, name) for name in names}
    if condition is not None:
        probabilities = {name: 1.0 if name == f"{condition}_prob" else 0.0 for name in names}
    if not any(probabilities.values()):
        return None
    return WaveformAugmentation(
        sampling_rate=sampling_rate,
        **probabilities,
        noise_snr_db=tuple(settings.noise_snr_db),
        noise_files=settings.noise_files or (),
        gain_db=tuple(settings.gain_db),
        speed_factors=tuple(settings.speed_factors),
        pitch_semitones=tuple(settings.pitch_semitones),
        reverb_rt60=tuple(settings.reverb_rt60),
        impulse_responses=settings.impulse_responses or (),
        lowpass_hz=tuple(settings.lowpass_hz),
        noise_colors=tuple(settings.noise_colors),
        codecs=tuple(settings.codecs),
        codec_bitrate_kbps=tuple(settings.codec_bitrate_kbps),
    )


def spec_augment(settings: Any) -> Optional[SpecAugment]:
    """The :class:`SpecAugment` a recipe's augmentation section (`settings`) asks for spectrogram inputs, or `None`."""
    if not (settings.num_time_masks or settings.num_freq_masks):
        return None
    return SpecAugment(
        num_time_masks=settings.num_time_masks,
        time_mask_width=settings.time_mask_width,
        num_freq_masks=settings.num_freq_masks,
        freq_mask_width=settings.freq_mask_width,
    )


def check_model_augmentation(settings: Any, model_args: Any) -> None:
    """Refuse the augmentation a recipe's section (`settings`) asks for that the recipe's model (`model_args`,
    :class:`~ser_hf.recipe.ModelArguments`) cannot use, rather than silently ignoring it: the model's inputs decide
    which augmentation can apply (spectrogram masks, waveform perturbations before a cache, mixing fixed-size
    inputs)."""
    # Every baseline but the raw-waveform CNN reads frame features (log-mel or MFCC) that SpecAugment can mask.
    spectrogram_input = model_args.is_baseline and model_args.model_type != "cnn1d"
    if (settings.num_time_masks or settings.num_freq_masks) and not spectrogram_input:
        raise RecipeError(
            f"num_time_masks/num_freq_masks mask spectrograms; {model_args.model_type} reads "
            "waveforms (use mask_time_prob/mask_feature_prob for SSL encoders)."
        )
    if settings.ssl_masking() and model_args.is_baseline:
        raise RecipeError(
            f"mask_time_prob/mask_feature_prob configure SSL encoders, not the "
            f"{model_args.model_type} baseline (use num_time_masks/num_freq_masks)."
        )
    if settings.mixup_alpha and model_args.model_type not in MIXUP_MODEL_TYPES:
        raise RecipeError(
            f"mixup_alpha: {settings.mixup_alpha:g} mixes fixed-size inputs (the {', '.join(MIXUP_MODEL_TYPES)} "
            f"functionals); {model_args.model_type} reads clips of varying length, whose padding and attention "
            "masks a mix would blur: leave mixup_alpha unset."
        )
    augments_waveforms = waveform_augmentation(settings, 16000) is not None
    if model_args.cache_feature_encoder and augments_waveforms:
        raise RecipeError(
            "cache_feature_encoder: true runs the feature encoder once per clip, so waveform "
            "augmentation cannot apply: turn it off, or leave cache_feature_encoder unset."
        )
    copies_augmented = augments_waveforms or bool(settings.own_statistics_copies())
    if settings.cached_augmented_copies and not (model_args.cache_encoder_outputs and copies_augmented):
        raise RecipeError(
            f"cached_augmented_copies: {settings.cached_augmented_copies} encodes augmented copies of each clip once "
            "for FAST mode: it needs cache_encoder_outputs: true and a waveform augmentation (noise_prob, "
            "gain_prob, speed_prob, pitch_prob, reverb_prob, lowpass_prob, telephone_prob or codec_prob above "
            "0)."
        )
    if settings.own_statistics_copies() and model_args.finetune_top_layers:
        raise RecipeError(
            f"augmented_copy_conditions: {settings.augmented_copy_conditions} standardises each copy in one condition "
            "with its speakers' statistics over the copy, which FAST mode computes once; finetune_top_layers: "
            f"{model_args.finetune_top_layers} computes the statistics again as the top layers train: give every "
            f"copy the condition {MIXED_COPY!r}, or leave finetune_top_layers unset."
        )
    if model_args.cache_encoder_outputs and (
        (augments_waveforms and not settings.cached_augmented_copies) or settings.ssl_masking()
    ):
        raise RecipeError(
            "cache_encoder_outputs encodes each clip once, so waveform augmentation and SSL masking "
            "cannot apply as they do in training on audio: set cached_augmented_copies: N to encode N augmented "
            "copies of each clip once, turn them off, or train without the cache."
        )
