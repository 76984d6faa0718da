"""What ``ser-hf predict`` shows while it works (issue 65, point 8): no transformers "Loading weights" bar, one bar of
files that moves after every batch of windows (not once a chunk of many batches) with its time left from the average
rate, and the batch size's default in ``--help``."""

from __future__ import annotations

import re

import pytest
import tqdm.auto
from transformers.utils import logging as transformers_logging

from ser_hf.cli import main as cli_main
from tests.conftest import write_audio


def test_predict_help_shows_the_batch_size_default(capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main(["predict", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert re.search(r"--batch-size BATCH_SIZE windows per forward pass, taken across files \(default: 8;", text)


def test_predict_shows_a_bar_of_files_and_no_weight_loading_bar(tmp_path, tiny_crnn_folder, capsys):
    clips = [str(write_audio(tmp_path / f"clip{index}.wav", seconds=0.5 + 0.1 * index)) for index in range(3)]
    (tmp_path / "results").mkdir()
    enabled = transformers_logging.is_progress_bar_enabled()  # an earlier --no-progress in this process disables it
    transformers_logging.enable_progress_bar()
    try:
        output = str(tmp_path / "results" / "out.csv")
        assert cli_main(["predict", str(tiny_crnn_folder), *clips, "--output", output]) == 0
        assert transformers_logging.is_progress_bar_enabled()  # restored once the model is loaded
    finally:
        if not enabled:
            transformers_logging.disable_progress_bar()
    err = capsys.readouterr().err
    assert "Loading weights" not in err
    assert "Classifying" in err and "3/3 files" in err


def test_the_bar_moves_after_every_batch_with_the_average_rate(tmp_path, tiny_crnn_folder, monkeypatch):
    """Eight one-window files in batches of two: one chunk (16 batches' worth), four forward passes, and the bar
    moves after each of them, not after the last."""
    from ser_hf.deploy.classify import classify_files
    from ser_hf.deploy.pipelines import load_classifier

    events, bars = [], []

    class RecordingBar(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            if kwargs.get("desc") == "Classifying":
                bars.append(kwargs)
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if self.desc.startswith("Classifying"):
                events.append("update")
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    classifier = load_classifier(str(tiny_crnn_folder))
    forward = classifier.model.forward

    def counted_forward(*args, **kwargs):
        events.append("forward")
        return forward(*args, **kwargs)

    monkeypatch.setattr(classifier.model, "forward", counted_forward)
    clips = [str(write_audio(tmp_path / f"clip{index}.wav", seconds=0.5 + 0.05 * index)) for index in range(8)]
    predictions = list(classify_files(classifier, clips, batch_size=2, progress=True))
    assert [p.error for p in predictions] == [None] * 8
    assert events.count("forward") == 4
    passes = "".join("F" if event == "forward" else "u" for event in events)
    assert re.fullmatch(r"(Fu+){4}", passes), passes  # every pass is followed by its windows' share of the bar
    assert [bar["smoothing"] for bar in bars] == [0]
