"""What a model card says a run measured: the ``model-index`` (one ``EvalResult`` per metric of the main split, the
k-fold mean, and every ``ser-hf evaluate`` report), and the body's result tables (metrics per split, per class and
per sex, the k-fold mean ± std, the evaluation reports, the confusion matrix). :class:`~ser_hf.hub.card.SERCardData`
states what the run was (model, data, training) and calls these for what it scored.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

from huggingface_hub import EvalResult

from ..data.corpora import CORPORA
from ..evaluation.bootstrap import INTERVAL_LABELS, format_interval, format_intervals
from ..evaluation.constants import INTERVAL_METRICS, PERCENT_METRICS, SCALAR_METRICS
from ..evaluation.eval_report import corpora_names, corpus_relation
from ..metric_table import METRICS
from ..run_folder import EVAL_REPORT_MARKDOWN, RunRecord, split_confusion_matrix_png
from ..run_record import EvalReport, FoldSummary, RunReport

#: The metrics of the ``model-index`` and how each appears there: (metric type, name, metric config), from the
#: metric table (:data:`~ser_hf.evaluation.constants.METRICS`). Those the Hub has no metric type for (the expected
#: calibration error) are in the card's tables only.
MODEL_INDEX_METRICS = {
    name: (metric.model_index_type, metric.model_index_name, metric.model_index_config)
    for name, metric in METRICS.items()
    if metric.model_index_type is not None
}
#: The metric types the card's metadata lists (``metrics:``), in the model-index's order.
MODEL_INDEX_METRIC_TYPES = list(dict.fromkeys(metric_type for metric_type, _, _ in MODEL_INDEX_METRICS.values()))
#: The metrics a card lists for each ``ser-hf evaluate`` report: those with an interval.
EVAL_REPORT_METRICS = INTERVAL_METRICS
#: The metrics of the k-fold table (mean ± std and each fold): the percentages.
KFOLD_METRICS = PERCENT_METRICS
#: The ranking metric, whose speaker-bootstrap interval the result tables show beside it.
RANKING_METRIC = "unweighted_accuracy"


class Column(NamedTuple):
    """A column of one of the card's metric tables: its heading and the key of its cell in each row."""

    heading: str
    key: str


def metric_columns(names: Sequence[str], *, words: bool = False) -> list[Column]:
    """The columns of a card table showing ``names`` (:data:`~ser_hf.metric_table.METRICS` rows, in order), with the
    ranking metric's interval after it where its row has one (``ua_interval``); with ``words``, the headings say what
    the labels stand for (``UA (unweighted accuracy)``)."""
    columns = []
    for name in names:
        metric = METRICS[name]
        columns.append(Column(metric.heading if words else metric.label, name))
        if name == RANKING_METRIC:
            columns.append(Column(f"{metric.label}, 95 % interval", "ua_interval"))
    return columns


#: The columns of the card's results table (each evaluated split), k-fold table and ``ser-hf evaluate`` table.
RESULT_COLUMNS = metric_columns(SCALAR_METRICS, words=True)
KFOLD_COLUMNS = [column for column in metric_columns(KFOLD_METRICS) if column.key in KFOLD_METRICS]
EVAL_REPORT_COLUMNS = metric_columns(EVAL_REPORT_METRICS)


def percent(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def report_relation(report: EvalReport, training_corpora: Sequence[str]) -> str:
    """Whether a ``ser-hf evaluate`` report is ``in-corpus`` (its corpus is one the model trained on),
    ``cross-corpus`` or ``unknown``: as the report says, or (a report from before it said) from the run's corpora."""
    if report.corpus_relation:
        return report.corpus_relation
    if training_corpora:
        return corpus_relation(training_corpora, report.corpus)
    return "cross-corpus" if report.cross_corpus else "unknown"


def _trained_on(report: EvalReport, training_corpora: Sequence[str]) -> str:
    return corpora_names(report.training_corpora or training_corpora) or "unknown corpora"


def main_split(report: RunReport) -> Optional[str]:
    """The split a card reports: test, else validation (a run without a test split), else none."""
    evaluation = report.evaluation
    return "test" if "test" in evaluation else ("validation" if "validation" in evaluation else None)


# --- The model-index ----------------------------------------------------------------------------------------------


def _metric_results(
    metrics: Mapping[str, Any],
    names: Sequence[str],
    metric_name: Callable[[str], str],
    *,
    dataset_type: str,
    dataset_name: str,
    dataset_split: str,
) -> list[EvalResult]:
    """One `EvalResult` per metric of ``names`` the Hub has a type for, named by ``metric_name`` from the metric's
    pretty name."""
    results = []
    for name in names:
        if name not in MODEL_INDEX_METRICS:
            continue
        metric_type, pretty, config = MODEL_INDEX_METRICS[name]
        results.append(
            EvalResult(
                task_type="audio-classification",
                task_name="Speech emotion recognition",
                dataset_type=dataset_type,
                dataset_name=dataset_name,
                dataset_split=dataset_split,
                metric_type=metric_type,
                metric_config=config,
                metric_name=metric_name(pretty),
                metric_value=round(float(metrics[name]), 4),
            )
        )
    return results


def eval_results(
    run: RunRecord, corpora: Sequence[str], corpus_names: Optional[Sequence[str]] = None
) -> list[EvalResult]:
    """One `EvalResult` per metric of :data:`MODEL_INDEX_METRICS` on the main split (test, else validation), or the
    k-fold mean, and per metric of :data:`EVAL_REPORT_METRICS` in every ``ser-hf evaluate`` report in
    ``reports/``. ``corpora`` are the training corpora's loaders, ``corpus_names`` how the card names them (a folder
    corpus by its ``corpus_name``; by default the loaders' corpora's names)."""
    results: list[EvalResult] = []
    dataset_type = "+".join(corpora)
    dataset_name = " + ".join(
        corpus_names if corpus_names is not None else [CORPORA[c].full_name if c in CORPORA else c for c in corpora]
    )
    if run.summary is not None and run.is_kfold_root:
        summary = run.summary
        results += _metric_results(
            summary.mean,
            MODEL_INDEX_METRICS,
            lambda pretty: f"{pretty}, mean of {summary.folds} folds",
            dataset_type=dataset_type,
            dataset_name=f"{dataset_name} (in-corpus, {summary.folds}-fold {summary.protocol}, mean)",
            dataset_split=summary.split,
        )
    elif run.report is not None:
        split = main_split(run.report)
        if split is not None:
            speakers = run.report.split.speakers.get(split, [])
            results += _metric_results(
                run.report.evaluation[split].to_dict(),
                MODEL_INDEX_METRICS,
                lambda pretty: f"{pretty}, {split} split",
                dataset_type=dataset_type,
                dataset_name=f"{dataset_name} (in-corpus, {split} speakers: {', '.join(speakers)})",
                dataset_split=split,
            )
    for path, report in run.eval_reports:
        for key, metrics in report.evaluation.items():
            corpus = report.corpus or key
            kind = f"{report_relation(report, corpora)}, trained on {_trained_on(report, corpora)}, "
            speakers = len(report.split.speakers.get(key, []))
            normalization = report.normalization or {}
            transductive = (
                f", {normalization.get('mode', 'speaker')}-normalised (transductive)"
                if normalization.get("transductive")
                else ""
            )
            described = f"{kind}{report.split.name}, {speakers} speakers, {len(report.labels)} labels{transductive}"
            results += _metric_results(
                metrics.to_dict(),
                EVAL_REPORT_METRICS,
                lambda pretty: f"{pretty}, {path}",
                dataset_type=corpus,
                dataset_name=f"{report.corpus_name or corpus} ({described})",
                dataset_split=report.split.name,
            )
    return results


# --- The body's result tables -------------------------------------------------------------------------------------


def results_rows(report: RunReport) -> list[dict[str, Any]]:
    """Each evaluated split's clips and scalar metrics."""
    rows = []
    for name, metrics in report.evaluation.items():
        row = {"name": name, "clips": metrics.clips}
        row.update({m: percent(metrics.metric(m)) for m in PERCENT_METRICS})
        row.update({m: METRICS[m].format(metrics.metric(m)) for m in SCALAR_METRICS if m not in PERCENT_METRICS})
        row["ua_interval"] = format_interval(metrics.confidence_intervals, RANKING_METRIC)
        rows.append(row)
    return rows


def calibration_text(report: RunReport) -> Optional[str]:
    """How the scores are calibrated: the temperature and the main split's ECE before and after it, or why none was
    fitted (`None` for a report from before calibration existed)."""
    calibration = report.calibration
    if calibration is None or not calibration.to_dict():
        return None
    if calibration.fitted_on is None:
        return f"The scores are not calibrated ({calibration.note})."
    split = main_split(report)
    measured = (report.evaluation[split].calibration or {}) if split else {}
    in_sample = " (in-sample: T was fitted on this split)" if split == calibration.fitted_on else ""
    eces = (
        f"; {split} ECE {measured['ece_before']:.3f} before, {measured['ece_after']:.3f} after{in_sample} (the table "
        "above is after it)"
        if measured
        else ""
    )
    return (
        f"The scores are calibrated by temperature scaling: the logits are divided by T = "
        f"{calibration.temperature:.3f} (fitted on the {calibration.fitted_on} split and saved with the model: "
        f"`calibration_temperature` in `config.json`, or folded into the classifier's weights for transformers' "
        f"own classification heads; predictions are unchanged){eces}."
    )


def kfold_table(summary: Optional[FoldSummary]) -> Optional[dict[str, Any]]:
    """The k-fold mean ± std and one row per fold, from ``summary.json``."""
    if summary is None:
        return None
    mean = {name: f"{100 * summary.mean[name]:.1f} ± {100 * summary.std[name]:.1f}" for name in KFOLD_METRICS}
    rows = []
    for fold, row, speakers in zip(summary.fold_ids, summary.per_fold, summary.test_speakers):
        shown = ", ".join(speakers[:4]) + (", ..." if len(speakers) > 4 else "")
        rows.append({"fold": fold, "speakers": shown, **{m: percent(row[m]) for m in KFOLD_METRICS}})
    return {
        "folds": summary.folds,
        "split": summary.split,
        "mean": mean,
        "rows": rows,
        "audits_passed": summary.leakage_audits_passed,
        "pooled": pooled_text(summary.confidence_intervals),
    }


def pooled_text(pooled: Optional[Mapping[str, Any]]) -> Optional[str]:
    """All folds' test speakers pooled: the metrics and their speaker-bootstrap intervals, as one sentence."""
    if not pooled:
        return None
    figures = ", ".join(f"{label} {percent(pooled['pooled'][name])}" for name, label in INTERVAL_LABELS.items())
    return f"All folds' test speakers pooled: {figures}. {format_intervals(pooled)}"


def per_class_rows(report: RunReport) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each label on the main split."""
    split = main_split(report)
    if split is None:
        return []
    return [
        {
            "label": label,
            "precision": percent(s["precision"]),
            "recall": percent(s["recall"]),
            "f1": percent(s["f1"]),
            "support": s["support"],
        }
        for label, s in report.evaluation[split].per_class.items()
    ]


def per_sex_text(report: RunReport) -> Optional[str]:
    """WA and UA of each sex on the main split, when the corpus records it."""
    split = main_split(report)
    groups = report.evaluation[split].per_sex if split else None
    if not groups:
        return None
    return ", ".join(
        f"{sex} {percent(g['accuracy'])} WA, {percent(g['unweighted_accuracy'])} UA on {g['clips']} clips"
        for sex, g in groups.items()
    )


def per_corpus_text(report: RunReport) -> Optional[str]:
    """WA and UA of each corpus on the main split of a run on merged corpora (more than one corpus tested)."""
    split = main_split(report)
    groups = report.evaluation[split].per_corpus if split else None
    if not groups or len(groups) < 2:
        return None
    return ", ".join(
        f"{corpus} {percent(g['accuracy'])} WA, {percent(g['unweighted_accuracy'])} UA on {g['clips']} clips"
        for corpus, g in groups.items()
    )


def confusion_matrix_image(run: RunRecord, report: RunReport) -> Optional[str]:
    """The main split's confusion matrix relative to the run folder (a k-fold root shows its first fold's)."""
    split = main_split(report)
    folder = run.model_dir
    if split is None or not (folder / split_confusion_matrix_png(split)).is_file():
        return None
    return (folder / split_confusion_matrix_png(split)).relative_to(run.run_dir).as_posix()


def eval_report_rows(
    eval_reports: Sequence[tuple[str, EvalReport]], training_corpora: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """One row per ``ser-hf evaluate`` report in ``reports/``, linking its Markdown, with the corpora the model
    trained on and whether the report's corpus is one of them (``relation``: in-corpus, cross-corpus or unknown)."""
    rows = []
    for path, report in eval_reports:
        for key, metrics in report.evaluation.items():
            relation = report_relation(report, training_corpora)
            rows.append(
                {
                    "name": f"{report.corpus or key} / {report.split.name}",
                    "path": f"{path}/{EVAL_REPORT_MARKDOWN}",
                    "corpus": report.corpus_name or key,
                    "trained_on": _trained_on(report, training_corpora),
                    "relation": relation,
                    "cross_corpus": relation == "cross-corpus",
                    "clips": metrics.clips,
                    "num_labels": len(report.labels),
                    **{m: percent(metrics.metric(m)) for m in EVAL_REPORT_METRICS},
                    "ua_interval": format_interval(metrics.confidence_intervals, RANKING_METRIC),
                }
            )
    return rows


__all__ = [
    "EVAL_REPORT_COLUMNS",
    "KFOLD_COLUMNS",
    "MODEL_INDEX_METRICS",
    "MODEL_INDEX_METRIC_TYPES",
    "RESULT_COLUMNS",
    "Column",
    "calibration_text",
    "confusion_matrix_image",
    "eval_report_rows",
    "eval_results",
    "kfold_table",
    "main_split",
    "metric_columns",
    "per_class_rows",
    "per_corpus_text",
    "per_sex_text",
    "percent",
    "pooled_text",
    "report_relation",
    "results_rows",
]
