"""Speaker normalisation outside training (issue 15): ``ser-hf predict`` groups recordings by speaker (one folder per
speaker, or a CSV) and standardises each speaker's windows with statistics of their own recordings; ``ser-hf
evaluate`` does the same with each evaluated speaker's clips; both say that the results are transductive."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

import ser_hf.evaluation.evaluate_model as evaluate_module
from ser_hf.cli import main as cli_main
from ser_hf.data.decode import decode_waveform
from ser_hf.deploy.audio_inputs import find_audio_inputs
from ser_hf.deploy.classify import classify_files
from ser_hf.deploy.pipelines import load_classifier
from ser_hf.deploy.speakers import read_speakers_csv, speakers_from_folders, speakers_of
from ser_hf.evaluation.eval_report import format_eval_report
from ser_hf.evaluation.evaluate_model import CorpusSource, evaluate_model
from ser_hf.inputs.speaker_normalization import TRANSDUCTIVE_PROTOCOL
from ser_hf.models import LogMelFeatureExtractor, OpenSmileFeatureExtractor, build_baseline
from tests.conftest_models import LABELS, build_tiny
from tests.deploy.test_predict import _randomize

SAMPLING_RATE = 16000


def _raw_features(extractor, files) -> list[np.ndarray]:
    """Each file's features before normalisation, as rows (log-mel frames, or one vector of functionals)."""
    waveforms = [decode_waveform(str(file), SAMPLING_RATE) for file in files]
    features = extractor(waveforms, sampling_rate=SAMPLING_RATE, padding=False, normalize=False)["input_features"]
    return [np.asarray(f, np.float64).reshape(-1, np.shape(f)[-1]) for f in features]


def _statistics(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A speaker's mean and standard deviation over all their rows, computed here independently of ser-hf."""
    stacked = np.concatenate(rows)
    return stacked.mean(axis=0), np.sqrt(stacked.var(axis=0) + 1e-5)


def _probabilities(model, features: np.ndarray) -> np.ndarray:
    """The model's probabilities for one clip's standardised features."""
    inputs = {"input_features": torch.tensor(features, dtype=torch.float32)[None]}
    if features.ndim == 2:  # frames: a mask of ones (one clip, no padding)
        inputs["attention_mask"] = torch.ones(1, features.shape[0], dtype=torch.int32)
    with torch.no_grad():
        return model(**inputs).logits.softmax(-1)[0].numpy()


@pytest.fixture(scope="module")
def speaker_crnn(tmp_path_factory, tiny_ravdess) -> Path:
    """A tiny CRNN over log-mels standardised per speaker, with global statistics (the fallback) from actor 03."""
    folder = tmp_path_factory.mktemp("speaker_crnn")
    extractor = LogMelFeatureExtractor(n_mels=32, normalization="speaker")
    actor_03 = sorted((tiny_ravdess / "Actor_03").iterdir())
    extractor.set_global_statistics(*_statistics(_raw_features(extractor, actor_03)))
    model, extractor = build_tiny("crnn", feature_extractor=extractor)
    _randomize(model).save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def global_crnn(tmp_path_factory) -> Path:
    """A tiny CRNN whose log-mels are standardised per clip (no speaker statistics)."""
    folder = tmp_path_factory.mktemp("global_crnn")
    model, extractor = build_tiny("crnn")
    _randomize(model).save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


@pytest.fixture
def speaker_folders(tmp_path, tiny_ravdess) -> Path:
    """recordings/alice (actor 01's 8 clips) and recordings/bob (actor 02's)."""
    for name, actor in (("alice", "01"), ("bob", "02")):
        (tmp_path / "recordings" / name).mkdir(parents=True)
        for clip in sorted((tiny_ravdess / f"Actor_{actor}").iterdir()):
            (tmp_path / "recordings" / name / clip.name).symlink_to(clip.resolve())
    return tmp_path / "recordings"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- Grouping -----------------------------------------------------------------------------------------------------


def test_each_file_gets_its_speaker_from_its_folder_or_from_a_csv(tmp_path, speaker_folders, monkeypatch):
    files = find_audio_inputs([speaker_folders])
    by_folder = speakers_from_folders(files)
    assert [by_folder[f] for f in files] == ["alice"] * 8 + ["bob"] * 8
    # A CSV beside the recordings, with paths relative to its folder (and one absolute), listing more files than
    # those classified; the files given on the command line relative to another working directory.
    table = tmp_path / "lists" / "speakers.csv"
    table.parent.mkdir()
    lines = ["path,speaker_id,note"] + [
        f"../recordings/{Path(f).parent.name}/{Path(f).name},S{i % 3},x" for i, f in enumerate(files[1:], start=1)
    ]
    lines.append(f"{files[0]},S0,absolute")
    table.write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(speaker_folders)
    relative = [str(Path(f).relative_to(speaker_folders)) for f in files[:5]]
    assert speakers_of(relative, read_speakers_csv(table), str(table)) == {
        file: f"S{i % 3}" for i, file in enumerate(relative)
    }


def test_predict_writes_each_files_speaker_and_a_non_speaker_model_only_labels_with_them(
    tmp_path, global_crnn, speaker_folders, capsys, caplog
):
    output = tmp_path / "emotions.csv"
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        assert (
            cli_main(
                [
                    "predict",
                    str(global_crnn),
                    str(speaker_folders),
                    "--speaker-from",
                    "folder",
                    "--output",
                    str(output),
                    "--no-progress",
                ]
            )
            == 0
        )
    assert "16 file(s), 16 window(s)" in capsys.readouterr().out
    rows = _read_csv(output)
    assert list(rows[0])[:3] == ["file", "speaker", "window"]
    assert [(Path(row["file"]).parent.name, row["speaker"]) for row in rows] == [("alice", "alice")] * 8 + [
        ("bob", "bob")
    ] * 8
    assert "does not standardise features per speaker (normalization='utterance'): the speakers only label" in (
        caplog.text
    )
    assert "transductive" not in caplog.text
    # JSON lines carry it too; without grouping there is no speaker key.
    assert (
        cli_main(
            ["predict", str(global_crnn), str(speaker_folders / "bob"), "--speaker-from", "folder", "--no-progress"]
        )
        == 0
    )
    assert {json.loads(line)["speaker"] for line in capsys.readouterr().out.splitlines()} == {"bob"}
    assert cli_main(["predict", str(global_crnn), str(speaker_folders / "bob"), "--no-progress"]) == 0
    assert all("speaker" not in json.loads(line) for line in capsys.readouterr().out.splitlines())


# --- Speaker-normalised models --------------------------------------------------------------------------------------


def test_a_speaker_normalised_model_gets_each_speakers_own_statistics(tmp_path, speaker_crnn, speaker_folders, caplog):
    """The scores predict gives equal the model's on features standardised with the statistics of all the speaker's
    recordings, computed here from the raw log-mels; the log says the results are transductive."""
    output = tmp_path / "emotions.json"
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        assert (
            cli_main(
                [
                    "predict",
                    str(speaker_crnn),
                    str(speaker_folders),
                    "--speaker-from",
                    "folder",
                    "--output",
                    str(output),
                    "--no-progress",
                    "--batch-size",
                    "4",
                ]
            )
            == 0
        )
    results = json.loads(output.read_text())
    assert [r["speaker"] for r in results] == ["alice"] * 8 + ["bob"] * 8
    assert f"Speaker normalisation of 2 speaker(s): {TRANSDUCTIVE_PROTOCOL}. The results are transductive" in (
        caplog.text
    )
    assert "No speaker statistics" not in caplog.text and "not grouped by speaker" not in caplog.text

    classifier = load_classifier(str(speaker_crnn), LogMelFeatureExtractor.from_pretrained(speaker_crnn))
    model, extractor = classifier.model, classifier.feature_extractor
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    fallback = extractor.global_statistics()
    differs = 0
    for speaker in ("alice", "bob"):
        files = [r["file"] for r in results if r["speaker"] == speaker]
        raw = _raw_features(extractor, files)
        mean, std = _statistics(raw)
        for result, features in zip([r for r in results if r["speaker"] == speaker], raw):
            expected = _probabilities(model, (features - mean) / std)
            assert [result["scores"][label] for label in labels] == pytest.approx(expected, abs=1e-5)
            globally = _probabilities(model, (features - fallback[0]) / fallback[1])
            differs += not np.allclose(globally, expected, atol=1e-3)
    assert differs > 8  # the speakers' own statistics change the scores: the test tells them from the fallback


def test_without_grouping_a_speaker_normalised_model_warns_of_the_global_fallback(
    speaker_crnn, speaker_folders, capsys, caplog
):
    with caplog.at_level(logging.WARNING):
        assert cli_main(["predict", str(speaker_crnn), str(speaker_folders / "alice"), "--no-progress"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # one warning, naming the flags (not the extractor's own as well)
    assert (
        "The model was trained on features standardised per speaker, but the recordings are not grouped by "
        "speaker: each is standardised with the training speakers' global statistics instead"
    ) in warnings[0]
    assert "--speaker-from folder" in warnings[0] and "--speakers CSV (columns path,speaker_id)" in warnings[0]
    classifier = load_classifier(str(speaker_crnn), LogMelFeatureExtractor.from_pretrained(speaker_crnn))
    mean, std = classifier.feature_extractor.global_statistics()
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    (features,) = _raw_features(classifier.feature_extractor, [first["file"]])
    expected = _probabilities(classifier.model, (features - mean) / std)
    labels = [classifier.model.config.id2label[i] for i in range(classifier.model.config.num_labels)]
    assert [first["scores"][label] for label in labels] == pytest.approx(expected, abs=1e-5)


def test_a_speaker_with_few_recordings_is_named_in_a_warning(tmp_path, speaker_crnn, speaker_folders, caplog):
    table = tmp_path / "speakers.csv"
    files = find_audio_inputs([speaker_folders])
    table.write_text(
        "path,speaker_id\n" + "".join(f"{f},{'carol' if i < 2 else 'dave'}\n" for i, f in enumerate(files))
    )
    classifier = load_classifier(str(speaker_crnn), LogMelFeatureExtractor.from_pretrained(speaker_crnn))
    with caplog.at_level(logging.WARNING):
        predictions = list(
            classify_files(
                classifier, files, progress=False, speakers=speakers_of(files, read_speakers_csv(table), str(table))
            )
        )
    assert [p.speaker for p in predictions] == ["carol"] * 2 + ["dave"] * 14
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("Speaker carol: statistics from 2 windows,")
    assert "fewer than 5 windows or 10 s: their standardisation is unreliable" in warning


def test_a_stock_pipeline_is_refused_for_speaker_statistics(speaker_crnn, speaker_folders):
    from transformers import pipeline

    files = find_audio_inputs([speaker_folders / "alice"])
    with pytest.raises(TypeError, match="load_classifier"):
        list(
            classify_files(
                pipeline("audio-classification", model=str(speaker_crnn)),
                files,
                progress=False,
                speakers=speakers_from_folders(files),
            )
        )


# --- The speakers CSV's errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "file,speaker\nalice/a.wav,alice\n",
            "missing column(s) ['path', 'speaker_id']; the header is ['file', 'speaker']",
        ),
        ("path,speaker_id\n{alice},alice\n{bob},\n", "speakers.csv, line 3: no value in column(s) ['speaker_id']"),
        (
            "path,speaker_id\n{alice},alice\nalice/missing.wav,alice\n",
            "speakers.csv, line 3: audio file '{folder}/alice/missing.wav' does not exist",
        ),
        ("path,speaker_id\n{alice},alice\n{alice},bob\n", "speakers.csv, lines 2 and 3 both list"),
        (
            "path,speaker_id\n{alice},alice\n",
            "speakers.csv gives no speaker for 1 of the 2 file(s) to classify: {bob}. Add a row (path,speaker_id)",
        ),
    ],
)
def test_speakers_csv_errors_name_the_file_and_line(speaker_folders, capsys, content, message, speaker_crnn):
    alice = find_audio_inputs([speaker_folders / "alice"])[0]
    bob = find_audio_inputs([speaker_folders / "bob"])[0]
    table = speaker_folders / "speakers.csv"
    table.write_text(
        content.format(alice=Path(alice).relative_to(speaker_folders), bob=Path(bob).relative_to(speaker_folders))
    )
    assert cli_main(["predict", str(speaker_crnn), alice, bob, "--speakers", str(table), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(table) in err and message.format(folder=speaker_folders, bob=bob) in err, err


def test_the_csvs_files_are_classified_when_no_file_is_named(tmp_path, global_crnn, speaker_folders, capsys):
    files = find_audio_inputs([speaker_folders])[6:10]
    table = speaker_folders / "speakers.csv"
    table.write_text(
        "path,speaker_id\n" + "".join(f"{Path(f).relative_to(speaker_folders)},{i}\n" for i, f in enumerate(files))
    )
    assert cli_main(["predict", str(global_crnn), "--speakers", str(table), "--no-progress"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["file"], line["speaker"]) for line in lines] == [(f, str(i)) for i, f in enumerate(files)]
    assert cli_main(["predict", str(global_crnn), "--no-progress"]) == 2
    assert "Give audio files or folders to classify" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):  # argparse: a usage error
        cli_main(["predict", str(global_crnn), files[0], "--speakers", str(table), "--speaker-from", "folder"])
    assert "not allowed with argument" in capsys.readouterr().err


# --- ser-hf evaluate ----------------------------------------------------------------------------------------------


def _spy_on_logits(monkeypatch) -> list:
    captured = []
    real = evaluate_module.predict_logits

    def spy(*args, **kwargs):
        captured.append(real(*args, **kwargs))
        return captured[-1]

    monkeypatch.setattr(evaluate_module, "predict_logits", spy)
    return captured


def test_evaluate_standardises_each_speaker_with_their_own_clips_and_says_it_is_transductive(
    tmp_path, speaker_crnn, tiny_ravdess, monkeypatch
):
    logits = _spy_on_logits(monkeypatch)
    report = evaluate_model(
        str(speaker_crnn), CorpusSource("ravdess", str(tiny_ravdess)), split="all", output_dir=tmp_path / "report"
    )
    assert report["normalization"]["transductive"] is True
    assert report["normalization"]["speakers"] == ["01", "02", "03", "04"]
    assert report["normalization"]["protocol"] == TRANSDUCTIVE_PROTOCOL
    assert f"Features: {TRANSDUCTIVE_PROTOCOL}." in format_eval_report(report)
    assert f"Features: {TRANSDUCTIVE_PROTOCOL}." in (tmp_path / "report" / "eval_report.md").read_text()

    (metrics,) = report["evaluation"].values()
    paths = [clip["path"] for clip in metrics["clip_predictions"]]
    model = evaluate_module.load_trained_model(str(speaker_crnn), device="cpu").model
    extractor = LogMelFeatureExtractor.from_pretrained(speaker_crnn)
    raw = _raw_features(extractor, paths)
    speakers = [Path(p).parent.name[-2:] for p in paths]
    # Each speaker's statistics come from all their clips, whatever the label: the calm ones, which the model does
    # not score, included (issue 69).
    every_clip = sorted(tiny_ravdess.glob("Actor_*/*.*"))
    assert len(every_clip) > len(paths) and {p.name.split("-")[2] for p in every_clip} - {
        Path(p).name.split("-")[2] for p in paths
    } == {"02"}
    every_raw, every_speaker = _raw_features(extractor, every_clip), [p.parent.name[-2:] for p in every_clip]
    for speaker in sorted(set(speakers)):
        mean, std = _statistics([r for r, s in zip(every_raw, every_speaker) if s == speaker])
        for index in [i for i, s in enumerate(speakers) if s == speaker]:
            expected = _probabilities(model, (raw[index] - mean) / std)
            np.testing.assert_allclose(torch.tensor(logits[0][index]).softmax(-1).numpy(), expected, atol=1e-5)


def test_evaluate_warns_of_a_speaker_heard_in_few_emotions(tmp_path, speaker_crnn, tiny_ravdess):
    """Actor 04 evaluated on their sad and angry clips only, beside actors 01-03 on all theirs."""
    labels = {"04": ("sad", "angry")}
    source = CorpusSource("ravdess", str(tiny_ravdess))
    dataset = evaluate_module.load_evaluation_corpus(source, SAMPLING_RATE)
    names = dataset.features["label"].names
    keep = [
        i
        for i, (speaker, label) in enumerate(zip(dataset["speaker_id"], dataset["label"]))
        if speaker not in labels or names[label] in labels[speaker]
    ]
    trained = evaluate_module.load_trained_model(str(speaker_crnn), device="cpu")
    report = evaluate_module.evaluate_on_dataset(trained, dataset.select(keep), source, split="all")
    (warning,) = [text for text in report["normalization"]["warnings"] if "labels far from" in text]
    assert warning.startswith("ravdess (all) speaker 04: labels far from those of the other evaluated speakers")
    assert f"- Warning: {warning}." in format_eval_report(report)


def test_evaluate_an_opensmile_model_normalised_per_speaker(tmp_path, tiny_ravdess, monkeypatch):
    """openSMILE: the functionals are computed once and serve the statistics and the model."""
    extractor = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02", normalization="speaker")
    extractor.set_global_statistics(np.zeros(88), np.ones(88))
    model, extractor = build_baseline("opensmile", LABELS, feature_extractor=extractor, hidden_sizes=[8])
    _randomize(model).save_pretrained(tmp_path / "model")
    extractor.save_pretrained(tmp_path / "model")
    calls = []
    functionals = OpenSmileFeatureExtractor.functionals
    monkeypatch.setattr(
        OpenSmileFeatureExtractor, "functionals", lambda self, waveform: calls.append(1) or functionals(self, waveform)
    )
    logits = _spy_on_logits(monkeypatch)
    report = evaluate_model(str(tmp_path / "model"), CorpusSource("ravdess", str(tiny_ravdess)), speakers=["01", "02"])
    assert report["normalization"]["speakers"] == ["01", "02"]
    (metrics,) = report["evaluation"].values()
    paths = [clip["path"] for clip in metrics["clip_predictions"]]
    # Once per clip: the 14 scored and the 2 calm ones (not among the model's labels), which the speakers' statistics
    # read all the same (issue 69).
    every_clip = sorted(str(p) for actor in ("Actor_01", "Actor_02") for p in (tiny_ravdess / actor).iterdir())
    assert len(paths) == 14 and len(calls) == len(every_clip) == 16
    opensmile = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02", normalization="none")
    raw = np.concatenate(_raw_features(opensmile, paths))
    every_raw = np.concatenate(_raw_features(opensmile, every_clip))
    speakers = np.array([Path(p).parent.name[-2:] for p in paths])
    every_speaker = np.array([Path(p).parent.name[-2:] for p in every_clip])
    trained = evaluate_module.load_trained_model(str(tmp_path / "model"), device="cpu").model
    for speaker in ("01", "02"):
        mean, std = _statistics([every_raw[every_speaker == speaker]])
        expected = [_probabilities(trained, row) for row in (raw[speakers == speaker] - mean) / std]
        np.testing.assert_allclose(
            torch.tensor(logits[0][speakers == speaker]).softmax(-1).numpy(), expected, atol=1e-4
        )


def test_the_files_a_command_is_given_are_found_as_a_corpus_load_finds_them(tmp_path):
    """One audio-file walk (issue 32): predict's folders follow symlinked folders (each real folder once) and pass over
    macOS resource files, as load_corpus does, and both find the same files."""
    from ser_hf.data.corpora.spec import find_audio_files
    from tests.conftest import RAVDESS_SAMPLE

    root = tmp_path / "recordings"
    root.mkdir()
    (root / "Actor_01").symlink_to(RAVDESS_SAMPLE / "Actor_01", target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)  # a link cycle ends
    (root / "._03-01-01-01-01-01-01.wav").write_bytes(b"\x00")
    found = find_audio_inputs([root])
    assert [Path(f).name for f in found] == sorted(p.name for p in (RAVDESS_SAMPLE / "Actor_01").iterdir())
    assert [Path(f).resolve() for f in found] == [path.resolve() for path in find_audio_files(root)]


def test_speakers_with_too_few_feature_vectors_get_the_training_statistics_in_one_warning(
    tiny_ravdess, monkeypatch, caplog
):
    """A model with one feature vector a window: a speaker with fewer than MIN_STATISTICS_ROWS of them gets no
    statistics of their own (the training ones standardise them), all such speakers named in one warning."""
    from types import SimpleNamespace

    from ser_hf.deploy import speakers as module

    files = sorted(str(path) for path in tiny_ravdess.glob("Actor_0[12]/*.flac"))
    one_vector_a_window = lambda extractor, clips, model=None: [np.full((1, 3), float(len(c))) for c in clips]  # noqa: E731
    monkeypatch.setattr(module, "clip_feature_rows", one_vector_a_window)
    extractor = SimpleNamespace(sampling_rate=16000, variance_floor=1e-5, normalization="speaker")
    speakers = {file: "many" if index < 12 else "few" for index, file in enumerate(files)}
    with caplog.at_level(logging.WARNING):
        statistics = module.speaker_statistics_of_files(extractor, files, speakers, progress=False)
    assert list(statistics) == ["many"] and module.MIN_STATISTICS_ROWS == 10
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("Speaker(s) few (4) have statistics of that many feature vectors, fewer than 10:")
    everyone = module.speaker_statistics_of_files(extractor, files, speakers, progress=False, min_statistics_rows=1)
    assert set(everyone) == {"many", "few"}
