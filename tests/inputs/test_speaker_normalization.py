"""Speaker normalisation, the openSMILE baseline and the k-fold accuracy benchmark's folds (issue 15)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from datasets import Dataset, DatasetDict
from transformers import pipeline

from ser_hf import load_corpus, prepare_audio
from ser_hf.data.dataset_info import column_values
from ser_hf.inputs.collators import AudioClassificationCollator, FunctionalsCollator
from ser_hf.inputs.speaker_normalization import (
    FUNCTIONALS_COLUMN,
    TRANSDUCTIVE_PROTOCOL,
    compute_functionals_once,
    distribution_warnings,
    fit_normalization,
    speaker_statistics,
)
from ser_hf.models import LogMelFeatureExtractor, OpenSmileFeatureExtractor, build_baseline
from ser_hf.recipe.parser import parse_recipe
from ser_hf.train import main
from tests.conftest import REPO
from tests.training.test_train import write_recipe


@pytest.fixture(scope="module")
def prepared(tiny_ravdess) -> Dataset:
    return prepare_audio(load_corpus("ravdess", str(tiny_ravdess)))


def speaker_splits(dataset: Dataset) -> DatasetDict:
    speakers = column_values(dataset, "speaker_id")
    pick = {"train": ("01", "02"), "validation": ("03",), "test": ("04",)}
    return DatasetDict(
        {name: dataset.select([i for i, s in enumerate(speakers) if s in chosen]) for name, chosen in pick.items()}
    )


def raw_log_mels(extractor, dataset: Dataset) -> list[np.ndarray]:
    waveforms = list(dataset.with_format("numpy")["waveform"])
    return extractor(waveforms, sampling_rate=16000, padding=False, normalize=False)["input_features"]


def test_speaker_statistics_are_each_speakers_own_and_read_no_label(prepared):
    extractor = LogMelFeatureExtractor(n_mels=16, normalization="speaker")
    statistics = speaker_statistics(extractor, prepared)
    speakers = column_values(prepared, "speaker_id")
    features = raw_log_mels(extractor, prepared)
    for speaker in ("01", "04"):
        frames = np.concatenate([f for f, s in zip(features, speakers) if s == speaker])
        mean, std = statistics[speaker].statistics()
        np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(std, frames.std(axis=0), rtol=1e-3, atol=1e-3)
    shuffled = prepared.remove_columns("label").add_column(
        "label", list(np.random.default_rng(0).permutation(column_values(prepared, "label")))
    )
    again = speaker_statistics(extractor, shuffled)
    assert all(np.array_equal(again[s].statistics()[0], statistics[s].statistics()[0]) for s in statistics)


def test_each_clip_is_standardised_with_its_own_speakers_statistics(prepared):
    extractor = LogMelFeatureExtractor(n_mels=16, normalization="speaker")
    splits = speaker_splits(prepared)
    plan = fit_normalization(extractor, splits)
    assert sorted(plan.speaker_statistics) == ["01", "02", "03", "04"]
    assert plan.protocol == TRANSDUCTIVE_PROTOCOL and plan.to_dict()["transductive"] is True
    rows = [splits["test"].with_format("numpy")[0], splits["train"].with_format("numpy")[0]]
    batch = AudioClassificationCollator(extractor, normalization=plan)(rows)
    for index, row in enumerate(rows):
        raw = raw_log_mels(extractor, Dataset.from_dict({"waveform": [row["waveform"]]}))[0]
        mean, std = plan.speaker_statistics[row["speaker_id"]]
        frames = int(batch["attention_mask"][index].sum())
        np.testing.assert_allclose(
            batch["input_features"][index, :frames].numpy(), (raw - mean) / std, rtol=1e-4, atol=1e-4
        )
    # The global statistics stored in the extractor are the training speakers' pooled ones.
    pooled = np.concatenate(raw_log_mels(extractor, splits["train"]))
    np.testing.assert_allclose(extractor.feature_mean, pooled.mean(axis=0), rtol=1e-4, atol=1e-3)


def test_without_speaker_statistics_the_extractor_falls_back_to_global_ones_and_says_so(prepared, caplog):
    extractor = LogMelFeatureExtractor(n_mels=16, normalization="speaker")
    fit_normalization(extractor, speaker_splits(prepared))
    waveform = prepared.with_format("numpy")[0]["waveform"]
    with caplog.at_level(logging.WARNING):
        features = extractor(waveform, sampling_rate=16000, return_tensors="np")["input_features"][0]
    assert "No speaker statistics for these clips" in caplog.text and "global statistics" in caplog.text
    raw = extractor(waveform, sampling_rate=16000, normalize=False, return_tensors="np")["input_features"][0]
    expected = (raw - np.asarray(extractor.feature_mean)) / np.asarray(extractor.feature_std)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)


def test_a_speaker_heard_in_two_emotions_only_is_warned_about(prepared):
    splits = speaker_splits(prepared)
    test = splits["test"]
    labels = column_values(test, "label")
    two = sorted(set(labels))[:2]
    splits["test"] = test.select([i for i, label in enumerate(labels) if label in two])
    (warning,) = [w for w in distribution_warnings(splits, test.features["label"].names) if "labels" in w]
    assert warning.startswith("test speaker 04: labels far from the training speakers'")
    assert "erase the differences between emotions" in warning
    assert not [
        w for w in distribution_warnings(speaker_splits(prepared), test.features["label"].names) if "labels" in w
    ]


def test_opensmile_functionals_are_computed_once_and_standardised_per_speaker(prepared):
    extractor = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02", normalization="speaker")
    with_functionals = compute_functionals_once(prepared, extractor)
    functionals = np.asarray(with_functionals.with_format("numpy")[FUNCTIONALS_COLUMN])
    assert functionals.shape == (len(prepared), 88) and np.isfinite(functionals).all()
    np.testing.assert_allclose(
        functionals[0], extractor.functionals(prepared.with_format("numpy")[0]["waveform"]), rtol=1e-5
    )
    plan = fit_normalization(extractor, speaker_splits(with_functionals))
    rows = [row for row in with_functionals.with_format("numpy") if row["speaker_id"] == "04"]
    batch = FunctionalsCollator(extractor, normalization=plan)(rows)
    normalised = batch["input_features"].numpy()
    np.testing.assert_allclose(normalised.mean(axis=0)[np.std(functionals, axis=0) > 1e-3], 0.0, atol=1e-3)


def test_an_opensmile_model_round_trips_through_pipeline_with_a_transductive_report(tmp_path, tiny_ravdess):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        model_type="opensmile",
        model_config={"hidden_sizes": [16]},
        feature_extractor_config={"feature_set": "eGeMAPSv02", "normalization": "speaker"},
        output_dir=str(tmp_path / "run"),
        max_steps=6,
    )
    for key in ("gain_prob", "num_time_masks"):  # spectrogram and waveform augmentation do not apply
        values = yaml.safe_load(recipe.read_text())
        values.pop(key, None)
        recipe.write_text(yaml.safe_dump(values))
    (report,) = main([str(recipe)])
    assert report.normalization["transductive"] is True
    markdown = (tmp_path / "run" / "report.md").read_text()
    assert f"Features: {TRANSDUCTIVE_PROTOCOL}." in markdown
    extractor = OpenSmileFeatureExtractor.from_pretrained(tmp_path / "run")
    assert extractor.normalization == "speaker" and len(extractor.feature_mean) == 88
    classify = pipeline("audio-classification", model=str(tmp_path / "run"))
    clip = sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0]
    scores = classify(str(clip), top_k=None)
    assert {s["label"] for s in scores} == set(report.labels)
    assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-4)


def test_build_baseline_makes_the_opensmile_model_agree_with_its_feature_set():
    model, extractor = build_baseline(
        "opensmile", ["neutral", "sad"], feature_extractor=OpenSmileFeatureExtractor(feature_set="eGeMAPSv02")
    )
    assert model.config.num_features == extractor.feature_size == 88
    with pytest.raises(ValueError, match="feature_set 'ComParE'"):
        OpenSmileFeatureExtractor(feature_set="ComParE")


def test_the_shipped_opensmile_recipes_parse(tmp_path):
    for name in ("ravdess_opensmile.yaml", "ravdess_opensmile_speaker.yaml", "cremad_opensmile.yaml"):
        model_args, *_ = parse_recipe([str(REPO / "recipes" / name), "--output_dir", str(tmp_path / name)])
        assert model_args.model_type == "opensmile"
    assert Path(REPO / "recipes" / "ravdess_opensmile_speaker.yaml").read_text().count("normalization: speaker") == 1


def test_corpus_normalisation_standardises_each_corpus_with_all_its_own_clips(prepared):
    """normalization: corpus: one group of statistics per corpus (over its clips in every split, no label read),
    not per speaker; the evaluated corpus gets its own, and the report says so (transductive)."""
    from ser_hf.inputs.speaker_normalization import CORPUS_PROTOCOL, evaluation_normalization

    speakers = column_values(prepared, "speaker_id")
    two_corpora = prepared.remove_columns("corpus").add_column(
        "corpus", ["tess" if speaker == "04" else "ravdess" for speaker in speakers]
    )
    extractor = LogMelFeatureExtractor(n_mels=16, normalization="corpus")
    splits = speaker_splits(two_corpora)
    plan = fit_normalization(extractor, splits)
    assert sorted(plan.speaker_statistics) == ["ravdess", "tess"] and plan.group_column == "corpus"
    assert plan.protocol == CORPUS_PROTOCOL and plan.to_dict()["transductive"] is True and not plan.warnings
    features = raw_log_mels(extractor, two_corpora)
    ravdess_frames = np.concatenate([f for f, s in zip(features, speakers) if s != "04"])  # train and validation
    np.testing.assert_allclose(
        plan.speaker_statistics["ravdess"][0], ravdess_frames.mean(axis=0), rtol=1e-4, atol=1e-3
    )
    rows = [splits["test"].with_format("numpy")[0], splits["validation"].with_format("numpy")[0]]
    batch = AudioClassificationCollator(extractor, normalization=plan)(rows)
    for index, row in enumerate(rows):
        raw = raw_log_mels(extractor, Dataset.from_dict({"waveform": [row["waveform"]]}))[0]
        mean, std = plan.speaker_statistics[row["corpus"]]
        frames = int(batch["attention_mask"][index].sum())
        np.testing.assert_allclose(
            batch["input_features"][index, :frames].numpy(), (raw - mean) / std, rtol=1e-4, atol=1e-4
        )
    evaluated = evaluation_normalization(extractor, splits["test"], "test")
    assert list(evaluated.speaker_statistics) == ["tess"] and evaluated.protocol == CORPUS_PROTOCOL
    np.testing.assert_allclose(evaluated.speaker_statistics["tess"][0], plan.speaker_statistics["tess"][0], rtol=1e-5)


def test_a_corpus_normalised_opensmile_model_standardises_the_recordings_classified_together(
    tmp_path, tiny_ravdess, caplog
):
    """Trained with normalization: corpus, then predict: the files classified together are one corpus, standardised
    with statistics of them all (not the training speakers' stored ones)."""
    from ser_hf.deploy.classify import classify_files
    from ser_hf.deploy.pipelines import load_classifier
    from ser_hf.deploy.speakers import RECORDINGS_GROUP, speaker_statistics_of_files

    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        model_type="opensmile",
        model_config={"hidden_sizes": [16]},
        feature_extractor_config={"feature_set": "eGeMAPSv02", "normalization": "corpus"},
        output_dir=str(tmp_path / "run"),
        max_steps=4,
    )
    values = yaml.safe_load(recipe.read_text())
    for key in ("gain_prob", "num_time_masks"):
        values.pop(key, None)
    recipe.write_text(yaml.safe_dump(values))
    (report,) = main([str(recipe)])
    assert report.normalization["mode"] == "corpus" and report.normalization["transductive"] is True
    classifier = load_classifier(tmp_path / "run")
    # Sixteen recordings: statistics of ten or more windows are their own (fewer get the training ones, below).
    files = [str(path) for path in sorted(tiny_ravdess.glob("Actor_0[34]/*.flac"))]
    predictions = list(classify_files(classifier, files, progress=False))
    statistics = speaker_statistics_of_files(
        classifier.feature_extractor, files, {file: RECORDINGS_GROUP for file in files}, progress=False
    )
    waveform = prepare_audio(load_corpus("ravdess", str(tiny_ravdess))).filter(lambda row: row["path"] == files[0])
    expected = classifier(
        {
            "raw": waveform.with_format("numpy")[0]["waveform"],
            "sampling_rate": 16000,
            "speaker_statistics": statistics[RECORDINGS_GROUP],
        },
        top_k=None,
    )
    for entry in expected:
        assert predictions[0].scores[entry["label"]] == pytest.approx(entry["score"], abs=1e-5)
    stored = classifier(files[0], top_k=None)  # one clip alone: the training speakers' statistics
    assert any(abs(predictions[0].scores[e["label"]] - e["score"]) > 1e-4 for e in stored)
    # One recording classified alone (ser-hf predict on a clip, the app's upload): its own statistics would make every
    # functional 0, so it gets the training statistics too, and a warning says so.
    with caplog.at_level(logging.WARNING):
        (alone,) = classify_files(classifier, files[:1], progress=False)
    for entry in stored:
        assert alone.scores[entry["label"]] == pytest.approx(entry["score"], abs=1e-5)
    assert any(
        record.getMessage().startswith("The recordings classified together give 1 feature vector(s), fewer than 10")
        and "the training statistics stored in the model, which standardise them instead" in record.getMessage()
        for record in caplog.records
    )
