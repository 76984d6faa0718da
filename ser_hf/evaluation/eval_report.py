"""The report of ``ser-hf evaluate``: what was evaluated on what (the model's training corpora, and whether the
evaluated corpus is one of them), then the run report's tables; written as ``eval_report.json``, ``eval_report.md``
and ``confusion_matrix.png``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..atomic_files import write_text_atomic
from ..data.corpora import CORPORA
from ..run_folder import CONFUSION_MATRIX_PNG, EVAL_REPORT_JSON, EVAL_REPORT_MARKDOWN
from ..run_record import RunReport
from .bootstrap import MIN_RELIABLE_SPEAKERS, format_interval
from .metrics import plot_confusion_matrix
from .report import format_report
from .speaker_check import record_line


def corpus_relation(training_corpora: Sequence[str], corpus: str) -> str:
    """``in-corpus`` when ``corpus`` is one the model trained on, ``cross-corpus`` when it is not, ``unknown`` when
    the model's training corpora are not recorded (a model without its run's files)."""
    if not training_corpora:
        return "unknown"
    return "in-corpus" if corpus in training_corpora else "cross-corpus"


def corpora_names(corpora: Sequence[str]) -> str:
    """``RAVDESS + CREMA-D``: the corpora's names as cards and reports write them."""
    return " + ".join(CORPORA[c].full_name if c in CORPORA else c for c in corpora)


def provenance_text(report: Mapping[str, Any]) -> str:
    """Where a report's figures come from: the corpora the model trained on and whether the evaluated corpus is one of
    them (``in-corpus``) or not (``cross-corpus``)."""
    trained_on = report.get("training_corpora")
    relation = report.get("corpus_relation")
    if relation is None:  # a report from before ser-hf recorded the training corpora
        if report.get("cross_corpus"):
            return "Cross-corpus: the model was not trained on this corpus"
        if report.get("training_overlap") is not None:
            return "In-corpus: the model was trained on this corpus"
        return "The model's training corpora are unknown"
    evaluated = report["corpus_name"]
    if relation == "unknown":
        return (
            f"Provenance unknown: the model's training corpora are not recorded (no run_config.json or metrics.json "
            f"with it), so these figures may be in-corpus or cross-corpus on {evaluated}"
        )
    names = corpora_names(trained_on)
    if relation == "in-corpus":
        return f"In-corpus: the model was trained on {names}, and {evaluated} is one of them"
    return (
        f"Cross-corpus: the model was trained on {names}, not on {evaluated}: these figures measure how it carries "
        "to a corpus it never heard, not comparable with in-corpus ones"
    )


def _validation_note(choices: Optional[Mapping[str, bool]]) -> str:
    """What the run's validation speakers chose, after their names in an evaluation report."""
    if choices is None:
        return " (the run does not record whether they chose the best epoch: read as optimistic)"
    if choices.get("best_epoch") or choices.get("early_stopping"):
        return " (they chose the best epoch: optimistic)"
    if choices.get("temperature"):
        return " (they chose no epoch, fixed epochs; they fitted the calibration temperature)"
    return " (they only reported: fixed epochs, the last model, no temperature)"


def setup_shift_line(report: Optional[dict[str, Any]]) -> Optional[str]:
    """The report's sentence about the recording set-up, or `None` without a measurement."""
    if not report:
        return None
    training = report.get("training") or {}
    farthest, median = training.get("speakers_max"), training.get("speakers_median")
    reference = f" (training speakers: median {median:.2f}, farthest {farthest:.2f})" if farthest is not None else ""
    verdict = (
        "far from every training speaker: distrust these scores; corpus or speaker statistics fit such a set-up better"
        if report["far"]
        else "within what the training speakers had"
    )
    return f"Recording set-up: shift {report['shift']:.2f} from the training statistics{reference}, {verdict}."


def statistics_clips_line(record: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Which clips the corpus or speaker statistics came from, or `None` for a model that standardises without
    them."""
    if not record:
        return None
    other = record.get("other_labels") or {}
    others = (
        f", {sum(other.values())} of labels not scored ({', '.join(f'{label} {n}' for label, n in other.items())})"
        if other
        else ""
    )
    left_out = record.get("left_out") or 0
    unread = f"; {left_out} clip(s) too short or too long for the model left out" if left_out else ""
    return (
        f"Corpus or speaker statistics from {record['clips']} clips: every clip of the evaluated speakers "
        f"({record.get('selection', 'all')}) the model can read, whatever their labels, labels unread "
        f"({record['scored_clips']} scored{others}){unread}"
    )


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _change(value: float) -> str:
    return f"{100 * value:+.1f}".replace("-", "−")


def _change_interval(change: Mapping[str, Any]) -> str:
    if not change["reliable"]:
        return f"n/a ({change['speakers']} speakers: too few for an interval)"
    low, high = change["interval"]
    return f"[{_change(low)}, {_change(high)}]"


def recording_conditions_table(record: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The ``Recording conditions`` section of an evaluation report (each condition's UA and interval, and its change
    against the clean clips), or `None` for a report scored clean only."""
    if not record:
        return None
    clean = record["clean"]
    clips = record["conditions"][0]["clips"] if record["conditions"] else "the"
    lines = [
        "## Recording conditions",
        "",
        f"The same {clips} clips, each degraded once under each condition (seed {record['seed']}: the same seed gives "
        "the same figures); change: UA under the condition minus clean UA on the same clips, in points, with a paired "
        f"speaker-bootstrap interval (95 %, at least {MIN_RELIABLE_SPEAKERS} speakers).",
        "",
        "| condition | what | UA | UA, 95 % interval | change | change, 95 % interval |",
        "|---|---|---:|---:|---:|---:|",
        f"| clean | as recorded | {_percent(clean['unweighted_accuracy'])} | "
        f"{format_interval(clean.get('confidence_intervals'), 'unweighted_accuracy')} | – | – |",
    ]
    for row in record["conditions"]:
        lines.append(
            f"| `{row['condition']}` | {row['description']} | {_percent(row['unweighted_accuracy'])} | "
            f"{format_interval(row.get('confidence_intervals'), 'unweighted_accuracy')} | "
            f"{_change(row['change']['unweighted_accuracy_difference'])} | {_change_interval(row['change'])} |"
        )
    for row in record.get("failed", []):  # a condition whose pass failed on the clips: named, with its error
        error = " ".join(str(row["error"]).split()).replace("|", "\\|")
        lines.append(f"| `{row['condition']}` | {row['description']} | not scored: {error} | – | – | – |")
    return "\n".join(lines) + "\n"


def format_eval_report(report: Mapping[str, Any]) -> str:
    """An evaluation report as Markdown: what was evaluated on what (the model's training corpora, in-corpus or
    cross-corpus), then the run report's tables."""
    ((key, metrics),) = report["evaluation"].items()
    model = Path(report["model"]).name if Path(report["model"]).exists() else report["model"]
    lines = [
        f"# {model} on {report['corpus_name']} ({report['split']['name']})",
        "",
        f"- Model: `{report['model']}` ({len(report['model_labels'])} labels)",
        f"- Corpus: {report['corpus_name']} (`{report['corpus']}`), {metrics['clips']} clips of "
        f"{len(report['split']['speakers'][key])} speakers",
        f"- {provenance_text(report)}",
    ]
    if report["restricted_to_shared_labels"]:
        lines.append(
            f"- Labels: the {len(report['labels'])} the model and the corpus share "
            f"({', '.join(report['labels'])}); the model chooses among them only"
        )
    else:
        lines.append(f"- Labels: {', '.join(report['labels'])}")
    unknown = report.get("unknown_label_clips") or {}
    if unknown:
        lines.append(
            f"- Clips left unscored, their label unknown to the model: {sum(unknown.values())} "
            f"({', '.join(f'{label} {count}' for label, count in unknown.items())}); the figures cover the labels "
            "above only"
        )
    not_asked = {label: count for label, count in (report.get("dropped_clips") or {}).items() if label not in unknown}
    if not_asked:
        lines.append(
            f"- Clips of labels not evaluated: {sum(not_asked.values())} "
            f"({', '.join(f'{label} {count}' for label, count in not_asked.items())})"
        )
    unscored = report.get("unscored_clips") or []
    if unscored:
        listing = "; ".join(f"`{row['path']}`: {row['error']}" for row in unscored[:10])
        more = f" and {len(unscored) - 10} more (eval_report.json lists them)" if len(unscored) > 10 else ""
        lines.append(f"- Clips not scored (too short or too long for the model): {len(unscored)}: {listing}{more}")
    statistics_line = statistics_clips_line((report.get("normalization") or {}).get("statistics_clips"))
    if statistics_line:
        lines.append(f"- {statistics_line}")
    shift_line = setup_shift_line(report.get("setup_shift"))
    if shift_line:
        lines.append(f"- {shift_line}")
    check = record_line((report.get("normalization") or {}).get("check"))
    if check:
        lines.append(f"- Speaker statistics {check}")
    condition = report.get("condition")
    if condition:
        lines.append(
            f"- Condition: each speaker heard in {condition['emotions_per_speaker']} emotion(s) only (draw "
            f"{condition['seed']}): not the corpus as recorded"
        )
    overlap = report.get("training_overlap")
    if overlap is not None:
        used = {split: speakers for split, speakers in overlap.items() if speakers}
        if not used:
            lines.append("- Speakers: none of them was in the model's training run")
        for split, speakers in used.items():
            warning = (
                " **(the model trained on them: not speaker-independent)**"
                if split == "train"
                else _validation_note(report.get("run_validation_choices"))
                if split == "validation"
                else ""
            )
            lines.append(f"- Speakers of the run's {split} split: {', '.join(speakers)}{warning}")
    # The run report's tables, without its title: an eval report's sections (split, normalization, evaluation) have a
    # run report's shape, and the keys only a run has (leakage audit, calibration, training) are absent.
    body = format_report(RunReport.from_dict(report, where=EVAL_REPORT_JSON)).split("\n", 1)[1]
    conditions = recording_conditions_table(report.get("recording_conditions"))
    body += f"\n{conditions}" if conditions else ""
    return "\n".join(lines) + "\n" + body + "\n![Confusion matrix](confusion_matrix.png)\n"


def write_eval_report(output_dir: str | os.PathLike, report: Mapping[str, Any]) -> Path:
    """Write ``eval_report.json``, ``eval_report.md`` and ``confusion_matrix.png``; return the JSON's path.

    Each file is written to a temporary name and renamed, the JSON (what cards and pushes read) last: a failure
    leaves the previous report as it was."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    text, markdown = json.dumps(report, indent=2, default=str) + "\n", format_eval_report(report)
    (metrics,) = report["evaluation"].values()
    plot_confusion_matrix(
        metrics,
        str(output_dir / CONFUSION_MATRIX_PNG),
        title=f"{report['corpus_name']} ({report['split']['name']}): UA "
        f"{metrics['unweighted_accuracy']:.1%}, WA {metrics['accuracy']:.1%}",
    )
    write_text_atomic(output_dir / EVAL_REPORT_MARKDOWN, markdown)
    path = output_dir / EVAL_REPORT_JSON
    write_text_atomic(path, text)
    return path


__all__ = [
    "corpora_names",
    "corpus_relation",
    "format_eval_report",
    "provenance_text",
    "recording_conditions_table",
    "write_eval_report",
]
