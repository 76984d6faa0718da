"""The one table of the metrics ser-hf computes: every report, run record (``metrics.json``), model card, reports
table, comparison, sweep and study reads its metric lists from :data:`METRICS`, so a metric added here (with its
computation in :func:`ser_hf.evaluation.metrics.classification_metrics`) shows everywhere with no other edit. It sits
at the bottom of the stages (no ``torch``, no ser-hf import) because the run record, which every stage reads, keeps one
field per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Metric:
    """A scalar metric: its key in metric dicts, how tables label it, whether higher is better, whether reports give
    it a speaker-bootstrap interval, and how the model card's ``model-index`` records it.

    Args:
        name (`str`): the key in every metrics dict (``unweighted_accuracy``).
        label (`str`): the short name tables and log lines use (``UA``).
        words (`str`, *optional*): what the label stands for, where it is not plain (``unweighted accuracy``); the
            card's results table heads the column ``UA (unweighted accuracy)``.
        greater_is_better (`bool`): the direction sweeps and comparisons rank by.
        interval (`bool`): whether reports give it a 95 % speaker-bootstrap interval (the cards' evaluation tables and
            the reports table show the metrics that have one).
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
        bounds (`tuple[float, float]`, defaults to ``(0.0, 1.0)``): the values it may take; a run record holding
            another (a hand-edited ``7.5``) is refused when read.
        required (`bool`): every run record has it (the ranking metric); a record without it is refused when read.
    """

    name: str
    label: str
    words: Optional[str] = None
    greater_is_better: bool = True
    interval: bool = False
    model_index_type: Optional[str] = None
    model_index_name: Optional[str] = None
    model_index_config: Optional[str] = None
    unit: str = "percent"
    views: tuple[str, ...] = ()
    needs_scores: bool = False
    bounds: tuple[float, float] = (0.0, 1.0)
    required: bool = False

    def format(self, value: float, unit: bool = True) -> str:
        """`value` as tables write it (:attr:`unit`), with the percent sign when `unit`."""
        if self.unit == "score":
            return f"{value:.3f}"
        return f"{100 * value:.1f}" + (" %" if unit else "")

    @property
    def heading(self) -> str:
        """The column heading of the card's results table: ``UA (unweighted accuracy)``, or the label alone."""
        return f"{self.label} ({self.words})" if self.words else self.label


#: The comparison views that show a chosen few metrics: ``leakage`` (``ser-hf leakage-study``), ``sweep``
#: (``ser-hf sweep``), ``cross_corpus`` (``ser-hf evaluate``'s matrix).
VIEWS = ("leakage", "sweep", "cross_corpus")

#: Every scalar metric an evaluation reports, in the order tables show them. UA is macro-averaged recall (the
#: ranking metric of the field, corpora being unbalanced), WA plain accuracy.
METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("unweighted_accuracy", "UA", words="unweighted accuracy", interval=True, model_index_type="recall",
               model_index_name="Unweighted accuracy (UA, macro recall)", model_index_config="macro",
               views=VIEWS, required=True),
        Metric("accuracy", "WA", words="accuracy", interval=True, model_index_type="accuracy",
               model_index_name="Weighted accuracy (WA, accuracy)", views=VIEWS),
        Metric("macro_f1", "macro-F1", interval=True, model_index_type="f1", model_index_name="Macro F1",
               model_index_config="macro", views=VIEWS),
        Metric("weighted_f1", "weighted-F1", model_index_type="f1", model_index_name="Weighted F1",
               model_index_config="weighted", views=("leakage",)),
        Metric("expected_calibration_error", "ECE", greater_is_better=False, unit="score", needs_scores=True),
    )
}  # fmt: skip


__all__ = ["METRICS", "VIEWS", "Metric"]
