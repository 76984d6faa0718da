"""Compare finished training runs: one table (UA, WA, macro-F1, mean ± std for k-fold runs, trainable parameters,
training time) and a bar chart with error bars.

    ser-hf compare runs/ravdess_cnn2d runs/ravdess_crnn runs/ravdess_kfold_cnn2d --output-dir docs/results/compare

A run directory is what ``python -m ser_hf.train`` writes: ``metrics.json`` for one split, or ``fold-<k>/metrics.json``
(with ``summary.json``) for k-fold and leave-one-speaker-out runs, whose mean ± std (sample standard deviation, as in
``summary.json``) is computed from the folds' reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..atomic_files import atomic_path, save_figure, write_text_atomic
from ..errors import InputError
from ..evaluation.bootstrap import format_interval, paired_comparison
from ..evaluation.constants import INTERVAL_METRICS, METRIC_LABELS
from ..evaluation.metrics import summarize_folds
from ..run_folder import RunRecord, read_run
from ..run_record import RunReport, TrainingRecord

logger = logging.getLogger(__name__)

#: The metrics the comparison shows, in order, with the names tables use.
COMPARED_METRICS = INTERVAL_METRICS
#: File names of the comparison's outputs.
COMPARISON_CSV = "comparison.csv"
COMPARISON_MARKDOWN = "comparison.md"
COMPARISON_PNG = "comparison.png"


@dataclass
class RunResult:
    """One run's scores on one split: the mean (and, over several folds, the sample standard deviation) of every scalar
    metric, with the model's size and the training time."""

    name: str
    run_dir: Path
    split: str
    folds: int
    mean: dict[str, float]
    std: Optional[dict[str, float]]
    per_fold: list[dict[str, float]]
    model_type: Optional[str] = None
    protocol: Optional[str] = None
    trainable_parameters: Optional[int] = None
    total_parameters: Optional[int] = None
    train_seconds: Optional[float] = None
    epochs: Optional[float] = None
    fold_ids: list = field(default_factory=list)
    #: Speaker-bootstrap intervals over all the run's test speakers (its folds pooled), when its reports hold them.
    intervals: Optional[dict[str, Any]] = None
    #: Every evaluated clip's path, speaker, label and prediction (all folds), for paired comparisons.
    clip_predictions: list[dict[str, str]] = field(default_factory=list)
    #: The splits every fold of the run evaluated (a run without test speakers has no ``test``).
    evaluated_splits: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """A flat row for the CSV table."""
        row: dict[str, Any] = {
            "run": self.name,
            "run_dir": str(self.run_dir),
            "model_type": self.model_type,
            "protocol": self.protocol,
            "split": self.split,
            "folds": self.folds,
        }
        for name, value in self.mean.items():
            row[name] = value
            row[f"{name}_std"] = self.std[name] if self.std is not None else None
        for name, (low, high) in ((self.intervals or {}).get("intervals") or {}).items():
            reliable = self.intervals["reliable"]
            row[f"{name}_interval_low"], row[f"{name}_interval_high"] = (low, high) if reliable else (None, None)
        row.update(
            trainable_parameters=self.trainable_parameters,
            total_parameters=self.total_parameters,
            train_seconds=self.train_seconds,
            epochs=self.epochs,
        )
        return row


def summarize_reports(reports: Sequence[RunReport], split: str, where: str = "") -> dict[str, Any]:
    """Mean and sample standard deviation of every scalar metric of ``split`` over the reports (folds) of a run."""
    missing = [report.fold for report in reports if split not in report.evaluation]
    if missing:
        evaluated = sorted({name for report in reports for name in report.evaluation})
        raise ValueError(
            f"{where or 'The run'} has no {split!r} evaluation (it evaluated {', '.join(evaluated)}); "
            "choose another split."
        )
    return summarize_folds([report.evaluation[split].to_dict() for report in reports])


def evaluated_splits(reports: Sequence[RunReport]) -> list[str]:
    """The splits every report (fold) of a run evaluated, test first."""
    shared = set.intersection(*(set(report.evaluation) for report in reports)) if reports else set()
    return sorted(shared, key=lambda name: (name != "test", name != "validation", name))


def common_split(runs: Mapping[str, Sequence[str]]) -> str:
    """The split to compare runs on: ``test`` when every run evaluated it, else ``validation`` when every run did.

    Args:
        runs (`Mapping[str, Sequence[str]]`): each run's name and the splits it evaluated (:func:`evaluated_splits`).
    """
    for split in ("test", "validation"):
        if all(split in splits for splits in runs.values()):
            return split
    raise InputError(
        "The runs share neither a test nor a validation evaluation ("
        + "; ".join(f"{name}: {', '.join(splits) or 'none'}" for name, splits in runs.items())
        + "); compare runs that share one, or name it as split.",
        parameter="split",
    )


def summarize_run(run: str | Path | RunRecord, split: str = "test", name: Optional[str] = None) -> RunResult:
    """Summarise a finished run's scores on ``split`` (one split or k folds; a folder is read with
    :func:`~ser_hf.run_folder.read_run`)."""
    run = run if isinstance(run, RunRecord) else read_run(run)
    run_dir, reports = run.run_dir, run.reports
    summary = summarize_reports(reports, split, where=str(run_dir))
    training = [report.training or TrainingRecord() for report in reports]
    parameters = training[0].parameters or {}
    seconds = [t.wall_seconds for t in training if t.wall_seconds is not None]
    epochs = [t.epochs for t in training if t.epochs is not None]
    return RunResult(
        name=name or run_dir.name,
        run_dir=run_dir,
        split=split,
        folds=len(reports),
        mean=summary["mean"],
        std=summary["std"] if len(reports) > 1 else None,
        per_fold=summary["per_fold"],
        model_type=run.model_type,
        protocol=reports[0].protocol,
        trainable_parameters=parameters.get("trainable"),
        total_parameters=parameters.get("total"),
        train_seconds=float(sum(seconds)) if seconds else None,
        epochs=float(np.mean(epochs)) if epochs else None,
        fold_ids=[report.fold for report in reports],
        intervals=summary.get("confidence_intervals"),
        clip_predictions=[clip for report in reports for clip in report.evaluation[split].clip_predictions or []],
        evaluated_splits=evaluated_splits(reports),
    )


def _run_names(run_dirs: Sequence[Path]) -> list[str]:
    """Each run's folder name, or its path where two folders share a name."""
    names = [path.name for path in run_dirs]
    return [str(path) if names.count(path.name) > 1 else path.name for path in run_dirs]


def compare_runs(
    run_dirs: Sequence[str | Path], split: Optional[str] = None, names: Optional[Sequence[str]] = None
) -> list[RunResult]:
    """Summaries of several runs on the same split, in the order given.

    Args:
        split (`str`, *optional*): the split to compare; by default the one every run has (:func:`common_split`):
            test, else validation (a run without test speakers), which :func:`format_comparison` then says.
    """
    run_dirs = [Path(path) for path in run_dirs]
    if not run_dirs:
        raise ValueError("compare needs at least one run directory.")
    if names is not None and len(names) != len(run_dirs):
        raise ValueError(f"Give one name per run: {len(names)} names for {len(run_dirs)} runs.")
    names = list(names) if names is not None else _run_names(run_dirs)
    runs = [read_run(path) for path in run_dirs]
    if split is None:
        split = common_split({name: evaluated_splits(run.reports) for run, name in zip(runs, names)})
        logger.info(
            "Comparing the runs on their %s split (%s).",
            split,
            "every run has one" if split == "test" else "not every run has a test split",
        )
    return [summarize_run(run, split, name) for run, name in zip(runs, names)]


def split_note(results: Sequence[RunResult]) -> str:
    """Which split the table compares, and what that means when it is not the test split."""
    split = results[0].split
    if split == "test":
        return "Compared on the test split: held-out speakers of every run."
    no_test = [result.name for result in results if "test" not in result.evaluated_splits]
    if split == "validation" and no_test:
        return (
            f"**Compared on the validation split: {', '.join(no_test)} {'has' if len(no_test) == 1 else 'have'} no "
            "test split (no test speakers).** Validation figures are in-sample wherever the validation speakers "
            "chose the best epoch or fitted the calibration temperature (each run's report.md says what they chose)."
        )
    return f"Compared on the {split} split."


def format_value(mean: float, std: Optional[float], percent: bool = True) -> str:
    """``62.3 ± 2.1`` (percent) for several folds, ``62.3`` for one."""
    scale = 100.0 if percent else 1.0
    return f"{mean * scale:.1f}" + (f" ± {std * scale:.1f}" if std is not None else "")


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    minutes = seconds / 60
    return f"{seconds:.0f} s" if minutes < 1 else f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def format_comparison(results: Sequence[RunResult], metrics: Sequence[str] = COMPARED_METRICS) -> str:
    """The comparison as a Markdown table (percent; mean ± std over folds where a run has several)."""
    split = results[0].split
    lines = [
        f"# Comparison on the {split} split",
        "",
        split_note(results),
        "",
        "| run | model | protocol | folds | "
        + " | ".join(f"{METRIC_LABELS[m]} (%)" for m in metrics)
        + " | UA, 95 % interval | trainable parameters | training time |",
        "|---|---|---|---:|" + "---:|" * len(metrics) + "---:|---:|---:|",
    ]
    for result in results:
        scores = [format_value(result.mean[m], None if result.std is None else result.std[m]) for m in metrics]
        parameters = f"{result.trainable_parameters:,}" if result.trainable_parameters is not None else "n/a"
        lines.append(
            f"| {result.name} | {result.model_type or 'n/a'} | {result.protocol or 'n/a'} | {result.folds} | "
            + " | ".join(scores)
            + f" | {format_interval(result.intervals, 'unweighted_accuracy')}"
            + f" | {parameters} | {format_duration(result.train_seconds)} |"
        )
    lines += [
        "",
        "Mean ± sample standard deviation over folds for runs with several folds; training time is the "
        "wall time of all folds together. The interval is a speaker bootstrap over all the run's test speakers "
        "(its folds pooled); none with fewer than 5 speakers.",
    ]
    paired = [(results[0], other, paired_runs(results[0], other)) for other in results[1:]]
    if paired:
        lines += [
            "",
            f"## Paired against {results[0].name}, on the same clips",
            "",
            "| run | UA difference (points) | 95 % interval (speaker bootstrap) | McNemar p | clips | speakers |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for _, other, comparison in paired:
            if isinstance(comparison, str):
                lines.append(f"| {other.name} | n/a: {comparison} | | | | |")
                continue
            low, high = comparison["interval"]
            interval = f"[{100 * low:+.1f}, {100 * high:+.1f}]" if comparison["reliable"] else "n/a (too few speakers)"
            lines.append(
                f"| {other.name} | {100 * comparison['unweighted_accuracy_difference']:+.1f} | {interval} | "
                f"{comparison['mcnemar']['p_value']:.3g} | {comparison['clips']} | {comparison['speakers']} |"
            )
        lines += [
            "",
            "The UA difference is the run's minus the first run's; its interval resamples speakers; McNemar's exact "
            "test counts the clips one run gets right and the other wrong.",
        ]
    return "\n".join(lines) + "\n"


def paired_runs(first: RunResult, other: RunResult) -> dict[str, Any] | str:
    """:func:`~ser_hf.evaluation.bootstrap.paired_comparison` of two runs evaluated on the same clips (their folds
    pooled), or why they cannot be paired."""
    if not first.clip_predictions or not other.clip_predictions:
        return "a run's reports hold no clip predictions (runs trained before ser-hf recorded them)"
    ours = {clip["path"]: clip for clip in first.clip_predictions}
    theirs = {clip["path"]: clip for clip in other.clip_predictions}
    if len(ours) != len(first.clip_predictions) or len(theirs) != len(other.clip_predictions):
        return "a run evaluated some clips more than once (in several folds)"
    if set(ours) != set(theirs) or any(ours[path]["label"] != theirs[path]["label"] for path in ours):
        return f"the runs evaluated different clips ({len(ours)} and {len(theirs)})"
    paths = sorted(ours)
    names = sorted({ours[p]["label"] for p in paths} | {c["prediction"] for c in (*ours.values(), *theirs.values())})
    index = {name: i for i, name in enumerate(names)}
    comparison = paired_comparison(
        [index[ours[p]["label"]] for p in paths],
        [index[ours[p]["prediction"]] for p in paths],
        [index[theirs[p]["prediction"]] for p in paths],
        [ours[p].get("speaker_id", "unknown") for p in paths],
        len(names),
    )
    comparison["clips"] = len(paths)
    return comparison


def plot_comparison(results: Sequence[RunResult], path: str | Path, metrics: Sequence[str] = COMPARED_METRICS) -> None:
    """Grouped bars (one group per metric, one bar per run) with standard-deviation error bars for k-fold runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = np.arange(len(metrics))
    width = 0.8 / len(results)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 + 0.5 * len(results) * len(metrics)), 4.5))
    for index, result in enumerate(results):
        values = [100 * result.mean[m] for m in metrics]
        errors = None if result.std is None else [100 * result.std[m] for m in metrics]
        centres = positions + (index - (len(results) - 1) / 2) * width
        axes.bar(centres, values, width, yerr=errors, capsize=3, label=result.name)
        for centre, value, error in zip(centres, values, errors or [0.0] * len(values)):
            axes.annotate(f"{value:.1f}", (centre, value + error + 1), ha="center", fontsize=7)
    axes.set_xticks(positions, [METRIC_LABELS[m] for m in metrics])
    axes.set_ylabel(f"{results[0].split} score (%)")
    axes.set_ylim(0, 100)
    axes.set_title(
        f"{results[0].split} split" + ("; error bars: std over folds" if any(r.std for r in results) else "")
    )
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(len(results), 4), frameon=False)
    save_figure(figure, path)


def write_comparison(results: Sequence[RunResult], output_dir: str | Path) -> dict[str, Path]:
    """Write ``comparison.csv``, ``comparison.md`` and ``comparison.png``; returns their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": output_dir / COMPARISON_CSV,
        "markdown": output_dir / COMPARISON_MARKDOWN,
        "png": output_dir / COMPARISON_PNG,
    }
    with atomic_path(paths["csv"]) as partial:
        pd.DataFrame([result.row() for result in results]).to_csv(partial, index=False)
    write_text_atomic(paths["markdown"], format_comparison(results))
    plot_comparison(results, paths["png"])
    return paths


__all__ = [
    "COMPARED_METRICS",
    "RunResult",
    "common_split",
    "compare_runs",
    "evaluated_splits",
    "format_comparison",
    "plot_comparison",
    "split_note",
    "summarize_reports",
    "summarize_run",
    "write_comparison",
]
