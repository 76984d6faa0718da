"""Each degradation of ``ser-hf evaluate --conditions`` (and of augmentation) does what its name says, measured on its
output; the condition syntax reads what it writes and refuses anything else by name."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from ser_hf.inputs.degradations import (
    CODEC_BITRATES,
    CONDITIONS,
    Babble,
    Codec,
    ColoredNoise,
    Reverberation,
    Telephone,
    codec_round_trip,
    parse_condition,
    parse_conditions,
    room_impulse_response,
    schroeder_rt60,
)
from tests.conftest import RAVDESS_SAMPLE

RATE = 16000


def speech(index: int = 0) -> np.ndarray:
    """A real clip of the shipped sample (16 kHz)."""
    path = sorted(RAVDESS_SAMPLE.glob("Actor_0*/*.flac"))[index]
    waveform, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE
    return waveform


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def snr_db(clean: np.ndarray, degraded: np.ndarray) -> float:
    noise = degraded.astype(np.float64) - clean
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(noise**2)))


def band_power(waveform: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(waveform.astype(np.float64))) ** 2
    frequencies = np.fft.rfftfreq(len(waveform), 1 / RATE)
    return float(spectrum[(frequencies >= low) & (frequencies < high)].sum())


@pytest.mark.parametrize("snr", [0.0, 10.0])
@pytest.mark.parametrize("color", ["pink", "white"])
def test_colored_noise_is_mixed_at_the_snr_measured_on_the_output(snr, color):
    clean = speech()
    noisy = ColoredNoise(snr, color).apply(clean, RATE, rng())
    assert noisy.shape == clean.shape and noisy.dtype == np.float32
    assert snr_db(clean, noisy) == pytest.approx(snr, abs=0.05)
    np.testing.assert_array_equal(ColoredNoise(snr, color).apply(clean, RATE, rng()), noisy)  # seeded
    assert not np.array_equal(ColoredNoise(snr, color).apply(clean, RATE, rng(1)), noisy)


def test_pink_noise_falls_with_frequency_and_white_noise_does_not():
    silence_free = np.full(RATE * 2, 0.1, dtype=np.float32)  # a constant: all its power at 0 Hz, none in the bands
    pink = ColoredNoise(0.0, "pink").apply(silence_free, RATE, rng()) - silence_free
    white = ColoredNoise(0.0, "white").apply(silence_free, RATE, rng()) - silence_free
    # Pink noise: equal power per octave, so an octave band up high holds no more than one down low.
    assert band_power(pink, 4000, 8000) / band_power(pink, 250, 500) == pytest.approx(1.0, rel=0.5)
    assert band_power(white, 4000, 8000) / band_power(white, 250, 500) == pytest.approx(16.0, rel=0.2)


def test_babble_mixes_other_talkers_at_the_snr():
    clean, talkers = speech(0), [speech(index) for index in (40, 80, 120)]
    babble = Babble(5.0, speakers=3).apply(clean, RATE, rng(), talkers)
    assert babble.shape == clean.shape
    assert snr_db(clean, babble) == pytest.approx(5.0, abs=0.05)
    with pytest.raises(ValueError, match="other speakers' clips"):
        Babble(5.0).apply(clean, RATE, rng(), [])


def test_telephone_keeps_300_to_3400_hz_at_8_khz():
    clean = (0.01 * rng().standard_normal(RATE * 2)).astype(np.float32)
    phone = Telephone().apply(clean, RATE, rng())
    assert phone.shape == clean.shape and phone.dtype == np.float32
    kept = band_power(phone, 500, 3000) / band_power(clean, 500, 3000)
    assert 0.8 < kept < 1.25  # the pass band goes through
    assert band_power(phone, 4100, 8000) / band_power(clean, 4100, 8000) < 1e-4  # nothing above 8 kHz's Nyquist
    assert band_power(phone, 20, 150) / band_power(clean, 20, 150) < 0.05  # the low band is cut
    # A tone in the pass band comes back with 8-bit mu-law's quantisation noise: close, not a clean copy.
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE)).astype(np.float32)
    heard = Telephone().apply(tone, RATE, rng())
    assert 20 < snr_db(tone[1000:-1000], heard[1000:-1000]) < 45


@pytest.mark.parametrize(("codec", "bitrate"), [("opus", 12000), ("mp3", 32000)])
def test_codecs_round_trip_at_the_rate_and_length_and_lose_detail(codec, bitrate):
    clean = speech()
    coded = Codec(codec, bitrate).apply(clean, RATE, rng())
    assert coded.shape == clean.shape and coded.dtype == np.float32
    # Aligned (no codec delay left) and close, but lossy.
    assert 5 < snr_db(clean, coded) < 40
    low = Codec(codec, 8000 if codec == "opus" else 16000).apply(clean, RATE, rng())
    assert snr_db(clean, low) < snr_db(clean, coded)  # fewer bits, further from the clip


@pytest.mark.parametrize("rt60", [0.3, 0.6])
def test_simulated_rooms_ring_for_their_rt60(rt60):
    for room in range(2):
        response = room_impulse_response(rt60, room, RATE)
        assert schroeder_rt60(response, RATE) == pytest.approx(rt60, rel=0.1)
    click = np.zeros(RATE * 2, dtype=np.float32)
    click[1600] = 1.0
    heard = Reverberation(rt60).apply(click, RATE, rng())
    assert heard.shape == click.shape and int(np.argmax(np.abs(heard))) == 1600  # not delayed
    tail = heard[1600:]
    assert schroeder_rt60(tail, RATE) == pytest.approx(rt60, rel=0.1)
    # The tail's length: half an RT60 after the click about 30 dB of its energy is gone, 60 dB by 1.2 RT60.
    energy = np.cumsum(tail[::-1].astype(np.float64) ** 2)[::-1] / np.sum(tail.astype(np.float64) ** 2)
    assert 1e-4 < energy[int(rt60 / 2 * RATE)] < 1e-2 and energy[int(1.2 * rt60 * RATE)] < 1e-5


def test_reverberation_keeps_the_level_and_draws_its_room_from_the_generator():
    clean = speech()
    heard = Reverberation(0.6).apply(clean, RATE, rng(0))
    assert np.sqrt(np.mean(heard**2)) == pytest.approx(np.sqrt(np.mean(clean**2)), rel=1e-3)
    rooms = {Reverberation(0.6).apply(clean, RATE, rng(seed)).tobytes() for seed in range(12)}
    assert len(rooms) > 1


def test_conditions_read_back_as_they_are_written():
    written = [
        "pink_noise:snr=10",
        "babble:snr=5",
        "telephone",
        "opus:bitrate=12k",
        "mp3:bitrate=32000",
        "reverb:rt60=0.6",
    ]
    conditions = parse_conditions(written)
    assert conditions == [
        ColoredNoise(10.0, "pink"),
        Babble(5.0, speakers=4),
        Telephone(),
        Codec("opus", 12000),
        Codec("mp3", 32000),
        Reverberation(0.6),
    ]
    assert [str(condition) for condition in conditions] == [
        "pink_noise:snr=10",
        "babble:snr=5,speakers=4",
        "telephone",
        "opus:bitrate=12k",
        "mp3:bitrate=32k",
        "reverb:rt60=0.6",
    ]
    assert all(parse_condition(str(condition)) == condition for condition in conditions)
    assert set(CONDITIONS) >= {"pink_noise", "white_noise", "babble", "telephone", "opus", "mp3", "reverb"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pinknoise:snr=10", "unknown condition 'pinknoise:snr=10'; the conditions are: white_noise:snr=DB, "),
        ("pink_noise", "condition 'pink_noise' needs snr: write it as pink_noise:snr=DB."),
        ("pink_noise:snr=loud", "condition 'pink_noise:snr=loud': snr: 'loud' is not a number; write it as "),
        ("opus:bitrate=12q", "bitrate: '12q' is not a bit rate (e.g. 12k or 12000)"),
        ("opus:bitrate=499", "bitrate of opus must be between 500 and 256k bits per second"),
        ("reverb:rt=0.6", "'rt=0.6' is not a parameter of reverb (its parameters: rt60); write it as reverb:rt60="),
        ("reverb:rt60=0", "rt60 must be between 0.1 and 3 seconds"),
        ("telephone:band=wide", "'band=wide' is not a parameter of telephone (its parameters: none)"),
        ("babble:snr=5,speakers=0", "speakers must be between 1 and 20"),
    ],
)
def test_a_bad_condition_is_named_with_how_to_write_it(text, message):
    with pytest.raises(ValueError) as error:
        parse_condition(text)
    assert message in str(error.value)
    if text.startswith("pinknoise"):
        assert "reverb:rt60=SECONDS" in str(error.value) and "babble:snr=DB[,speakers=N]" in str(error.value)


def test_a_condition_given_twice_is_refused():
    with pytest.raises(ValueError, match="pink_noise:snr=10 is given more than once"):
        parse_conditions(["pink_noise:snr=10", "pink_noise:snr=10.0"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # The gain 10**(snr/20) overflowed after the clean pass; -1000 dB turned the clips into inf/NaN.
        ("pink_noise:snr=1e9", "condition 'pink_noise:snr=1e9': snr must be between -40 and 100 dB, got 1e+09."),
        ("white_noise:snr=-1000", "condition 'white_noise:snr=-1000': snr must be between -40 and 100 dB, got -1000."),
        ("brown_noise:snr=nan", "condition 'brown_noise:snr=nan': snr must be between -40 and 100 dB, got nan."),
        ("babble:snr=200", "condition 'babble:snr=200': snr must be between -40 and 100 dB, got 200."),
        ("babble:snr=5,speakers=100000", "'babble:snr=5,speakers=100000': speakers must be between 1 and 20"),
        # FFmpeg's encoder refused it only when the first clip was encoded.
        (
            "opus:bitrate=100000k",
            "condition 'opus:bitrate=100000k': bitrate of opus must be between 500 and 256k bits per second (what "
            "FFmpeg's opus encoder takes for a mono clip), got 100000k.",
        ),
        ("mp3:bitrate=1k", "condition 'mp3:bitrate=1k': bitrate of mp3 must be between 8k and 320k bits per second"),
        ("reverb:rt60=30", "condition 'reverb:rt60=30': rt60 must be between 0.1 and 3 seconds, got 30."),
    ],
)
def test_a_value_past_its_range_is_refused_naming_the_condition_parameter_and_range(text, message):
    with pytest.raises(ValueError) as error:
        parse_condition(text)
    assert message in str(error.value)


def test_the_codec_bit_rate_ranges_are_what_the_installed_ffmpeg_encodes():
    """The ends of each range encode; past opus' ends FFmpeg refuses (LAME takes any number and clamps it)."""
    clip = speech()[:RATE]
    for codec, (low, high) in CODEC_BITRATES.items():
        for bitrate in (low, high):
            assert codec_round_trip(clip, RATE, codec, bitrate).shape == clip.shape
    low, high = CODEC_BITRATES["opus"]
    for bitrate in (low - 1, high + 1):
        with pytest.raises(RuntimeError):
            codec_round_trip(clip, RATE, "opus", bitrate)
