"""The evaluation stage's vocabulary, importable without a model (no ``torch`` import): the command line's choices and
the metric lists derived from the one metric table, :data:`ser_hf.metric_table.METRICS`.

To add a metric: compute it in :func:`ser_hf.evaluation.metrics.classification_metrics` and give it one
:class:`~ser_hf.metric_table.Metric` row in :data:`~ser_hf.metric_table.METRICS`; ``tests/evaluation/test_metrics.py``
checks that every row has what its readers need and that every computed scalar has a row.
"""

from __future__ import annotations

from ..metric_table import METRICS, VIEWS

#: ``split`` values: ``auto`` is the model's held-out test speakers on a corpus it was trained on, every clip of
#: any other corpus; ``train``/``validation``/``test`` are the speakers of that split of the model's run.
SPLITS = ("auto", "all", "train", "validation", "test")

#: The metrics' names, in table order.
SCALAR_METRICS = tuple(METRICS)
#: Their short labels, by name.
METRIC_LABELS = {name: metric.label for name, metric in METRICS.items()}
#: The metrics that get a speaker-bootstrap interval, in the order reports show them.
INTERVAL_METRICS = tuple(name for name, metric in METRICS.items() if metric.interval)
#: The metrics computed from predicted classes alone (what the `evaluate` module returns).
CLASS_METRICS = tuple(name for name, metric in METRICS.items() if not metric.needs_scores)
#: The metrics written as percentages (the fold summaries' and cards' percentage columns).
PERCENT_METRICS = tuple(name for name, metric in METRICS.items() if metric.unit == "percent")


def view_metrics(view: str) -> tuple[str, ...]:
    """The metrics a comparison view (one of :data:`VIEWS`) shows, in table order."""
    if view not in VIEWS:
        raise ValueError(f"No metric view {view!r}: the views are {', '.join(VIEWS)}.")
    return tuple(name for name, metric in METRICS.items() if view in metric.views)


__all__ = [
    "CLASS_METRICS",
    "INTERVAL_METRICS",
    "METRIC_LABELS",
    "PERCENT_METRICS",
    "SCALAR_METRICS",
    "SPLITS",
    "view_metrics",
]
