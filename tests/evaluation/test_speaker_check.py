"""Checked speaker statistics (issue 76, point 4): speakers heard in few emotions, told from the model's predictions
under the statistics of all the clips, get those statistics instead of their own; the conditions that build such
speakers from a corpus."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value

import ser_hf.evaluation.speaker_check as speaker_check
from ser_hf.deploy.classify import classify_files
from ser_hf.deploy.pipelines import load_classifier
from ser_hf.evaluation.conditions import assign_emotions, keep_emotions_per_speaker
from ser_hf.evaluation.evaluate_model import TrainedModel, evaluate_on_dataset, load_evaluation_corpus
from ser_hf.evaluation.speaker_check import check_speaker_statistics
from ser_hf.models import SerWhisperFeatureExtractor
from tests.deploy.test_predict_encoder_once import scores_of, whisper_folder, write_recordings
from tests.evaluation.test_evaluation_statistics import calm_corpus, encoded_clips, source_of, whisper_model  # noqa: F401

LABELS = 4


def spread(clips: int, seed: int) -> np.ndarray:
    """Predicted distributions of a speaker heard in every emotion: each clip confident of one of them in turn."""
    rng = np.random.default_rng(seed)
    probabilities = np.full((clips, LABELS), 0.1 / (LABELS - 1))
    probabilities[np.arange(clips), np.arange(clips) % LABELS] = 0.9
    return probabilities[rng.permutation(clips)]


def one_emotion(clips: int, label: int) -> np.ndarray:
    probabilities = np.full((clips, LABELS), 0.1 / (LABELS - 1))
    probabilities[:, label] = 0.9
    return probabilities


def statistics(value: float):
    return np.full(3, value, np.float32), np.ones(3, np.float32)


def check(parts: dict[str, np.ndarray]):
    probabilities = np.concatenate(list(parts.values()))
    groups = [speaker for speaker, rows in parts.items() for _ in rows]
    own = {speaker: statistics(index) for index, speaker in enumerate(parts)}
    return own, check_speaker_statistics(probabilities, groups, own, statistics(-1.0))


def test_speakers_heard_in_every_emotion_keep_their_own_statistics():
    own, (checked, record) = check({f"s{i}": spread(12, i) for i in range(5)})
    assert checked == own
    assert record["fallback"] == [] and not record["set_statistics_for_all"]
    assert record["median_divergence"] < speaker_check.SET_DIVERGENCE


def test_a_set_of_speakers_each_heard_in_one_emotion_gets_the_statistics_of_all_the_clips(caplog):
    with caplog.at_level(logging.WARNING):
        _, (checked, record) = check({f"s{i}": one_emotion(8, i % LABELS) for i in range(6)})
    assert record["set_statistics_for_all"] and record["fallback"] == [f"s{i}" for i in range(6)]
    assert all(np.array_equal(mean, statistics(-1.0)[0]) for mean, _ in checked.values())
    assert "heard in few emotions each" in caplog.text


def test_a_lone_speaker_heard_in_one_emotion_among_others_gets_the_statistics_of_all_the_clips():
    parts = {f"s{i}": spread(12, i) for i in range(5)}
    parts["lone"] = one_emotion(12, 2)
    own, (checked, record) = check(parts)
    assert not record["set_statistics_for_all"] and record["fallback"] == ["lone"]
    assert np.array_equal(checked["lone"][0], statistics(-1.0)[0])
    assert all(checked[speaker] is own[speaker] for speaker in parts if speaker != "lone")
    assert record["divergences"]["lone"] >= speaker_check.SPEAKER_DIVERGENCE


def test_the_thresholds_can_be_given():
    probabilities = np.concatenate([spread(8, 0), spread(8, 1)])
    own = {"a": statistics(0), "b": statistics(1)}
    _, default = check_speaker_statistics(probabilities, ["a"] * 8 + ["b"] * 8, own, statistics(-1))
    checked, given = check_speaker_statistics(
        probabilities, ["a"] * 8 + ["b"] * 8, own, statistics(-1), set_divergence=0.0
    )
    assert not default["set_statistics_for_all"]
    assert given["set_statistics_for_all"] and given["set_divergence"] == 0.0 and given["fallback"] == ["a", "b"]


# --- The conditions ---------------------------------------------------------------------------------------------


def corpus(speakers: int = 7, emotions=("neutral", "happy", "sad", "angry"), clips_each: int = 2) -> Dataset:
    rows = [
        {"speaker_id": f"p{speaker}", "label": label, "path": f"p{speaker}_{label}_{clip}.wav"}
        for speaker in range(speakers)
        for label in range(len(emotions))
        for clip in range(clips_each)
    ]
    features = Features(
        {"speaker_id": Value("string"), "label": ClassLabel(names=list(emotions)), "path": Value("string")}
    )
    return Dataset.from_list(rows, features=features)


def test_each_speaker_keeps_one_emotion_and_every_emotion_is_still_tested():
    dataset = corpus()
    reduced = keep_emotions_per_speaker(dataset, 1, seed=3)
    by_speaker: dict[str, set[int]] = {}
    for speaker, label in zip(reduced["speaker_id"], reduced["label"]):
        by_speaker.setdefault(speaker, set()).add(label)
    assert len(by_speaker) == 7 and all(len(labels) == 1 for labels in by_speaker.values())
    assert len(reduced) == 7 * 2  # every clip of the kept emotion
    tested = [label for labels in by_speaker.values() for label in labels]
    assert sorted(set(tested)) == [0, 1, 2, 3] and max(map(tested.count, set(tested))) <= 2
    # Seeded: the same draw again, another with another seed.
    assert keep_emotions_per_speaker(dataset, 1, seed=3)["path"] == reduced["path"]
    assert keep_emotions_per_speaker(dataset, 1, seed=4)["path"] != reduced["path"]


def test_two_emotions_a_share_of_speakers_and_the_labels_in_play():
    dataset = corpus()
    two = keep_emotions_per_speaker(dataset, 2, seed=0, labels=["happy", "sad", "angry"])
    for speaker in set(two["speaker_id"]):
        labels = {label for s, label in zip(two["speaker_id"], two["label"]) if s == speaker}
        assert len(labels) == 2 and 0 not in labels
    mixed = keep_emotions_per_speaker(dataset, 1, seed=0, speaker_share=0.5)
    counts = {speaker: mixed["speaker_id"].count(speaker) for speaker in set(mixed["speaker_id"])}
    assert sorted(counts.values()) == [2, 2, 2, 8, 8, 8, 8]  # 3 of 7 speakers reduced, 4 keep every clip
    with pytest.raises(ValueError, match=r"labels \['calm'\] are not labels of the dataset"):
        keep_emotions_per_speaker(dataset, 1, seed=0, labels=["calm"])
    with pytest.raises(ValueError, match="speaker_share must be above 0"):
        keep_emotions_per_speaker(dataset, 1, seed=0, speaker_share=0.0)
    # More emotions a speaker than the labels in play: each speaker gets every label once.
    assert all(sorted(labels) == [0, 1, 2] for labels in assign_emotions(["a", "b"], [0, 1, 2], 5, seed=0).values())
    with pytest.raises(ValueError, match="emotions_per_speaker must be 1 or more"):
        assign_emotions(["a"], [0], 0, seed=0)


# --- The extractor, evaluate and predict ----------------------------------------------------------------------


def test_the_extractor_saves_the_check_and_refuses_it_without_speaker_statistics(tmp_path):
    extractor = SerWhisperFeatureExtractor(normalization="speaker", speaker_statistics_check=True)
    extractor.save_pretrained(tmp_path)
    assert SerWhisperFeatureExtractor.from_pretrained(tmp_path).speaker_statistics_check is True
    with pytest.raises(ValueError, match="speaker_statistics_check checks speaker statistics: it needs"):
        SerWhisperFeatureExtractor(normalization="corpus", speaker_statistics_check=True)
    with pytest.raises(ValueError, match="must be true or false"):
        SerWhisperFeatureExtractor(normalization="speaker", speaker_statistics_check="yes")


def clip_scores(report) -> np.ndarray:
    (metrics,) = report["evaluation"].values()
    return np.array([[row["scores"][label] for label in report["labels"]] for row in metrics["clip_predictions"]])


def test_evaluate_with_the_check_gives_speaker_or_corpus_statistics_as_it_decides(
    calm_corpus,  # noqa: F811
    encoded_clips,  # noqa: F811
    monkeypatch,
):
    model, extractor = whisper_model("speaker")
    with torch.no_grad():  # scores short of 0 and 1, where statistics show
        for parameter in model.classifier.parameters():
            parameter.mul_(0.05)
    source = source_of(calm_corpus)
    dataset = load_evaluation_corpus(source, 16000)
    trained = TrainedModel("tiny", model, extractor)
    by_speaker = clip_scores(evaluate_on_dataset(trained, dataset, source))
    extractor.normalization = "corpus"
    by_corpus = clip_scores(evaluate_on_dataset(trained, dataset, source))
    extractor.normalization, extractor.speaker_statistics_check = "speaker", True
    assert np.abs(by_speaker - by_corpus).max() > 1e-2

    monkeypatch.setattr(speaker_check, "SET_DIVERGENCE", np.inf)
    monkeypatch.setattr(speaker_check, "SPEAKER_DIVERGENCE", np.inf)
    report = evaluate_on_dataset(trained, dataset, source)
    np.testing.assert_allclose(clip_scores(report), by_speaker, atol=1e-4)
    check = report["normalization"]["check"]
    assert check["fallback"] == [] and sorted(check["divergences"]) == ["A1", "B1"]
    assert "checked" in report["normalization"]["protocol"]

    monkeypatch.setattr(speaker_check, "SET_DIVERGENCE", 0.0)
    report = evaluate_on_dataset(trained, dataset, source)
    # Every speaker standardised with the statistics of all 12 clips, the unscored calm ones included: as corpus.
    np.testing.assert_allclose(clip_scores(report), by_corpus, atol=1e-4)
    assert report["normalization"]["check"]["set_statistics_for_all"]


def test_predict_with_the_check_falls_back_to_the_statistics_of_the_recordings(tmp_path, monkeypatch):
    files = write_recordings(tmp_path / "recordings", clips_each=10)
    speakers = {file: ("A1" if "/A1_" in file else "B1") for file in files}
    by_corpus = scores_of(
        classify_files(load_classifier(str(whisper_folder(tmp_path / "corpus", "corpus"))), files, progress=False)
    )
    folder = whisper_folder(tmp_path / "speaker", "speaker")
    classifier = load_classifier(str(folder))
    classifier.feature_extractor.speaker_statistics_check = True
    by_speaker = scores_of(classify_files(load_classifier(str(folder)), files, speakers=speakers, progress=False))

    monkeypatch.setattr(speaker_check, "SET_DIVERGENCE", np.inf)
    monkeypatch.setattr(speaker_check, "SPEAKER_DIVERGENCE", np.inf)
    kept = scores_of(classify_files(classifier, files, speakers=speakers, progress=False))
    monkeypatch.setattr(speaker_check, "SET_DIVERGENCE", 0.0)
    fallen_back = scores_of(classify_files(classifier, files, speakers=speakers, progress=False))
    for file in files:
        np.testing.assert_allclose(kept[file], by_speaker[file], atol=1e-4, err_msg=file)
        np.testing.assert_allclose(fallen_back[file], by_corpus[file], atol=1e-4, err_msg=file)
    assert max(np.abs(np.subtract(by_speaker[f], by_corpus[f])).max() for f in files if by_corpus[f]) > 1e-2


def checked_whisper_model():
    """The tiny speaker-standardised Whisper classifier, saved-setting ``speaker_statistics_check`` on."""
    model, extractor = whisper_model("speaker")
    extractor.speaker_statistics_check = True
    return model, extractor


def test_a_model_whose_head_does_not_read_cached_states_says_its_speakers_are_not_checked(
    calm_corpus,  # noqa: F811
    encoded_clips,  # noqa: F811
    monkeypatch,
    caplog,
):
    import ser_hf.evaluation.evaluate_model as evaluate_module

    model, extractor = checked_whisper_model()
    source = source_of(calm_corpus)
    dataset = load_evaluation_corpus(source, 16000)
    monkeypatch.setattr(evaluate_module, "encodes_once", lambda model, extractor: False)  # as a fine-tuned encoder
    with caplog.at_level(logging.WARNING):
        report = evaluate_on_dataset(TrainedModel("tiny", model, extractor), dataset, source)
    assert "speakers' statistics are not checked" in caplog.text
    assert "check" not in report["normalization"]


def test_a_training_run_checks_its_evaluated_speakers_with_the_trained_model(
    calm_corpus,  # noqa: F811
    encoded_clips,  # noqa: F811
    monkeypatch,
    caplog,
):
    from ser_hf.evaluation.speaker_check import check_split_speakers
    from ser_hf.inputs.fast_mode import encoder_states_once
    from ser_hf.inputs.speaker_normalization import evaluation_normalization

    model, extractor = checked_whisper_model()
    dataset = load_evaluation_corpus(source_of(calm_corpus), 16000)
    encoded = encoder_states_once(model, extractor, dataset, 8)
    plan = evaluation_normalization(extractor, encoded, "test", model)
    own = dict(plan.speaker_statistics)
    monkeypatch.setattr(speaker_check, "SET_DIVERGENCE", 0.0)
    with caplog.at_level(logging.WARNING):
        check_split_speakers(model, extractor, {"validation": dataset, "test": encoded}, plan)
    # The test split (cached states) is checked: every speaker falls back to the split's statistics ...
    assert plan.check["test"]["set_statistics_for_all"] and sorted(plan.check) == ["test"]
    shared_mean = plan.speaker_statistics["A1"][0]
    np.testing.assert_allclose(plan.speaker_statistics["B1"][0], shared_mean)
    assert np.abs(shared_mean - own["A1"][0]).max() > 1e-6
    # ... and a split without cached states is named, unchecked.
    assert "the validation split has no cached encoder states" in caplog.text


def test_ser_hf_evaluate_under_one_emotion_per_speaker_with_and_without_the_check(
    tmp_path,
    calm_corpus,  # noqa: F811
    capsys,
):
    """The command a user runs to see how a model fares on speakers heard in one emotion each."""
    import json

    from ser_hf.cli import main as cli_main
    from tests.evaluation.test_evaluation_statistics import SPEAKER_REGEX

    model, extractor = whisper_model("speaker")
    model.save_pretrained(tmp_path / "model")
    extractor.save_pretrained(tmp_path / "model")
    arguments = ["evaluate", "--model", str(tmp_path / "model"), "--corpus", "folder", "--data-dir", str(calm_corpus)]
    arguments += ["--option", f"speaker_regex={SPEAKER_REGEX}", "--emotions-per-speaker", "1"]
    reports = {}
    for flag in ("--speaker-statistics-check", "--no-speaker-statistics-check"):
        output = tmp_path / flag.strip("-")
        assert cli_main([*arguments, flag, "--output-dir", str(output)]) == 0
        reports[flag] = json.loads((output / "eval_report.json").read_text())
        assert "each speaker heard in 1 emotion(s) only" in (output / "eval_report.md").read_text()
    checked, unchecked = reports["--speaker-statistics-check"], reports["--no-speaker-statistics-check"]
    # Each of the two speakers keeps one of the two emotions the model scores: 4 clips.
    (metrics,) = checked["evaluation"].values()
    assert metrics["clips"] == 4 and checked["condition"]["emotions_per_speaker"] == 1
    assert "check" in checked["normalization"] and "check" not in unchecked["normalization"]
    corpus_model = str(whisper_folder(tmp_path / "corpus", "corpus"))
    capsys.readouterr()
    status = cli_main([*arguments[:2], corpus_model, *arguments[3:], "--speaker-statistics-check"])
    assert status != 0
    assert "--speaker-statistics-check applies to Whisper models standardised per speaker" in capsys.readouterr().err
