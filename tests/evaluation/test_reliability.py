"""Reliability of evaluation reports: the finished marker is written last, a failure while writing a report leaves the
previous one whole, evaluating some speakers decodes only their clips, and a clip too short for openSMILE
functionals is listed unscored instead of scored as speech."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile

import ser_hf.evaluation.eval_report as eval_report_module
import ser_hf.evaluation.evaluate_model as evaluate_module
from ser_hf.cli import main as cli_main
from ser_hf.evaluation.eval_report import write_eval_report
from ser_hf.evaluation.report import write_report
from ser_hf.run_folder import METRICS_FILE
from ser_hf.run_record import RunReport
from tests.conftest import folder_bytes, linked_corpus

pytestmark = pytest.mark.reliability


def test_the_finished_marker_is_written_last(tmp_path, monkeypatch):
    """A run killed while its report is written has no metrics.json, so a re-run finishes it instead of reading
    back half a report."""
    import ser_hf.evaluation.report as evaluation

    def failing_plot(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    monkeypatch.setattr(evaluation, "format_report", lambda report: "# Evaluation")
    monkeypatch.setattr(evaluation, "plot_training_curves", failing_plot)
    with pytest.raises(RuntimeError):
        write_report(tmp_path, RunReport(), log_history=[{"loss": 1.0, "step": 1}])
    assert not (tmp_path / METRICS_FILE).exists()


def _eval_report(unweighted_accuracy: float) -> dict:
    return {
        "corpus_name": "ravdess",
        "split": {"name": "test"},
        "evaluation": {
            "ravdess (test)": {
                "label_names": ["sad", "angry"],
                "confusion_matrix": [[2, 0], [1, 1]],
                "confusion_matrix_normalized": [[1.0, 0.0], [0.5, 0.5]],
                "unweighted_accuracy": unweighted_accuracy,
                "accuracy": 0.75,
            }
        },
    }


def test_a_failure_while_writing_an_evaluation_report_leaves_the_previous_one(tmp_path, monkeypatch):
    monkeypatch.setattr(eval_report_module, "format_eval_report", lambda report: f"# UA {report['evaluation']}\n")
    output = tmp_path / "reports" / "ravdess-test"
    write_eval_report(output, _eval_report(0.75))
    before = folder_bytes(output)
    assert set(before) == {"eval_report.json", "eval_report.md", "confusion_matrix.png"}

    def killed(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    with monkeypatch.context() as patch:
        patch.setattr(eval_report_module, "plot_confusion_matrix", killed)
        with pytest.raises(RuntimeError, match="killed while plotting"):
            write_eval_report(output, _eval_report(0.5))
    assert folder_bytes(output) == before

    write_text = Path.write_text

    def half_written(self, text, *args, **kwargs):  # the JSON, the report of record, is written last
        if self.name.startswith(f".{eval_report_module.EVAL_REPORT_JSON}."):
            write_text(self, text[: len(text) // 2], *args, **kwargs)
            raise OSError(28, "No space left on device")
        return write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", half_written)
    with pytest.raises(OSError, match="No space left on device"):
        write_eval_report(output, _eval_report(0.5))
    assert (output / "eval_report.json").read_bytes() == before["eval_report.json"]
    assert sorted(path.name for path in output.iterdir()) == sorted(before)  # no temporary file left behind


def test_evaluate_on_some_speakers_decodes_only_their_clips(tmp_path, tiny_ravdess, tiny_classifier, monkeypatch):
    decoded = []
    real_prepare = evaluate_module.prepare_audio
    monkeypatch.setattr(
        evaluate_module,
        "prepare_audio",
        lambda dataset, **kwargs: decoded.append(len(dataset)) or real_prepare(dataset, **kwargs),
    )
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(tiny_classifier),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "04",
                "--output-dir",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    assert decoded == [8]
    report = json.loads((tmp_path / "report" / "eval_report.json").read_text())
    assert report["split"]["speakers"] == {"ravdess (speakers 04)": ["04"]}
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(tiny_classifier),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "04,99",
                "--output-dir",
                str(tmp_path / "report"),
            ]
        )
        == 2
    )
    assert decoded == [8]  # an unknown speaker stops it before anything is decoded


def test_evaluating_on_a_clip_too_short_for_opensmile_functionals_lists_it_unscored(
    tmp_path, tiny_ravdess, tiny_opensmile_folder, caplog
):
    # A globally normalised openSMILE model scored a 1-sample clip's all-NaN functionals (zeroed) as speech.
    data = linked_corpus(tiny_ravdess, tmp_path / "data")
    short = data / "Actor_01" / "03-01-05-02-02-02-01.wav"
    soundfile.write(short, np.array([0.1], dtype=np.float32), 16000)
    output = tmp_path / "evaluation"
    evaluate = ["evaluate", "--model", str(tiny_opensmile_folder), "--corpus", "ravdess", "--data-dir", str(data)]
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert cli_main([*evaluate, "--output-dir", str(output)]) == 0
    report = json.loads((output / "eval_report.json").read_text())
    error = (
        "the clip is 0.1 ms long, shorter than one openSMILE frame (60.0 ms), below which its eGeMAPSv02 "
        "functionals are all NaN"
    )
    assert report["unscored_clips"] == [
        {"path": str(short), "speaker_id": "01", "duration": pytest.approx(1 / 16000), "error": error}
    ]
    (metrics,) = report["evaluation"].values()
    assert metrics["clips"] + sum(report["dropped_clips"].values()) == 4 * 8  # every clip of tiny_ravdess
    assert str(short) not in {clip["path"] for clip in metrics["clip_predictions"]}
    assert f"`{short}`: {error}" in (output / "eval_report.md").read_text()
    assert "Not scoring 1 clip(s) of ravdess (all), shorter than one openSMILE frame (60.0 ms)" in caplog.text


def test_evaluating_a_whisper_model_on_a_corpus_with_a_clip_longer_than_its_window_scores_the_others(
    tmp_path, tiny_ravdess, caplog
):
    """Issue 44, item 1: one clip longer than the window refused the whole evaluation ("Clip 7 is 14.00 s long").
    A model that trims each clip's silence (`trim_silence_db`, as this one) reads a clip as it trims it: one longer
    than the window by its silence alone is scored, as training and `pipeline` read it."""
    from transformers import WhisperConfig

    from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
    from tests.conftest import RAVDESS_LABELS
    from tests.conftest_models import TINY_WHISPER

    config = WhisperConfig(**{**TINY_WHISPER, "max_source_positions": 250})  # a 5-s window
    model = build_ssl_classifier(config, RAVDESS_LABELS, pooling_mode="mean")
    folder = tmp_path / "whisper"
    model.save_pretrained(folder)
    build_ssl_feature_extractor(model.config, trim_silence_db=30).save_pretrained(folder)
    data = linked_corpus(tiny_ravdess, tmp_path / "data")
    long = data / "Actor_01" / "03-01-05-02-02-02-01.wav"
    noise = np.random.default_rng(0).normal(0, 0.05, 16000 * 7 + 7).astype(np.float32)
    soundfile.write(long, noise, 16000)
    padded = data / "Actor_01" / "03-01-05-02-01-02-01.wav"  # 3 s of noise inside 4 s of silence
    soundfile.write(padded, np.concatenate([np.zeros(32000), noise[: 16000 * 3], np.zeros(32000)]), 16000)
    output = tmp_path / "evaluation"
    evaluate = ["evaluate", "--model", str(folder), "--corpus", "ravdess", "--data-dir", str(data)]
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert cli_main([*evaluate, "--output-dir", str(output)]) == 0
    report = json.loads((output / "eval_report.json").read_text())
    rows = {row["path"]: row for row in report["unscored_clips"]}  # a real clip of 5.005 s too
    assert rows[str(long)]["error"].startswith(
        "the clip is 7.000 s long, longer than the model's 5-s window (its silence trimmed too)"
    )
    assert all(row["duration"] > 5 for row in rows.values()) and str(padded) not in rows
    (metrics,) = report["evaluation"].values()
    scored = {clip["path"] for clip in metrics["clip_predictions"]}
    assert str(long) not in scored and str(padded) in scored
    assert f"Not scoring {len(rows)} clip(s) of ravdess (all), longer than the model's 5-s window" in caplog.text
