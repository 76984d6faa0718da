"""``ser-hf predict --timeline``: speech segments found by Silero VAD in a recording made of real clips with silences
between them, each labelled as the model labels its clip alone; smoothing, RTTM speakers, the files the command
writes, and the errors a user sees."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
import torch
from PIL import Image

from ser_hf.cli import main as cli_main
from ser_hf.deploy.diarization import SpeakerTurn, read_rttm, split_by_speaker
from ser_hf.deploy.pipelines import load_classifier
from ser_hf.deploy.timeline import (
    DEFAULT_SEGMENT_CONTEXT,
    FIGURE_SIZE,
    Segment,
    Smoothing,
    Timeline,
    emotion_timeline,
    plot_timeline,
    segment_context,
    timeline_files,
)
from ser_hf.deploy.voice_activity import speech_segments
from tests.conftest_models import LABELS, SAMPLE_DIR, build_tiny, featurize

SAMPLING_RATE = 16000
#: Clips of three emotions (happy, sad, angry; strong intensity), trimmed to their speech, and the silence before
#: each (and after the last).
CLIP_NAMES = ("03-01-03-02-01-01-01.flac", "03-01-04-02-01-01-01.flac", "03-01-05-02-01-01-01.flac")
SILENCES = (1.0, 1.5, 2.0, 1.0)
TOLERANCE = 0.3
FRAME = 512


def _clip(name: str) -> np.ndarray:
    audio, rate = soundfile.read(next(SAMPLE_DIR.glob(f"Actor_0*/{name}")), dtype="float32")
    assert rate == SAMPLING_RATE
    # The clip's speech (frames within 35 dB of its loudest): its boundaries are the ones to find. RAVDESS clips
    # hold about a second of silence around the sentence.
    frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - 35)
    return audio[loud[0] * FRAME : (loud[-1] + 1) * FRAME]


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [_clip(name) for name in CLIP_NAMES]


@pytest.fixture(scope="module")
def recording(tmp_path_factory, clips) -> tuple[Path, list[tuple[float, float]]]:
    """The clips one after another with 1-2 s of faint noise between them: the WAV file and each clip's bounds."""
    rng = np.random.default_rng(0)
    parts, bounds, position = [], [], 0
    for silence, clip in zip(SILENCES, [*clips, None]):
        parts.append(rng.normal(0, 1e-4, int(silence * SAMPLING_RATE)).astype(np.float32))
        position += len(parts[-1])
        if clip is not None:
            parts.append(clip)
            bounds.append((position / SAMPLING_RATE, (position + len(clip)) / SAMPLING_RATE))
            position += len(clip)
    path = tmp_path_factory.mktemp("recording") / "conversation.wav"
    soundfile.write(path, np.concatenate(parts), SAMPLING_RATE)
    return path, bounds


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, clips) -> Path:
    """A tiny MFCC model fitted to tell the three clips apart (a random one gives every clip the same label), saved
    as a trained model is."""
    torch.manual_seed(0)
    model, feature_extractor = build_tiny("mfcc")
    targets = torch.tensor([LABELS.str2int(name) for name in ("happy", "sad", "angry")])
    batch = featurize(feature_extractor, clips)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        model(**batch, labels=targets).loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("mfcc_model")
    model.eval().save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier(model_folder):
    return load_classifier(model_folder)


def _label_alone(classifier, clip: np.ndarray) -> str:
    outputs = classifier({"raw": clip, "sampling_rate": SAMPLING_RATE}, top_k=None)
    return max(outputs, key=lambda output: output["score"])["label"]


def test_segments_match_the_clips_and_their_labels(classifier, recording, clips):
    path, bounds = recording
    # The clips are trimmed to their speech: the speech alone (no context) is what the model heard of each.
    timeline = emotion_timeline(classifier, path, smoothing="none", context_seconds=0)
    found = [(segment.start, segment.end) for segment in timeline.segments]
    assert len(found) == len(bounds), found
    for (start, end), (clip_start, clip_end) in zip(found, bounds):
        assert abs(start - clip_start) <= TOLERANCE and abs(end - clip_end) <= TOLERANCE, (found, bounds)
    labels = [_label_alone(classifier, clip) for clip in clips]
    assert [segment.label for segment in timeline.segments] == labels
    assert len(set(labels)) == 3  # the model tells the clips apart: the test would catch a segment labelled wrong
    for segment in timeline.segments:
        assert segment.speaker is None and sum(segment.scores.values()) == pytest.approx(1.0)
    # A waveform at another rate: resampled to the model's rate, the same segments.
    audio, _ = soundfile.read(path, dtype="float32")
    again = emotion_timeline(
        classifier, soxr.resample(audio, SAMPLING_RATE, 8000), 8000, smoothing="none", context_seconds=0
    )
    assert [t for s in again.segments for t in (s.start, s.end)] == pytest.approx(np.ravel(found), abs=0.05)
    assert again.file == "audio"
    assert again.duration == pytest.approx(timeline.duration, abs=1e-3)


def test_a_segment_longer_than_a_whisper_window_is_classified_in_windows(tmp_path, clips):
    """Unbroken speech longer than the encoder's window (max_segment_seconds above it) is classified in windows of at
    most that length, its scores their duration-weighted mean, as predict classifies a long recording."""
    from transformers import WhisperConfig

    from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
    from tests.conftest_models import TINY_WHISPER

    torch.manual_seed(0)
    config = WhisperConfig(**{**TINY_WHISPER, "max_source_positions": 150})  # a 3-s window
    model = build_ssl_classifier(config, LABELS).eval()
    classifier = load_classifier(model, build_ssl_feature_extractor(model.config))
    speech = np.concatenate(clips)  # about 5.6 s of speech with no pause: two windows of the 3-s encoder
    assert len(speech) > 3 * SAMPLING_RATE
    silence = np.zeros(SAMPLING_RATE // 2, np.float32)
    timeline = emotion_timeline(
        classifier,
        np.concatenate([silence, speech, silence]),
        SAMPLING_RATE,
        max_segment_seconds=60,
        smoothing="none",
        context_seconds=0,
    )
    longest = max(timeline.segments, key=lambda segment: segment.end - segment.start)
    assert longest.end - longest.start > 3.0
    assert abs(sum(longest.scores.values()) - 1.0) < 1e-5


def test_smoothing():
    starts, ends = np.array([0.0, 5.0, 5.4, 9.0]), np.array([4.0, 5.3, 6.0, 10.0])
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert Smoothing.parse("none").apply(starts, ends, scores) is scores
    mean = Smoothing.parse("mean:3s").apply(starts, ends, scores)
    assert mean[0] == pytest.approx([1.0, 0.0])  # at least 3 s long: its own scores
    # 5.0-5.3 s: the span 3.65-6.65 s holds 0.3 s of itself, 0.35 s of the first and 0.6 s of the third segment.
    assert mean[1] == pytest.approx([0.95 / 1.25, 0.3 / 1.25])
    assert mean[2] == pytest.approx([0.6 / 0.9, 0.3 / 0.9])  # 4.2-7.2 s: itself and the 0.3 s of the second
    assert mean[3] == pytest.approx([0.0, 1.0])  # 8-11 s holds no other speech: the silence before it separates
    by_count = Smoothing.parse("mean:3").apply(starts, ends, scores)
    assert by_count[0] == pytest.approx([4.0 / 4.3, 0.3 / 4.3])  # itself and its next neighbour, by duration
    exponential = Smoothing.parse("exponential:1s").apply(starts, ends, scores)
    assert exponential[0] == pytest.approx([1.0, 0.0])  # causal: the first segment is unchanged
    assert 0 < exponential[1][1] < 1 and exponential[3][1] > exponential[2][1]
    for text in ("median:3", "mean:4", "mean:-1s", "exponential"):
        with pytest.raises(ValueError, match="smoothing"):
            Smoothing.parse(text)
    assert str(Smoothing.parse(" Mean : 3S ")) == "mean:3s"


def test_segment_context_widens_segments_up_to_the_middle_of_each_pause():
    bounds = [(1.0, 2.0), (3.0, 4.0), (8.0, 9.0), (9.0, 9.5)]  # the last two: one speech segment cut at a turn
    assert segment_context(bounds, 10.0, 0.0) == bounds
    assert segment_context(bounds, 10.0, 0.5) == [(0.5, 2.5), (2.5, 4.5), (7.5, 9.0), (9.0, 10.0)]
    # Unbounded: all of each pause up to its middle, and the recording's ends.
    assert segment_context(bounds, 10.0, float("inf")) == [(0.0, 2.5), (2.5, 6.0), (6.0, 9.0), (9.0, 10.0)]
    with pytest.raises(ValueError, match="context_seconds"):
        segment_context(bounds, 10.0, -1.0)


def test_predict_help_gives_the_default_segment_context(capsys):
    with pytest.raises(SystemExit):
        cli_main(["predict", "--help"])
    assert f"(default: {DEFAULT_SEGMENT_CONTEXT:g} s," in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("context", [0.0, 0.4, float("inf")])
def test_segments_are_classified_with_their_context(classifier, recording, context):
    """A segment's scores are the model's on the speech and the context around it; its start and end stay those of
    the speech."""
    path, _ = recording
    audio, _ = soundfile.read(path, dtype="float32")
    bounds = speech_segments(audio, SAMPLING_RATE)
    timeline = emotion_timeline(classifier, path, smoothing="none", context_seconds=context)
    assert [t for s in timeline.segments for t in (s.start, s.end)] == pytest.approx(np.ravel(bounds))
    for segment, (low, high) in zip(timeline.segments, segment_context(bounds, len(audio) / SAMPLING_RATE, context)):
        outputs = classifier({"raw": audio[round(low * SAMPLING_RATE) : round(high * SAMPLING_RATE)],
                              "sampling_rate": SAMPLING_RATE}, top_k=None)  # fmt: skip
        assert segment.scores == pytest.approx({o["label"]: o["score"] for o in outputs}, abs=1e-5)


def test_rttm_speakers_split_segments_at_turn_changes(tmp_path, classifier, recording):
    path, bounds = recording
    (first_start, first_end), (second_start, _), (_, third_end) = bounds
    middle = (first_start + first_end) / 2
    rttm = tmp_path / "conversation.rttm"
    rttm.write_text(
        ";; speaker turns\n"
        f"SPEAKER conversation 1 0.000 {middle:.3f} <NA> <NA> alice <NA> <NA>\n"
        f"SPEAKER conversation 1 {middle:.3f} {second_start - middle + 0.5:.3f} <NA> <NA> bob <NA> <NA>\n"
        f"SPEAKER conversation 1 {second_start + 0.5:.3f} {third_end:.3f} <NA> <NA> alice <NA> <NA>\n"
        "SPEAKER other 1 0.000 1.000 <NA> <NA> carol <NA> <NA>\n"
    )
    timeline = emotion_timeline(classifier, path, rttm=rttm, smoothing="mean:3s")
    speakers = [(round(s.start, 1), s.speaker) for s in timeline.segments]
    # The first clip is cut where alice hands over to bob; the second clip is mostly bob's, the third alice's.
    assert [speaker for _, speaker in speakers] == ["alice", "bob", "bob", "alice", "alice"], speakers
    assert timeline.segments[1].start == pytest.approx(middle, abs=1e-3)
    assert timeline.segments[3].start == pytest.approx(second_start + 0.5, abs=1e-3)
    # Direct: the speaker with most overlap; neighbouring pieces of one speaker joined; no turn: no speaker.
    turns = [SpeakerTurn("f", 0, 1, "a"), SpeakerTurn("f", 1, 1.2, "b"), SpeakerTurn("f", 1.2, 3, "a")]
    assert split_by_speaker([(0.5, 2.0), (4.0, 5.0)], turns) == [
        (0.5, 1, "a"),
        (1, 1.2, "b"),
        (1.2, 2.0, "a"),
        (4.0, 5.0, None),
    ]


def test_malformed_rttm_names_the_file_and_line(tmp_path):
    rttm = tmp_path / "bad.rttm"
    rttm.write_text("SPEAKER rec 1 0.0 1.0 <NA> <NA> alice <NA> <NA>\nSPEAKER rec 1 two 1.0 <NA> <NA> bob\n")
    with pytest.raises(ValueError, match=r"bad\.rttm line 2: start 'two' and duration '1.0' must be numbers"):
        read_rttm(rttm)
    rttm.write_text("SPEAKER rec 1 0.0\n")
    with pytest.raises(ValueError, match=r"bad\.rttm line 1: 4 fields, expected at least 8"):
        read_rttm(rttm)


def test_cli_writes_csv_json_and_png(tmp_path, model_folder, recording, capsys):
    path, bounds = recording
    common = ["predict", str(model_folder), str(path), "--timeline", "--no-progress", "--smoothing", "none"]
    assert cli_main([*common, "--output", str(tmp_path / "t.csv"), "--timeline-plot", str(tmp_path / "plots")]) == 0
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["file", "start", "end", "speaker", "label", *(f"score_{k}" for k in LABELS.names)]
    assert len(rows) == len(bounds) and all(row["file"] == str(path) and row["speaker"] == "" for row in rows)
    assert [float(row["start"]) for row in rows] == pytest.approx([start for start, _ in bounds], abs=TOLERANCE)
    image = Image.open(tmp_path / "plots" / "conversation.timeline.png")
    assert image.format == "PNG" and image.size == (int(FIGURE_SIZE[0] * 120), int(FIGURE_SIZE[1] * 120))
    assert (
        len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 8
    )  # drawn: several label colours, the silence grey
    assert cli_main([*common, "--output", str(tmp_path / "t.json")]) == 0
    [timeline] = json.loads((tmp_path / "t.json").read_text())
    assert [s["label"] for s in timeline["segments"]] == [row["label"] for row in rows]
    assert timeline["smoothing"] == "none" and timeline["file"] == str(path)
    assert cli_main(common) == 0  # without --output: one JSON line per file
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["segments"] == timeline["segments"]
    # A malformed RTTM line or a smoothing typo: one line naming it, status 2.
    (tmp_path / "bad.rttm").write_text("SPEAKER conversation 1 x 1 <NA> <NA> a\n")
    assert cli_main([*common, "--rttm", str(tmp_path / "bad.rttm")]) == 2
    assert "bad.rttm line 1" in capsys.readouterr().err
    assert cli_main([*common[:-2], "--smoothing", "median:3"]) == 2
    assert "smoothing 'median:3'" in capsys.readouterr().err
    # --segment-context-seconds reaches the timeline: 0 classifies the speech alone, the scores change.
    assert cli_main([*common, "--segment-context-seconds", "0"]) == 0
    alone = json.loads(capsys.readouterr().out.splitlines()[-1])["segments"]
    assert [s["start"] for s in alone] == [s["start"] for s in timeline["segments"]]
    assert [s["scores"] for s in alone] != [s["scores"] for s in timeline["segments"]] or DEFAULT_SEGMENT_CONTEXT == 0


def test_timeline_files_checks_every_option_before_the_model_loads_then_makes_every_file(
    tmp_path, model_folder, recording
):
    """One call: every option is refused before the model loads (a model that is not there is never reached), then
    the recordings' timelines are made with the model loaded once, handed on, drawn and written."""
    path, bounds = recording
    missing_model = tmp_path / "no_model"
    for options, message in [
        ({"hop_seconds": 1.0}, "^hop_seconds needs window_seconds"),  # a parameter, not a flag, to Python callers
        ({"batch_size": 0}, "^batch_size must be at least 1"),
        ({"smoothing": "median:3"}, "smoothing 'median:3'"),
        ({"threshold": 1.5}, "VAD threshold must be between 0 and 1"),
        ({"output": tmp_path / "t.txt"}, r"write timelines to a \.csv or \.json file"),
        ({"context_seconds": -1.0}, "context_seconds must not be negative"),
        ({"plot": tmp_path / "one.png", "files": [path, path.with_name("other.wav")]}, "give a folder"),
    ]:
        files = options.pop("files", [path])
        with pytest.raises(ValueError, match=message):
            timeline_files(missing_model, files, **options)
    checked, made = [], []
    summary = timeline_files(
        model_folder,
        [path],
        smoothing="none",
        output=tmp_path / "t.json",
        plot=tmp_path / "plots",
        check_plot=checked.append,
        on_timeline=made.append,
    )
    assert checked == summary.plots == [tmp_path / "plots" / "conversation.timeline.png"]
    assert Image.open(summary.plots[0]).format == "PNG"
    assert summary.files == 1 and summary.segments == len(made[0].segments) == len(bounds)
    assert summary.output == tmp_path / "t.json"
    assert json.loads(summary.output.read_text()) == [made[0].to_dict()]


def test_plot_timeline_draws_speakers_and_silence():
    timeline = Timeline(
        "talk.wav",
        6.0,
        [
            Segment(1.0, 2.5, "happy", {"happy": 0.7, "sad": 0.3}, "alice"),
            Segment(3, 5, "sad", {"happy": 0.2, "sad": 0.8}),
        ],
    )
    figure = plot_timeline(timeline)
    axis = figure.axes[0]
    assert [text.get_text() for text in axis.texts] == ["alice"]
    assert axis.get_legend_handles_labels()[1] == ["happy", "sad"]
    assert timeline.to_rows()[1] == {
        "file": "talk.wav",
        "start": "3.000",
        "end": "5.000",
        "speaker": "",
        "label": "sad",
        "score_happy": "0.200000",
        "score_sad": "0.800000",
    }


def test_missing_silero_vad_says_how_to_install(monkeypatch, model_folder, recording, capsys):
    import ser_hf.deploy.voice_activity as voice_activity

    monkeypatch.setitem(sys.modules, "silero_vad", None)  # import silero_vad raises ImportError
    monkeypatch.setattr(voice_activity, "_VAD_MODELS", {})
    with pytest.raises(ImportError, match=r"pip install 'ser-hf\[timeline\]'"):
        emotion_timeline(str(model_folder), recording[0])
    assert cli_main(["predict", str(model_folder), str(recording[0]), "--timeline"]) == 2
    assert "pip install 'ser-hf[timeline]'" in capsys.readouterr().err
