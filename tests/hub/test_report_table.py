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


def _checkout(hub, tmp_path):
    """The reports repository as `datasets` sees it (its card's configs point at data/*.jsonl)."""
    checkout = tmp_path / "checkout"
    for name, content in hub.files(REPO, repo_type="dataset").items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_bytes(content)
    return checkout


@pytest.mark.slow
def test_reports_pushed_at_different_times_load_as_one_table(
    tmp_path, hub, cnn_run, cremad_run, tiny_ravdess, cremad_clips
):
    ravdess, cremad = CorpusSource("ravdess", str(tiny_ravdess)), CorpusSource("cremad", str(cremad_clips))
    reports = {
        # Two models on the same corpus and split, in folders of the same name: each keeps its own rows.
        "ravdess model on ravdess": (cnn_run, ravdess, tmp_path / "a" / "ravdess-all"),
        "cremad model on ravdess": (cremad_run, ravdess, tmp_path / "b" / "ravdess-all"),
        "ravdess model on cremad": (cnn_run, cremad, tmp_path / "a" / "cremad-all"),
    }
    written = {
        name: evaluate_model(str(model), source, split="all", output_dir=folder)
        for name, (model, source, folder) in reports.items()
    }
    for _, _, folder in reports.values():
        push_reports_to_hub(folder, REPO, token=TOKEN, endpoint=hub.url)
    push_reports_to_hub(tmp_path / "a" / "ravdess-all", REPO, token=TOKEN, endpoint=hub.url)  # again: rows replaced

    checkout = _checkout(hub, tmp_path)
    assert len(list((checkout / REPORTS_TABLE_DIR).iterdir())) == 3
    table = load_dataset(str(checkout), split="train").to_pandas()
    assert len(table) == 3 and table["report"].is_unique
    for name, report in written.items():
        (row,) = table[(table["model"] == report["model"]) & (table["corpus"] == report["corpus"])].itertuples()
        (metrics,) = report["evaluation"].values()
        assert (checkout / row.report / "eval_report.json").is_file()
        assert json.loads((checkout / row.report / "eval_report.json").read_text()) == json.loads(
            json.dumps(report, default=str)
        )
        assert row.split == report["split"]["name"] and bool(row.cross_corpus) == report["cross_corpus"]
        assert row.clips == metrics["clips"] and row.labels == len(report["labels"])
        for metric in ("unweighted_accuracy", "accuracy", "macro_f1"):
            assert getattr(row, metric) == pytest.approx(metrics[metric])
        low, high = metrics["confidence_intervals"]["intervals"]["unweighted_accuracy"]
        assert (row.ua_interval_low, row.ua_interval_high) == (pytest.approx(low), pytest.approx(high))
        assert not row.interval_reliable  # a handful of speakers: not an interval to trust
    assert sorted(table["cross_corpus"]) == [False, True, True]
