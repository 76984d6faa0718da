"""The Whisper feature extractor's dereverberation front end (`dereverberation="wpe"`, nara_wpe): it takes a room's
late reverberation out of each clip before the log-mel, by itself in a batch, alike in the encoder cache and in the
saved model, keys the caches it changes (and only those), reaches further into the room's tail with a longer filter
(`dereverberation_taps`), and names a bad setting or a missing package."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoFeatureExtractor, Wav2Vec2Config

from ser_hf.errors import RecipeError
from ser_hf.inputs.degradations import Reverberation
from ser_hf.inputs.encoder_cache_keys import encoder_cache_key
from ser_hf.inputs.encoder_states import encode_dataset
from ser_hf.inputs.fast_mode import CachedEncoderHead, EncoderStatesCollator
from ser_hf.models import SerWhisperFeatureExtractor, build_ssl_feature_extractor
from ser_hf.models.runtime.model_settings import _check_whisper_extractor
from tests.conftest_models import load_clip
from tests.models.test_whisper import assert_unset_field_keeps_the_cache_key, logits, tiny_whisper


def in_a_room(seconds_of_speech: float = 2.0, rt60: float = 1.0) -> tuple[np.ndarray, np.ndarray, int]:
    """A shipped clip with half a second of silence after it, and the same in a simulated room of `rt60` (seeded);
    and the number of samples of speech."""
    speech = load_clip(0, seconds_of_speech)
    dry = np.concatenate([speech, np.zeros(8000, np.float32)])
    wet = Reverberation(rt60).apply(dry, 16000, np.random.default_rng(0)).astype(np.float32)
    return dry, wet, len(speech)


def test_wpe_takes_the_rooms_tail_out_before_the_log_mel_clip_by_clip():
    _, wet, speech_samples = in_a_room()
    plain = SerWhisperFeatureExtractor(feature_size=16)
    wpe = SerWhisperFeatureExtractor(feature_size=16, dereverberation="wpe")
    assert np.array_equal(plain.dereverberate(wet), wet)  # without the setting: the clip as recorded

    dereverberated = wpe.dereverberate(wet)
    assert dereverberated.dtype == np.float32 and dereverberated.shape == wet.shape
    assert np.isfinite(dereverberated).all()
    # After the speech ends (a tenth of a second on, past the direct sound) only the room is heard: WPE takes out
    # a good share of it (about 30 % of its energy at RT60 1 s).
    tail = slice(speech_samples + 1600, None)
    assert np.sum(dereverberated[tail] ** 2) < 0.8 * np.sum(wet[tail] ** 2)
    np.testing.assert_array_equal(wpe.dereverberate(wet), dereverberated)  # deterministic

    # The log-mel is the dereverberated clip's; a batch dereverberates each clip by itself.
    np.testing.assert_allclose(
        wpe(wet, sampling_rate=16000)["input_features"], plain(dereverberated, sampling_rate=16000)["input_features"]
    )
    other = load_clip(1, 1.0)
    batch = wpe([wet, other], sampling_rate=16000)["input_features"]
    np.testing.assert_allclose(batch[1], wpe(other, sampling_rate=16000)["input_features"][0])
    # A clip shorter than one STFT frame passes as it is; silence stays silence (no NaN from its zero power).
    assert np.array_equal(wpe.dereverberate(other[:300]), other[:300])
    silence = wpe.dereverberate(np.zeros(16000, np.float32))
    assert silence.shape == (16000,) and np.isfinite(silence).all() and not np.any(silence)


def test_the_cache_and_the_saved_model_dereverberate_alike(tmp_path):
    _, wet, _ = in_a_room(1.5)
    model, plain = tiny_whisper(freeze_base_model=True, use_weighted_layer_sum=True, pooling_mode="layer_statistics")
    wpe = build_ssl_feature_extractor(model.config, dereverberation="wpe")
    assert wpe.dereverberation == "wpe" and plain.dereverberation is None
    encoded = encode_dataset(model, wpe, Dataset.from_dict({"waveform": [wet]}), cache_dir=tmp_path / "cache")
    cached = CachedEncoderHead(model)(**EncoderStatesCollator(wpe)(list(encoded.remove_columns("waveform"))))
    model.save_pretrained(tmp_path / "saved")
    wpe.save_pretrained(tmp_path / "saved")
    reloaded = AutoFeatureExtractor.from_pretrained(tmp_path / "saved")
    assert reloaded.dereverberation == "wpe"
    torch.testing.assert_close(cached.logits, logits(model, reloaded, [wet]), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(cached.logits, logits(model, plain, [wet]), atol=1e-4)
    # With silence trimming too, the room is taken out first and the trimmed clip is what the window reads.
    both = build_ssl_feature_extractor(model.config, dereverberation="wpe", trim_silence_db=30)
    np.testing.assert_allclose(
        both(wet, sampling_rate=16000)["input_features"],
        plain(both.trim_silence(both.dereverberate(wet)), sampling_rate=16000)["input_features"],
    )


def test_dereverberation_keys_only_the_caches_it_changes_and_a_bad_setting_is_named(monkeypatch):
    model, plain = tiny_whisper(freeze_base_model=True)
    dataset = Dataset.from_dict({"waveform": [load_clip(0, 0.5)]})
    assert_unset_field_keeps_the_cache_key(model, dataset, "dereverberation")  # clips as recorded keep their keys
    wpe = build_ssl_feature_extractor(model.config, dereverberation="wpe")
    assert encoder_cache_key(model, wpe, dataset) != encoder_cache_key(model, plain, dataset)

    for bad in ("WPE", "yes", True, 1):
        with pytest.raises(ValueError, match=f"dereverberation must be null or one of wpe, got {bad!r}"):
            SerWhisperFeatureExtractor(feature_size=16, dereverberation=bad)
        with pytest.raises(RecipeError, match=f"feature_extractor_config.dereverberation: {bad!r} is not one of wpe"):
            _check_whisper_extractor({"dereverberation": bad})
    with pytest.raises(
        ValueError, match="dereverberation .*apply to Whisper encoders, not to Wav2Vec2FeatureExtractor"
    ):
        build_ssl_feature_extractor(Wav2Vec2Config(), dereverberation="wpe")

    # Without nara_wpe, the extractor (so a saved model's loading) and the recipe say how to install it.
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nara_wpe" else find_spec(name))
    with pytest.raises(ImportError, match=r"nara_wpe, which is not installed: pip install 'ser-hf\[dereverberation\]"):
        SerWhisperFeatureExtractor(feature_size=16, dereverberation="wpe")
    with pytest.raises(RecipeError, match=r"dereverberation: dereverberation='wpe' runs nara_wpe.*ser-hf\[derev"):
        _check_whisper_extractor({"dereverberation": "wpe"})
    SerWhisperFeatureExtractor(feature_size=16)  # clips as recorded need nothing more


def test_a_longer_prediction_filter_takes_more_of_the_rooms_tail_and_is_saved_keyed_and_checked(tmp_path):
    _, wet, speech_samples = in_a_room()
    tail = slice(speech_samples + 1600, None)
    short = SerWhisperFeatureExtractor(feature_size=16, dereverberation="wpe")
    default = SerWhisperFeatureExtractor(feature_size=16, dereverberation="wpe", dereverberation_taps=10)
    long = SerWhisperFeatureExtractor(feature_size=16, dereverberation="wpe", dereverberation_taps=40)
    np.testing.assert_array_equal(default.dereverberate(wet), short.dereverberate(wet))  # unset: 10 frames
    assert np.sum(long.dereverberate(wet)[tail] ** 2) < 0.8 * np.sum(short.dereverberate(wet)[tail] ** 2)

    long.save_pretrained(tmp_path)
    assert AutoFeatureExtractor.from_pretrained(tmp_path).dereverberation_taps == 40

    # The caches of WPE's default filter keep the key they had before the length was an option; another length keys
    # its own.
    model, _ = tiny_whisper(freeze_base_model=True)
    dataset = Dataset.from_dict({"waveform": [load_clip(0, 0.5)]})
    before_the_setting = build_ssl_feature_extractor(model.config, dereverberation="wpe")
    delattr(before_the_setting, "dereverberation_taps")
    assert "dereverberation_taps" not in before_the_setting.to_dict()
    keys = [
        encoder_cache_key(
            model, build_ssl_feature_extractor(model.config, dereverberation="wpe", dereverberation_taps=taps), dataset
        )
        for taps in (None, 20, 40)
    ]
    assert keys[0] == encoder_cache_key(model, before_the_setting, dataset) and len(set(keys)) == 3

    for bad in (0, 101, 2.5, "20", True):
        with pytest.raises(
            ValueError, match=f"dereverberation_taps must be a whole number of STFT frames .* got {bad!r}"
        ):
            SerWhisperFeatureExtractor(feature_size=16, dereverberation="wpe", dereverberation_taps=bad)
        with pytest.raises(RecipeError, match=f"feature_extractor_config.dereverberation_taps must be .* got {bad!r}"):
            _check_whisper_extractor({"dereverberation": "wpe", "dereverberation_taps": bad})
    without_wpe = "dereverberation_taps \\(20\\) sets the filter of dereverberation: wpe, which is not set"
    with pytest.raises(ValueError, match=without_wpe):
        SerWhisperFeatureExtractor(feature_size=16, dereverberation_taps=20)
    with pytest.raises(RecipeError, match=f"feature_extractor_config.{without_wpe}"):
        _check_whisper_extractor({"dereverberation_taps": 20})
    with pytest.raises(ValueError, match="dereverberation_taps\\) apply to Whisper encoders, not to Wav2Vec2"):
        build_ssl_feature_extractor(Wav2Vec2Config(), dereverberation_taps=20)
