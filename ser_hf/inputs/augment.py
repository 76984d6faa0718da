"""Training-time audio augmentation: waveform perturbations and SpecAugment masking.

Both augmenters take their randomness only from the `numpy.random.Generator` the caller passes. The collator builds
one generator per clip from (seed, epoch, clip id), so a run that is interrupted and resumed sees exactly the same
augmentations; nothing here reads `torch`'s, `numpy`'s or `random`'s global generators.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import scipy.fft
import soxr
import torch
import torchaudio.functional as F

from ..data.corpora.base import InvalidClipError
from ..data.decode import decode_waveform

__all__ = ["SpecAugment", "WaveformAugmentation"]

logger = logging.getLogger(__name__)

# 60 dB of amplitude decay is a factor of 1000: exp(-ln(1000) * t / rt60) reaches -60 dB at t = rt60.
_LN_1000 = math.log(1000.0)


@dataclass
class WaveformAugmentation:
    """Random waveform perturbations for the training split; each applied with its own probability.

    The perturbations run in a fixed order: speed, pitch, reverb, noise, gain (the speaker's voice, then the room,
    then the background, then the recording level). Each draws from its own child generator seeded from `rng`, so
    switching one on or off (an ablation) leaves the draws of the others unchanged.

    Args:
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate of the waveforms; noise and impulse-response files are resampled to it.
        noise_prob (`float`, *optional*, defaults to 0.0):
            Probability of adding noise to a clip.
        noise_snr_db (`tuple[float, float]`, *optional*, defaults to `(10.0, 30.0)`):
            Signal-to-noise ratio in dB, drawn uniformly in this range.
        noise_files (`Sequence[str]`, *optional*, defaults to `()`):
            Recorded noise clips; one is chosen uniformly and a random window of it is mixed in (tiled when shorter
            than the clip). White noise when empty.
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
            Reverberation time in seconds of generated impulse responses, drawn uniformly in this range.
        impulse_responses (`Sequence[str]`, *optional*, defaults to `()`):
            Recorded room impulse responses, one chosen uniformly and used from its direct-path peak. Exponentially
            decaying white noise with the drawn RT60 when empty.

    Noise and impulse-response files are decoded on first use and kept on the instance (so once per data-loader
    worker); a large noise collection is held in memory once loaded.
    """

    sampling_rate: int = 16000
    noise_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    noise_files: Sequence[str] = ()
    gain_prob: float = 0.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed_prob: float = 0.0
    speed_factors: Sequence[float] = (0.9, 1.1)
    pitch_prob: float = 0.0
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)
    reverb_prob: float = 0.0
    reverb_rt60: tuple[float, float] = (0.2, 0.8)
    impulse_responses: Sequence[str] = ()
    _noise_cache: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)
    _impulse_response_cache: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.sampling_rate = _check_count("sampling_rate", self.sampling_rate, minimum=1)
        for name in ("noise_prob", "gain_prob", "speed_prob", "pitch_prob", "reverb_prob"):
            setattr(self, name, _check_probability(name, getattr(self, name)))
        for name in ("noise_snr_db", "gain_db", "pitch_semitones", "reverb_rt60"):
            setattr(self, name, _check_range(name, getattr(self, name)))
        if self.reverb_rt60[0] <= 0:
            raise ValueError(f"reverb_rt60 must be positive seconds, got {self.reverb_rt60!r}")
        self.speed_factors = _check_speed_factors(self.speed_factors)
        self.noise_files = _check_paths("noise_files", self.noise_files)
        self.impulse_responses = _check_paths("impulse_responses", self.impulse_responses)

    @property
    def enabled(self) -> bool:
        """Whether any perturbation can happen (some probability is above 0)."""
        return any(
            p > 0 for p in (self.noise_prob, self.gain_prob, self.speed_prob, self.pitch_prob, self.reverb_prob)
        )

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return an augmented float32 mono copy; all randomness comes from `rng` (never global RNGs).

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
        ]
        # One seed per step drawn up front: `rng` advances by the same amount whatever is enabled or applied.
        seeds = rng.integers(0, 2**63, size=len(steps))
        for (probability, step), seed in zip(steps, seeds):
            step_rng = np.random.default_rng(int(seed))
            if probability > 0 and step_rng.random() < probability and augmented.size > 0:
                augmented = step(augmented, step_rng)
        return np.ascontiguousarray(augmented, dtype=np.float32)

    def _speed(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        factor = self.speed_factors[int(rng.integers(len(self.speed_factors)))]
        if factor == 1.0:
            return waveform
        # Read the clip as if recorded at factor * sampling_rate and resample it back (what sox's `speed` does for
        # Kaldi). soxr rather than torchaudio.functional.speed: torchaudio's sinc kernel grows with the reduced rate
        # ratio, so factors such as 1/1.1 (14545:16000) are orders of magnitude slower than 0.9 or 1.1; soxr's cost
        # does not depend on the factor.
        return soxr.resample(waveform, self.sampling_rate * factor, self.sampling_rate, quality="HQ")

    def _pitch(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        semitones = float(rng.uniform(*self.pitch_semitones))
        # librosa rather than torchaudio.functional.pitch_shift, measured on CPU: torchaudio takes whole semitones
        # only and resamples from int(sr * 2**(n/12)) to sr with a sinc kernel that grows with the reduced rate ratio
        # (17959:16000 for 2 semitones at 16 kHz), seconds per clip; librosa's phase vocoder plus soxr takes
        # milliseconds. Imported here because librosa (with numba) is slow to import, which runs without pitch
        # shift should not pay; its first call also compiles (once per process).
        import librosa.effects

        # A ~32 ms analysis window (512 samples at 16 kHz) is the usual one for speech; librosa's default (2048) is
        # sized for music at 22 kHz and smears syllable onsets.
        n_fft = 2 ** round(math.log2(0.032 * self.sampling_rate))
        if len(waveform) < n_fft:
            logger.debug(
                "Clip of %d samples is shorter than the pitch-shift window (%d); left as is", len(waveform), n_fft
            )
            return waveform
        return librosa.effects.pitch_shift(
            waveform, sr=self.sampling_rate, n_steps=semitones, n_fft=n_fft, hop_length=n_fft // 4, res_type="soxr_hq"
        )

    def _reverb(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.impulse_responses:
            path = self.impulse_responses[int(rng.integers(len(self.impulse_responses)))]
            impulse_response = self._recorded_impulse_response(path)
        else:
            impulse_response = self._generated_impulse_response(float(rng.uniform(*self.reverb_rt60)), rng)
        # Output samples before len(waveform) only see the first len(waveform) IR taps: a longer IR is cut there.
        impulse_response = impulse_response[: len(waveform)]
        # Zero taps appended to the IR leave those samples unchanged and bring the FFT to a 5-smooth length: torch's
        # FFT is slow on lengths with large prime factors (76799 samples is several times slower than 76800).
        fast_length = scipy.fft.next_fast_len(len(waveform) + len(impulse_response) - 1, real=True)
        impulse_response = np.pad(impulse_response, (0, fast_length - len(waveform) + 1 - len(impulse_response)))
        reverberated = F.fftconvolve(torch.from_numpy(waveform), torch.from_numpy(impulse_response))
        reverberated = reverberated[: len(waveform)].numpy()
        # Back to the input's RMS, so that reverberation changes the room and not the loudness.
        input_rms, output_rms = _rms(waveform), _rms(reverberated)
        if output_rms == 0.0:
            return np.zeros_like(waveform)
        return reverberated * np.float32(input_rms / output_rms)

    def _generated_impulse_response(self, rt60: float, rng: np.random.Generator) -> np.ndarray:
        length = max(1, int(round(rt60 * self.sampling_rate)))
        time = np.arange(length) / self.sampling_rate
        impulse_response = rng.standard_normal(length) * np.exp(-_LN_1000 * time / rt60)
        return (impulse_response / np.linalg.norm(impulse_response)).astype(np.float32)

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
        snr_db = float(rng.uniform(*self.noise_snr_db))
        if self.noise_files:
            path = self.noise_files[int(rng.integers(len(self.noise_files)))]
            if path not in self._noise_cache:
                self._noise_cache[path] = _load_audio(path, self.sampling_rate, "noise_files")
            noise = _random_window(self._noise_cache[path], len(waveform), rng)
        else:
            noise = rng.standard_normal(len(waveform)).astype(np.float32)
        if not noise.any():
            # add_noise would divide by the noise energy; a silent stretch of a recording adds nothing anyway.
            return waveform
        # A silent clip has zero energy, so add_noise scales the noise to zero: the clip stays silent, without NaN.
        noisy = F.add_noise(torch.from_numpy(waveform), torch.from_numpy(noise), torch.tensor(snr_db))
        return noisy.numpy()

    def _gain(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gain_db = float(rng.uniform(*self.gain_db))
        return waveform * np.float32(10.0 ** (gain_db / 20.0))


@dataclass
class SpecAugment:
    """SpecAugment (Park et al., 2019) time and frequency masking of (frames, bins) features, for spectrogram models.

    Args:
        num_time_masks (`int`, *optional*, defaults to 0):
            Time masks per clip.
        time_mask_width (`int`, *optional*, defaults to 20):
            Maximum frames per time mask; each width is drawn uniformly in `[0, time_mask_width]` (and cut to the
            clip's real frames).
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
        # Masks are drawn with the clip's own generator rather than torchaudio.functional.mask_along_axis_iid, which
        # draws from torch's global RNG (so a resumed run would mask differently) and cannot keep each row's time
        # masks inside its real frames.
        for row, (frames, rng) in enumerate(zip(num_frames, rngs)):
            frames = int(frames)
            if not 0 <= frames <= max_frames:
                raise ValueError(f"num_frames[{row}] = {frames} is outside [0, {max_frames}]")
            for _ in range(self.num_time_masks):
                start, width = _draw_mask(self.time_mask_width, frames, rng)
                masked[row, start : start + width, :] = self.mask_value
            for _ in range(self.num_freq_masks):
                start, width = _draw_mask(self.freq_mask_width, num_bins, rng)
                masked[row, :frames, start : start + width] = self.mask_value
        return masked


def _draw_mask(max_width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    width = min(int(rng.integers(0, max_width + 1)), size)
    start = int(rng.integers(0, size - width + 1))
    return start, width


def _random_window(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """`length` samples from a random start; a recording shorter than that is tiled (wrapped around)."""
    starts = len(noise) - length + 1 if len(noise) >= length else len(noise)
    start = int(rng.integers(0, starts))
    return noise.take(np.arange(start, start + length), mode="wrap")


def _rms(waveform: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))


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
