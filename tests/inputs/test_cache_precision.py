"""16-bit caches (``cache_precision: float16``): half the bytes of the decoded waveforms and of the cached encoder
outputs, the results of float32 storage within float16's rounding, and never a cache of one precision read as the
other."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from ser_hf import load_corpus, prepare_audio
from ser_hf.data.dataset_info import get_ser_info
from ser_hf.inputs.encoder_states import encode_dataset
from ser_hf.inputs.fast_mode import ENCODER_STATES_COLUMN, CachedEncoderHead
from ser_hf.inputs.feature_encoder_cache import FEATURES_COLUMN, encode_feature_encoder_outputs
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
from ser_hf.train import main
from tests.conftest_models import LABELS, TINY_SSL, tiny_ssl_config
from tests.recipe.test_parser import write_recipe

#: float16 keeps 11 significant bits: each stored value is within 2**-11 (relative) of its float32 value, or within
#: 2**-24 (absolute) below 2**-14, where float16's values are subnormal and evenly spaced.
FLOAT16_ROUNDING = dict(rtol=2.0**-11, atol=2.0**-24)


@pytest.fixture(scope="module")
def prepared(tiny_ravdess, tmp_path_factory):
    """The tiny corpus decoded into float32 and into float16 caches."""
    cache = tmp_path_factory.mktemp("waveforms")
    corpus = load_corpus("ravdess", tiny_ravdess)
    return {
        precision: prepare_audio(corpus, cache_dir=cache, precision=precision, num_proc=1)
        for precision in ("float32", "float16")
    }


def test_float16_waveforms_take_half_the_cache_within_float16_rounding(prepared):
    files = {precision: get_ser_info(dataset)["prepared_cache"] for precision, dataset in prepared.items()}
    assert not set(files["float16"]) & set(files["float32"])  # another key: neither cache is read as the other
    sizes = {precision: sum(map(os.path.getsize, paths)) for precision, paths in files.items()}
    assert sizes["float16"] < 0.55 * sizes["float32"]
    assert prepared["float16"].features["waveform"].feature.dtype == "float16"
    for row32, row16 in zip(prepared["float32"].with_format("numpy"), prepared["float16"].with_format("numpy")):
        np.testing.assert_allclose(row16["waveform"], row32["waveform"], **FLOAT16_ROUNDING)


def tiny_ssl_model():
    """A tiny wav2vec 2.0 classifier, its encoder frozen (FAST mode needs it) and head initialised at scale 1."""
    config = tiny_ssl_config("wav2vec2")
    torch.manual_seed(0)
    model = build_ssl_classifier(config, LABELS, freeze_base_model=True)
    with torch.no_grad():
        for parameter in [*model.projector.parameters(), *model.classifier.parameters()]:
            parameter.normal_()
    return model.eval(), build_ssl_feature_extractor(config)


def test_float16_encoder_caches_hold_the_float32_values_within_float16_rounding(prepared, tmp_path):
    model, feature_extractor = tiny_ssl_model()
    dataset = prepared["float32"]
    frames = {
        precision: encode_feature_encoder_outputs(
            model, feature_extractor, dataset, cache_dir=tmp_path, precision=precision
        ).with_format("numpy")
        for precision in ("float32", "float16")
    }
    assert frames["float16"].features[FEATURES_COLUMN].dtype == "float16"
    for row32, row16 in zip(frames["float32"], frames["float16"]):
        np.testing.assert_allclose(row16[FEATURES_COLUMN], row32[FEATURES_COLUMN], **FLOAT16_ROUNDING)

    states = {
        precision: encode_dataset(model, feature_extractor, dataset, cache_dir=tmp_path, precision=precision)
        for precision in ("float32", "float16")
    }
    assert get_ser_info(states["float16"])["encoder_cache"] != get_ser_info(states["float32"])["encoder_cache"]
    head = CachedEncoderHead(model)
    logits = {
        precision: head(torch.tensor(np.asarray(split.with_format("numpy")[ENCODER_STATES_COLUMN]))).logits
        for precision, split in states.items()
    }
    # The head is linear up to its softmax: a relative error of 2**-11 on each state moves each logit by at most
    # that much of the sum of |weight x state| along its path; at the head's scale (weights ~ N(0, 1)) 1e-2 bounds it.
    torch.testing.assert_close(logits["float16"], logits["float32"], atol=1e-2, rtol=1e-2)
    assert torch.equal(logits["float16"].argmax(-1), logits["float32"].argmax(-1))


@pytest.mark.slow
def test_a_model_trained_from_float16_caches_matches_one_trained_from_float32(tmp_path, tiny_ravdess, prepared):
    """The whole recipe path, waveforms and feature-encoder frames both stored as float16, against float32: the same
    predictions (and so UA) on validation and test, and the saved models' logits on every clip within a tolerance.

    Plain SGD, so that each update is proportional to its gradient: Adam's first steps move every weight by about the
    learning rate whatever its gradient's size, so weights with near-zero gradients flip direction on any rounding.
    """
    runs = {}
    for precision in ("float32", "float16"):
        recipe = write_recipe(
            tmp_path / f"{precision}.yaml",
            tiny_ravdess,
            model_type="wav2vec2",
            model_config=TINY_SSL,
            max_duration_seconds=None,
            optim="sgd",
            learning_rate=0.1,
            load_best_model_at_end=False,
            output_dir=str(tmp_path / precision),
            cache_precision=precision,
        )
        (runs[precision],) = main([str(recipe)])
    for split in ("validation", "test"):
        evaluation = {precision: run.evaluation[split] for precision, run in runs.items()}
        assert evaluation["float16"].confusion_matrix == evaluation["float32"].confusion_matrix
        assert evaluation["float16"].unweighted_accuracy == evaluation["float32"].unweighted_accuracy

    logits = {}
    for precision in runs:
        model = AutoModelForAudioClassification.from_pretrained(tmp_path / precision).eval()
        feature_extractor = AutoFeatureExtractor.from_pretrained(tmp_path / precision)
        with torch.no_grad():
            logits[precision] = torch.cat(
                [
                    model(**feature_extractor(row["waveform"], sampling_rate=16000, return_tensors="pt")).logits
                    for row in prepared["float32"].with_format("numpy")
                ]
            )
    assert torch.equal(logits["float16"].argmax(-1), logits["float32"].argmax(-1))
    # Inputs rounded at 2**-11 change each gradient, and so each SGD step, by about that much relative to it; four
    # steps through two transformer layers and the head amplify it some tens of times at most: 2 % of the logits'
    # range bounds it.
    scale = logits["float32"].abs().max()
    assert (logits["float16"] - logits["float32"]).abs().max() <= 0.02 * scale
