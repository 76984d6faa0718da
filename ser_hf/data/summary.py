"""Counts and durations of a corpus or a split: what ``ser-hf data summary`` prints."""

from __future__ import annotations

from collections import Counter
from typing import Any

from datasets import Dataset, DatasetDict

from .dataset_info import column_values, get_ser_info


def _durations(dataset: Dataset) -> dict[str, float] | None:
    if "duration" not in dataset.column_names:
        return None
    seconds = [d for d in column_values(dataset, "duration") if d is not None]
    if not seconds:
        return None
    return {
        "total_hours": sum(seconds) / 3600,
        "mean_seconds": sum(seconds) / len(seconds),
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
    }


def summarize_dataset(dataset: Dataset) -> dict[str, Any]:
    """Clips, speakers, clips per label and per speaker, durations and the ser-hf record of one dataset."""
    names = dataset.features["label"].names
    labels = Counter(column_values(dataset, "label"))
    speakers = Counter(column_values(dataset, "speaker_id"))
    record = get_ser_info(dataset)
    summary = {
        "clips": len(dataset),
        "speakers": len(speakers),
        "labels": {name: labels.get(i, 0) for i, name in enumerate(names)},
        "clips_per_speaker": dict(sorted(speakers.items())),
        "corpora": dict(Counter(column_values(dataset, "corpus"))),
        "durations": _durations(dataset),
        "label_policy": record.get("label_policy"),
        "skipped": record.get("skipped", []),
    }
    if "sex" in dataset.column_names:
        summary["sex"] = dict(Counter(s for s in column_values(dataset, "sex") if s is not None))
    return summary


def summarize(data: Dataset | DatasetDict) -> dict[str, Any]:
    """Summary of a dataset, or of every split of a ``DatasetDict`` (under ``"splits"``)."""
    if isinstance(data, DatasetDict):
        return {"splits": {name: summarize_dataset(split) for name, split in data.items()}}
    return summarize_dataset(data)


def format_summary(summary: dict[str, Any], title: str = "") -> str:
    """A plain-text rendering of :func:`summarize`'s output for the terminal."""
    if "splits" in summary:
        return "\n".join(format_summary(s, f"[{name}] ") for name, s in summary["splits"].items())
    lines = [
        f"{title}{summary['clips']} clips, {summary['speakers']} speakers, "
        f"{len(summary['labels'])} labels, corpora: {summary['corpora']}"
    ]
    durations = summary.get("durations")
    if durations:
        lines.append(
            f"  duration: {durations['total_hours']:.2f} h in all, mean {durations['mean_seconds']:.2f} s "
            f"(min {durations['min_seconds']:.2f} s, max {durations['max_seconds']:.2f} s)"
        )
    width = max(len(name) for name in summary["labels"])
    lines.append("  clips per label:")
    lines += [f"    {name:<{width}}  {count:>6}" for name, count in summary["labels"].items()]
    per_speaker = summary["clips_per_speaker"]
    lines.append("  clips per speaker: " + ", ".join(f"{s}: {n}" for s, n in per_speaker.items()))
    if summary.get("sex"):
        lines.append(f"  clips per sex: {summary['sex']}")
    if summary.get("skipped"):
        lines.append(f"  skipped {len(summary['skipped'])} invalid clip(s):")
        lines += [f"    {item['path']}: {item['problem']}" for item in summary["skipped"]]
    return "\n".join(lines)
