"""``ser-hf predict`` on large folders: bad clips get an error row and the run goes on, windows of many files are
batched together with the scores each gets alone, files are decoded as they are needed, the progress bar, and the
output written whole or not at all."""

from __future__ import annotations

import csv
import json
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from transformers import Wav2Vec2Config, pipeline

import ser_hf.deploy.classify as classify_module
import ser_hf.deploy.windows as windows_module
from ser_hf.cli import main as cli_main
from ser_hf.data.decode import decode_waveform
from ser_hf.deploy.audio_inputs import find_audio_inputs
from ser_hf.deploy.classify import classify_files
from ser_hf.deploy.pipelines import model_labels
from ser_hf.deploy.windows import window_bounds
from ser_hf.deploy.writers import PredictionWriter
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
from tests.conftest_models import _SSL_COMMON, LABELS, build_tiny, load_clip

SAMPLING_RATE = 16000
NUM_CLIPS = 2000
#: Clips of the big folder that cannot be classified, and what their error must say.
BAD_CLIPS = {
    "clip_0003.wav": "cannot be decoded as audio",  # random bytes: no RIFF header
    "clip_0500.wav": "the file is empty (0 bytes)",
    "clip_0999.wav": "zero-length audio",  # a valid header over no samples
    "clip_1234.wav": "the file is truncated",
    "clip_1500.wav": "NaN or infinite sample values",
    "clip_1998.wav": "digital silence",
}


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere: freshly built heads start at zero and would give every clip the same scores."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def crnn_model(tmp_path_factory) -> Path:
    """A tiny CRNN (log-mel features, attention mask) saved as a trained model would be."""
    folder = tmp_path_factory.mktemp("crnn_model")
    model, feature_extractor = build_tiny("crnn")
    _randomize(model).save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def maskless_ssl_model(tmp_path_factory) -> Path:
    """A tiny wav2vec2 with a group-norm feature encoder, whose feature extractor returns no attention mask."""
    folder = tmp_path_factory.mktemp("ssl_model")
    config = Wav2Vec2Config(feat_extract_norm="group", **_SSL_COMMON)
    model, feature_extractor = build_ssl_classifier(config, LABELS), build_ssl_feature_extractor(config)
    assert feature_extractor.return_attention_mask is False
    _randomize(model, seed=1).save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    return folder


def _write_bad_clip(path: Path, name: str, audio: np.ndarray) -> None:
    if name == "clip_0003.wav":
        path.write_bytes(np.random.default_rng(3).bytes(5000))
    elif name == "clip_0500.wav":
        path.write_bytes(b"")
    elif name == "clip_0999.wav":
        soundfile.write(path, np.zeros(0, dtype=np.float32), SAMPLING_RATE)
    elif name == "clip_1234.wav":
        soundfile.write(path, audio, SAMPLING_RATE)
        path.write_bytes(path.read_bytes()[: 44 + len(audio)])  # half the samples of the 16-bit data chunk
    elif name == "clip_1500.wav":
        audio = audio.copy()
        audio[100] = np.nan
        soundfile.write(path, audio, SAMPLING_RATE, subtype="FLOAT")
    elif name == "clip_1998.wav":
        soundfile.write(path, np.zeros_like(audio), SAMPLING_RATE)


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    """2,000 short 16 kHz WAV clips (0.3-0.6 s of a real RAVDESS clip, from varying offsets, at varying gains), six of
    them broken in different ways."""
    folder = tmp_path_factory.mktemp("clips")
    source = load_clip(0)
    rng = np.random.default_rng(0)
    for index in range(NUM_CLIPS):
        length = int(rng.uniform(0.3, 0.6) * SAMPLING_RATE)
        offset = int(rng.integers(0, len(source) - length))
        audio = source[offset : offset + length] * rng.uniform(0.5, 2.0) + rng.normal(0, 1e-3, length)
        audio = np.clip(audio, -1, 1).astype(np.float32)
        name = f"clip_{index:04d}.wav"
        if name in BAD_CLIPS:
            _write_bad_clip(folder / name, name, audio)
        else:
            soundfile.write(folder / name, audio, SAMPLING_RATE)
    return folder


def _direct_scores(classifier, audio: np.ndarray) -> dict[str, float]:
    """What the pipeline says of one clip on its own."""
    return {s["label"]: s["score"] for s in classifier({"raw": audio, "sampling_rate": SAMPLING_RATE}, top_k=None)}


class CountingClassifier:
    """A pipeline that counts the windows it is given per call."""

    def __init__(self, classifier):
        self.classifier = classifier
        self.feature_extractor, self.model = classifier.feature_extractor, classifier.model
        self.calls: list[int] = []

    def __call__(self, inputs, **kwargs):
        self.calls.append(len(inputs) if isinstance(inputs, list) else 1)
        return self.classifier(inputs, **kwargs)


# --- A big folder through the command line ------------------------------------------------------------------------


@pytest.mark.slow
def test_predict_folder_of_2000_clips_writes_one_row_per_clip_with_errors(tmp_path, crnn_model, clip_folder, capsys):
    output = tmp_path / "emotions.csv"
    status = cli_main(
        ["predict", str(crnn_model), str(clip_folder), "--output", str(output), "--batch-size", "16", "--no-progress"]
    )
    captured = capsys.readouterr()
    assert status == 1, captured.err  # some clips failed: every row written, the status says so
    with open(output, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == NUM_CLIPS  # no clip is windowed: one "all" row each, the bad ones included
    assert [Path(row["file"]).name for row in rows] == [f"clip_{i:04d}.wav" for i in range(NUM_CLIPS)]
    assert {row["window"] for row in rows} == {"all"}
    labels = list(LABELS.names)
    for row in rows:
        name = Path(row["file"]).name
        if name in BAD_CLIPS:
            assert BAD_CLIPS[name] in row["error"], (name, row["error"])
            assert row["label"] == "" and all(row[label] == "" for label in labels)
        else:
            assert row["error"] == ""
            scores = {label: float(row[label]) for label in labels}
            assert row["label"] == max(scores, key=scores.get)
            assert sum(scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert len({row["label"] for row in rows if row["label"]}) > 1  # the random model does not say one thing
    assert f"{NUM_CLIPS} file(s), {NUM_CLIPS - len(BAD_CLIPS)} window(s), {len(BAD_CLIPS)} failed" in captured.out
    assert f"{len(BAD_CLIPS)} of {NUM_CLIPS} file(s) could not be classified" in captured.err
    for name, problem in BAD_CLIPS.items():
        assert f"{clip_folder / name}: " in captured.err and problem in captured.err


def test_inputs_are_listed_once_and_bad_options_stop_before_the_model_runs(
    crnn_model, maskless_ssl_model, clip_folder, capsys
):
    first = find_audio_inputs([clip_folder])[0]
    assert find_audio_inputs([first, clip_folder, first]) == find_audio_inputs([clip_folder])
    for model, options, message in [
        (crnn_model, ["--hop-seconds", "1"], "--hop-seconds needs --window-seconds"),
        (
            maskless_ssl_model,
            ["--window-seconds", "0.001"],
            "ser-hf: error: --window-seconds 0.001 is shorter than the model's receptive field",
        ),
    ]:
        assert cli_main(["predict", str(model), first, "--no-progress", *options]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="must each be at least one sample"):
        window_bounds(16000, 16000, 1e-5)


def test_predict_json_lines_and_json_file_carry_the_error(tmp_path, crnn_model, clip_folder, capsys):
    files = [str(clip_folder / name) for name in ("clip_0001.wav", "clip_0500.wav", "clip_0002.wav")]
    assert cli_main(["predict", str(crnn_model), *files, "--no-progress", "--top-k", "2"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == files  # one line per file, in order, the bad one included
    good, bad, other = lines
    assert good["error"] is None and len(good["predictions"]) == 2 and good["label"] in LABELS.names
    assert bad["error"] == "the file is empty (0 bytes)" and bad["label"] is None and bad["predictions"] == []
    assert other["error"] is None

    assert cli_main(["predict", str(crnn_model), *files, "--no-progress", "--output", str(tmp_path / "o.json")]) == 1
    results = json.loads((tmp_path / "o.json").read_text())
    assert [r["error"] for r in results] == [None, "the file is empty (0 bytes)", None]
    assert results[0]["scores"] == pytest.approx(good["scores"])
    # All classified: status 0.
    assert cli_main(["predict", str(crnn_model), files[0], "--no-progress"]) == 0


# --- Batching across files ----------------------------------------------------------------------------------------


def test_windows_batched_across_files_score_as_each_file_alone(tmp_path, crnn_model, clip_folder):
    """Short clips of many lengths batched together, and a long recording's windows among them: the scores each
    window gets alone, within float rounding."""
    long_audio = np.concatenate([load_clip(index) for index in (1, 2)])
    soundfile.write(tmp_path / "long.wav", long_audio, SAMPLING_RATE)
    files = find_audio_inputs([clip_folder])[:120] + [str(tmp_path / "long.wav")]
    classifier = CountingClassifier(pipeline("audio-classification", model=str(crnn_model)))
    predictions = list(
        classify_files(classifier, files, window_seconds=1.0, hop_seconds=0.5, batch_size=8, progress=False)
    )
    calls = classifier.calls
    assert max(calls) > 1 and len(calls) < len(files) / 4  # many files per call, not one call per file
    assert [p.file for p in predictions] == files
    compared = 0
    for prediction in predictions:
        if Path(prediction.file).name in BAD_CLIPS:
            assert prediction.error and not prediction.windows
            continue
        audio = decode_waveform(prediction.file, SAMPLING_RATE)
        bounds = window_bounds(len(audio), SAMPLING_RATE, 1.0, 0.5)
        assert [(w.start, w.end) for w in prediction.windows] == [
            (s / SAMPLING_RATE, e / SAMPLING_RATE) for s, e in bounds
        ]
        for window, (start, end) in zip(prediction.windows, bounds):
            alone = _direct_scores(classifier, audio[start:end])
            assert window.scores == pytest.approx(alone, abs=1e-5)
            assert window.label == max(alone, key=alone.get)
            compared += 1
        if len(bounds) == 1:
            assert prediction.scores == pytest.approx(prediction.windows[0].scores)
    assert compared > len(files)  # the long recording's windows too
    assert len(predictions[-1].windows) > 10


def test_model_without_attention_mask_gets_one_window_per_forward(maskless_ssl_model, clip_folder):
    """Padding changes what a group-norm encoder hears: its windows must not be batched."""
    classifier = pipeline("audio-classification", model=str(maskless_ssl_model))
    files = [f for f in find_audio_inputs([clip_folder])[:24] if Path(f).name not in BAD_CLIPS]
    clips = [decode_waveform(f, SAMPLING_RATE) for f in files]
    alone = [_direct_scores(classifier, clip) for clip in clips]
    padded = classifier([{"raw": c, "sampling_rate": SAMPLING_RATE} for c in clips], top_k=None, batch_size=8)
    padded_difference = max(abs(s["score"] - a[s["label"]]) for scores, a in zip(padded, alone) for s in scores)
    assert padded_difference > 1e-4  # what batching would do to this model
    predictions = list(classify_files(classifier, files, batch_size=8, progress=False))
    for prediction, expected in zip(predictions, alone):
        assert prediction.windows[0].scores == pytest.approx(expected, abs=1e-6)


def test_clip_shorter_than_the_receptive_field_and_model_failures_get_an_error(
    tmp_path, maskless_ssl_model, crnn_model
):
    soundfile.write(tmp_path / "a_good.wav", load_clip(0, 0.5), SAMPLING_RATE)
    soundfile.write(tmp_path / "b_tiny.wav", load_clip(0)[24000:24080], SAMPLING_RATE)  # 5 ms of speech
    ssl = pipeline("audio-classification", model=str(maskless_ssl_model))
    good, tiny = classify_files(ssl, find_audio_inputs([tmp_path]), progress=False)
    assert good.error is None and good.label in LABELS.names
    assert "5.0 ms long, shorter than the model's receptive field" in tiny.error

    # A window the pipeline fails on (here, a clip of 7,777 samples) fails its file alone, not the batch it was in.
    soundfile.write(tmp_path / "c_poison.wav", load_clip(1, 7777 / SAMPLING_RATE), SAMPLING_RATE)
    soundfile.write(tmp_path / "d_good.wav", load_clip(2, 0.4), SAMPLING_RATE)
    crnn = pipeline("audio-classification", model=str(crnn_model))
    original_preprocess = crnn.preprocess

    def failing_preprocess(inputs, **kwargs):
        if len(inputs["raw"]) == 7777:
            raise RuntimeError("the model cannot take this clip")
        return original_preprocess(inputs, **kwargs)

    crnn.preprocess = failing_preprocess
    predictions = list(classify_files(crnn, find_audio_inputs([tmp_path]), batch_size=4, progress=False))
    assert [Path(p.file).name for p in predictions] == ["a_good.wav", "b_tiny.wav", "c_poison.wav", "d_good.wav"]
    assert [p.error is None for p in predictions] == [True, True, False, True]
    assert predictions[2].error == "the model could not classify it: RuntimeError: the model cannot take this clip"
    assert predictions[3].windows[0].scores == pytest.approx(
        _direct_scores(crnn, decode_waveform(str(tmp_path / "d_good.wav"), SAMPLING_RATE)), abs=1e-5
    )


# --- Bounded memory -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_chunk_seconds", [None, 2.0])
def test_files_are_decoded_lazily_a_chunk_ahead(monkeypatch, crnn_model, clip_folder, max_chunk_seconds):
    """However many files there are, at most a chunk of windows (BATCHES_PER_CHUNK batches, or MAX_CHUNK_SECONDS of
    audio) is decoded ahead of the result being handed out: memory does not grow with the folder."""
    if max_chunk_seconds is not None:
        monkeypatch.setattr(classify_module, "MAX_CHUNK_SECONDS", max_chunk_seconds)
    decoded = []

    read_clip = classify_module.read_clip

    def spy(path, *args):
        decoded.append(path)
        return read_clip(path, *args)

    monkeypatch.setattr(classify_module, "read_clip", spy)  # reads (probes and decodes) one file
    classifier = pipeline("audio-classification", model=str(crnn_model))
    files = find_audio_inputs([clip_folder])[:400]
    batch_size = 4
    results = classify_files(classifier, files, batch_size=batch_size, progress=False)
    assert isinstance(results, types.GeneratorType) and not decoded  # nothing decoded before it is asked for
    lead = []
    for count, prediction in enumerate(results, start=1):
        assert prediction.file == files[count - 1]
        lead.append(len(decoded) - count)
    assert len(decoded) == len(files)
    # The 0.3-0.6 s clips: a chunk is 16 batches of 4 windows, or the first clips that make 2 s.
    limit = classify_module.BATCHES_PER_CHUNK * batch_size if max_chunk_seconds is None else int(2.0 / 0.3) + 1
    assert 0 < max(lead) <= limit


# --- Progress bar -------------------------------------------------------------------------------------------------


def test_progress_bar_counts_files_on_stderr_unless_no_progress(crnn_model, clip_folder, capsys):
    files = [f for f in find_audio_inputs([clip_folder])[:6] if Path(f).name not in BAD_CLIPS]
    assert cli_main(["predict", str(crnn_model), *files]) == 0
    captured = capsys.readouterr()
    assert "Classifying" in captured.err and "5/5 files" in captured.err
    assert "Classifying" not in captured.out and len(captured.out.splitlines()) == 5
    assert cli_main(["predict", str(crnn_model), *files, "--no-progress"]) == 0
    assert "Classifying" not in capsys.readouterr().err


# --- Atomic output ------------------------------------------------------------------------------------------------


def test_interrupted_run_leaves_the_previous_output_intact(tmp_path, monkeypatch, crnn_model, clip_folder, capsys):
    output = tmp_path / "emotions.csv"
    previous = "file,window,start,end,label,score,error\nold.wav,all,0.000,1.000,happy,0.900000,\n"
    output.write_text(previous)  # an earlier ser-hf predict's results, which it may replace
    real_classify_files = classify_module.classify_files

    def interrupted(*args, **kwargs):
        for count, prediction in enumerate(real_classify_files(*args, **kwargs)):
            if count == 30:
                raise KeyboardInterrupt
            yield prediction

    monkeypatch.setattr("ser_hf.deploy.predict.classify_files", interrupted)  # what ser-hf predict's one call runs
    status = cli_main(
        ["predict", str(crnn_model), *find_audio_inputs([clip_folder])[:50], "--output", str(output), "--no-progress"]
    )
    assert status == 130 and capsys.readouterr().err.strip().splitlines()[-1] == "ser-hf: interrupted"
    assert output.read_text() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emotions.csv"]  # no partial file left behind


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_prediction_writer_replaces_the_file_only_when_complete(tmp_path, crnn_model, clip_folder, suffix):
    classifier = pipeline("audio-classification", model=str(crnn_model))
    predictions = list(classify_files(classifier, find_audio_inputs([clip_folder])[:4], progress=False))
    path = tmp_path / f"out{suffix}"
    with pytest.raises(RuntimeError, match="disk full"):
        with PredictionWriter(path, model_labels(classifier)) as writer:
            writer.write(predictions[0])
            assert not path.exists()  # being written under a temporary name
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    with PredictionWriter(path, model_labels(classifier)) as writer:
        for prediction in predictions:
            writer.write(prediction)
    if suffix == ".json":
        assert [r["file"] for r in json.loads(path.read_text())] == [p.file for p in predictions]
    else:
        assert len(path.read_text().splitlines()) == 1 + len(predictions)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_ten_minute_recording_is_windowed_without_being_asked(tmp_path, crnn_model, capsys):
    """Without --window-seconds a recording over 30 s goes through the model in 30 s windows, never in one piece
    (whose activations would grow with its length): 600 s gives 20 windows of 30 s."""
    path = tmp_path / "ten_minutes.wav"
    tone = np.sin(2 * np.pi * 220 * np.arange(600 * SAMPLING_RATE) / SAMPLING_RATE).astype(np.float32) * 0.1
    soundfile.write(path, tone, SAMPLING_RATE)
    classifier = CountingClassifier(pipeline("audio-classification", model=str(crnn_model)))
    (prediction,) = classify_files(classifier, [str(path)], batch_size=4, progress=False)
    assert sum(classifier.calls) == 20  # windows, not the whole recording
    assert prediction.error is None and prediction.duration == pytest.approx(600.0)
    assert [(w.start, w.end) for w in prediction.windows] == [(30.0 * i, 30.0 * (i + 1)) for i in range(20)]
    assert prediction.label in LABELS.names
    assert cli_main(["predict", str(crnn_model), str(path), "--no-progress"]) == 0
    assert len(json.loads(capsys.readouterr().out)["windows"]) == 20


def test_a_stream_whose_header_declares_no_duration_is_left_to_the_decoder(monkeypatch, crnn_model, clip_folder):
    """Recordings written through a pipe (WebM/Opus from a browser) declare no duration, which the probe reads as
    empty: the decoder decides. A file neither can read keeps the probe's error, which names the problem better."""
    from ser_hf.data.corpora import InvalidClipError

    def no_duration(path):
        raise InvalidClipError(path, "zero-length audio")

    monkeypatch.setattr(windows_module, "probe_audio", no_duration)
    files = find_audio_inputs([clip_folder])
    good = next(f for f in files if Path(f).name not in BAD_CLIPS)
    random_bytes = next(f for f in files if Path(f).name == "clip_0003.wav")
    classifier = pipeline("audio-classification", model=str(crnn_model))
    classified, unreadable = classify_files(classifier, [good, random_bytes], progress=False)
    assert classified.error is None and classified.label in LABELS.names
    assert unreadable.error == "zero-length audio" and not unreadable.windows


def test_a_recording_longer_than_a_whisper_window_by_its_silence_alone_is_read_whole_when_the_model_trims(tmp_path):
    """A model that trims each clip's silence (`trim_silence_db`) read such a clip whole in training and in
    ``ser-hf evaluate``: predict reads it whole too, and windows a recording longer than the window once trimmed."""
    from transformers import WhisperConfig

    from tests.conftest_models import TINY_WHISPER

    config = WhisperConfig(**{**TINY_WHISPER, "max_source_positions": 250})  # a 5-s window
    folder = tmp_path / "whisper"
    _randomize(build_ssl_classifier(config, LABELS.names, pooling_mode="mean")).save_pretrained(folder)
    build_ssl_feature_extractor(config, trim_silence_db=30).save_pretrained(folder)
    noise = np.random.default_rng(0).normal(0, 0.1, 7 * SAMPLING_RATE).astype(np.float32)
    silence = np.zeros(2 * SAMPLING_RATE, np.float32)
    padded, long = tmp_path / "padded.wav", tmp_path / "long.wav"
    soundfile.write(padded, np.concatenate([silence, noise[: 3 * SAMPLING_RATE], silence]), SAMPLING_RATE)
    soundfile.write(long, noise, SAMPLING_RATE)
    classifier = pipeline("audio-classification", model=str(folder))
    padded_prediction, long_prediction = classify_files(classifier, [str(padded), str(long)], progress=False)
    assert padded_prediction.error is None and long_prediction.error is None
    assert [(w.start, w.end) for w in padded_prediction.windows] == [(0.0, 7.0)]
    assert [(w.start, w.end) for w in long_prediction.windows] == [(0.0, 5.0), (2.0, 7.0)]
