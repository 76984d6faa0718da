"""bench/robustness.py's own logic, the scoring being ``ser-hf evaluate --conditions``
(tests/evaluation/test_recording_conditions.py): per corpus left out the mean over seeds, and over corpora each
seed's mean, whose mean and range the table gives, with the change against clean."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_bench

robustness = load_bench("robustness")


def cell(corpus, seed, clean, changes):
    return {
        "test": corpus,
        "seed": seed,
        "clean": clean,
        **{
            name: {"unweighted_accuracy": clean + change, "change": change}
            for name, change in zip(robustness.CONDITIONS, changes)
        },
    }


CELLS = {
    "ravdess/42": cell("ravdess", 42, 80.0, [-4, -10, -3, -2, -6]),
    "nemo/42": cell("nemo", 42, 60.0, [-6, -12, -5, 0, -8]),
    "ravdess/7": cell("ravdess", 7, 70.0, [-4, -10, -3, -2, -6]),
    "nemo/7": cell("nemo", 7, 60.0, [-6, -12, -5, 0, -8]),
    "nemo/43": cell("nemo", 43, 50.0, [0, 0, 0, 0, 0]),  # seed 43 lacks RAVDESS: not in the seeds' mean
}


def test_the_summary_averages_seeds_per_corpus_and_gives_the_complete_seeds_mean_and_range():
    facts = robustness.summary(CELLS)
    assert facts["corpora"] == ["ravdess", "nemo"] and facts["seeds"] == [7, 42]
    assert facts["by_corpus"]["ravdess"]["clean"] == 75.0
    assert facts["by_corpus"]["nemo"]["clean"] == pytest.approx(170 / 3, abs=0.01)
    assert facts["mean"]["clean"] == {"mean": 67.5, "range": [65.0, 70.0]}
    # Seed 42: ravdess 80 - 5 (its mean change), nemo 60 - 6.2, so 64.4; seed 7: 70 - 5 and 60 - 6.2, so 59.4.
    assert facts["mean"]["conditions"]["range"] == [pytest.approx(59.4), pytest.approx(64.4)]


def test_the_table_gives_each_corpus_and_the_mean_with_its_seed_range():
    document = {
        "date": "2026-11-28",
        "commit": "abcdef0",
        "command": "python -m bench.robustness",
        "clips_per_label": 40,
        "runs": {"general": {"loco": "loco.json", "cells": CELLS}},
    }
    table = robustness.markdown(document)
    assert "## general (loco.json; seeds 7, 42)" in table
    assert "| ravdess | 75.0 | 71.0 (-4.0) | 65.0 (-10.0) |" in table
    assert "| **mean** | 67.5 (65.0-70.0) | 62.5 (-5.0; 60.0-65.0) |" in table
    assert all(name in table for name in robustness.CONDITIONS)


def test_a_file_that_is_not_a_loco_result_is_refused_in_one_line(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"rows": []}))
    with pytest.raises(SystemExit, match="--loco .*other.json: not a loco result file"):
        robustness.loco_cells(path)


def test_a_result_file_of_other_conditions_is_summarised_and_tabled_by_its_own_conditions():
    conditions = [*robustness.CONDITIONS, "reverb:rt60=1.0"]
    cells = {
        key: {**value, "reverb:rt60=1.0": {"unweighted_accuracy": value["clean"] - 9, "change": -9}}
        for key, value in CELLS.items()
    }
    facts = robustness.summary(cells, conditions)
    assert facts["mean"]["reverb:rt60=1.0"]["mean"] == 67.5 - 9
    document = {
        "date": "2026-11-29",
        "commit": "abcdef0",
        "command": "python -m bench.robustness --conditions ...",
        "clips_per_label": 40,
        "conditions": conditions,
        "runs": {"general": {"loco": "loco.json", "cells": cells}},
    }
    table = robustness.markdown(document)
    assert "| reverb:rt60=0.6 | reverb:rt60=1.0 | conditions' mean |" in table
    row = "| ravdess | 75.0 | 71.0 (-4.0) | 65.0 (-10.0) | 72.0 (-3.0) | 73.0 (-2.0) | 69.0 (-6.0) | 66.0 (-9.0) |"
    assert row in table
