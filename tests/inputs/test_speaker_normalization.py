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
from ser_hf.evaluation.metrics import classification_metrics
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
from ser_hf.run_record import RunReport
from ser_hf.train import main
from ser_hf.training.data_stage import load_dataset_from_args, make_folds
from tests.conftest import REPO, load_bench
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


def test_the_accuracy_benchmarks_folds_never_put_a_speaker_in_two_places(tmp_path, tiny_ravdess):
    bench = load_bench()
    path = tmp_path / "kfold.yaml"

    def benchmark_folds(**options):
        values = bench.kfold_recipe(
            REPO / "recipes" / "demo.yaml",
            tiny_ravdess,
            folds=4,
            seed=3,
            output_dir=tmp_path / "out",
            validation_size=0.34,
            **options,
        )
        assert values["split_protocol"] == "kfold" and "test_speakers" not in values
        path.write_text(yaml.safe_dump(values))
        _, data_args, _, _ = parse_recipe([str(path)])
        return make_folds(load_dataset_from_args(data_args), data_args)

    folds = benchmark_folds()
    tested = []
    for fold, splits in folds:
        speakers = {name: set(column_values(split, "speaker_id")) for name, split in splits.items()}
        assert set(speakers) == {"train", "validation", "test"}
        assert not speakers["train"] & speakers["test"] and not speakers["validation"] & speakers["test"]
        assert not speakers["train"] & speakers["validation"] and speakers["validation"]
        tested += sorted(speakers["test"])
    assert sorted(tested) == ["01", "02", "03", "04"]  # every speaker tested exactly once
    # --only-folds: the same folds, only those asked for (other processes train the rest)
    ((fold, splits),) = benchmark_folds(only_folds=[2])
    assert fold == 2 and column_values(splits["test"], "path") == column_values(folds[2][1]["test"], "path")


def test_the_benchmarks_overrides_change_the_recipe_and_name_the_variant(tmp_path, tiny_ravdess):
    bench = load_bench()
    overrides = bench.parse_overrides(
        ["feature_extractor_config.normalization=speaker", "num_train_epochs=3", "model_config.pooling_mode=mean"]
    )
    recipe = REPO / "recipes" / "ravdess_cnn2d.yaml"
    plain = bench.kfold_recipe(recipe, tiny_ravdess, folds=4, seed=3, output_dir=tmp_path / "a", validation_size=0.0)
    values = bench.kfold_recipe(
        recipe, tiny_ravdess, folds=4, seed=3, output_dir=tmp_path / "b", validation_size=0.0, overrides=overrides
    )
    assert values["num_train_epochs"] == 3
    # a dotted key changes one entry and keeps the mapping's others
    assert values["model_config"] == {**plain["model_config"], "pooling_mode": "mean"}
    assert values["feature_extractor_config"] == {**plain["feature_extractor_config"], "normalization": "speaker"}
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(values))
    _, _, _, training_args = parse_recipe([str(path)])
    assert training_args.num_train_epochs == 3
    name = bench.variant_name(recipe, overrides)
    assert name == (
        "ravdess_cnn2d feature_extractor_config.normalization=speaker num_train_epochs=3 "
        "model_config.pooling_mode=mean"
    )
    assert bench.variant_folder(recipe, overrides) != bench.variant_folder(recipe, {})
    assert " " not in bench.variant_folder(recipe, overrides)
    assert "/" not in bench.variant_folder(recipe, {"model_name_or_path": "org/model"})
    # Many overrides: a folder name a file system takes (255 bytes with the seed's suffix), still one per variant.
    many = {f"model_config.setting_number_{index}": "a_long_value" for index in range(12)}
    other = {**many, "model_config.setting_number_11": "another_long_value"}
    assert len(bench.variant_name(recipe, many)) > 255
    long_folder = bench.variant_folder(recipe, many)
    assert len(f"{long_folder}-seed42-test2".encode()) < 255 and long_folder.startswith("ravdess_cnn2d_model_config")
    assert long_folder != bench.variant_folder(recipe, other) and long_folder == bench.variant_folder(recipe, many)
    with pytest.raises(bench.RecipeError, match="'num_train_epoch' \\(did you mean 'num_train_epochs'\\?\\)"):
        bench.parse_overrides(["num_train_epoch=3"])
    with pytest.raises(bench.RecipeError, match="'model_config.' names no entry of model_config"):
        bench.parse_overrides(["model_config.=3"])
    with pytest.raises(bench.RecipeError, match="the benchmark sets test_speakers itself"):
        bench.parse_overrides(["test_speakers=[1]"])
    with pytest.raises(bench.RecipeError, match="expected KEY=VALUE"):
        bench.parse_overrides(["num_train_epochs"])
    with pytest.raises(SystemExit):
        bench.main([str(recipe), "--set", "seed=1", "--data-dir", str(tiny_ravdess)])


def test_the_benchmarks_model_paths_replace_a_hub_id_in_recipes_and_ensemble_members(tmp_path, tiny_ravdess):
    bench = load_bench()
    paths = bench.parse_model_paths([f"openai/whisper-base={tmp_path}"])
    recipe = REPO / "recipes" / "ravdess_whisper_base_fast.yaml"
    values = bench.kfold_recipe(recipe, tiny_ravdess, 4, 3, tmp_path / "out", 0.0, model_paths=paths)
    assert values["model_name_or_path"] == str(tmp_path)
    tiny = REPO / "recipes" / "ravdess_whisper_tiny_en_fast.yaml"  # another id: unchanged
    assert bench.kfold_recipe(tiny, tiny_ravdess, 4, 3, tmp_path, 0.0, model_paths=paths)["model_name_or_path"] == (
        "openai/whisper-tiny.en"
    )
    # A merged recipe: RAVDESS folded on --data-dir, TESS (from ../shared) trained on in every fold.
    merged = REPO / "recipes" / "ravdess_tess_whisper_base_fast_speaker.yaml"
    values = bench.kfold_recipe(merged, tiny_ravdess, 4, 3, tmp_path / "out", 0.0, model_paths=paths)
    assert values["data_dir"] == [str(tiny_ravdess), str(bench.SHARED_CORPORA["tess"])]
    assert values["train_only_corpora"] == ["tess"] and values["split_protocol"] == "kfold"
    assert values["corpus_weights"] == {"ravdess": 1, "tess": 1}
    with pytest.raises(bench.RecipeError, match="expected ID=FOLDER"):
        bench.parse_model_paths(["openai/whisper-base"])
    with pytest.raises(bench.RecipeError, match="is not a folder"):
        bench.parse_model_paths([f"openai/whisper-base={tmp_path / 'missing'}"])


def test_the_leave_one_corpus_out_benchmark_merges_every_corpus_on_the_labels_all_share(tmp_path, monkeypatch):
    crosscorpus = load_bench("crosscorpus")
    recipe = REPO / "recipes" / "ravdess_whisper_base_fast_speaker.yaml"
    values = crosscorpus.merged_values(recipe, tmp_path / "out", {"openai/whisper-base": str(tmp_path)})
    assert values["corpus"] == ["ravdess", "tess", "nemo"] and len(values["data_dir"]) == 3
    # RAVDESS's calm and disgust, TESS's disgust: not in nEMO.
    assert values["labels"] == ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
    assert values["model_name_or_path"] == str(tmp_path) and values["split_protocol"] == "speaker"
    assert not {"train_speakers", "validation_speakers", "test_speakers"} & set(values)
    assert values["feature_extractor_config"] == {"normalization": "speaker"}
    corpus = crosscorpus.merged_values(
        recipe, tmp_path / "out", {}, {"feature_extractor_config.normalization": "corpus"}
    )
    assert corpus["feature_extractor_config"] == {"normalization": "corpus"} and corpus["labels"] == values["labels"]
    # --corpora: two corpora in play, on the labels of all three (a pair chooses an option for the third).
    pair = crosscorpus.merged_values(recipe, tmp_path / "out", {}, {crosscorpus.CORPORA_KEY: ["ravdess", "nemo"]})
    assert pair["corpus"] == ["ravdess", "nemo"] and pair["labels"] == values["labels"]
    assert pair["data_dir"] == [str(crosscorpus.SHARED_CORPORA[name]) for name in ("ravdess", "nemo")]
    assert crosscorpus.CORPORA_KEY not in pair
    with pytest.raises(SystemExit):
        crosscorpus.main([str(recipe), "--corpora", "tess"])
    with pytest.raises(SystemExit):
        crosscorpus.main([str(recipe), "--corpora", "ravdess", "tess", "--left-out", "nemo"])
    # --seeds: each training seed in turn, named in the variant (--set refuses seed, which k-fold sets itself).
    calls = []
    monkeypatch.setattr(crosscorpus, "run_recipe", lambda *args: calls.append(args[5]))
    monkeypatch.setattr(crosscorpus, "SHARED_CORPORA", {name: tmp_path for name in crosscorpus.SHARED_CORPORA})
    crosscorpus.main([str(recipe), "--normalizations", "global", "--seeds", "7", "43", "--set", "num_train_epochs=10"])
    assert calls == [{"num_train_epochs": 10, "seed": 7}, {"num_train_epochs": 10, "seed": 43}]
    assert crosscorpus.variant_name(recipe, calls[0]).endswith("num_train_epochs=10 seed=7")
    assert crosscorpus.seed_of("r num_train_epochs=10 seed=7") == ("r num_train_epochs=10", 7)
    assert crosscorpus.seed_of("r num_train_epochs=10") == ("r num_train_epochs=10", None)
    # A recipe that picks its epoch on validation speakers has none here: refused, not silently changed.
    with pytest.raises(crosscorpus.RecipeError, match="chooses its epoch on validation speakers"):
        crosscorpus.merged_values(REPO / "recipes" / "ravdess_cnn1d.yaml", tmp_path / "out", {})
    # The summary: recipe x statistics against the left-out corpus, TESS (2 speakers) without an interval.
    rows = [
        {
            "variant": "r",
            "normalization": "global",
            "test": corpus,
            "unweighted_accuracy": ua,
            "confidence_intervals": None,
        }
        for corpus, ua in (("ravdess", 40.0), ("tess", 50.0), ("nemo", 30.0))
    ]
    table = crosscorpus.markdown_table(rows)
    assert "| `r` | global (single clip) | 40.0 | 50.0 | 30.0 | 40.0 |" in table
    assert "nEMO left out" in table.splitlines()[0] and "mean of seeds" not in table
    # Two more seeds: their rows, and one of the three seeds' mean, each corpus' with its range.
    for seed, shift in ((7, 3.0), (43, -6.0)):
        rows += [
            {**row, "variant": f"r seed={seed}", "unweighted_accuracy": row["unweighted_accuracy"] + shift}
            for row in rows[:3]
        ]
    rows.append({**rows[0], "variant": "r seed=9", "test": "ravdess"})  # one left-out corpus only: no mean
    lines = crosscorpus.markdown_table(rows).splitlines()
    assert lines[-1] == (
        "| `r`, mean of seeds the recipe's, 7, 43 (range) | global (single clip) | 39.0 (34.0-43.0) "
        "| 49.0 (44.0-53.0) | 29.0 (24.0-33.0) | 39.0 (34.0-43.0) |"
    )


def test_the_leave_one_corpus_out_benchmark_can_train_on_every_emotion_and_score_the_shared_ones(
    tmp_path, monkeypatch
):
    import datasets

    crosscorpus = load_bench("crosscorpus")
    shared = crosscorpus.shared_labels(list(crosscorpus.SHARED_CORPORA))
    # A fold trains on every emotion of its training corpora: nEMO left out, RAVDESS's calm and disgust join.
    assert crosscorpus.corpus_labels(["ravdess", "tess"]) == [
        "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"
    ]  # fmt: skip
    assert crosscorpus.corpus_labels(["tess", "nemo"]) == [*shared[:5], "disgust", "surprised"]
    # The left-out corpus is tested on its clips of the shared emotions only.
    names = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    split = datasets.Dataset.from_dict(
        {"label": [0, 1, 6, 7]}, features=datasets.Features({"label": datasets.ClassLabel(names=names)})
    )
    assert crosscorpus.shared_label_clips(split)["label"] == [0, 7]

    # The model's choice restricted to the shared emotions: a clip it calls calm is scored on the others.
    def clip(path, label, **scores):
        return {
            "path": path,
            "speaker_id": f"s{path}",
            "label": label,
            "scores": {n: scores.get(n, 0.0) for n in names},
        }

    evaluation = {
        "unweighted_accuracy": 0.0,
        "clip_predictions": [
            clip("1", "neutral", calm=0.7, neutral=0.2, sad=0.1),
            clip("2", "sad", calm=0.6, neutral=0.3, sad=0.1),
            clip("3", "angry", angry=0.9, disgust=0.1),
        ],
    }
    scored = crosscorpus.on_shared_labels(evaluation)
    assert scored["label_names"] == shared and scored["clips"] == 3
    assert [c["prediction"] for c in scored["clip_predictions"]] == ["neutral", "neutral", "angry"]
    assert scored["clip_predictions"][0]["scores"]["neutral"] == pytest.approx(2 / 3)
    assert scored["accuracy"] == pytest.approx(2 / 3)
    assert scored["unweighted_accuracy"] == pytest.approx(2 / 3)  # neutral 1/1, sad 0/1, angry 1/1
    assert set(scored["per_speaker"]) == {"s1", "s2", "s3"}
    evaluation["clip_predictions"].append(clip("4", "calm", calm=1.0))
    with pytest.raises(ValueError, match="clips of calm"):
        crosscorpus.on_shared_labels(evaluation)
    # --train-labels all: named in the variant (its own folder); an ensemble's fused choice is refused.
    calls = []
    monkeypatch.setattr(crosscorpus, "run_recipe", lambda *args: calls.append(args[5]))
    monkeypatch.setattr(crosscorpus, "SHARED_CORPORA", {name: tmp_path for name in crosscorpus.SHARED_CORPORA})
    recipe = REPO / "recipes" / "general_whisper_base.yaml"
    crosscorpus.main([str(recipe), "--normalizations", "corpus", "--train-labels", "all"])
    assert calls == [{crosscorpus.TRAIN_LABELS_KEY: "all"}]
    assert crosscorpus.variant_name(recipe, calls[0]) == "general_whisper_base train_labels=all"
    values = crosscorpus.merged_values(recipe, tmp_path / "out", {}, calls[0])
    assert crosscorpus.TRAIN_LABELS_KEY not in values
    with pytest.raises(SystemExit):
        crosscorpus.main([str(REPO / "recipes" / "ravdess_whisper_ensemble.yaml"), "--train-labels", "all"])


def test_the_benchmarks_summary_pools_every_folds_speakers_into_one_interval():
    bench = load_bench()
    rng = np.random.default_rng(0)
    names = ["neutral", "happy", "sad"]
    reports, all_labels, all_predictions = [], [], []
    for fold in range(3):
        speakers = [f"{fold}{speaker}" for speaker in range(2) for _ in range(12)]
        labels = np.tile(np.arange(3), 8)
        predictions = np.where(rng.random(24) < 0.6, labels, rng.integers(0, 3, 24))
        test = classification_metrics(labels, np.eye(3)[predictions], names, speakers=speakers)
        reports.append(
            {"fold": fold, "split": {"speakers": {"test": sorted(set(speakers))}}, "bench_minutes": 1.0}
            | {"evaluation": {"test": test}}
        )
        all_labels += labels.tolist()
        all_predictions += predictions.tolist()
    summary = bench.summarize(Path("recipes/x.yaml"), reports, folds=3, seeds=1)
    pooled = summary["confidence_intervals"]
    # one bootstrap over the 6 speakers of the 3 folds, its point estimate the pooled clips' UA
    assert pooled["speakers"] == 6 and pooled["reliable"]
    expected = classification_metrics(all_labels, np.eye(3)[all_predictions], names)["unweighted_accuracy"]
    assert pooled["pooled"]["unweighted_accuracy"] == pytest.approx(expected)
    low, high = pooled["intervals"]["unweighted_accuracy"]
    assert low < expected < high
    table = bench.markdown_table([summary, {**summary, "confidence_intervals": None}])
    assert f"{100 * expected:.1f} [{100 * low:.1f}, {100 * high:.1f}]" in table.splitlines()[2]
    assert "| – |" in table.splitlines()[3]  # a summary written before the intervals were recorded


def test_a_recipe_that_chooses_nothing_on_validation_trains_on_all_training_speakers(tmp_path, tiny_ravdess):
    bench = load_bench()
    fixed = bench.kfold_recipe(
        REPO / "recipes" / "ravdess_opensmile.yaml",
        tiny_ravdess,
        folds=4,
        seed=3,
        output_dir=tmp_path / "a",
        validation_size=0.34,
    )
    chooses = bench.kfold_recipe(
        REPO / "recipes" / "demo.yaml", tiny_ravdess, folds=4, seed=3, output_dir=tmp_path / "b", validation_size=0.34
    )
    assert fixed["load_best_model_at_end"] is False and fixed["validation_size"] == 0.0
    assert chooses["validation_size"] == 0.34
    assert bench.selects_on_validation({"load_best_model_at_end": False, "early_stopping_patience": 3})


def test_the_benchmarks_random_control_uses_the_same_clips_and_sizes_with_every_speaker_in_test(
    tmp_path, tiny_ravdess
):
    bench = load_bench()
    values = bench.kfold_recipe(
        REPO / "recipes" / "demo.yaml", tiny_ravdess, folds=4, seed=3, output_dir=tmp_path / "out", validation_size=0.0
    )
    path = tmp_path / "kfold.yaml"
    path.write_text(yaml.safe_dump(values))
    _, data_args, _, training_args = parse_recipe([str(path)])
    dataset = load_dataset_from_args(data_args)
    fold, splits = make_folds(dataset, data_args)[1]
    random_splits, random_data_args, random_training_args = bench.random_fold_run(
        dataset, splits, data_args, training_args, fold
    )
    assert {name: len(split) for name, split in random_splits.items()} == {
        name: len(split) for name, split in splits.items()
    }
    assert set(column_values(random_splits["test"], "path")) | set(
        column_values(random_splits["train"], "path")
    ) == set(column_values(splits["test"], "path")) | set(column_values(splits["train"], "path"))
    random_speakers = {name: set(column_values(split, "speaker_id")) for name, split in random_splits.items()}
    assert random_speakers["test"] & random_speakers["train"]  # the leak the control is there to show
    assert random_data_args.split_protocol == "random"
    assert Path(random_training_args.output_dir) == Path(training_args.output_dir) / "random"


def test_the_benchmark_summary_gives_mean_std_per_metric_and_the_inflation_fold_by_fold():
    bench = load_bench()

    def report(fold, ua, random_ua=None):
        metrics = {"unweighted_accuracy": ua, "accuracy": ua, "macro_f1": ua}
        out = {
            "fold": fold,
            "split": {"speakers": {"test": [f"{fold:02d}"]}},
            "bench_minutes": 1.0,
            "evaluation": {"test": metrics},
            "normalization": {"protocol": "p", "transductive": True},
        }
        if random_ua is not None:
            out["random"] = {"evaluation": {"test": {name: random_ua for name in metrics}}}
        return out

    summary = bench.summarize(Path("recipes/x.yaml"), [report(0, 0.5, 0.7), report(1, 0.6, 0.7)], folds=2, seeds=1)
    assert summary["mean_std"]["unweighted_accuracy"] == "55.0 ± 7.1"
    assert summary["inflation"]["unweighted_accuracy"] == "15.0 ± 7.1"  # +20 and +10 points
    assert summary["folds"][1]["random_split"]["unweighted_accuracy"] == 70.0
    assert summary["transductive"] and summary["minutes_per_run"] == 2.0
    table = bench.markdown_table([summary])
    assert "| `x` (transductive) | 50.0 | 60.0 | **55.0 ± 7.1** |" in table and "| 15.0 ± 7.1 |" in table
    # some folds only (--only-folds 1 3): each under its own fold number; two seeds of a fold share its column
    some = bench.summarize(Path("recipes/x.yaml"), [report(1, 0.5), report(3, 0.6), report(3, 0.8)], folds=5, seeds=2)
    header, _, row = bench.markdown_table([some]).splitlines()
    assert header.startswith("| recipe | fold 1 | fold 3 | UA mean")
    assert row.startswith("| `x` (transductive) | 50.0 | 60.0 / 80.0 | **63.3 ± 15.3** |")


def test_the_benchmark_reduces_each_test_speaker_to_n_emotions(prepared):
    bench = load_bench()
    splits = bench.reduce_test_emotions(speaker_splits(prepared), 2, seed=0)
    assert len(set(column_values(splits["test"], "label"))) == 2
    assert set(column_values(splits["test"], "speaker_id")) == {"04"}


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


def test_the_leave_one_corpus_out_benchmark_fuses_an_ensembles_members_on_each_left_out_corpus(tmp_path, monkeypatch):
    crosscorpus = load_bench("crosscorpus")
    recipe = REPO / "recipes" / "ravdess_whisper_ensemble.yaml"
    names = ["neutral", "happy"]
    speakers = ["a", "a", "b", "b"]

    def scores(predictions):
        return classification_metrics([0, 1, 0, 1], np.eye(2)[predictions], names, speakers=speakers)

    trained = []

    def train_left_out(member, output_root, model_paths, normalization, corpora, overrides):
        trained.append((member.name, normalization, list(corpora), dict(overrides)))
        for corpus in corpora:
            report = {"bench_minutes": 1.5, "evaluation": {"test": scores([0, 0, 0, 0])}}
            row = {"variant": crosscorpus.variant_name(member, overrides), "normalization": normalization}
            row |= {"test": corpus, "train_clips": 7, "train": "x", "train_speakers": 3, "test_speakers": 2}
            yield corpus, row | crosscorpus.row_scores(report), report, output_root / member.stem / corpus

    fused = []

    def ensemble_report(member_reports, member_dirs, output_dir, weights):
        fused.append((len(member_reports), [folder.name for folder in member_dirs], output_dir.name, weights))
        return RunReport.from_dict({"evaluation": {"test": scores([0, 1, 0, 1])}})

    monkeypatch.setattr(crosscorpus, "train_left_out", train_left_out)
    monkeypatch.setattr(crosscorpus, "ensemble_report", ensemble_report)
    # TESS's row is in the results already: read back; the tiny.en member's nEMO row too (not added twice).
    done = {
        ("ravdess_whisper_ensemble seed=7", "corpus", "tess"): {"test": "tess", "unweighted_accuracy": 70.0},
        ("ravdess_whisper_tiny_en_fast seed=7", "corpus", "nemo"): {"test": "nemo", "unweighted_accuracy": 40.0},
    }
    added = []
    rows = crosscorpus.run_recipe(
        recipe, tmp_path, {}, "corpus", ["tess", "nemo"], {"seed": 7}, done=done, on_row=added.append
    )
    # Each member trained once, on the corpora still to run, with the same statistics and overrides.
    assert trained == [
        ("ravdess_whisper_base_fast.yaml", "corpus", ["nemo"], {"seed": 7}),
        ("ravdess_whisper_tiny_en_fast.yaml", "corpus", ["nemo"], {"seed": 7}),
    ]
    # Both members' nEMO runs fused with the recipe's weights into the ensemble's fold of nEMO (the third corpus).
    assert fused == [(2, ["nemo", "nemo"], "fold-2", [1.0, 1.0])]
    assert [row["test"] for row in rows] == ["tess", "nemo"] and rows[0] is done[
        "ravdess_whisper_ensemble seed=7", "corpus", "tess"
    ]
    ensemble = rows[1]
    assert ensemble["variant"] == "ravdess_whisper_ensemble seed=7" and ensemble["train_clips"] == 7
    assert (
        ensemble["unweighted_accuracy"] == 100.0 and ensemble["minutes"] == 3.0
    )  # the fused scores, both members' time
    assert [(row["variant"], row["test"]) for row in added] == [
        ("ravdess_whisper_base_fast seed=7", "nemo"),
        ("ravdess_whisper_ensemble seed=7", "nemo"),
    ]
