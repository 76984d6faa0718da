"""``ser-hf evaluate --model MODEL --corpus NAME --data-dir DIR`` as a user runs it: the report it prints and the
files it writes, and its one-line errors. What the evaluation computes is tested in tests/evaluation."""

from __future__ import annotations

import json

from ser_hf.cli import main as cli_main
from tests.conftest import last_error_line


def test_evaluate_prints_the_report_and_writes_it(tmp_path, tiny_ravdess, tiny_crnn_folder, capsys):
    output = tmp_path / "report"
    evaluate = ["evaluate", "--model", str(tiny_crnn_folder), "--corpus", "ravdess", "--data-dir", str(tiny_ravdess)]
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
