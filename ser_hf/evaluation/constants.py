"""The evaluation stage's vocabulary, importable without a model (no ``torch`` import): the command line's choices and
the one table of the metrics every report, card, comparison, sweep and study reads.

To add a metric: compute it in :func:`ser_hf.evaluation.metrics.classification_metrics` and give it one
:class:`Metric` row in :data:`METRICS`; ``tests/evaluation/test_metrics.py`` checks that every row has what its
readers need and that every computed scalar has a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

#: ``split`` values: ``auto`` is the model's held-out test speakers on a corpus it was trained on, every clip of
#: any other corpus; ``train``/``validation``/``test`` are the speakers of that split of the model's run.
SPLITS = ("auto", "all", "train", "validation", "test")


@dataclass(frozen=True)
class Metric:
    """A scalar metric: its key in metric dicts, how tables label it, whether higher is better, whether reports give
    it a speaker-bootstrap interval, and how the model card's ``model-index`` records it.

    Args:
        name (`str`): the key in every metrics dict (``unweighted_accuracy``).
        label (`str`): the short name tables and log lines use (``UA``).
        greater_is_better (`bool`): the direction sweeps and comparisons rank by.
        interval (`bool`): whether reports give it a 95 % speaker-bootstrap interval.
        model_index_type (`str`, *optional*): the Hub's metric id (hf.co/metrics) the model-index records it under;
            `None` for a metric the Hub has no type for (kept in the card's tables only).
        model_index_name (`str`, *optional*): the name the model-index shows, saying which averaging it is.
        model_index_config (`str`, *optional*): the metric's config there (the averaging: ``macro``, ``weighted``).
        unit (`str`, defaults to ``"percent"``): how tables write it: ``"percent"``, a proportion as a percentage
            with one decimal (``75.6 %``); ``"score"``, the value as it is with three decimals (``0.042``).
        views (`tuple[str]`): the comparison views whose tables show it (:data:`VIEWS`: the leakage study, the sweep,
            the cross-corpus matrix); every metric is in the run reports, cards and JSON files whatever its views.
        needs_scores (`bool`): computed from the model's scores (its probabilities), not from the predicted classes
            alone; the `evaluate` module (``ser_metrics.py``), which takes class ids, leaves it out.
    """

    name: str
    label: str
    greater_is_better: bool = True
    interval: bool = False
    model_index_type: Optional[str] = None
    model_index_name: Optional[str] = None
    model_index_config: Optional[str] = None
    unit: str = "percent"
    views: tuple[str, ...] = ()
    needs_scores: bool = False

    def format(self, value: float, unit: bool = True) -> str:
        """`value` as tables write it (:attr:`unit`), with the percent sign when `unit`."""
        if self.unit == "score":
            return f"{value:.3f}"
        return f"{100 * value:.1f}" + (" %" if unit else "")


#: The comparison views that show a chosen few metrics: ``leakage`` (``ser-hf leakage-study``), ``sweep``
#: (``ser-hf sweep``), ``cross_corpus`` (``ser-hf evaluate``'s matrix).
VIEWS = ("leakage", "sweep", "cross_corpus")

#: Every scalar metric an evaluation reports, in the order tables show them. UA is macro-averaged recall (the
#: ranking metric of the field, corpora being unbalanced), WA plain accuracy.
METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("unweighted_accuracy", "UA", interval=True, model_index_type="recall",
               model_index_name="Unweighted accuracy (UA, macro recall)", model_index_config="macro",
               views=VIEWS),
        Metric("accuracy", "WA", interval=True, model_index_type="accuracy",
               model_index_name="Weighted accuracy (WA, accuracy)", views=VIEWS),
        Metric("macro_f1", "macro-F1", interval=True, model_index_type="f1", model_index_name="Macro F1",
               model_index_config="macro", views=VIEWS),
        Metric("weighted_f1", "weighted-F1", model_index_type="f1", model_index_name="Weighted F1",
               model_index_config="weighted", views=("leakage",)),
        Metric("expected_calibration_error", "ECE", greater_is_better=False, unit="score", needs_scores=True),
    )
}  # fmt: skip
#: Their names, in order.
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
    "METRICS",
    "METRIC_LABELS",
    "Metric",
    "PERCENT_METRICS",
    "SCALAR_METRICS",
    "SPLITS",
    "VIEWS",
    "view_metrics",
]
