"""Waveform augmentation and SpecAugment: reproducible from the clip's generator, and doing what each name says."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import soundfile
import torch

from ser_hf.inputs.augment import SpecAugment, WaveformAugmentation, waveform_augmentation

SAMPLING_RATE = 16000
ALL_ON = WaveformAugmentation(noise_prob=1.0, gain_prob=1.0, speed_prob=1.0, pitch_prob=1.0, reverb_prob=1.0)


def sine(seconds: float = 1.0, frequency: float = 220.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def click(seconds: float = 1.0, at_seconds: float = 0.1) -> np.ndarray:
    waveform = np.zeros(int(seconds * SAMPLING_RATE), dtype=np.float32)
    waveform[int(at_seconds * SAMPLING_RATE)] = 1.0
    return waveform


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(noise**2)))


def rms(waveform: np.ndarray) -> float:
    return float(np.sqrt(np.mean(waveform.astype(np.float64) ** 2)))


def dominant_frequency(waveform: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.argmax(spectrum) * SAMPLING_RATE / len(waveform))


def write_noise(path, seconds: float, seed: int = 0) -> np.ndarray:
    noise = (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLING_RATE))).astype(np.float32)
    soundfile.write(path, noise, SAMPLING_RATE, subtype="FLOAT")
    return noise


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- WaveformAugmentation


def test_same_seed_gives_identical_output_and_another_seed_does_not():
    waveform = sine()
    first = ALL_ON(waveform, rng(1))
    again = ALL_ON(waveform, rng(1))
    other = ALL_ON(waveform, rng(2))
    assert first.dtype == np.float32 and first.ndim == 1 and np.isfinite(first).all()
    assert np.array_equal(first, again)
    assert not np.array_equal(first[: min(len(first), len(other))], other[: min(len(first), len(other))])
    np.testing.assert_array_equal(waveform, sine())  # the input is never modified in place


def test_switching_one_augmentation_on_leaves_the_others_draws_unchanged():
    # Each step has its own child generator: adding a 0 dB gain step must not move the noise draws.
    noise_only = WaveformAugmentation(noise_prob=1.0)
    noise_and_unit_gain = replace(noise_only, gain_prob=1.0, gain_db=(0.0, 0.0))
    waveform = sine()
    np.testing.assert_array_equal(noise_only(waveform, rng(3)), noise_and_unit_gain(waveform, rng(3)))
    # ... and the caller's generator advances by the same amount whatever is enabled.
    first, second = rng(4), rng(4)
    noise_only(waveform, first)
    ALL_ON(waveform, second)
    assert first.random() == second.random()


def test_disabled_augmentation_returns_an_unchanged_copy_without_drawing():
    augmentation = WaveformAugmentation()
    assert not augmentation.enabled
    assert WaveformAugmentation(reverb_prob=0.1).enabled
    waveform = sine()
    generator = rng(0)
    state = generator.bit_generator.state
    out = augmentation(waveform, generator)
    np.testing.assert_array_equal(out, waveform)
    assert out is not waveform and out.dtype == np.float32
    assert generator.bit_generator.state == state


@pytest.mark.parametrize("target_snr", [5.0, 20.0])
def test_white_noise_is_mixed_at_the_drawn_snr(target_snr):
    augmentation = WaveformAugmentation(noise_prob=1.0, noise_snr_db=(target_snr, target_snr))
    waveform = sine()
    noisy = augmentation(waveform, rng(0))
    assert noisy.shape == waveform.shape
    assert snr_db(waveform, noisy) == pytest.approx(target_snr, abs=0.5)


def test_noise_snr_is_drawn_inside_the_range():
    augmentation = WaveformAugmentation(noise_prob=1.0, noise_snr_db=(10.0, 30.0))
    waveform = sine()
    measured = [snr_db(waveform, augmentation(waveform, rng(seed))) for seed in range(10)]
    assert all(9.5 <= value <= 30.5 for value in measured)
    assert max(measured) - min(measured) > 1.0


def test_recorded_noise_shorter_than_the_clip_is_tiled_and_mixed_at_the_snr(tmp_path):
    path = tmp_path / "babble.wav"
    recorded = write_noise(path, seconds=0.3)
    augmentation = WaveformAugmentation(noise_prob=1.0, noise_snr_db=(15.0, 15.0), noise_files=[str(path)])
    waveform = sine()
    noisy = augmentation(waveform, rng(0))
    assert noisy.shape == waveform.shape
    assert snr_db(waveform, noisy) == pytest.approx(15.0, abs=0.5)
    added = noisy.astype(np.float64) - waveform
    # Tiled: the added noise repeats with the recording's period, and it is the recording (scaled), not white noise.
    period = len(recorded)
    np.testing.assert_allclose(added[:-period], added[period:], atol=1e-5)
    window = added[:period]
    circular_correlation = np.fft.irfft(np.fft.rfft(window) * np.conj(np.fft.rfft(recorded)), n=period)
    correlation = np.max(np.abs(circular_correlation)) / (np.linalg.norm(window) * np.linalg.norm(recorded))
    assert correlation > 0.999


def test_recorded_noise_longer_than_the_clip_contributes_a_random_window(tmp_path):
    path = tmp_path / "cafe.wav"
    recorded = write_noise(path, seconds=3.0)
    augmentation = WaveformAugmentation(noise_prob=1.0, noise_snr_db=(10.0, 10.0), noise_files=[str(path)])
    waveform = sine()
    starts = set()
    for seed in range(3):
        added = augmentation(waveform, rng(seed)).astype(np.float64) - waveform
        size = len(recorded) + len(added)
        cross = np.fft.irfft(np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(added, size)), n=size)
        start = int(np.argmax(np.abs(cross)))
        assert start + len(added) <= len(recorded)
        window = recorded[start : start + len(added)]
        scale = np.dot(added, window) / np.dot(window, window)
        np.testing.assert_allclose(added, scale * window, atol=1e-5)  # one contiguous stretch of the recording
        starts.add(start)
    assert len(starts) == 3


def test_silent_input_with_noise_stays_finite():
    augmentation = WaveformAugmentation(noise_prob=1.0, reverb_prob=1.0, gain_prob=1.0)
    out = augmentation(np.zeros(SAMPLING_RATE, dtype=np.float32), rng(0))
    assert np.isfinite(out).all()
    assert out.shape == (SAMPLING_RATE,)


def test_gain_stays_inside_the_db_range():
    augmentation = WaveformAugmentation(gain_prob=1.0, gain_db=(-6.0, 6.0))
    waveform = sine()
    gains = [20 * np.log10(rms(augmentation(waveform, rng(seed))) / rms(waveform)) for seed in range(20)]
    assert all(-6.0 - 1e-4 <= gain <= 6.0 + 1e-4 for gain in gains)
    assert max(gains) - min(gains) > 3.0
    fixed = WaveformAugmentation(gain_prob=1.0, gain_db=(3.0, 3.0))(waveform, rng(0))
    assert 20 * np.log10(rms(fixed) / rms(waveform)) == pytest.approx(3.0, abs=1e-4)


def test_gain_is_applied_with_its_probability():
    augmentation = WaveformAugmentation(gain_prob=0.5, gain_db=(6.0, 6.0))
    waveform = sine()
    changed = sum(not np.array_equal(augmentation(waveform, rng(seed)), waveform) for seed in range(200))
    assert 70 <= changed <= 130


def test_speed_perturbation_changes_length_and_pitch_together():
    augmentation = WaveformAugmentation(speed_prob=1.0, speed_factors=(1.1,))
    waveform = sine()
    faster = augmentation(waveform, rng(0))
    assert len(faster) == pytest.approx(len(waveform) / 1.1, abs=2)
    assert dominant_frequency(faster) == pytest.approx(220.0 * 1.1, rel=0.01)
    for factor in (0.9, 1 / 1.1):
        slower = WaveformAugmentation(speed_prob=1.0, speed_factors=(factor,))(waveform, rng(0))
        assert len(slower) == pytest.approx(len(waveform) / factor, abs=2)
        assert dominant_frequency(slower) == pytest.approx(220.0 * factor, rel=0.01)


@pytest.mark.parametrize("semitones", [-2.0, 2.0])
def test_pitch_shift_keeps_length_and_moves_the_frequency(semitones):
    augmentation = WaveformAugmentation(pitch_prob=1.0, pitch_semitones=(semitones, semitones))
    waveform = sine()
    shifted = augmentation(waveform, rng(0))
    assert shifted.shape == waveform.shape and shifted.dtype == np.float32
    assert dominant_frequency(shifted) == pytest.approx(220.0 * 2 ** (semitones / 12), rel=0.01)


def tail_energy_fraction(waveform: np.ndarray, after_seconds: float) -> float:
    start = int(after_seconds * SAMPLING_RATE)
    return float(np.sum(waveform[start:].astype(np.float64) ** 2) / np.sum(waveform.astype(np.float64) ** 2))


def schroeder_rt60(response: np.ndarray) -> float:
    """RT60 from the slope of the backward-integrated energy between -5 and -25 dB (T20, ISO 3382)."""
    energy = np.cumsum(response[::-1].astype(np.float64) ** 2)[::-1]
    decay_db = 10 * np.log10(energy / energy[0])
    return 3 * (np.argmax(decay_db <= -25) - np.argmax(decay_db <= -5)) / SAMPLING_RATE


@pytest.mark.parametrize("rt60", [0.3, 0.7])
def test_generated_reverb_decays_with_the_drawn_rt60(rt60):
    waveform = click(at_seconds=0.1)
    out = WaveformAugmentation(reverb_prob=1.0, reverb_rt60=(rt60, rt60))(waveform, rng(0))
    assert out.shape == waveform.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert schroeder_rt60(out[int(0.1 * SAMPLING_RATE) :]) == pytest.approx(rt60, rel=0.1)
    # The click had no energy after it; the reverberated one keeps ~1e-3 of it (-30 dB) half an RT60 later.
    assert tail_energy_fraction(waveform, 0.1 + rt60 / 2) == 0.0
    assert 1e-4 < tail_energy_fraction(out, 0.1 + rt60 / 2) < 1e-2


def test_reverb_keeps_the_input_level():
    waveform = sine()
    out = WaveformAugmentation(reverb_prob=1.0)(waveform, rng(0))
    assert out.shape == waveform.shape
    assert rms(out) == pytest.approx(rms(waveform), rel=1e-3)
    assert not np.allclose(out, waveform, atol=1e-2)


def test_recorded_impulse_response_is_used_from_its_direct_path(tmp_path):
    pre_delay = 200
    decay = np.exp(-np.arange(4800) / 800) * 0.2 * np.random.default_rng(0).standard_normal(4800)
    impulse_response = np.concatenate([np.zeros(pre_delay), [1.0], decay]).astype(np.float32)
    path = tmp_path / "room.wav"
    soundfile.write(path, impulse_response, SAMPLING_RATE, subtype="FLOAT")
    augmentation = WaveformAugmentation(reverb_prob=1.0, impulse_responses=[str(path)])
    waveform = click(at_seconds=0.1)
    out = augmentation(waveform, rng(0))
    assert out.shape == waveform.shape and np.isfinite(out).all()
    assert int(np.argmax(np.abs(out))) == int(np.argmax(waveform))  # not delayed by the IR's silent lead-in
    assert tail_energy_fraction(out, 0.11) > 0.01


def test_very_short_clip_survives_every_augmentation():
    out = ALL_ON(sine(seconds=0.01), rng(0))
    assert out.ndim == 1 and out.dtype == np.float32 and np.isfinite(out).all() and len(out) > 0


def test_impulse_responses_are_loaded_once_and_files_kept_out_of_repr_and_equality(tmp_path):
    path = tmp_path / "room.wav"
    write_noise(path, seconds=0.5)
    augmentation = WaveformAugmentation(reverb_prob=1.0, impulse_responses=[str(path)])
    first = augmentation(sine(), rng(0))
    path.unlink()  # served from the cache from now on
    np.testing.assert_array_equal(augmentation(sine(), rng(0)), first)
    assert augmentation == WaveformAugmentation(reverb_prob=1.0, impulse_responses=[str(path)])
    assert "cache" not in repr(augmentation)
    noise_path = tmp_path / "hum.wav"
    write_noise(noise_path, seconds=0.5)
    with_noise = WaveformAugmentation(noise_prob=1.0, noise_files=[str(noise_path)])
    with_noise(sine(), rng(0))  # builds audiomentations' AddBackgroundNoise, which stays out of repr and equality
    assert with_noise == WaveformAugmentation(noise_prob=1.0, noise_files=[str(noise_path)])
    assert "AddBackgroundNoise" not in repr(with_noise)


def test_audiomentations_draws_leave_the_callers_global_generators_alone():
    # audiomentations reads `random` and `numpy.random`, torchaudio's masks torch's generator: each call seeds them
    # from the clip's generator and puts the caller's states back.
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    ALL_ON(sine(), rng(0))
    features, num_frames = padded_batch()
    SpecAugment(num_time_masks=2, num_freq_masks=2)(features, num_frames, [rng(row) for row in range(3)])
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected
    # ... and a caller that reseeds its global generators does not change the augmentation.
    np.random.seed(123)
    random.seed(123)
    np.testing.assert_array_equal(ALL_ON(sine(), rng(0)), ALL_ON(sine(), rng(0)))


def test_unsupported_noise_file_extension_is_named(tmp_path):
    path = tmp_path / "noise.data"
    write_noise(tmp_path / "noise.wav", seconds=0.5)
    (tmp_path / "noise.wav").rename(path)
    with pytest.raises(ValueError, match="noise_files") as error:
        WaveformAugmentation(noise_prob=1.0, noise_files=[str(path)])(sine(), rng(0))
    assert str(path) in str(error.value)


@pytest.mark.parametrize("field_name", ["noise_files", "impulse_responses"])
def test_missing_file_error_names_the_file(tmp_path, field_name):
    missing = str(tmp_path / "nowhere" / "clip.wav")
    augmentation = WaveformAugmentation(noise_prob=1.0, reverb_prob=1.0, **{field_name: [missing]})
    with pytest.raises(FileNotFoundError, match=field_name) as error:
        augmentation(sine(), rng(0))
    assert missing in str(error.value)


def test_undecodable_noise_file_error_names_the_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("not audio at all")
    augmentation = WaveformAugmentation(noise_prob=1.0, noise_files=[str(path)])
    with pytest.raises(ValueError, match="noise_files") as error:
        augmentation(sine(), rng(0))
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "arguments, field_name",
    [
        ({"noise_prob": 1.5}, "noise_prob"),
        ({"reverb_prob": -0.1}, "reverb_prob"),
        ({"gain_db": (6.0, -6.0)}, "gain_db"),
        ({"noise_snr_db": (10.0,)}, "noise_snr_db"),
        ({"pitch_semitones": (float("nan"), 1.0)}, "pitch_semitones"),
        ({"pitch_semitones": (-30.0, 1.0)}, "pitch_semitones"),
        ({"reverb_rt60": (0.0, 0.5)}, "reverb_rt60"),
        ({"speed_factors": (0.9, 0.0)}, "speed_factors"),
        ({"speed_factors": ()}, "speed_factors"),
        ({"speed_factors": ("fast",)}, "speed_factors"),
        ({"gain_db": ("loud", 6.0)}, "gain_db"),
        ({"noise_files": "noise.wav"}, "noise_files"),
        ({"sampling_rate": 0}, "sampling_rate"),
    ],
)
def test_bad_arguments_name_the_field(arguments, field_name):
    with pytest.raises(ValueError, match=field_name):
        WaveformAugmentation(**arguments)


def test_yaml_lists_are_accepted_as_ranges():
    augmentation = WaveformAugmentation(gain_db=[-3, 3], speed_factors=[0.9, 1.0, 1.1])
    assert augmentation.gain_db == (-3.0, 3.0)
    assert augmentation.speed_factors == (0.9, 1.0, 1.1)


def test_multichannel_input_is_refused():
    with pytest.raises(ValueError, match="1-D"):
        ALL_ON(np.zeros((2, 100), dtype=np.float32), rng(0))


# ---------------------------------------------------------------- SpecAugment

MASK = -100.0


def padded_batch() -> tuple[torch.Tensor, list[int]]:
    features = torch.randn(3, 60, 16, generator=torch.Generator().manual_seed(0))
    num_frames = [60, 35, 0]
    for row, frames in enumerate(num_frames):
        features[row, frames:] = 0.0
    return features, num_frames


def test_spec_augment_masks_only_real_frames_within_bounds():
    spec_augment = SpecAugment(
        num_time_masks=2, time_mask_width=10, num_freq_masks=2, freq_mask_width=4, mask_value=MASK
    )
    features, num_frames = padded_batch()
    original = features.clone()
    anything_masked = False
    for seed in range(20):
        masked = spec_augment(features, num_frames, [rng(seed * 10 + row) for row in range(3)])
        torch.testing.assert_close(features, original)  # a new tensor; the input is left alone
        for row, frames in enumerate(num_frames):
            assert torch.equal(masked[row, frames:], original[row, frames:])  # padding untouched
            is_masked = masked[row, :frames] == MASK
            anything_masked |= bool(is_masked.any())
            masked_frames = is_masked.all(dim=1) if frames else torch.zeros(0, dtype=torch.bool)
            masked_bins = is_masked.all(dim=0) if frames else torch.zeros(16, dtype=torch.bool)
            # Every masked cell lies in a whole masked frame or a whole masked bin, and there are at most
            # num_masks * width of each.
            assert torch.equal(is_masked, masked_frames[:, None] | masked_bins[None, :])
            assert int(masked_frames.sum()) <= 2 * 10
            assert int(masked_bins.sum()) <= 2 * 4
            unmasked = ~is_masked
            assert torch.equal(masked[row, :frames][unmasked], original[row, :frames][unmasked])
    assert anything_masked


def test_spec_augment_is_deterministic_with_seeded_generators():
    spec_augment = SpecAugment(
        num_time_masks=2, time_mask_width=10, num_freq_masks=2, freq_mask_width=4, mask_value=MASK
    )
    features, num_frames = padded_batch()
    first = spec_augment(features, num_frames, [rng(row) for row in range(3)])
    again = spec_augment(features, num_frames, [rng(row) for row in range(3)])
    other = spec_augment(features, num_frames, [rng(100 + row) for row in range(3)])
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_disabled_spec_augment_returns_an_equal_new_tensor():
    spec_augment = SpecAugment(num_time_masks=3, time_mask_width=0)
    assert not spec_augment.enabled
    assert SpecAugment(num_freq_masks=1).enabled
    features, num_frames = padded_batch()
    out = spec_augment(features, num_frames, [rng(row) for row in range(3)])
    assert torch.equal(out, features) and out is not features


@pytest.mark.parametrize(
    "arguments, field_name",
    [
        ({"num_time_masks": -1}, "num_time_masks"),
        ({"time_mask_width": -5}, "time_mask_width"),
        ({"num_freq_masks": 1.5}, "num_freq_masks"),
        ({"freq_mask_width": -1}, "freq_mask_width"),
        ({"mask_value": float("inf")}, "mask_value"),
        ({"mask_value": "zero"}, "mask_value"),
    ],
)
def test_spec_augment_bad_arguments_name_the_field(arguments, field_name):
    with pytest.raises(ValueError, match=field_name):
        SpecAugment(**arguments)


def test_spec_augment_refuses_a_batch_that_does_not_match_its_lengths():
    features, num_frames = padded_batch()
    spec_augment = SpecAugment(num_time_masks=1)
    with pytest.raises(ValueError, match="one num_frames and one rng per row"):
        spec_augment(features, num_frames, [rng(0)])
    with pytest.raises(ValueError, match="num_frames"):
        spec_augment(features, [61, 35, 0], [rng(row) for row in range(3)])


# ---------------------------------------------------------------- the transmission: telephone and codecs


def band_energy(waveform: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(waveform.astype(np.float64))) ** 2
    frequencies = np.fft.rfftfreq(len(waveform), 1 / SAMPLING_RATE)
    return float(spectrum[(frequencies >= low_hz) & (frequencies < high_hz)].sum())


def test_telephone_keeps_the_voice_band_and_removes_what_lies_above_it():
    waveform = sine(frequency=1000.0, amplitude=0.3) + sine(frequency=6000.0, amplitude=0.3)
    out = WaveformAugmentation(telephone_prob=1.0)(waveform, rng(0))
    assert out.shape == waveform.shape
    assert band_energy(out, 5500, 6500) < 1e-3 * band_energy(waveform, 5500, 6500)
    assert band_energy(out, 900, 1100) > 0.5 * band_energy(waveform, 900, 1100)


def test_codec_round_trip_is_seeded_and_lossy_and_the_rate_is_drawn_from_the_range():
    augmentation = WaveformAugmentation(codec_prob=1.0, codecs=("opus",), codec_bitrate_kbps=(6.0, 6.0))
    waveform = sine(frequency=440.0) + 0.05 * np.random.default_rng(0).standard_normal(SAMPLING_RATE).astype(
        np.float32
    )
    first, again = augmentation(waveform, rng(5)), augmentation(waveform, rng(5))
    assert first.shape == waveform.shape and np.array_equal(first, again)
    assert not np.allclose(first, waveform, atol=1e-3)
    assert abs(dominant_frequency(first) - 440.0) < 5  # the tone survives the codec
    # A higher bit rate keeps more of the clip.
    fine = replace(augmentation, codec_bitrate_kbps=(64.0, 64.0))(waveform, rng(5))
    assert np.mean((fine - waveform) ** 2) < np.mean((first - waveform) ** 2)


def test_noise_colours_are_drawn_per_clip_and_one_colour_keeps_the_white_noise_draws():
    waveform = sine()
    white = WaveformAugmentation(noise_prob=1.0)(waveform, rng(7))
    assert np.array_equal(white, WaveformAugmentation(noise_prob=1.0, noise_colors=("white",))(waveform, rng(7)))
    brown = WaveformAugmentation(noise_prob=1.0, noise_colors=("brown",), noise_snr_db=(0.0, 0.0))
    noise = brown(waveform, rng(7)) - waveform
    # Brown noise puts its power in the low frequencies, white noise spreads it evenly.
    assert band_energy(noise, 20, 500) > 10 * band_energy(noise, 4000, 4480)
    mixed = WaveformAugmentation(noise_prob=1.0, noise_colors=("white", "pink", "brown"))
    assert len({mixed(waveform, rng(seed)).tobytes() for seed in range(4)}) == 4


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"noise_colors": ("purple",)}, "noise_colors must name one or more of white, pink, brown"),
        ({"codecs": ("aac",)}, "codecs must name one or more of opus, mp3"),
        ({"codecs": ()}, "codecs must name one or more"),
        ({"codec_bitrate_kbps": (0.5, 8.0)}, "codec_bitrate_kbps must be at least 1 kbit/s"),
        # The ranges ser-hf evaluate --conditions takes, refused when the recipe is read, not in training.
        ({"codec_bitrate_kbps": (8.0, 1000.0)}, "codec_bitrate_kbps of opus must be between 500 and 256k"),
        ({"codecs": ("mp3",), "codec_bitrate_kbps": (4.0, 32.0)}, "codec_bitrate_kbps of mp3 must be between 8k"),
        ({"noise_snr_db": (10.0, 1.0e9)}, r"noise_snr_db must be between -40 and 100 dB, got 1e\+09"),
        ({"reverb_rt60": (0.2, 30.0)}, "reverb_rt60 must be between 0.1 and 3 seconds, got 30"),
        ({"telephone_prob": 1.5}, "telephone_prob"),
    ],
)
def test_bad_transmission_settings_are_refused_by_name(settings, message):
    with pytest.raises(ValueError, match=message):
        WaveformAugmentation(**settings)


def test_a_recipe_passes_every_waveform_perturbation_on():
    from ser_hf.inputs.augment import PROBABILITIES
    from ser_hf.recipe.augmentation_arguments import AugmentationArguments

    assert sorted(AugmentationArguments.waveform_probabilities()) == sorted(PROBABILITIES)
    arguments = AugmentationArguments(telephone_prob=0.25, codec_prob=0.5, codecs=["opus"], noise_colors="pink")
    augmentation = waveform_augmentation(arguments, SAMPLING_RATE)
    assert (augmentation.telephone_prob, augmentation.codec_prob, augmentation.codecs) == (0.25, 0.5, ("opus",))
    assert augmentation.noise_colors == ("pink",)


def test_a_codec_ffmpeg_cannot_encode_is_refused_by_name_before_any_clip(monkeypatch):
    from ser_hf.inputs import degradations

    def no_encoder(*args, **kwargs):
        raise RuntimeError("Unknown encoder")

    degradations.check_codec.cache_clear()
    monkeypatch.setattr(degradations, "codec_round_trip", no_encoder)
    try:
        with pytest.raises(ValueError, match="mp3: the FFmpeg libraries torchcodec loads cannot encode it"):
            WaveformAugmentation(codec_prob=0.5, codecs=("mp3",))
        WaveformAugmentation(codec_prob=0.0, codecs=("mp3",))  # never applied: not checked
    finally:
        degradations.check_codec.cache_clear()
