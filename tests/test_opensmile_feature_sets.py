"""openSMILE feature sets combined into one extractor (``feature_set: ComParE_2016+eGeMAPSv02``)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ser_hf.models import OpenSmileFeatureExtractor, build_baseline


@pytest.fixture(scope="module")
def clip(tiny_ravdess) -> np.ndarray:
    waveform, _ = sf.read(sorted((tiny_ravdess / "Actor_01").glob("*.flac"))[0], dtype="float32")
    return waveform


def test_combined_feature_sets_give_every_sets_functionals_side_by_side(clip, tmp_path):
    combined = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02+GeMAPSv01b", normalization="none")
    assert combined.feature_size == 88 + 62
    expected = np.concatenate([OpenSmileFeatureExtractor(feature_set=name, normalization="none").functionals(clip)
                               for name in ("eGeMAPSv02", "GeMAPSv01b")])
    np.testing.assert_allclose(combined(clip)["input_features"][0], expected, rtol=1e-6)

    combined.save_pretrained(tmp_path)
    reloaded = OpenSmileFeatureExtractor.from_pretrained(tmp_path)
    assert reloaded.feature_set == "eGeMAPSv02+GeMAPSv01b" and reloaded.feature_size == 150
    model, _ = build_baseline("opensmile", ["neutral", "sad"], feature_extractor=reloaded)
    assert model.config.num_features == 150


def test_a_list_of_feature_sets_is_the_same_as_joining_them_with_plus():
    extractor = OpenSmileFeatureExtractor(feature_set=["ComParE_2016", "eGeMAPSv02"])
    assert extractor.feature_set == "ComParE_2016+eGeMAPSv02" and extractor.feature_size == 6373 + 88


@pytest.mark.parametrize("feature_set, message", [
    ("ComParE_2016+eGeMAPS", "Unknown openSMILE feature_set 'ComParE_2016\\+eGeMAPS'"),
    ("eGeMAPSv02+eGeMAPSv02", "names a feature set twice"),
])
def test_a_bad_combination_is_refused_naming_it(feature_set, message):
    with pytest.raises(ValueError, match=message):
        OpenSmileFeatureExtractor(feature_set=feature_set)
