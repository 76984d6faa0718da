"""A repository of ``ser-hf evaluate`` reports as one table: each push adds a JSON Lines file under ``data/`` with one
flat row per report (model × corpus × split), and the repository's dataset card points `datasets` at those files, so

    >>> from datasets import load_dataset
    >>> table = load_dataset("me/ser-reports", split="train")

gives every evaluation ever pushed there in one table, beside the full reports (``eval_report.json``/``.md``) in
their folders. Every row has the same columns and types, so files pushed at different times load together.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from ..evaluation.bootstrap import MIN_RELIABLE_SPEAKERS
from ..evaluation.constants import INTERVAL_METRICS, METRIC_LABELS
from ..run_folder import EVAL_REPORT_JSON, REPORTS_DIR
from ..run_record import EvalReport

#: The folder of a reports repository that holds its table, one ``.jsonl`` file per pushed report folder.
REPORTS_TABLE_DIR = "data"
#: The metrics the table has a column of: those ``ser-hf evaluate`` reports with an interval (as the model card's
#: table of evaluations), from the metric table.
TABLE_METRICS = INTERVAL_METRICS


def report_rows(report: EvalReport, location: str) -> list[dict[str, Any]]:
    """The flat rows of one ``eval_report.json`` (one per evaluated split, its ``condition`` ``clean``, then one per
    recording condition of ``ser-hf evaluate --conditions`` with its ``ua_change`` against clean), ``location``
    naming its folder in the repository."""
    rows = []
    for key, metrics in report.evaluation.items():
        interval = (metrics.confidence_intervals or {}).get("intervals", {}).get("unweighted_accuracy")
        speakers = report.split.speakers.get(key, [])
        rows.append(
            {
                "model": str(report.model),
                "corpus": str(report.corpus or key),
                "corpus_name": str(report.corpus_name or key),
                "split": str(report.split.name),
                "protocol": str(report.protocol or ""),
                "cross_corpus": bool(report.cross_corpus),
                "transductive": bool((report.normalization or {}).get("transductive", False)),
                "labels": len(report.labels),
                "clips": int(metrics.clips),
                "speakers": len(speakers),
                **{name: float(metrics.metric(name)) for name in TABLE_METRICS},
                # Always numbers (the interval is computed whatever the speaker count), with whether to trust it.
                "ua_interval_low": float(interval[0]) if interval else float(metrics.unweighted_accuracy),
                "ua_interval_high": float(interval[1]) if interval else float(metrics.unweighted_accuracy),
                "interval_reliable": bool(interval) and len(speakers) >= MIN_RELIABLE_SPEAKERS,
                "report": location,
                "condition": "clean",
                "ua_change": 0.0,
            }
        )
    for record in (report.recording_conditions or {}).get("conditions", []) if rows else []:
        interval = (record.get("confidence_intervals") or {}).get("intervals", {}).get("unweighted_accuracy")
        rows.append(
            {
                **rows[0],
                "clips": int(record["clips"]),
                **{name: float(record[name]) for name in TABLE_METRICS},
                "ua_interval_low": float(interval[0]) if interval else float(record["unweighted_accuracy"]),
                "ua_interval_high": float(interval[1]) if interval else float(record["unweighted_accuracy"]),
                "condition": str(record["condition"]),
                "ua_change": float(record["change"]["unweighted_accuracy_difference"]),
            }
        )
    return rows


def _read_report(path: Path) -> EvalReport:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    return EvalReport.from_dict(report, where=str(path))


def folder_rows(report_dir: Path, path_in_repo: str) -> list[dict[str, Any]]:
    """The rows of every ``eval_report.json`` under ``report_dir``, located as they will be in the repository."""
    rows = []
    for path in sorted(report_dir.glob(f"**/{EVAL_REPORT_JSON}")):
        relative = path.parent.relative_to(report_dir).as_posix()
        location = path_in_repo if relative == "." else f"{path_in_repo}/{relative}".lstrip("/")
        rows += report_rows(_read_report(path), location)
    return rows


def default_path_in_repo(report_dir: Path, repo_type: str) -> str:
    """Where a report folder goes by default: ``reports/<folder>`` in a model repository (where the model's card
    reads its evaluations), ``<model>/<folder>`` in a reports repository, so that two models evaluated on the same
    corpus and split keep a folder (and rows) each."""
    if repo_type == "model":
        return f"{REPORTS_DIR}/{report_dir.resolve().name}"
    reports = sorted(report_dir.glob(f"**/{EVAL_REPORT_JSON}"))
    model = str(_read_report(reports[0]).model or "") if reports else ""
    if not model:  # reports that do not name their model keep the folder's name
        return report_dir.resolve().name
    if "/" in model and not Path(model).exists():  # a Hub repository id
        slug = model
    else:  # a local run folder: its name, and a short hash of its path, since run folders are often named alike
        slug = f"{Path(model).name}-{hashlib.sha1(str(Path(model).resolve()).encode()).hexdigest()[:8]}"
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '__', slug).strip('_') or 'model'}/{report_dir.resolve().name}"


def table_file(path_in_repo: str) -> str:
    """The table file a push of ``path_in_repo`` writes (pushing the same folder again replaces its rows)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "__", path_in_repo.strip("/")) or "reports"
    return f"{REPORTS_TABLE_DIR}/{slug}.jsonl"


def table_lines(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode("utf-8")


def reports_dataset_card() -> DatasetCard:
    """The card of a reports repository: its ``configs`` tell `datasets` to load ``data/*.jsonl`` as one table."""
    data = DatasetCardData(
        configs=[
            {"config_name": "default", "data_files": [{"split": "train", "path": f"{REPORTS_TABLE_DIR}/*.jsonl"}]}
        ],
        tags=["ser-hf", "speech-emotion-recognition", "evaluation"],
    )
    body = (
        "# Speech emotion recognition evaluation reports\n\n"
        "Reports written by `ser-hf evaluate` and pushed with `--push-to-hub`: each folder holds one report "
        "(`eval_report.json`, `eval_report.md`, the confusion matrix), and `data/` holds one row per report "
        f"(model, corpus, split, protocol, {', '.join(METRIC_LABELS[name] for name in TABLE_METRICS)} and UA's "
        "speaker-bootstrap interval), and one more per recording condition the report scored (`condition`, with "
        "`ua_change` against `clean`). Load the table with `datasets.load_dataset(REPO_ID, split='train')`.\n"
    )
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


__all__ = [
    "REPORTS_TABLE_DIR",
    "TABLE_METRICS",
    "default_path_in_repo",
    "folder_rows",
    "report_rows",
    "reports_dataset_card",
    "table_file",
    "table_lines",
]
