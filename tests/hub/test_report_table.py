"""Evaluation reports on the Hub as one table: pushed to a dataset repository of the local Hub server, they load
back with `datasets.load_dataset` into one row per model × corpus × split."""

import json

import pytest
from datasets import load_dataset

from ser_hf.evaluation.evaluate_model import CorpusSource, evaluate_model
from ser_hf.hub.push import push_reports_to_hub
from ser_hf.hub.report_table import REPORTS_TABLE_DIR
from tests.hub_server import LocalHub

TOKEN = "hf_localTestToken0123456789abcdefXYZ"
USER = "ser-hf-tester"
REPO = f"{USER}/ser-reports"


@pytest.fixture(scope="module")
def hub():
    with LocalHub(token=TOKEN, user=USER) as server:
        yield server


def test_reports_pushed_at_different_times_load_as_one_table(tmp_path, hub, cnn_run, tiny_ravdess, cremad_clips):
    within = evaluate_model(
        str(cnn_run), CorpusSource("ravdess", str(tiny_ravdess)), split="test", output_dir=tmp_path / "ravdess-test"
    )
    cross = evaluate_model(
        str(cnn_run), CorpusSource("cremad", str(cremad_clips)), split="all", output_dir=tmp_path / "cremad-all"
    )
    push_reports_to_hub(tmp_path / "ravdess-test", REPO, token=TOKEN, endpoint=hub.url)
    push_reports_to_hub(tmp_path / "cremad-all", REPO, token=TOKEN, endpoint=hub.url)
    push_reports_to_hub(tmp_path / "ravdess-test", REPO, token=TOKEN, endpoint=hub.url)  # again: rows replaced

    # The repository as `datasets` sees it: its card's configs point at data/*.jsonl.
    checkout = tmp_path / "checkout"
    for name, content in hub.files(REPO, repo_type="dataset").items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_bytes(content)
    assert sorted(p.name for p in (checkout / REPORTS_TABLE_DIR).iterdir()) == [
        "cremad-all.jsonl",
        "ravdess-test.jsonl",
    ]
    assert json.loads((checkout / "ravdess-test" / "eval_report.json").read_text())["corpus"] == "ravdess"
    table = load_dataset(str(checkout), split="train").to_pandas().set_index("report")

    assert sorted(table.index) == ["cremad-all", "ravdess-test"]
    for location, report in (("ravdess-test", within), ("cremad-all", cross)):
        row = table.loc[location]
        (metrics,) = report["evaluation"].values()
        assert row["corpus"] == report["corpus"] and row["split"] == report["split"]["name"]
        assert bool(row["cross_corpus"]) == report["cross_corpus"]
        assert row["clips"] == metrics["clips"] and row["labels"] == len(report["labels"])
        for name in ("unweighted_accuracy", "accuracy", "macro_f1"):
            assert row[name] == pytest.approx(metrics[name])
        low, high = metrics["confidence_intervals"]["intervals"]["unweighted_accuracy"]
        assert (row["ua_interval_low"], row["ua_interval_high"]) == (pytest.approx(low), pytest.approx(high))
        assert not row["interval_reliable"]  # a handful of test speakers: not an interval to trust
    assert bool(table.loc["cremad-all", "cross_corpus"]) and not bool(table.loc["ravdess-test", "cross_corpus"])
