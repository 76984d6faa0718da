"""openSMILE feature sets combined into one extractor (``feature_set: ComParE_2016+eGeMAPSv02``), and the functionals
selected on the training split (``num_selected_features``)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import yaml
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from transformers import pipeline

from ser_hf.data.dataset_info import column_values
from ser_hf.inputs.speaker_normalization import FUNCTIONALS_COLUMN, fit_normalization
from ser_hf.models import OpenSmileFeatureExtractor, build_baseline
from ser_hf.train import main
from tests.recipe.test_parser import write_recipe


@pytest.fixture(scope="module")
def clip(tiny_ravdess) -> np.ndarray:
    waveform, _ = sf.read(sorted((tiny_ravdess / "Actor_01").glob("*.flac"))[0], dtype="float32")
    return waveform


def test_combined_feature_sets_give_every_sets_functionals_side_by_side(clip, tmp_path):
    combined = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02+GeMAPSv01b", normalization="none")
    assert combined.feature_size == 88 + 62
    expected = np.concatenate(
        [
            OpenSmileFeatureExtractor(feature_set=name, normalization="none").functionals(clip)
            for name in ("eGeMAPSv02", "GeMAPSv01b")
        ]
    )
    np.testing.assert_allclose(combined(clip)["input_features"][0], expected, rtol=1e-6)

    combined.save_pretrained(tmp_path)
    reloaded = OpenSmileFeatureExtractor.from_pretrained(tmp_path)
    assert reloaded.feature_set == "eGeMAPSv02+GeMAPSv01b" and reloaded.feature_size == 150
    model, _ = build_baseline("opensmile", ["neutral", "sad"], feature_extractor=reloaded)
    assert model.config.num_features == 150


def test_a_list_of_feature_sets_is_the_same_as_joining_them_with_plus():
    extractor = OpenSmileFeatureExtractor(feature_set=["ComParE_2016", "eGeMAPSv02"])
    assert extractor.feature_set == "ComParE_2016+eGeMAPSv02" and extractor.feature_size == 6373 + 88


@pytest.mark.parametrize(
    "feature_set, message",
    [
        ("ComParE_2016+eGeMAPS", "Unknown openSMILE feature_set 'ComParE_2016\\+eGeMAPS'"),
        ("eGeMAPSv02+eGeMAPSv02", "names a feature set twice"),
    ],
)
def test_a_bad_combination_is_refused_naming_it(feature_set, message):
    with pytest.raises(ValueError, match=message):
        OpenSmileFeatureExtractor(feature_set=feature_set)


def functionals_dataset(informative: int, clips_per_speaker: int = 12, width: int = 62) -> Dataset:
    """GeMAPSv01b-sized functionals of 4 speakers' clips: noise, except column `informative`, which follows the
    emotion."""
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1, 2], clips_per_speaker // 3 * 4)
    features = rng.normal(size=(len(labels), width)).astype(np.float32)
    features[:, informative] += 3.0 * labels
    features[:, 0] = 1.0  # constant: no F statistic
    speakers = np.repeat(["01", "02", "03", "04"], clips_per_speaker)
    return Dataset.from_dict(
        {FUNCTIONALS_COLUMN: features.tolist(), "speaker_id": speakers.tolist(), "label": labels.tolist()},
        features=Features(
            {
                FUNCTIONALS_COLUMN: Sequence(Value("float32")),
                "speaker_id": Value("string"),
                "label": ClassLabel(names=["neutral", "happy", "sad"]),
            }
        ),
    )


@pytest.mark.parametrize("normalization", ["global", "speaker"])
def test_feature_selection_keeps_the_functionals_that_separate_the_training_emotions(normalization):
    dataset = functionals_dataset(informative=7)
    speakers = column_values(dataset, "speaker_id")
    splits = DatasetDict(
        {
            name: dataset.select([i for i, s in enumerate(speakers) if s in chosen])
            for name, chosen in {"train": ("01", "02", "03"), "test": ("04",)}.items()
        }
    )
    extractor = OpenSmileFeatureExtractor(
        feature_set="GeMAPSv01b", normalization=normalization, num_selected_features=1
    )
    assert extractor.feature_size == 1
    functionals = np.asarray(splits["test"].with_format("numpy")[FUNCTIONALS_COLUMN])
    with pytest.raises(ValueError, match="has no selected_features: ser-hf training fits them"):
        extractor.normalize(functionals)

    fit_normalization(extractor, splits)

    assert extractor.selected_features == [7]
    standardised = extractor.standardize(functionals)
    np.testing.assert_allclose(extractor.normalize(functionals), standardised[:, [7]])


# The global case in `make test-slow`, to keep `make test` under 5 minutes.
@pytest.mark.parametrize("normalization", [pytest.param("global", marks=pytest.mark.slow), "speaker"])
def test_a_trained_model_keeps_its_selected_functionals_through_pipeline(tmp_path, tiny_ravdess, normalization):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        model_type="opensmile",
        model_config={"hidden_sizes": []},
        feature_extractor_config={
            "feature_set": "eGeMAPSv02",
            "normalization": normalization,
            "num_selected_features": 10,
        },
        output_dir=str(tmp_path / "run"),
        max_steps=4,
    )
    values = yaml.safe_load(recipe.read_text())
    for key in ("gain_prob", "num_time_masks"):  # spectrogram and waveform augmentation do not apply
        values.pop(key, None)
    recipe.write_text(yaml.safe_dump(values))
    (report,) = main([str(recipe)])
    extractor = OpenSmileFeatureExtractor.from_pretrained(tmp_path / "run")
    assert extractor.feature_size == 10 and len(extractor.selected_features) == 10
    assert len(extractor.feature_mean) == 88  # statistics of every functional, selection after standardisation
    clip = sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0]
    scores = pipeline("audio-classification", model=str(tmp_path / "run"))(str(clip), top_k=None)
    assert {s["label"] for s in scores} == set(report.labels)


def test_feature_selection_needs_standardised_features_and_a_possible_count():
    with pytest.raises(ValueError, match="needs normalization 'global', 'speaker' or 'corpus'"):
        OpenSmileFeatureExtractor(feature_set="eGeMAPSv02", normalization="none", num_selected_features=10)
    with pytest.raises(ValueError, match="between 1 and the 88 functionals of eGeMAPSv02, got 100"):
        OpenSmileFeatureExtractor(feature_set="eGeMAPSv02", num_selected_features=100)
