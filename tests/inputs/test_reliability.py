"""Reliability of the model inputs: a ten-minute clip is cropped for training, FAST mode names a clip shorter than the
encoder's receptive field before encoding anything (or skips it), and the openSMILE functionals' log says whether
they were computed or read from the cache."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import torch

from ser_hf.data.corpora import load_corpus
from ser_hf.data.corpora.base import InvalidClipError
from ser_hf.data.decode import prepare_audio
from ser_hf.inputs.collators import AudioClassificationCollator
from ser_hf.models import (
    LogMelFeatureExtractor,
)
from ser_hf.train import main
from tests.conftest import REPO, linked_corpus, write_audio
from tests.conftest_models import TINY_SSL
from tests.recipe.test_parser import write_recipe

pytestmark = pytest.mark.reliability


def test_a_ten_minute_clip_is_cropped_for_training_and_padded_batches_stay_small():
    feature_extractor = LogMelFeatureExtractor(n_mels=16)
    long_clip = np.random.default_rng(0).standard_normal(16000 * 600).astype(np.float32) * 0.1
    collator = AudioClassificationCollator(feature_extractor, max_duration_seconds=2.0, seed=0)
    batch = collator(
        [
            {"waveform": long_clip, "label": 0, "path": "long.wav"},
            {"waveform": long_clip[:8000], "label": 1, "path": "short.wav"},
        ]
    )
    assert batch["input_features"].shape == (2, feature_extractor.num_frames(torch.tensor(32000)).item(), 16)


def test_fast_mode_names_a_too_short_clip_before_encoding_or_skips_it(tmp_path, tiny_ravdess, monkeypatch):
    """FAST mode (encoder outputs cached) names a clip shorter than the receptive field before the first clip is
    encoded."""
    import ser_hf.inputs.fast_mode as encoder_cache

    data = linked_corpus(tiny_ravdess, tmp_path / "data")
    short = write_audio(data / "Actor_01" / "03-01-05-02-02-02-01.wav", seconds=0.005)  # 80 samples
    encoded, encode_dataset = [], encoder_cache.encode_dataset
    monkeypatch.setattr(
        encoder_cache,
        "encode_dataset",
        lambda model, feature_extractor, dataset, **kwargs: (
            encoded.append(len(dataset)) or encode_dataset(model, feature_extractor, dataset, **kwargs)
        ),
    )
    values = dict(
        model_type="wav2vec2",
        model_config=TINY_SSL,
        freeze_base_model=True,
        cache_encoder_outputs=True,
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        output_dir=str(tmp_path / "run"),
    )
    # Named with every unusable clip when the corpus is decoded (issue 78), before anything is encoded.
    problem = f"1 unusable ravdess clip(s):\n  {short}: 5.0 ms, shorter than the model's receptive field (9.2 ms)\n"
    with pytest.raises(InvalidClipError, match=f"^{re.escape(problem)}"):
        main([str(write_recipe(tmp_path / "r.yaml", data, **values))])
    assert encoded == [] and not (tmp_path / "run").exists()
    (report,) = main([str(write_recipe(tmp_path / "r.yaml", data, skip_invalid=True, **values))])
    assert encoded == [32]  # the 32 clips of tiny_ravdess, without the short one
    assert report.split.clips["train"] == 16 and str(short) not in json.dumps(report.to_dict())


def test_the_functionals_log_says_whether_they_are_computed_or_read_from_the_cache(tmp_path, monkeypatch, caplog):
    import datasets.config

    from ser_hf.inputs.speaker_normalization import compute_functionals_once
    from ser_hf.models import OpenSmileFeatureExtractor

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # nothing computed before
    clips = load_corpus("ravdess", REPO / "data" / "ravdess_sample", sampling_rate=16000).select(range(6))
    extractor = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02")
    runs = []
    for _ in range(2):  # two runs of the same recipe
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ser_hf"):
            runs.append(compute_functionals_once(prepare_audio(clips, num_proc=1), extractor))
        assert len([r for r in caplog.records if "functionals of 6 clips" in r.getMessage()]) == 1
        runs[-1] = (runs[-1], caplog.text)
    (first, first_log), (second, second_log) = runs
    assert "Computing eGeMAPSv02 functionals of 6 clips once (cached for later runs)." in first_log
    assert "Reading the eGeMAPSv02 functionals of 6 clips from the cache (computed by an earlier run)." in second_log
    assert second.cache_files[-1] == first.cache_files[-1]
    np.testing.assert_array_equal(np.asarray(first["functionals"]), np.asarray(second["functionals"]))


def test_the_skip_warning_of_too_short_clips_reads_as_a_sentence(caplog):
    """skip_invalid drops the clips too short for the model with a warning that names them: "Skipping 1 clip shorter
    than ...", not "Skipping 1 clip(s) are shorter than ..." (issue 67, point 9)."""
    from datasets import Dataset, DatasetDict

    from ser_hf.inputs.base import drop_clips_shorter_than

    splits = DatasetDict(
        {
            "train": Dataset.from_dict({"path": ["a.wav", "b.wav", "c.wav"], "duration": [0.005, 1.0, 0.004]}),
            "test": Dataset.from_dict({"path": ["d.wav", "e.wav"], "duration": [1.0, 0.003]}),
        }
    )
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        kept = drop_clips_shorter_than(splits["test"], 0.0092, skip_invalid=True)
    assert kept["path"] == ["d.wav"]
    assert "Skipping 1 clip shorter than the model's receptive field (9.2 ms): e.wav (3.0 ms)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        kept = drop_clips_shorter_than(splits, 0.0092, skip_invalid=True)
    assert kept["train"]["path"] == ["b.wav"]
    assert (
        "Skipping 3 clips shorter than the model's receptive field (9.2 ms): a.wav (5.0 ms, train); c.wav (4.0 ms, "
        "train); e.wav (3.0 ms, test)"
    ) in caplog.text
    assert "are shorter" not in caplog.text
