import logging

import numpy as np
import pytest
from datasets import DatasetDict

from ser_hf import (
    audit_leakage,
    get_ser_info,
    leave_one_speaker_out,
    load_corpus,
    random_split,
    speaker_kfold,
    speaker_split,
)
from ser_hf.data.splits import SplitError, split_dataset
from tests.conftest import RAVDESS_SAMPLE


@pytest.fixture(scope="module")
def ravdess():
    return load_corpus("ravdess", RAVDESS_SAMPLE)


def _speakers(split):
    return set(split["speaker_id"])


def test_speaker_lists_put_every_speaker_in_exactly_one_split(ravdess):
    splits = speaker_split(ravdess, test_speakers=["07", "08"], validation_speakers=["06"])
    assert isinstance(splits, DatasetDict) and list(splits) == ["train", "validation", "test"]
    assert _speakers(splits["test"]) == {"07", "08"} and _speakers(splits["validation"]) == {"06"}
    assert _speakers(splits["train"]) == {"01", "02", "03", "04", "05"}
    assert sum(len(s) for s in splits.values()) == len(ravdess)
    record = get_ser_info(splits["test"])
    assert record["split_protocol"] == "speaker" and record["split_speakers"] == ["07", "08"]
    assert audit_leakage(splits).passed


def test_speakers_left_out_of_explicit_lists_are_dropped_and_logged(ravdess, caplog):
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        splits = speaker_split(ravdess, train_speakers=["01", "02", "03"], test_speakers=["08"])
    assert "['04', '05', '06', '07'] are in no split" in caplog.text
    assert len(splits["train"]) == 90 and "validation" not in splits


def test_remaining_speakers_are_the_test_split_when_only_train_and_validation_are_listed(ravdess):
    splits = speaker_split(ravdess, train_speakers=["01", "02", "03", "04"], validation_speakers=["05", "06"])
    assert _speakers(splits["test"]) == {"07", "08"}
    assert sum(len(s) for s in splits.values()) == len(ravdess)
    everyone = speaker_split(ravdess, train_speakers=[f"0{i}" for i in range(1, 7)], validation_speakers=["07", "08"])
    assert "test" not in everyone  # no speaker left: no test split


def test_no_speaker_left_for_test_is_a_loud_warning_naming_the_fix(ravdess, caplog):
    """A recipe for actors 01-24 on a copy of fewer actors: train and validation take every speaker, the rest is
    empty. The run would report validation figures only, so the split says so, with flags that give a test split."""
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        splits = speaker_split(
            ravdess, train_speakers=["01", "02", "03", "04"], validation_speakers=["05", "06", "07", "08"]
        )
    assert list(splits) == ["train", "validation"]
    (record,) = [r for r in caplog.records if "NO TEST SPEAKERS" in r.getMessage()]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "every speaker of the dataset (8: 01, 02, 03, 04, 05, 06, 07, 08)" in message
    assert "reports only validation figures" in message and "fit the calibration temperature" in message
    assert message.endswith("e.g. --validation_speakers 05 06 --test_speakers 07 08.")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        speaker_split(ravdess, train_speakers=["01", "02", "03", "04"], validation_speakers=["05", "06"])
    assert "NO TEST SPEAKERS" not in caplog.text  # 07 and 08 are the test split


def test_bad_speaker_lists_are_named(ravdess):
    with pytest.raises(SplitError, match=r"test_speakers: speaker\(s\) \['99'\]") as error:
        speaker_split(ravdess, test_speakers=["99"])
    assert "test_speakers in the recipe, or --test_speakers ID [ID ...] on the command line" in str(error.value)
    with pytest.raises(SplitError, match=r"\['07'\] are listed for both validation and test"):
        speaker_split(ravdess, test_speakers=["07"], validation_speakers=["07"])


def test_proportional_speaker_split_is_deterministic_under_seed(ravdess):
    first = speaker_split(ravdess, test_size=0.25, validation_size=0.125, seed=3)
    again = speaker_split(ravdess, test_size=0.25, validation_size=0.125, seed=3)
    assert [len(_speakers(first[k])) for k in first] == [5, 1, 2]
    assert all(first[k]["path"] == again[k]["path"] for k in first)
    others = [speaker_split(ravdess, test_size=0.25, validation_size=0.125, seed=s) for s in range(4, 10)]
    assert any(_speakers(o["test"]) != _speakers(first["test"]) for o in others)
    assert audit_leakage(first).speaker_independent


def test_kfold_covers_every_clip_once_as_test_with_disjoint_speakers(ravdess):
    folds = speaker_kfold(ravdess, n_splits=4, seed=0)
    assert len(folds) == 4
    test_paths = [p for fold in folds for p in fold["test"]["path"]]
    assert sorted(test_paths) == sorted(ravdess["path"])
    for fold in folds:
        assert not _speakers(fold["train"]) & _speakers(fold["test"])
        assert audit_leakage(fold, check_files=False).passed
    assert [get_ser_info(f["test"])["fold"] for f in folds] == [0, 1, 2, 3]
    with_validation = speaker_kfold(ravdess, n_splits=4, validation_size=0.2, seed=0)
    for fold in with_validation:
        assert len({frozenset(_speakers(s)) for s in fold.values()}) == 3
        assert audit_leakage(fold, check_files=False).speaker_independent
    with pytest.raises(
        SplitError, match=r"9 folds asked for \(a recipe's num_folds, n_splits\).*the dataset has 8 speakers"
    ):
        speaker_kfold(ravdess, n_splits=9)


def test_leave_one_speaker_out(ravdess):
    folds = leave_one_speaker_out(ravdess)
    assert [sorted(_speakers(f["test"])) for f in folds] == [[f"{i:02d}"] for i in range(1, 9)]
    assert all(len(f["train"]) == 210 for f in folds)


def test_random_split_warns_loudly_and_is_audited_as_random(ravdess, caplog):
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        splits = random_split(ravdess, test_size=0.2, validation_size=0.1, seed=1)
    assert "RANDOM SPLIT" in caplog.text and "speaker leakage" in caplog.text
    assert sum(len(s) for s in splits.values()) == len(ravdess)
    report = audit_leakage(splits, check_files=False)
    assert not report.speaker_independent and report.passed and report.protocol == "random"
    # Stratified: every label has the same share in test as in the corpus.
    counts = np.bincount(splits["test"]["label"], minlength=8)
    assert abs(counts - np.bincount(ravdess["label"]) * 0.2).max() <= 1


def test_split_dataset_dispatches_by_protocol(ravdess):
    assert len(split_dataset(ravdess, "kfold", n_splits=2)) == 2
    assert len(split_dataset(ravdess, "speaker", test_size=0.25, validation_size=0)) == 1
    with pytest.raises(SplitError, match="Unknown split protocol 'stratified'"):
        split_dataset(ravdess, "stratified")


def test_real_ravdess_speaker_split_and_five_folds(shared_data):
    ds = load_corpus("ravdess", shared_data / "ravdess_16k")
    splits = speaker_split(
        ds,
        train_speakers=[f"{i:02d}" for i in range(1, 17)],
        validation_speakers=["17", "18"],
        test_speakers=["19", "20"],
    )
    assert [len(_speakers(splits[k])) for k in ("train", "validation", "test")] == [16, 2, 2]
    assert sum(len(s) for s in splits.values()) == 1200
    by_speaker = {}
    for name, split in splits.items():
        for speaker in _speakers(split):
            by_speaker.setdefault(speaker, []).append(name)
    assert len(by_speaker) == 20 and all(len(v) == 1 for v in by_speaker.values())
    folds = speaker_kfold(ds, n_splits=5, seed=42)
    test_paths = [p for fold in folds for p in fold["test"]["path"]]
    assert len(test_paths) == 1200 and set(test_paths) == set(ds["path"])
    assert all(audit_leakage(fold, check_files=False).passed for fold in folds)


def test_splits_that_leave_nothing_to_train_on_or_too_few_speakers_are_refused(ravdess):
    everyone = sorted(set(ravdess["speaker_id"]))
    with pytest.raises(SplitError, match="No speaker is left for training"):
        speaker_split(ravdess, test_speakers=everyone)
    one_speaker = ravdess.filter(lambda s: s == "01", input_columns="speaker_id")
    with pytest.raises(SplitError, match="at least two speakers"):
        leave_one_speaker_out(one_speaker)
    with pytest.raises(SplitError, match="validation_size=0"):
        speaker_split(ravdess.filter(lambda s: s in ("01", "02"), input_columns="speaker_id"), test_size=0.5)
    with pytest.raises(SplitError, match="between 0 and 1"):
        speaker_kfold(ravdess, n_splits=2, validation_size=1.5)


def test_train_only_corpora_join_every_training_split_and_never_a_scored_one(ravdess, tmp_path):
    """RAVDESS k-fold with TESS always trained on: the folds are those of RAVDESS alone, so a merged model and a
    RAVDESS-only one are scored on the same speakers."""
    from ser_hf import merge_corpora
    from tests.conftest import write_audio

    for name in ["OAF_back_angry.wav", "OAF_dog_happy.wav", "YAF_back_sad.wav", "YAF_dog_neutral.wav"]:
        write_audio(tmp_path / "tess" / name.split("_")[0] / name)
    tess = load_corpus("tess", tmp_path / "tess")
    merged = merge_corpora([ravdess, tess])
    alone = speaker_kfold(merge_corpora([ravdess]), n_splits=4, seed=3)
    folds = split_dataset(merged, "kfold", n_splits=4, seed=3, train_only_corpora=["tess"])
    assert len(folds) == 4
    for splits, reference in zip(folds, alone):
        assert _speakers(splits["test"]) == _speakers(reference["test"])
        assert _speakers(splits["train"]) == _speakers(reference["train"]) | {"tess:OAF", "tess:YAF"}
        assert set(splits["test"]["corpus"]) == {"ravdess"}
        assert len(splits["train"]) == len(reference["train"]) + len(tess)
        assert get_ser_info(splits["train"])["train_only_corpora"] == ["tess"]
        assert "tess:OAF" in get_ser_info(splits["train"])["split_speakers"]
        assert audit_leakage(splits).passed
    (speaker,) = split_dataset(
        merged,
        "speaker",
        test_speakers=["ravdess:08"],
        validation_speakers=["ravdess:07"],
        train_only_corpora=["tess"],
    )
    assert _speakers(speaker["validation"]) == {"ravdess:07"} and "tess:YAF" in _speakers(speaker["train"])

    with pytest.raises(SplitError, match=r"train_only_corpora names \['cremad'\], which the dataset does not hold"):
        split_dataset(merged, "kfold", n_splits=4, train_only_corpora=["cremad"])
    with pytest.raises(SplitError, match="takes every corpus of the dataset"):
        split_dataset(merged, "kfold", n_splits=4, train_only_corpora=["ravdess", "tess"])
    from datasets import Dataset

    clash = Dataset.from_dict({"corpus": ["a", "a", "b"], "speaker_id": ["1", "2", "1"], "label": [0, 1, 0]})
    with pytest.raises(SplitError, match=r"Speaker\(s\) \['1'\] have clips in train_only_corpora \(b\)"):
        split_dataset(clash, "kfold", n_splits=2, train_only_corpora=["b"])
