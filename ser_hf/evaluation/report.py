"""Evaluation reports of a trained model: every metric of each split as JSON, confusion matrices, reliability diagrams
and training curves as PNG, and the mean ± std summary of a k-fold or leave-one-speaker-out run."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from datasets import Dataset
from transformers import Trainer

from ..atomic_files import write_text_atomic
from ..data.dataset_info import column_values
from ..training.run_dir import (
    METRICS_FILE,
    REPORT_MARKDOWN,
    SUMMARY_FILE,
    SUMMARY_MARKDOWN,
    TRAINING_CURVES_PNG,
    split_confusion_matrix_png,
    split_reliability_diagram_png,
)
from .bootstrap import METRIC_LABELS, format_intervals
from .calibration import plot_reliability_diagram, split_calibration
from .metrics import (
    SCALAR_METRICS,
    classification_metrics,
    clip_predictions,
    format_mean_std,
    plot_confusion_matrix,
    plot_training_curves,
    summarize_folds,
)

logger = logging.getLogger(__name__)


def predict_split(trainer: Trainer, dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, logits)`` of every clip of ``dataset``, in its order (whole clips, gathered across processes)."""
    output = trainer.predict(dataset, metric_key_prefix=split)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return np.asarray(output.label_ids), np.asarray(logits)


def evaluate_split(
    trainer: Trainer,
    dataset: Dataset,
    label_names: Sequence[str],
    split: str,
    *,
    predictions: Optional[tuple[np.ndarray, np.ndarray]] = None,
    temperature: Optional[float] = None,
) -> dict[str, Any]:
    """Predict ``dataset`` (or take its ``(labels, logits)`` from :func:`predict_split`) and compute every metric,
    with per-speaker and (when the corpus records it) per-sex accuracy. With a fitted ``temperature`` the metrics are
    those of the calibrated logits, and ``calibration`` holds the ECE and reliability bins before and after."""
    labels, logits = predictions if predictions is not None else predict_split(trainer, dataset, split)
    sexes = column_values(dataset, "sex") if "sex" in dataset.column_names else None
    speakers = column_values(dataset, "speaker_id")
    corpora = column_values(dataset, "corpus") if "corpus" in dataset.column_names else None
    scaled = logits if temperature is None else logits / temperature
    metrics = classification_metrics(labels, scaled, label_names, speakers=speakers, sexes=sexes, corpora=corpora)
    if temperature is not None:
        metrics["calibration"] = split_calibration(labels, logits, temperature)
    if "path" in dataset.column_names:
        metrics["clip_predictions"] = clip_predictions(
            column_values(dataset, "path"), speakers, labels, scaled, label_names
        )
    logger.info(
        "%s: UA %.1f%%, WA %.1f%%, macro-F1 %.1f%% on %d clips",
        split,
        100 * metrics["unweighted_accuracy"],
        100 * metrics["accuracy"],
        100 * metrics["macro_f1"],
        metrics["clips"],
    )
    if len(metrics.get("per_corpus", {})) > 1:
        logger.info("%s by corpus: %s", split, per_corpus_line(metrics["per_corpus"]))
    return metrics


def per_corpus_line(per_corpus: Mapping[str, Mapping[str, Any]]) -> str:
    """``"ravdess UA 80.1 % (WA 79.9 %, 720 clips); tess ..."``: each corpus' figures of a merged run."""
    return "; ".join(
        f"{corpus} UA {100 * g['unweighted_accuracy']:.1f} % (WA {100 * g['accuracy']:.1f} %, {g['clips']} clips)"
        for corpus, g in per_corpus.items()
    )


def write_report(output_dir: str | Path, report: Mapping[str, Any], log_history: Sequence[Mapping] = ()) -> Path:
    """Write ``metrics.json`` and the PNG plots (a confusion matrix and, when the model was calibrated, reliability
    diagrams per evaluated split; training curves)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output_dir / REPORT_MARKDOWN, format_report(report))
    for split, metrics in report.get("evaluation", {}).items():
        plot_confusion_matrix(
            metrics,
            output_dir / split_confusion_matrix_png(split),
            title=f"{split}: UA {metrics['unweighted_accuracy']:.1%}, WA {metrics['accuracy']:.1%}",
        )
        if "calibration" in metrics:
            plot_reliability_diagram(
                metrics["calibration"], output_dir / split_reliability_diagram_png(split), title=f"{split} split"
            )
    if log_history:
        plot_training_curves(log_history, output_dir / TRAINING_CURVES_PNG)
    # Last: a metrics.json marks the run finished (a re-run reads it back instead of training again).
    path = output_dir / METRICS_FILE
    write_text_atomic(path, json.dumps(report, indent=2, default=_jsonable) + "\n")
    return path


def format_report(report: Mapping[str, Any]) -> str:
    """A run's report as Markdown: protocol and speakers, leakage audit, the metrics of each split, per-class F1."""
    split = report["split"]
    title = f"fold {report['fold']}, " if report.get("fold") is not None else ""
    lines = [
        f"# Evaluation ({title}{report['protocol']} protocol)",
        "",
        "| split | clips | speakers |",
        "|---|---:|---|",
    ]
    lines += [f"| {name} | {clips} | {', '.join(split['speakers'][name])} |" for name, clips in split["clips"].items()]
    audit = report.get("leakage_audit")
    if audit is not None:
        shared = sorted({s for speakers in audit["speaker_overlap"].values() for s in speakers})
        lines += [
            "",
            f"Leakage audit: **{'passed' if audit['passed'] else 'FAILED'}**; speakers shared between "
            f"splits: {', '.join(shared) if shared else 'none'}.",
        ]
    normalization = report.get("normalization")
    if normalization:
        lines += ["", f"Features: {normalization['protocol']}."]
        lines += [f"- Warning: {warning}." for warning in normalization.get("warnings", [])]
    names = [name for name in SCALAR_METRICS]
    lines += ["", "| split | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for name, metrics in report["evaluation"].items():
        cells = [
            f"{metrics[m]:.3f}" if m == "expected_calibration_error" else f"{100 * metrics[m]:.1f} %" for m in names
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    calibration = format_calibration(report)
    if calibration:
        lines += ["", calibration]
    for name, metrics in report["evaluation"].items():
        intervals = format_intervals(metrics.get("confidence_intervals"))
        if intervals:
            lines += ["", f"{name}: {intervals}" if len(report["evaluation"]) > 1 else intervals]
    for name, metrics in report["evaluation"].items():
        if metrics.get("per_corpus"):
            lines += ["", f"By corpus ({name}): {per_corpus_line(metrics['per_corpus'])}."]
    for name, metrics in report["evaluation"].items():
        lines += [
            "",
            f"Per-class scores ({name}):",
            "",
            "| label | precision | recall | F1 | clips |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {label} | {100 * s['precision']:.1f} | {100 * s['recall']:.1f} | {100 * s['f1']:.1f} | "
            f"{s['support']} |"
            for label, s in metrics["per_class"].items()
        ]
    training = report.get("training", {})
    if training:
        lines += [
            "",
            f"Training: {training.get('global_step')} steps, {training.get('epochs')} epochs, "
            f"{training.get('wall_seconds')} s; best checkpoint {training.get('best_checkpoint')}.",
        ]
    return "\n".join(lines) + "\n"


def format_calibration(report: Mapping[str, Any]) -> Optional[str]:
    """One line on the run's temperature scaling: T and each split's ECE before and after, or why there is none."""
    calibration = report.get("calibration")
    if not calibration:
        return None
    if calibration.get("fitted_on") is None:
        return f"Calibration: none ({calibration.get('note')}); scores are the model's uncalibrated softmax."
    eces = "; ".join(
        f"{name} ECE {split['ece_before']:.3f} before, {split['ece_after']:.3f} after"
        for name, split in ((name, metrics.get("calibration")) for name, metrics in report["evaluation"].items())
        if split
    )
    return (
        f"Calibration: temperature scaling, T = {calibration['temperature']:.3f} fitted on the "
        f"{calibration['fitted_on']} split (the metrics above are after it; that split's ECE after is in-sample, "
        f"the other splits' are not); {eces}."
    )


def write_fold_summary(output_dir: str | Path, reports: Sequence[Mapping[str, Any]], split: str = "test") -> dict:
    """Mean ± std across folds of every scalar metric of ``split``, with the per-fold table, as JSON and Markdown."""
    fold_metrics = [report["evaluation"][split] for report in reports]
    summary = summarize_folds(fold_metrics)
    summary["split"] = split
    summary["protocol"] = reports[0].get("protocol")
    summary["fold_ids"] = [report.get("fold") for report in reports]
    summary["test_speakers"] = [report["split"]["speakers"].get(split, []) for report in reports]
    summary["leakage_audits_passed"] = all(report["leakage_audit"]["passed"] for report in reports)
    output_dir = Path(output_dir)
    write_text_atomic(output_dir / SUMMARY_MARKDOWN, format_fold_summary(summary))
    write_text_atomic(output_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def format_fold_summary(summary: Mapping[str, Any]) -> str:
    """The fold summary as Markdown: mean ± std, then one row per fold."""
    names = [name for name in SCALAR_METRICS if name != "expected_calibration_error"]
    lines = [
        f"# {summary['protocol']} protocol, {summary['folds']} folds, {summary['split']} split",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        "| mean ± std | " + " | ".join(format_mean_std(summary, name) for name in names) + " |",
    ]
    for fold, row, speakers in zip(summary["fold_ids"], summary["per_fold"], summary["test_speakers"]):
        label = f"fold {fold} ({', '.join(speakers[:4])}{', ...' if len(speakers) > 4 else ''})"
        lines.append(f"| {label} | " + " | ".join(f"{100 * row[name]:.1f}" for name in names) + " |")
    pooled = summary.get("confidence_intervals")
    if pooled:
        figures = ", ".join(f"{label} {100 * pooled['pooled'][name]:.1f} %" for name, label in METRIC_LABELS.items())
        lines += ["", f"All folds' test speakers pooled: {figures}. {format_intervals(pooled)}"]
    lines += ["", f"Leakage audits: {'all passed' if summary['leakage_audits_passed'] else 'FAILED'}."]
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


__all__ = [
    "evaluate_split",
    "format_calibration",
    "format_fold_summary",
    "format_report",
    "predict_split",
    "write_fold_summary",
    "write_report",
]
