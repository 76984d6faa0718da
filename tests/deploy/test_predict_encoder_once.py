"""``ser-hf predict`` with a Whisper model standardised by corpus or speaker statistics (issues 65 and 69): each window
goes through the encoder once (the states that give the statistics are the ones the head scores), with the scores of
the two passes it made before."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

import ser_hf.deploy.classify as classify_module
from ser_hf.cli import main as cli_main
from ser_hf.deploy.classify import classify_files
from ser_hf.deploy.pipelines import load_classifier
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
from tests.conftest_models import LABELS, TINY_WHISPER, load_clip

#: The model's encoder window (150 encoder frames).
WINDOW_SECONDS = 3.0


def whisper_folder(folder, normalization: str, pooling_mode: str = "layer_statistics"):
    """A saved tiny Whisper classifier (3-s window, head at scale 1) standardised by `normalization` statistics, with
    training statistics of zeros and ones (what a group without statistics of its own gets)."""
    torch.manual_seed(0)
    config = WhisperConfig(**{**TINY_WHISPER, "max_source_positions": 150})
    model = build_ssl_classifier(config, LABELS, use_weighted_layer_sum=True, pooling_mode=pooling_mode).eval()
    with torch.no_grad():
        for module in (model.projector, model.classifier):
            for parameter in module.parameters():
                parameter.normal_()
    extractor = build_ssl_feature_extractor(model.config, normalization=normalization)
    width = (config.encoder_layers + 1) * config.d_model * (2 if pooling_mode == "layer_statistics" else 1)
    extractor.set_global_statistics(np.zeros(width, np.float32), np.ones(width, np.float32))
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


def write_recordings(root, speakers=("A1", "B1"), clips_each: int = 5, flat: bool = True) -> list[str]:
    """Short clips of each speaker (``A1_0.wav``, or ``A1/0.wav`` when not `flat`), a 7-s recording of the first
    (three windows) and an empty file; their paths, sorted."""
    paths = []
    for speaker_index, speaker in enumerate(speakers):
        for index in range(clips_each):
            waveform = (1 + speaker_index) * load_clip(index + speaker_index, 0.8 + 0.1 * index)
            paths.append(root / (f"{speaker}_{index}.wav" if flat else f"{speaker}/{index}.wav"))
            paths[-1].parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(paths[-1], np.clip(waveform, -1, 1).astype(np.float32), 16000)
    long = np.concatenate([load_clip(index) for index in range(4)])[: 7 * 16000]
    paths.append(root / (f"{speakers[0]}_long.wav" if flat else f"{speakers[0]}/long.wav"))
    soundfile.write(paths[-1], long, 16000)
    paths.append(root / (f"{speakers[0]}_empty.wav" if flat else f"{speakers[0]}/empty.wav"))
    paths[-1].write_bytes(b"")
    return sorted(str(path) for path in paths)


@pytest.fixture
def encoded_windows(monkeypatch):
    """How many windows went through a Whisper encoder, counted at its forward."""
    counted = {"windows": 0}
    forward = WhisperEncoder.forward

    def counting(self, input_features, *args, **kwargs):
        counted["windows"] += input_features.shape[0]
        return forward(self, input_features, *args, **kwargs)

    monkeypatch.setattr(WhisperEncoder, "forward", counting)
    return counted


def scores_of(predictions) -> dict[str, list[list[float]]]:
    return {p.file: [[w.scores[label] for label in LABELS.names] for w in p.windows] for p in predictions}


@pytest.mark.parametrize(
    ("normalization", "pooling_mode"),
    [("speaker", "layer_statistics"), ("corpus", "layer_statistics"), ("speaker", "mean")],
)
def test_each_window_is_encoded_once_with_the_scores_of_two_passes(
    tmp_path, encoded_windows, monkeypatch, normalization, pooling_mode
):
    folder = whisper_folder(tmp_path / "model", normalization, pooling_mode)
    files = write_recordings(tmp_path / "recordings")
    speakers = {file: ("A1" if "/A1_" in file else "B1") for file in files}
    classifier = load_classifier(str(folder))
    windows = 2 * 5 + 3  # the short clips and the 7-s recording's three 3-s windows; the empty file has none

    encoded_windows["windows"] = 0
    once = list(classify_files(classifier, files, speakers=speakers, progress=False, min_statistics_rows=1))
    assert encoded_windows["windows"] == windows

    monkeypatch.setattr(classify_module, "encodes_once", lambda model, extractor: False)  # the two passes of before
    encoded_windows["windows"] = 0
    twice = list(classify_files(classifier, files, speakers=speakers, progress=False, min_statistics_rows=1))
    assert encoded_windows["windows"] == 2 * windows

    assert [p.file for p in once] == [p.file for p in twice] == files
    assert [p.speaker for p in once] == [p.speaker for p in twice] == [speakers[file] for file in files]
    assert [p.error for p in once] == [p.error for p in twice]
    (empty,) = [p for p in once if p.error is not None]
    assert empty.file.endswith("A1_empty.wav") and empty.windows == []
    long = next(p for p in once if p.file.endswith("A1_long.wav"))
    assert [(w.start, w.end) for w in long.windows] == [(0.0, 3.0), (3.0, 6.0), (4.0, 7.0)]
    expected = scores_of(twice)
    for file, scores in scores_of(once).items():
        np.testing.assert_allclose(scores, expected[file], atol=1e-4, err_msg=file)
    # The statistics matter: the training statistics give other scores.
    fallback = scores_of(classify_files(classifier, files, speakers=speakers, progress=False, min_statistics_rows=99))
    assert max(np.abs(np.subtract(fallback[f], expected[f])).max() for f in expected if expected[f]) > 1e-2


def test_predict_on_a_folder_encodes_each_window_once_under_corpus_statistics(tmp_path, encoded_windows):
    """The command a user runs: a corpus-standardised Whisper model on a folder."""
    folder = whisper_folder(tmp_path / "model", "corpus")
    files = write_recordings(tmp_path / "recordings")
    output = tmp_path / "predictions.json"
    encoded_windows["windows"] = 0
    arguments = ["predict", str(folder), str(tmp_path / "recordings"), "--output", str(output), "--no-progress"]
    assert cli_main(arguments) == 1  # the empty file fails, the others are classified
    assert encoded_windows["windows"] == 2 * 5 + 3
    records = json.loads(output.read_text())
    results = records if isinstance(records, list) else records["files"]
    assert sorted(record["file"] for record in results) == files
    assert sum(record["error"] is None for record in results) == len(files) - 1
