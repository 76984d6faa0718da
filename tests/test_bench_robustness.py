"""bench/robustness.py's own logic, the scoring being ``ser-hf evaluate --conditions``
(tests/evaluation/test_recording_conditions.py): the table per corpus left out, with the mean of the corpora."""

from __future__ import annotations

from tests.conftest import load_bench

robustness = load_bench("robustness")


def test_the_table_gives_each_corpus_and_the_mean_change_against_clean():
    def row(clean, changes):
        return {
            "clean": clean,
            **{
                name: {"unweighted_accuracy": clean + change, "change": change}
                for name, change in zip(robustness.CONDITIONS, changes)
            },
        }

    document = {
        "date": "2026-11-28",
        "commit": "abcdef0",
        "command": "python -m bench.robustness",
        "corpora": {"ravdess": row(80.0, [-4, -10, -3, -2, -6]), "nemo": row(60.0, [-6, -12, -5, 0, -8])},
    }
    table = robustness.markdown(document)
    assert "| ravdess | 80.0 | 76.0 (-4.0) | 70.0 (-10.0) |" in table
    assert "| mean | 70.0 | 65.0 (-5.0) | 59.0 (-11.0) | 66.0 (-4.0) | 69.0 (-1.0) | 63.0 (-7.0) |" in table
    assert all(name in table for name in robustness.CONDITIONS)
