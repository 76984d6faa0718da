"""How far to trust a metric: confidence intervals by a speaker-level (cluster) bootstrap, and paired tests between
two models scored on the same clips.

A speaker's clips are correlated (same voice, same recording session), so resampling clips treats hundreds of
dependent clips as independent and gives intervals far too narrow. The bootstrap here resamples *speakers* with
replacement and recomputes each metric over all clips of the drawn speakers (`scipy.stats.bootstrap`, percentile
intervals). Each resample's metrics come from the sum of the drawn speakers' confusion matrices, the same
definitions as :func:`ser_hf.evaluation.metrics.classification_metrics` (a test checks they agree), so thousands of
resamples take milliseconds. With fewer than :data:`MIN_RELIABLE_SPEAKERS` speakers the interval is marked
unreliable and printed as such: a handful of clusters cannot say how far a figure would move on other speakers.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
from scipy.stats import bootstrap

from .constants import INTERVAL_METRICS, METRIC_LABELS

#: Below this many test speakers an interval is reported as unreliable instead of printed.
MIN_RELIABLE_SPEAKERS = 5
#: How reports name the metrics that get an interval (:data:`~ser_hf.evaluation.constants.INTERVAL_METRICS`).
INTERVAL_LABELS = {name: METRIC_LABELS[name] for name in INTERVAL_METRICS}


def speaker_confusions(
    labels: Sequence[int], predictions: Sequence[int], speakers: Sequence[Any], num_classes: int
) -> tuple[list[str], np.ndarray]:
    """The speakers (sorted) and their confusion matrices, shape ``(speakers, true class, predicted class)``."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    speakers = np.asarray([str(s) for s in speakers], dtype=object)
    names = sorted(set(speakers.tolist()))
    index = {name: i for i, name in enumerate(names)}
    confusions = np.zeros((len(names), num_classes, num_classes), dtype=np.float64)
    np.add.at(confusions, ([index[s] for s in speakers], labels, predictions), 1.0)
    return names, confusions


def metrics_from_confusion(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """UA, WA and macro-F1 of (a stack of) confusion matrices, ``(..., true, predicted)``.

    UA is the mean recall over the classes present as truth; macro-F1 averages over the classes present as truth or
    prediction; both as in :func:`~ser_hf.evaluation.metrics.classification_metrics`."""
    support = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    correct = np.diagonal(confusion, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, correct / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * correct / (support + predicted), np.nan)
        accuracy = correct.sum(axis=-1) / support.sum(axis=-1)
    return {
        "unweighted_accuracy": np.nanmean(recall, axis=-1),
        "accuracy": accuracy,
        "macro_f1": np.nanmean(f1, axis=-1),
    }


def _resampled_metric(confusions: np.ndarray, metric: str):
    """The statistic `scipy.stats.bootstrap` calls: speaker indices drawn (``(..., speakers)``) -> the metric."""

    def statistic(drawn: np.ndarray, axis: int = -1) -> np.ndarray:
        drawn = np.moveaxis(np.asarray(drawn, dtype=np.int64), axis, -1)
        counts = np.apply_along_axis(np.bincount, -1, drawn, minlength=len(confusions)).astype(np.float64)
        pooled = np.einsum("...s,skl->...kl", counts, confusions)
        return metrics_from_confusion(pooled)[metric]

    return statistic


def bootstrap_intervals(
    confusions: np.ndarray,
    *,
    metrics: Sequence[str] = INTERVAL_METRICS,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile confidence intervals of ``metrics`` by resampling speakers, given each speaker's confusion matrix
    (``(speakers, true, predicted)``).

    Returns ``{"method", "confidence_level", "n_resamples", "speakers", "reliable", "intervals": {metric: [low,
    high]}}``; ``reliable`` is false below :data:`MIN_RELIABLE_SPEAKERS` speakers."""
    intervals = {}
    for metric in metrics:
        if len(confusions) < 2:
            value = float(metrics_from_confusion(confusions.sum(axis=0))[metric])
            intervals[metric] = [value, value]
            continue
        result = bootstrap(
            (np.arange(len(confusions)),),
            _resampled_metric(confusions, metric),
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        interval = result.confidence_interval
        intervals[metric] = [float(interval.low), float(interval.high)]
    result = {
        "method": "speaker bootstrap (percentile)",
        "confidence_level": confidence_level,
        "n_resamples": n_resamples,
        "speakers": len(confusions),
        "reliable": len(confusions) >= MIN_RELIABLE_SPEAKERS,
        "intervals": intervals,
    }
    if not result["reliable"] and len(confusions):
        # What a reader can still use: how far the figure moves over these clips (labelled as such), beside the
        # per-speaker table reports print where speakers are this few.
        result["clip_bootstrap"] = clip_bootstrap_intervals(
            confusions.sum(axis=0),
            metrics=metrics,
            confidence_level=confidence_level,
            n_resamples=n_resamples,
            seed=seed,
        )
    return result


def clip_bootstrap_intervals(
    confusion: np.ndarray,
    *,
    metrics: Sequence[str] = INTERVAL_METRICS,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile intervals of ``metrics`` by resampling *clips* with replacement (a multinomial draw of the pooled
    confusion matrix's cells, the same thing). Clips of one speaker are correlated, so this interval is narrower
    than a speaker interval would be: it says how far a figure moves over these clips, not over other speakers; only
    reported where speakers are too few for :func:`bootstrap_intervals`."""
    confusion = np.asarray(confusion, dtype=np.float64)
    clips = int(confusion.sum())
    draws = np.random.default_rng(seed).multinomial(clips, confusion.ravel() / max(clips, 1), size=n_resamples)
    values = metrics_from_confusion(draws.reshape((n_resamples,) + confusion.shape).astype(np.float64))
    tail = 100 * (1 - confidence_level) / 2
    bounds = {metric: np.nanpercentile(values[metric], [tail, 100 - tail]) for metric in metrics}
    return {
        "method": "clip bootstrap (percentile): clips treated as independent, narrower than a speaker interval",
        "confidence_level": confidence_level,
        "n_resamples": n_resamples,
        "clips": clips,
        "intervals": {metric: [float(low), float(high)] for metric, (low, high) in bounds.items()},
    }


def speaker_bootstrap(
    labels: Sequence[int], predictions: Sequence[int], speakers: Sequence[Any], num_classes: int, **options
) -> dict[str, Any]:
    """:func:`bootstrap_intervals` of clips scored one by one (``options`` as there)."""
    _, confusions = speaker_confusions(labels, predictions, speakers, num_classes)
    return bootstrap_intervals(confusions, **options)


def pooled_intervals(evaluations: Sequence[Mapping[str, Any]], **options) -> Optional[dict[str, Any]]:
    """Intervals over the test speakers of several evaluations pooled (the folds of a k-fold run): each speaker's
    confusion matrix (``per_speaker[...]["confusion_matrix"]``) summed over the evaluations that hold them; the
    pooled point estimates come with the intervals. `None` when an evaluation lacks per-speaker matrices."""
    pooled: dict[str, np.ndarray] = {}
    for evaluation in evaluations:
        per_speaker = evaluation.get("per_speaker") or {}
        if not per_speaker or any("confusion_matrix" not in scores for scores in per_speaker.values()):
            return None
        for speaker, scores in per_speaker.items():
            matrix = np.asarray(scores["confusion_matrix"], dtype=np.float64)
            pooled[speaker] = pooled[speaker] + matrix if speaker in pooled else matrix
    if not pooled:
        return None
    confusions = np.stack([pooled[speaker] for speaker in sorted(pooled)])
    result = bootstrap_intervals(confusions, **options)
    result["pooled"] = {name: float(value) for name, value in metrics_from_confusion(confusions.sum(axis=0)).items()}
    return result


def _speakers(count: int) -> str:
    return f"{count} speaker{'s' if count != 1 else ''}"


def format_interval(bootstrap_result: Optional[Mapping[str, Any]], metric: str) -> str:
    """``"[48.1, 57.9]"`` (percent), or why there is no interval to trust."""
    if not bootstrap_result or metric not in bootstrap_result.get("intervals", {}):
        return "n/a"
    if not bootstrap_result["reliable"]:
        return f"n/a ({_speakers(bootstrap_result['speakers'])}: too few for an interval)"
    low, high = bootstrap_result["intervals"][metric]
    return f"[{100 * low:.1f}, {100 * high:.1f}]"


def format_intervals(bootstrap_result: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The line reports print under their metrics table, or `None` without speakers to resample."""
    if not bootstrap_result:
        return None
    level = f"{100 * bootstrap_result['confidence_level']:.0f} %"
    if not bootstrap_result["reliable"]:
        line = (
            f"{level} confidence intervals: no speaker interval, {_speakers(bootstrap_result['speakers'])} "
            f"{'is' if bootstrap_result['speakers'] == 1 else 'are'} too few (a speaker bootstrap needs at least "
            f"{MIN_RELIABLE_SPEAKERS}): the per-speaker table below shows how the figures vary from speaker to "
            "speaker."
        )
        clip = bootstrap_result.get("clip_bootstrap")
        if clip:
            cells = ", ".join(
                f"{METRIC_LABELS.get(metric, metric)} [{100 * low:.1f}, {100 * high:.1f}] %"
                for metric, (low, high) in clip["intervals"].items()
            )
            line += (
                f" Clip bootstrap over {clip['clips']} clips (clips treated as independent, so narrower than a "
                f"speaker interval; it says nothing of other speakers): {cells}."
            )
        return line
    cells = ", ".join(
        f"{METRIC_LABELS.get(metric, metric)} {format_interval(bootstrap_result, metric)} %"
        for metric in bootstrap_result["intervals"]
    )
    return f"{level} confidence intervals (speaker bootstrap over {bootstrap_result['speakers']} speakers): {cells}."


def speaker_prediction_interval(
    labels: Sequence[int],
    predictions: Sequence[int],
    speakers: Sequence[Any],
    num_classes: int,
    *,
    new_speakers: Optional[int] = None,
    metric: str = "unweighted_accuracy",
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Where `metric` will fall on a *new* group of `new_speakers` speakers (default: as many as were scored), from
    clips scored one by one: a bootstrap prediction interval. A confidence interval (:func:`speaker_bootstrap`) says
    how far the figure of these speakers is from the population's; a new group's figure also moves by its own draw of
    speakers, so the interval here is the observed figure plus the percentiles of (a resample of `new_speakers`
    speakers' figure - a resample of the scored speakers' figure), both drawn independently from the scored speakers
    (about sqrt(2) times the confidence interval's width at equal sizes). ``reliable`` is false below
    :data:`MIN_RELIABLE_SPEAKERS` speakers, where speaker resampling says little: from two to four speakers the
    interval is Student's t over the speakers' own figures (:func:`_small_sample_prediction`), and for one speaker the
    clip bootstrap's (:func:`clip_bootstrap_intervals`), which says how far the figure moves over these clips only
    (``method`` says which)."""
    names, confusions = speaker_confusions(labels, predictions, speakers, num_classes)
    count, new_count = len(names), new_speakers or len(names)
    observed = float(metrics_from_confusion(confusions.sum(axis=0))[metric])
    result = {"confidence_level": confidence_level, "n_resamples": n_resamples, "speakers": count}
    if count < 2:
        clips = clip_bootstrap_intervals(
            confusions.sum(axis=0), metrics=(metric,), confidence_level=confidence_level, n_resamples=n_resamples
        )
        return {**result, "method": clips["method"], "reliable": False, "interval": clips["intervals"][metric]}
    if count < MIN_RELIABLE_SPEAKERS:
        return {**result, **_small_sample_prediction(confusions, observed, new_count, metric, confidence_level)}
    generator = np.random.default_rng(seed)
    statistic = _resampled_metric(confusions, metric)
    scored = statistic(generator.integers(0, count, size=(n_resamples, count)))
    new_group = statistic(generator.integers(0, count, size=(n_resamples, new_count)))
    tail = 100 * (1 - confidence_level) / 2
    low, high = np.clip(observed + np.nanpercentile(new_group - scored, [tail, 100 - tail]), 0.0, 1.0)
    return {
        **result,
        "method": f"speaker bootstrap prediction interval: the figure of a new group of {new_count} speakers",
        "reliable": True,
        "new_speakers": new_count,
        "interval": [float(low), float(high)],
    }


def _small_sample_prediction(
    confusions: np.ndarray, observed: float, new_count: int, metric: str, confidence_level: float
) -> dict[str, Any]:
    """A prediction interval from two to four speakers, too few to resample: the observed figure plus or minus
    Student's t quantile (``speakers - 1`` degrees of freedom) times the spread of the speakers' own figures times
    ``sqrt(1 / speakers + 1 / new_count)``, the textbook interval for the mean of a new sample."""
    from scipy.stats import t as student_t

    each = np.asarray(metrics_from_confusion(confusions)[metric], dtype=np.float64)
    count = len(confusions)
    spread = float(np.nanstd(each, ddof=1)) if np.isfinite(each).sum() > 1 else 0.0
    half = float(student_t.ppf((1 + confidence_level) / 2, count - 1)) * spread * np.sqrt(1 / count + 1 / new_count)
    low, high = np.clip([observed - half, observed + half], 0.0, 1.0)
    return {
        "method": (
            f"Student's t prediction interval over {count} speakers' figures (too few to resample): the figure of "
            f"a new group of {new_count} speakers"
        ),
        "reliable": False,
        "new_speakers": new_count,
        "interval": [float(low), float(high)],
    }


def paired_comparison(
    labels: Sequence[int],
    predictions_a: Sequence[int],
    predictions_b: Sequence[int],
    speakers: Sequence[Any],
    num_classes: int,
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Two models scored on the same clips: the UA difference (B - A) with a paired speaker-bootstrap interval, and
    the exact McNemar test on the clips one model gets right and the other wrong (statsmodels' `mcnemar`, exact: the
    binomial test on the discordant pairs)."""
    labels = np.asarray(labels, dtype=np.int64)
    a, b = np.asarray(predictions_a, dtype=np.int64), np.asarray(predictions_b, dtype=np.int64)
    if not (len(labels) == len(a) == len(b) == len(speakers)):
        raise ValueError(
            f"a paired comparison needs both models' predictions on the same clips: {len(labels)} labels, "
            f"{len(a)} and {len(b)} predictions, {len(speakers)} speakers"
        )
    names, confusions_a = speaker_confusions(labels, a, speakers, num_classes)
    _, confusions_b = speaker_confusions(labels, b, speakers, num_classes)
    metric_a, metric_b = (
        _resampled_metric(confusions_a, "unweighted_accuracy"),
        _resampled_metric(confusions_b, "unweighted_accuracy"),
    )

    def difference(drawn: np.ndarray, axis: int = -1) -> np.ndarray:
        return metric_b(drawn, axis) - metric_a(drawn, axis)

    everyone = np.arange(len(names))
    observed = float(difference(everyone))
    if len(names) >= 2:
        result = bootstrap(
            (everyone,),
            difference,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        interval = [float(result.confidence_interval.low), float(result.confidence_interval.high)]
    else:
        interval = [observed, observed]
    # Imported here: statsmodels is slow to import, and only paired comparisons need it.
    from statsmodels.stats.contingency_tables import mcnemar

    a_correct, b_correct = a == labels, b == labels
    table = [
        [int((a_correct & b_correct).sum()), int((a_correct & ~b_correct).sum())],
        [int((~a_correct & b_correct).sum()), int((~a_correct & ~b_correct).sum())],
    ]
    only_a, only_b = table[0][1], table[1][0]
    p_value = float(mcnemar(table, exact=True).pvalue)
    return {
        "unweighted_accuracy_difference": observed,
        "interval": interval,
        "confidence_level": confidence_level,
        "speakers": len(names),
        "reliable": len(names) >= MIN_RELIABLE_SPEAKERS,
        "mcnemar": {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p_value},
    }


__all__ = [
    "INTERVAL_LABELS",
    "MIN_RELIABLE_SPEAKERS",
    "clip_bootstrap_intervals",
    "format_interval",
    "format_intervals",
    "metrics_from_confusion",
    "paired_comparison",
    "pooled_intervals",
    "bootstrap_intervals",
    "speaker_bootstrap",
    "speaker_confusions",
    "speaker_prediction_interval",
]
