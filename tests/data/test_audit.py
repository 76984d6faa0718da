import json
import os
import shutil

import pytest
from datasets import DatasetDict

from ser_hf import LeakageError, audit_leakage, load_corpus, speaker_split
from ser_hf.data.dataset_info import set_ser_info
from tests.conftest import RAVDESS_SAMPLE


@pytest.fixture(scope="module")
def ravdess():
    return load_corpus("ravdess", RAVDESS_SAMPLE)


def test_speaker_overlap_fails_the_audit_and_names_the_speakers(ravdess):
    leaky = DatasetDict(
        train=ravdess.filter(lambda s: s in ("01", "02", "03"), input_columns="speaker_id"),
        test=ravdess.filter(lambda s: s in ("03", "04"), input_columns="speaker_id"),
    )
    with pytest.raises(LeakageError, match=r"1 speaker\(s\) in both train and test: \['03'\]") as error:
        audit_leakage(leaky)
    report = error.value.report
    assert report.speaker_overlap == {"train/test": ["03"]} and not report.passed
    # Same clips on both sides are identical files too.
    assert len(report.file_overlap["train/test"]) == 30
    allowed = audit_leakage(leaky, allow_speaker_overlap=True, check_files=False)
    assert allowed.passed and not allowed.speaker_independent


def test_identical_file_under_another_name_is_found(ravdess, tmp_path):
    source = RAVDESS_SAMPLE / "Actor_01" / "03-01-05-01-01-01-01.flac"
    copy = tmp_path / "Actor_08" / "03-01-05-01-01-01-08.flac"
    copy.parent.mkdir()
    shutil.copy(source, copy)
    train = load_corpus("ravdess", source.parent)
    test = load_corpus("ravdess", copy.parent)
    report = audit_leakage(DatasetDict(train=train, test=test), raise_on_leakage=False)
    assert report.speaker_independent and not report.passed
    assert report.file_overlap["train/test"] == [[str(source), str(copy)]]
    assert "identical file" in report.describe_failures()


def test_sentences_shared_across_splits_are_reported_not_failed(ravdess):
    splits = speaker_split(ravdess, test_speakers=["08"], validation_size=0)
    report = audit_leakage(splits)
    assert report.passed and report.text_column == "text"
    assert report.text_overlap["train/test"] == ["Dogs are sitting by the door", "Kids are talking by the door"]
    document = json.loads(report.to_json())
    assert document["passed"] and document["speakers"]["test"] == ["08"]
    markdown = report.to_markdown()
    assert "passed" in markdown and "| train/test | 0 | 0 | 2 |" in markdown


def test_random_protocol_recorded_in_the_splits_allows_overlap(ravdess):
    train = set_ser_info(ravdess.select(range(0, 200)), split_protocol="random")
    test = set_ser_info(ravdess.select(range(200, 240)), split_protocol="random")
    report = audit_leakage(DatasetDict(train=train, test=test), check_files=False)
    assert report.protocol == "random" and report.passed
    assert "inflated by speaker leakage" in report.to_markdown()


def test_every_fold_audits_files_hashed_once_and_again_after_an_edit(tiny_ravdess, tmp_path, monkeypatch):
    from ser_hf.data import file_digests
    from ser_hf.data.splits import speaker_kfold

    corpus_dir = tmp_path / "corpus"
    shutil.copytree(tiny_ravdess, corpus_dir)  # copies, not links: one is edited below
    corpus = load_corpus("ravdess", corpus_dir)
    hashed = []
    digest = file_digests.hashlib.file_digest
    monkeypatch.setattr(file_digests, "_KNOWN", {})
    monkeypatch.setattr(
        file_digests.hashlib, "file_digest", lambda file, kind: hashed.append(file.name) or digest(file, kind)
    )
    folds = speaker_kfold(corpus, n_splits=4)
    for splits in folds:
        assert audit_leakage(splits).passed
    resolved = sorted(os.path.realpath(path) for path in corpus["path"])
    assert len(folds) == 4 and sorted(hashed) == resolved  # each file once, not once per fold

    edited = corpus["path"][0]
    with open(edited, "ab") as handle:
        handle.write(b"\0")  # trailing bytes: another size, so another hash
    hashed.clear()
    audit_leakage(folds[0])
    assert hashed == [os.path.realpath(edited)]
