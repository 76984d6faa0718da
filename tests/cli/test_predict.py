"""``ser-hf predict MODEL AUDIO ...`` as a user runs it: its JSON lines, --top-k, --output rules (never into a model
folder or a folder of audio, never over a user's file without --overwrite), and its warnings and one-line errors.
What predict computes (windows, speakers, timelines) is tested in tests/deploy."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from transformers import AutoConfig

from ser_hf.cli import main as cli_main
from tests.conftest import write_audio


@pytest.mark.reliability
def test_predict_warns_about_a_clip_too_short_for_an_emotion_and_still_classifies_it(
    tmp_path, tiny_crnn_folder, capsys, caplog
):
    short = write_audio(tmp_path / "blip.wav", seconds=0.1)
    long_enough = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert cli_main(["predict", str(tiny_crnn_folder), str(short), str(long_enough), "--no-progress"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(short), str(long_enough)]
    assert all(line["label"] is not None and line["error"] is None for line in lines)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        f"{short} is 0.100 s long, shorter than 0.25 s: too little speech for an emotion, so its "
        "prediction is not meaningful."
    ]


@pytest.mark.reliability
def test_predict_on_a_url_says_urls_are_not_supported(tiny_crnn_folder, capsys):
    assert cli_main(["predict", str(tiny_crnn_folder), "https://example.com/clips/happy.wav"]) == 2
    err = capsys.readouterr().err
    assert (
        "ser-hf: error: https://example.com/clips/happy.wav: URLs are not supported; download the file first "
        "(curl -LO URL) and pass its path."
    ) in err
    assert "https:/example" not in err


@pytest.mark.reliability
@pytest.mark.parametrize("top_k", ["-3", "0"])
def test_predict_top_k_below_one_is_a_usage_error_naming_the_flag(tmp_path, tiny_crnn_folder, capsys, top_k):
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    with pytest.raises(SystemExit) as exit_:
        cli_main(["predict", str(tiny_crnn_folder), str(clip), "--top-k", top_k, "--no-progress"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no file was classified
    assert captured.err.strip().splitlines()[-1] == (
        f"ser-hf predict: error: argument --top-k: must be a positive integer, got {int(top_k)}"
    )
    assert cli_main(["predict", str(tiny_crnn_folder), str(clip), "--top-k", "1", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)["predictions"]) == 1
    assert "Loading weights" not in captured.err  # --no-progress silences transformers' bars too


@pytest.mark.reliability
def test_predict_never_writes_into_a_model_folder_or_a_folder_of_audio(tmp_path, tiny_crnn_folder, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_crnn_folder, model)
    config = (model / "config.json").read_bytes()
    recordings = tmp_path / "recordings"
    clip = write_audio(recordings / "sentence.wav", seconds=1.0)
    cases = {
        model / "config.json": f"{model} is a model folder (it holds config.json)",
        model / "emotions.csv": f"{model} is a model folder (it holds config.json)",
        recordings / "emotions.csv": f"{recordings} holds audio files (a corpus or a folder of recordings)",
    }
    for output, message in cases.items():
        for overwrite in ([], ["--overwrite"]):
            assert cli_main(["predict", str(model), str(clip), "--output", str(output), *overwrite]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert err[-1].startswith(f"ser-hf: error: --output {output}: {message}"), err
    assert (model / "config.json").read_bytes() == config and not (model / "emotions.csv").exists()
    assert AutoConfig.from_pretrained(model).model_type == "ser_crnn"  # the model still loads


@pytest.mark.reliability
def test_predict_replaces_its_own_output_but_not_a_users_file_without_overwrite(tmp_path, tiny_crnn_folder, capsys):
    clip = write_audio(tmp_path / "audio" / "sentence.wav", seconds=1.0)
    for name in ("notes.csv", "notes.json"):
        output = tmp_path / "results" / name
        output.parent.mkdir(exist_ok=True)
        output.write_text("my own notes, not predictions\n")
        predict = ["predict", str(tiny_crnn_folder), str(clip), "--output", str(output), "--no-progress"]
        assert cli_main(predict) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"ser-hf: error: --output {output} already exists and is not a file ser-hf wrote: give --overwrite to "
            "replace it, or another name."
        )
        assert output.read_text() == "my own notes, not predictions\n"
        assert cli_main([*predict, "--overwrite"]) == 0
        written = output.read_text()
        assert str(clip) in written
        assert cli_main(predict) == 0  # an earlier ser-hf predict output is replaced without --overwrite
        assert output.read_text() == written
