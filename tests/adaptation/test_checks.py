"""What a user gives ``ser-hf adapt`` (and :func:`ser_hf.adaptation.adapt`), checked before a clip is encoded: one
line naming the flag, folder or file at fault, and nothing written; unlabelled recordings that are labelled clips
left out of self-training and counted; the test speakers' own recordings refused unless the user says so; a Hub id
resolved as ``ser-hf predict`` resolves one; a pattern that starts with '-'."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from huggingface_hub import constants

from ser_hf.adaptation import check_adaptation
from ser_hf.adaptation.errors import AdaptationError
from ser_hf.cli import main as cli_main
from tests.conftest import RAVDESS_SAMPLE
from tests.training.test_adaptation import write_model_config

LABEL_REGEX, SPEAKER_REGEX = r"_(?P<label>[a-z]+)_\d+\.flac$", r"^(?P<speaker>[A-Z]+)_"
PATTERNS = {"label_regex": LABEL_REGEX, "speaker_regex": SPEAKER_REGEX}


@pytest.fixture
def model(tmp_path) -> Path:
    return write_model_config(tmp_path / "model", model_type="ser_whisper", id2label={"0": "angry", "1": "happy"})


def clips_folder(root: Path, names: list[str], copy: bool = False, first: int = 0) -> Path:
    """Files of `names` in `root`, each a different RAVDESS sample clip from the `first` (links, or copies: other
    paths, same bytes)."""
    root.mkdir(parents=True, exist_ok=True)
    sources = sorted(RAVDESS_SAMPLE.glob("Actor_01/*.flac"))[first:]
    for name, source in zip(names, sources):
        (shutil.copyfile(source, root / name) if copy else (root / name).symlink_to(source))
    return root


LABELLED = ["SPA_angry_0.flac", "SPA_happy_0.flac", "SPB_angry_0.flac", "SPB_happy_0.flac"]


def adapt_command(model: Path, data_dir: Path, output_dir: Path, *flags: str) -> list[str]:
    return ["adapt", str(model), "--data_dir", str(data_dir), "--output_dir", str(output_dir)] + [
        "--label_regex",
        LABEL_REGEX,
        "--speaker_regex",
        SPEAKER_REGEX,
        *flags,
    ]


@pytest.mark.parametrize("where", ["inside-labelled", "inside-unlabelled", "labelled-inside-output"])
def test_an_output_folder_among_the_audio_is_refused_and_nothing_is_written(tmp_path, model, capsys, where):
    labelled = clips_folder(tmp_path / "labelled", LABELLED)
    unlabelled = clips_folder(tmp_path / "unlabelled", ["U_x_0.flac"], first=10)
    output = {
        "inside-labelled": labelled / "adapted",
        "inside-unlabelled": unlabelled / "sub" / "adapted",
        "labelled-inside-output": tmp_path,
    }[where]
    before = sorted(tmp_path.rglob("*"))
    status = cli_main(adapt_command(model, labelled, output, "--unlabelled_dir", str(unlabelled)))
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "ser-hf never writes its outputs among the files it reads" in err and "--output-dir" in err
    assert sorted(tmp_path.rglob("*")) == before


def test_unlabelled_recordings_that_are_labelled_clips_are_left_out_of_self_training_and_counted(tmp_path, model):
    labelled = clips_folder(tmp_path / "labelled", LABELLED)  # the sample's first four clips
    # Two of the labelled clips again, copied under other names (the same bytes), beside two new recordings.
    unlabelled = clips_folder(tmp_path / "unlabelled", ["U_a.flac", "U_b.flac"], copy=True)
    for name, source in zip(("U_new_1.flac", "U_new_2.flac"), sorted(RAVDESS_SAMPLE.glob("Actor_01/*.flac"))[4:6]):
        (unlabelled / name).symlink_to(source)
    plan = check_adaptation(model, labelled, tmp_path / "out", unlabelled_dir=unlabelled, corpus_options=PATTERNS)
    assert plan.record["unlabelled_clips_of_labelled_folder"] == 2
    assert sorted(Path(path).name for path in plan.unlabelled) == ["U_new_1.flac", "U_new_2.flac"]
    assert set(plan.unlabelled.values()) == {"U"}
    # The labelled folder itself as the unlabelled one: nothing left to self-train on, said at once.
    with pytest.raises(AdaptationError, match="every recording in it is a clip of data_dir"):
        check_adaptation(model, labelled, tmp_path / "out", unlabelled_dir=labelled, corpus_options=PATTERNS)
    assert not (tmp_path / "out").exists()


def test_test_speakers_recordings_among_the_unlabelled_are_refused_unless_the_user_says_so(tmp_path, model, capsys):
    labelled = clips_folder(tmp_path / "labelled", LABELLED)
    unlabelled = clips_folder(tmp_path / "unlabelled", ["SPB_x_7.flac", "U_x_8.flac"], first=10)
    flags = ("--test_speakers", "SPB", "--unlabelled_dir", str(unlabelled))
    assert cli_main(adapt_command(model, labelled, tmp_path / "out", *flags)) == 2
    err = capsys.readouterr().err
    assert "holds recordings of the test speakers SPB" in err and "--self-train-on-test-speakers" in err
    plan = check_adaptation(
        model,
        labelled,
        tmp_path / "out",
        corpus_options=PATTERNS,
        test_speakers=["SPB"],
        unlabelled_dir=unlabelled,
        self_train_on_test_speakers=True,
    )
    assert plan.transductive and plan.record["self_trained_on_test_speakers"] == ["SPB"]
    assert not (tmp_path / "out").exists()


def test_a_hub_id_not_in_the_cache_is_named_with_hf_hub_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    labelled = clips_folder(tmp_path / "labelled", LABELLED)
    assert cli_main(adapt_command(Path("someone/general-ser"), labelled, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "someone/general-ser is not in the Hub cache" in err and "HF_HUB_OFFLINE is set" in err


def test_a_pattern_that_starts_with_a_dash_is_read_as_the_pattern(tmp_path, model, capsys):
    """Names like ``dis-f1-b1.flac``: ``--speaker_regex '-(?P<speaker>[fm]\\d)-'`` is the pattern, not a flag."""
    labelled = clips_folder(tmp_path / "labelled", ["angry-f1-b1.flac", "happy-f1-b2.flac", "angry-m2-b1.flac"])
    flags = ["--label_regex", r"^(?P<label>[a-z]+)-", "--speaker_regex", r"-(?P<speaker>[fm]\d)-"]
    status = cli_main(
        ["adapt", str(model), "--data_dir", str(labelled), "--output_dir", str(tmp_path / "out"), *flags]
        + ["--test_speakers", "NOBODY"]
    )
    err = capsys.readouterr().err
    # Parsed, and the speakers were read with it: the next check names them.
    assert status == 2 and "--test-speakers NOBODY: not among" in err and "['f1', 'm2']" in err
