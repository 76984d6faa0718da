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
from ..metric_table import METRICS
from ..run_folder import (
    METRICS_FILE,
    REPORT_MARKDOWN,
    SUMMARY_FILE,
    SUMMARY_MARKDOWN,
    TRAINING_CURVES_PNG,
    split_confusion_matrix_png,
    split_reliability_diagram_png,
)
from ..run_record import FoldSummary, RunReport
from .bootstrap import INTERVAL_LABELS, format_intervals
from .calibration import plot_reliability_diagram, split_calibration
from .constants import PERCENT_METRICS
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
    collapsed = collapsed_speakers(labels, scaled.argmax(axis=1), speakers, label_names)
    if collapsed:
        logger.warning(
            "%s: the predictions of %s collapse onto one or two emotions (%s): the model does not carry over to "
            "these speakers. Standardise each speaker with their own statistics (feature_extractor_config: "
            "{normalization: speaker}), or start from a general model and adapt it with a few of their clips "
            "(ser-hf adapt; docs/guides/your-data.md).",
            split,
            "speaker " + ", ".join(collapsed) if len(collapsed) < 4 else f"{len(collapsed)} speakers",
            "; ".join(f"{speaker}: {share}" for speaker, share in list(collapsed.items())[:3]),
        )
    return metrics


#: A speaker's predictions collapse when this share of their clips, or more, gets the two most predicted emotions
#: while their clips hold at least ``COLLAPSE_MIN_LABELS`` emotions and ``COLLAPSE_MIN_CLIPS`` clips.
COLLAPSE_SHARE = 0.8
COLLAPSE_MIN_LABELS = 4
COLLAPSE_MIN_CLIPS = 12


def collapsed_speakers(
    labels: Sequence[int], predictions: Sequence[int], speakers: Sequence[str], label_names: Sequence[str]
) -> dict[str, str]:
    """The speakers whose clips of several emotions the model answers with one or two of them (the way a model
    trained on other speakers' recordings fails on a new set-up), each with what it predicted, e.g. ``{"S4": "74 %
    neutral, 12 % happy of 60 clips"}``."""
    labels, predictions, speakers = np.asarray(labels), np.asarray(predictions), np.asarray(speakers)
    collapsed = {}
    for speaker in dict.fromkeys(speakers.tolist()):
        rows = speakers == speaker
        if rows.sum() < COLLAPSE_MIN_CLIPS or len(np.unique(labels[rows])) < COLLAPSE_MIN_LABELS:
            continue
        counts = np.bincount(predictions[rows], minlength=len(label_names))
        top = np.argsort(-counts, kind="stable")[:2]
        if counts[top].sum() >= COLLAPSE_SHARE * rows.sum():
            shares = ", ".join(f"{100 * counts[i] / rows.sum():.0f} % {label_names[i]}" for i in top if counts[i])
            collapsed[str(speaker)] = f"{shares} of {int(rows.sum())} clips"
    return collapsed


def per_corpus_line(per_corpus: Mapping[str, Mapping[str, Any]]) -> str:
    """``"ravdess UA 80.1 % (WA 79.9 %, 720 clips); tess ..."``: each corpus' figures of a merged run."""
    return "; ".join(
        f"{corpus} UA {100 * g['unweighted_accuracy']:.1f} % (WA {100 * g['accuracy']:.1f} %, {g['clips']} clips)"
        for corpus, g in per_corpus.items()
    )


def write_report(output_dir: str | Path, report: RunReport, log_history: Sequence[Mapping] = ()) -> Path:
    """Write ``metrics.json`` (the report, :class:`~ser_hf.run_record.RunReport`) and the PNG plots (a confusion
    matrix and, when the model was calibrated, reliability diagrams per evaluated split; training curves)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output_dir / REPORT_MARKDOWN, format_report(report))
    for split, metrics in report.evaluation.items():
        plot_confusion_matrix(
            metrics.to_dict(),
            output_dir / split_confusion_matrix_png(split),
            title=f"{split}: UA {metrics.unweighted_accuracy:.1%}, WA {metrics.accuracy:.1%}",
        )
        if metrics.calibration is not None:
            plot_reliability_diagram(
                metrics.calibration, output_dir / split_reliability_diagram_png(split), title=f"{split} split"
            )
    if log_history:
        plot_training_curves(log_history, output_dir / TRAINING_CURVES_PNG)
    # Last: a metrics.json marks the run finished (a re-run reads it back instead of training again).
    path = output_dir / METRICS_FILE
    write_text_atomic(path, json.dumps(report.to_dict(), indent=2, default=_jsonable) + "\n")
    return path


def validation_choices(
    report: RunReport, training_args: Optional[Mapping[str, Any]] = None
) -> Optional[dict[str, bool]]:
    """What a run chose on its validation speakers: ``{"best_epoch", "early_stopping", "temperature"}`` (each `bool`).

    Read from the report's ``validation_choices`` (runs record it), else, for a report from before, from the run's
    ``training_args`` (the ``training`` section of ``run_config.json``) and ``calibration``; `None` when the run has no
    validation split or neither source says."""
    if "validation" not in report.evaluation:
        return None
    if report.validation_choices is not None:
        return report.validation_choices.to_dict()
    if not training_args or "load_best_model_at_end" not in training_args:
        return None
    evaluates = str(training_args.get("eval_strategy", "epoch")).lower() not in ("no", "intervalstrategy.no")
    return {
        "best_epoch": bool(training_args["load_best_model_at_end"]) and evaluates,
        "early_stopping": training_args.get("early_stopping_patience") is not None and evaluates,
        "temperature": report.calibration is not None and report.calibration.fitted_on == "validation",
    }


def _and_join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _chosen(choices: Mapping[str, bool]) -> list[str]:
    return [
        text
        for key, text in (
            ("best_epoch", "chose the best epoch"),
            ("early_stopping", "chose when to stop (early stopping)"),
            ("temperature", "fitted the calibration temperature"),
        )
        if choices.get(key)
    ]


def validation_role(report: RunReport, training_args: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """One sentence on what the validation speakers did in the run: chose the best epoch (only where they did:
    ``load_best_model_at_end``, early stopping), fitted the temperature, or only report; `None` without a validation
    split."""
    if "validation" not in report.evaluation:
        return None
    choices = validation_choices(report, training_args)
    if choices is None:
        return (
            "Validation speakers: this report does not record whether they chose the best epoch (a run from before "
            "ser-hf recorded it); read their figures as optimistic."
        )
    chosen = _chosen(choices)
    if not choices.get("best_epoch") and not choices.get("early_stopping"):
        fixed = (
            "the model trained its fixed epochs and the last one is kept, so the validation speakers chose no epoch"
        )
        if chosen:
            return f"Validation speakers: {fixed}; they {_and_join(chosen)} (their ECE after it is in-sample)."
        return f"Validation speakers: {fixed} and only report."
    return f"Validation speakers: they {_and_join(chosen)}, so their figures are optimistic (in-sample)."


def no_test_split_text(report: RunReport, training_args: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """The warning of a run without test speakers (a recipe for actors 01-24 on a copy of 01-20): its only figures
    are the validation speakers', which chose what they chose; `None` when the run has a test split."""
    if "test" in report.evaluation or "validation" not in report.evaluation:
        return None
    choices = validation_choices(report, training_args)
    if choices is None:
        what = "which may have chosen the best epoch (the run does not record it): read them as optimistic"
    elif choices.get("best_epoch") or choices.get("early_stopping"):
        what = f"which {_and_join(_chosen(choices))}: in-sample, optimistic"
    elif choices.get("temperature"):
        what = (
            "which chose no epoch (fixed epochs, the last model kept) but fitted the calibration temperature: their "
            "ECE is in-sample, and no held-out speaker confirms their accuracy"
        )
    else:
        what = "which chose nothing (fixed epochs, the last model, no temperature) and only report; no held-out "
        what += "speaker confirms them"
    return (
        "**No test speakers: this run has no test split, so its only figures are on the validation speakers, "
        f"{what}.** Name test speakers (test_speakers) for a held-out estimate."
    )


def format_report(report: RunReport) -> str:
    """A run's report (or ``ser-hf evaluate``'s, read as one: its sections have the same shape) as Markdown:
    protocol and speakers, leakage audit, the metrics of each split, per-class F1."""
    split = report.split
    title = f"fold {report.fold}, " if report.fold is not None else ""
    lines = [
        f"# Evaluation ({title}{report.protocol} protocol)",
        "",
        "| split | clips | speakers |",
        "|---|---:|---|",
    ]
    lines += [f"| {name} | {clips} | {', '.join(split.speakers[name])} |" for name, clips in split.clips.items()]
    audit = report.leakage_audit
    if audit is not None:
        shared = sorted({s for speakers in audit["speaker_overlap"].values() for s in speakers})
        lines += [
            "",
            f"Leakage audit: **{'passed' if audit['passed'] else 'FAILED'}**; speakers shared between "
            f"splits: {', '.join(shared) if shared else 'none'}.",
        ]
    normalization = report.normalization
    if normalization:
        lines += ["", f"Features: {normalization['protocol']}."]
        lines += [f"- Warning: {warning}." for warning in normalization.get("warnings", [])]
    no_test = no_test_split_text(report)
    if no_test:
        lines += ["", no_test]
    names = [name for name in SCALAR_METRICS]
    lines += ["", "| split | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for name, metrics in report.evaluation.items():
        cells = [METRICS[m].format(metrics.metric(m)) for m in names]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    calibration = format_calibration(report)
    if calibration:
        lines += ["", calibration]
    # A run's report, not ser-hf evaluate's (which records no training).
    role = validation_role(report) if report.training and report.training.to_dict() else None
    if role and not no_test:
        lines += ["", role]
    for name, metrics in report.evaluation.items():
        intervals = format_intervals(metrics.confidence_intervals)
        if intervals:
            lines += ["", f"{name}: {intervals}" if len(report.evaluation) > 1 else intervals]
    for name, metrics in report.evaluation.items():
        lines += per_speaker_table(name, metrics)
    for name, metrics in report.evaluation.items():
        if metrics.per_corpus:
            lines += ["", f"By corpus ({name}): {per_corpus_line(metrics.per_corpus)}."]
    for name, metrics in report.evaluation.items():
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
            for label, s in metrics.per_class.items()
        ]
    training = report.training.to_dict() if report.training is not None else {}
    if training:
        choices = validation_choices(report) or {}
        kept = (
            f"best checkpoint {report.training.best_checkpoint}"
            if choices.get("best_epoch", "validation_choices" not in report.to_dict())
            else "the last model kept"
        )
        lines += [
            "",
            f"Training: {report.training.global_step} steps, {report.training.epochs} epochs, "
            f"{report.training.wall_seconds} s; {kept}.",
        ]
    return "\n".join(lines) + "\n"


def per_speaker_table(name: str, metrics) -> list[str]:
    """Each speaker's clips, WA and UA, where the speakers are too few for a speaker interval (the intervals line
    points here); nothing otherwise."""
    intervals = metrics.confidence_intervals or {}
    if not metrics.per_speaker or intervals.get("reliable", True):
        return []
    lines = ["", f"Per-speaker scores ({name}):", "", "| speaker | clips | WA | UA |", "|---|---:|---:|---:|"]
    return lines + [
        f"| {speaker} | {scores['clips']} | {100 * scores['accuracy']:.1f} | "
        f"{100 * scores['unweighted_accuracy']:.1f} |"
        for speaker, scores in metrics.per_speaker.items()
    ]


def format_calibration(report: RunReport) -> Optional[str]:
    """One line on the run's temperature scaling: T and each split's ECE before and after, or why there is none."""
    calibration = report.calibration
    if calibration is None or not calibration.to_dict():
        return None
    if calibration.fitted_on is None:
        return f"Calibration: none ({calibration.note}); scores are the model's uncalibrated softmax."
    eces = "; ".join(
        f"{name} ECE {metrics.calibration['ece_before']:.3f} before, {metrics.calibration['ece_after']:.3f} after"
        for name, metrics in report.evaluation.items()
        if metrics.calibration
    )
    return (
        f"Calibration: temperature scaling, T = {calibration.temperature:.3f} fitted on the "
        f"{calibration.fitted_on} split (the metrics above are after it; that split's ECE after is in-sample, "
        f"the other splits' are not); {eces}."
    )


def write_fold_summary(output_dir: str | Path, reports: Sequence[RunReport], split: str = "test") -> FoldSummary:
    """Mean ± std across folds of every scalar metric of ``split``, with the per-fold table, as JSON and Markdown
    (``summary.json``, returned as its record)."""
    fold_metrics = [report.evaluation[split].to_dict() for report in reports]
    summary = summarize_folds(fold_metrics)
    summary["split"] = split
    summary["protocol"] = reports[0].protocol
    summary["fold_ids"] = [report.fold for report in reports]
    summary["test_speakers"] = [report.split.speakers.get(split, []) for report in reports]
    summary["leakage_audits_passed"] = all(report.leakage_audit["passed"] for report in reports)
    output_dir = Path(output_dir)
    write_text_atomic(output_dir / SUMMARY_MARKDOWN, format_fold_summary(summary))
    write_text_atomic(output_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return FoldSummary.from_dict(summary, where=str(output_dir / SUMMARY_FILE))


def format_fold_summary(summary: Mapping[str, Any]) -> str:
    """The fold summary as Markdown: mean ± std, then one row per fold."""
    names = list(PERCENT_METRICS)
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
        figures = ", ".join(f"{label} {100 * pooled['pooled'][name]:.1f} %" for name, label in INTERVAL_LABELS.items())
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
    "no_test_split_text",
    "validation_choices",
    "validation_role",
    "format_calibration",
    "format_fold_summary",
    "format_report",
    "predict_split",
    "write_fold_summary",
    "write_report",
]
