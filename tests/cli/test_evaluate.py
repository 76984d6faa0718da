"""``ser-hf evaluate --model MODEL --corpus NAME --data-dir DIR`` as a user runs it: the report it prints and the
files it writes, and its one-line errors. What the evaluation computes is tested in tests/evaluation."""

from __future__ import annotations

import json
import logging

from ser_hf.cli import main as cli_main
from tests.conftest import last_error_line


def test_evaluate_prints_the_report_and_writes_it(tmp_path, tiny_ravdess, tiny_crnn_folder, capsys, caplog):
    output = tmp_path / "report"
    evaluate = ["evaluate", "--model", str(tiny_crnn_folder), "--corpus", "ravdess", "--data-dir", str(tiny_ravdess)]
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert cli_main([*evaluate, "--speakers", "04", "--output-dir", str(output)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"Report written to {output}"
    assert sorted(path.name for path in output.iterdir()) == [
        "confusion_matrix.png",
        "eval_report.json",
        "eval_report.md",
    ]
    report = json.loads((output / "eval_report.json").read_text())
    (metrics,) = report["evaluation"].values()
    assert metrics["clips"] + sum(report["dropped_clips"].values()) == 8  # actor 04's clips of tiny_ravdess
    assert f"{100 * metrics['unweighted_accuracy']:.1f}" in "\n".join(out[:-1])
    # The model knows no "calm": actor 04's calm clip is left unscored, and the report, the printed report and a
    # warning say how many of which label.
    assert report["unknown_label_clips"] == {"calm": 1} and metrics["clips"] == 7
    said = (
        "- Clips left unscored, their label unknown to the model: 1 (calm 1); the figures cover the labels above only"
    )
    assert said in out and said in (output / "eval_report.md").read_text().splitlines()
    (warning,) = [record.getMessage() for record in caplog.records if "left unscored" in record.getMessage()]
    assert "knows no calm: 1 of the 8 clips of ravdess (speakers 04) are left unscored (calm 1)" in warning
    assert [record.levelno for record in caplog.records if "left unscored" in record.getMessage()] == [logging.WARNING]

    # Labels left out on request are not the model's gap: said apart, without a warning of their own.
    caplog.clear()
    labels = "neutral,happy,sad,angry,fearful,disgust"
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert cli_main([*evaluate, "--speakers", "04", "--labels", labels, "--output-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out.splitlines()
    report = json.loads((tmp_path / "r" / "eval_report.json").read_text())
    assert report["dropped_clips"] == {"calm": 1, "surprised": 1} and report["unknown_label_clips"] == {"calm": 1}
    assert "- Clips of labels not evaluated: 1 (surprised 1)" in out
    assert [record.getMessage() for record in caplog.records if "surprised" in record.getMessage()] == []


def test_evaluate_errors_are_one_line_before_any_model_is_loaded(tmp_path, tiny_ravdess, tiny_crnn_folder, capsys):
    model, data = str(tiny_crnn_folder), str(tiny_ravdess)
    matrix = ["evaluate", "--model", model, "--model", model, "--corpus", "ravdess", "--data-dir", data]
    assert cli_main([*matrix, "--speakers", "04", "--output-dir", str(tmp_path / "matrix")]) == 2
    assert (
        last_error_line(capsys)
        == "ser-hf: error: --speakers applies to one model on one corpus; a matrix uses --split."
    )
    missing = tmp_path / "no_such_corpus"
    assert cli_main(["evaluate", "--model", model, "--corpus", "ravdess", "--data-dir", str(missing)]) == 2
    assert last_error_line(capsys) == f"ser-hf: error: Data directory '{missing}' does not exist."
    assert not (tmp_path / "matrix").exists()
    # A CSV given to evaluate's --speakers (predict's takes one; this one takes speaker ids): said before any loading.
    table = tmp_path / "speakers.csv"
    table.write_text("path,speaker_id\n")
    one = ["evaluate", "--model", model, "--corpus", "ravdess", "--data-dir", data, "--speakers", str(table)]
    assert cli_main(one) == 2
    assert last_error_line(capsys) == (
        f"ser-hf: error: --speakers {table}: this command's --speakers takes speaker ids separated by commas (e.g. "
        "--speakers 03,04); a CSV of path,speaker_id is what ser-hf predict's --speakers takes."
    )
