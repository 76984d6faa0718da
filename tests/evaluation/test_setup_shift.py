"""How far recordings sit from a model's training statistics (issue 40, item 5): fitted in training, measured in
evaluation at no extra encoding, and said when it is far."""

from __future__ import annotations

import logging

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict

from ser_hf.evaluation.eval_report import setup_shift_line
from ser_hf.evaluation.setup_shift import setup_shift_report, standardized_states
from ser_hf.inputs.speaker_normalization import fit_normalization
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
from ser_hf.models.feature_normalization import RunningStatistics
from tests.conftest_models import LABELS, TINY_WHISPER, load_clip


def _states(rng, count: int, offset: float) -> np.ndarray:
    return (rng.standard_normal((count, 3, 32)) + offset).astype(np.float32)


def test_training_stores_its_corpora_and_speakers_shifts_and_a_far_set_up_is_said(caplog):
    from transformers import WhisperConfig

    rng = np.random.default_rng(0)
    extractor = build_ssl_feature_extractor(WhisperConfig(**TINY_WHISPER), normalization="global")
    train = Dataset.from_dict(
        {
            "encoder_states": np.concatenate([_states(rng, 40, 0.0), _states(rng, 40, 0.5)]).tolist(),
            "speaker_id": [f"a:{i % 4}" for i in range(40)] + [f"b:{i % 4}" for i in range(40)],
            "corpus": ["a"] * 40 + ["b"] * 40,
            "label": [i % 2 for i in range(80)],
        }
    )
    fit_normalization(extractor, DatasetDict(train=train))
    shifts = extractor.setup_shifts
    assert set(shifts["corpora"]) == {"a", "b"} and shifts["corpora"]["a"] > 0.1
    assert 0 < shifts["speakers_median"] <= shifts["speakers_max"]
    assert extractor.to_dict()["setup_shifts"] == shifts  # saved with the model's feature extractor

    mean, std = extractor.global_statistics()

    def standardized(offset: float) -> RunningStatistics:
        statistics = RunningStatistics()
        statistics.add(((_states(rng, 30, offset).reshape(30, -1)) - mean) / std)
        return statistics

    with caplog.at_level(logging.WARNING):
        near = setup_shift_report(extractor, train, standardized=standardized(0.25))
        assert not near["far"] and "far from" not in caplog.text
        far = setup_shift_report(extractor, train, standardized=standardized(4.0))
    assert far["far"] and far["shift"] > shifts["speakers_max"]
    assert "far from the model's training statistics" in caplog.text and "normalization: corpus" in caplog.text
    assert "distrust these scores" in setup_shift_line(far) and "within what" in setup_shift_line(near)
    # Without the model's states, the features the dataset holds (FAST mode's cached states) are read; without
    # those, nothing is measured: the recordings are never read a second time for it.
    recomputed = setup_shift_report(extractor, train)
    assert recomputed["shift"] < 0.05  # the training clips themselves
    assert setup_shift_report(extractor, train.remove_columns("encoder_states")) is None
    extractor.normalization = "speaker"  # standardised with the recordings' own statistics: nothing to say
    assert setup_shift_report(extractor, train) is None


def test_the_shift_is_read_from_the_states_the_model_standardises_at_no_extra_encoding():
    torch.manual_seed(0)
    from transformers import WhisperConfig

    config = WhisperConfig(**TINY_WHISPER)
    model = build_ssl_classifier(config, LABELS, use_weighted_layer_sum=True, pooling_mode="layer_statistics").eval()
    extractor = build_ssl_feature_extractor(config, normalization="global")
    clips = [load_clip(0, 1.0), load_clip(1, 0.7)]
    raw = extractor(clips, sampling_rate=16000, return_tensors="pt", return_state_statistics=False)
    pooled = model.pooled_encoder_states(raw["input_features"], raw["attention_mask"]).flatten(1).numpy()
    extractor.set_global_statistics(pooled.mean(axis=0) + 1.0, pooled.std(axis=0) + 0.5)
    with standardized_states(model) as captured, torch.no_grad():
        model(**extractor(clips, sampling_rate=16000, return_tensors="pt"))
    mean, std = extractor.global_statistics()
    np.testing.assert_allclose(captured.statistics()[0], ((pooled - mean) / std).mean(axis=0), atol=1e-4)
    report = setup_shift_report(extractor, None, standardized=captured)
    assert report["shift"] == round(extractor.setup_shift(pooled.mean(axis=0)), 4)


def test_a_speaker_with_one_clip_under_speaker_statistics_is_said(caplog):
    """Issue 44, item 9: a speaker with one clip was standardised to all zeros without a word."""
    from transformers import WhisperConfig

    rng = np.random.default_rng(1)
    extractor = build_ssl_feature_extractor(WhisperConfig(**TINY_WHISPER), normalization="speaker")
    train = Dataset.from_dict(
        {
            "encoder_states": _states(rng, 9, 0.0).tolist(),
            "speaker_id": ["a"] * 4 + ["b"] * 4 + ["c"],
            "label": [0] * 9,
        }
    ).cast_column("label", ClassLabel(names=["neutral"]))
    with caplog.at_level(logging.WARNING):
        plan = fit_normalization(extractor, DatasetDict(train=train))
    assert "Speaker normalisation: c has one clip only" in caplog.text and "normalization: global" in caplog.text
    assert set(plan.speaker_statistics) == {"a", "b", "c"}
