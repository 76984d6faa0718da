"""One metric table drives every metric list: a row added to :data:`ser_hf.metric_table.METRICS` is a field of the run
record (read, validated and written back), a column of each of the model card's metric tables and of the reports
table, with no other edit (issue 66)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

#: The ``ser-hf evaluate`` report the card and the reports table read (a few keys of a real one).
EVAL_REPORT = {
    "model": "runs/x",
    "corpus": "ravdess",
    "corpus_name": "RAVDESS",
    "corpus_relation": "in-corpus",
    "training_corpora": ["ravdess"],
    "labels": ["angry", "neutral"],
    "split": {"name": "test", "speakers": {"ravdess": ["04"]}},
    "evaluation": {
        "ravdess": {"clips": 8, "unweighted_accuracy": 0.5, "accuracy": 0.5, "macro_f1": 0.4, "loudness_share": 0.75}
    },
}


@pytest.mark.slow  # end to end, the longest of its file: make test-slow (CI runs both)
def test_a_new_metric_row_reaches_the_record_the_card_and_the_reports_table(tmp_path, cnn_run):
    run_dir = tmp_path / "run"
    shutil.copytree(cnn_run, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for split in metrics["evaluation"].values():
        split["loudness_share"] = 0.25
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "reports" / "ravdess-test").mkdir(parents=True)
    (run_dir / "reports" / "ravdess-test" / "eval_report.json").write_text(json.dumps(EVAL_REPORT))
    # The row is added before ser-hf reads the table, as an edit of ser_hf/metric_table.py would be.
    script = textwrap.dedent(
        f"""
        import json, sys
        from ser_hf import metric_table

        metric_table.METRICS["loudness_share"] = metric_table.Metric(
            "loudness_share", "LS", words="loudness share", interval=True
        )
        from ser_hf.errors import RunRecordError
        from ser_hf.hub.card import create_model_card
        from ser_hf.hub.report_table import report_rows
        from ser_hf.run_folder import read_run
        from ser_hf.run_record import EvalReport

        report = read_run({str(run_dir)!r}).report
        assert report.evaluation["test"].loudness_share == 0.25 and report.unknown_keys() == []
        assert report.to_dict()["evaluation"]["test"]["loudness_share"] == 0.25
        try:
            type(report).from_dict({{"evaluation": {{"test": {{"unweighted_accuracy": 0.5, "loudness_share": 7.5}}}}}})
        except RunRecordError as error:
            assert "evaluation.test.loudness_share is 7.5, not a proportion in [0, 1]" in str(error), error
        else:
            sys.exit("an out-of-range value of the new metric was read")
        card = str(create_model_card({str(run_dir)!r}))
        rows = [line for line in card.splitlines() if line.startswith("|")]
        results = next(index for index, line in enumerate(rows) if line.startswith("| split | clips | UA"))
        assert rows[results].endswith("| ECE | LS (loudness share) |"), rows[results]
        assert [line.split(" | ")[0] for line in rows[results + 2 : results + 4]] == ["| validation", "| test"], rows
        assert all(line.endswith("| 25.0 % |") for line in rows[results + 2 : results + 4]), rows
        evaluations = next(line for line in rows if line.startswith("| report |"))
        assert evaluations.endswith("| macro-F1 | LS |"), evaluations
        assert any(line.startswith("| [ravdess / test]") and line.endswith("| 75.0 % |") for line in rows), rows
        evaluated = EvalReport.from_dict(json.loads({json.dumps(json.dumps(EVAL_REPORT))}))
        [row] = report_rows(evaluated, "reports/ravdess-test")
        assert row["loudness_share"] == 0.75, row
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
