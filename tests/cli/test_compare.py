"""``ser-hf compare RUN_DIR RUN_DIR ...`` as a user runs it: the table it prints, the files it writes, and its
one-line errors. How runs are summarised (folds, intervals, paired tests) is tested in tests/experiments."""

from __future__ import annotations

import json
from pathlib import Path

from ser_hf.cli import main as cli_main
from ser_hf.evaluation.constants import SCALAR_METRICS
from tests.conftest import last_error_line


def finished_run(folder: Path, unweighted_accuracy: float) -> Path:
    """A run folder as a finished ``ser-hf train`` leaves it, reduced to what compare reads: its metrics.json."""
    scores = {name: 0.5 for name in SCALAR_METRICS} | {"unweighted_accuracy": unweighted_accuracy}
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"evaluation": {"test": scores}, "training": {}}))
    return folder


def test_compare_prints_one_table_of_the_runs_and_writes_it(tmp_path, capsys):
    first, second = finished_run(tmp_path / "cnn", 0.625), finished_run(tmp_path / "crnn", 0.5)
    output = tmp_path / "comparison"
    assert cli_main(["compare", str(first), str(second), "--names", "CNN,CRNN", "--output-dir", str(output)]) == 0
    out = capsys.readouterr().out
    written = f"{output / 'comparison.csv'}, {output / 'comparison.md'}, {output / 'comparison.png'}"
    assert out.splitlines()[-1] == f"Written {written}"
    assert (
        "| CNN | n/a | n/a | 1 | 62.5 | 50.0 | 50.0 |" in out
        and "| CRNN | n/a | n/a | 1 | 50.0 | 50.0 | 50.0 |" in out
    )
    assert (output / "comparison.md").read_text().strip() in out


def test_compare_errors_are_one_line(tmp_path, capsys):
    run = finished_run(tmp_path / "cnn", 0.625)
    assert cli_main(["compare", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "out")]) == 2
    assert last_error_line(capsys) == f"ser-hf: error: Run directory {tmp_path / 'missing'} does not exist."
    assert cli_main(["compare", str(run), "--names", "a,b", "--output-dir", str(tmp_path / "out")]) == 2
    assert last_error_line(capsys) == "ser-hf: error: Give one name per run: 2 names for 1 runs."
    assert not (tmp_path / "out").exists()
