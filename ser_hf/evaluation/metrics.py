"""SER metrics: weighted and unweighted accuracy, F1, per-class scores, confusion matrices, per-speaker and per-sex
accuracy and calibration, as JSON-ready dicts and PNG plots; plus mean ± std across folds.

Names follow the field: WA (``accuracy``) is the share of clips classified correctly, UA (``unweighted_accuracy``)
is the mean of per-class recalls (scikit-learn's balanced accuracy), the figure SER papers rank by because corpora
are unbalanced.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, recall_score

from ..atomic_files import save_figure
from .bootstrap import pooled_intervals
from .constants import SCALAR_METRICS


def metrics_path() -> str:
    """Path of ser-hf's `evaluate` metric module (:mod:`ser_hf.evaluation.ser_metrics`), loadable offline:
    ``evaluate.load(ser_hf.metrics_path())`` gives UA, WA, macro-F1 and per-class recall."""
    return str(Path(__file__).with_name("ser_metrics.py"))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict[str, list]:
    """The equal-width confidence bins that ECE and the reliability diagram share: each non-empty bin's index, clips,
    mean confidence (the top probability) and accuracy, JSON-ready."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds confidences in (edges[i], edges[i + 1]]; a confidence of exactly 0 cannot occur after softmax.
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    clips = np.bincount(bins, minlength=n_bins)
    filled = np.flatnonzero(clips)
    return {
        "n_bins": n_bins,
        "bin": filled.tolist(),
        "clips": clips[filled].tolist(),
        "confidence": (np.bincount(bins, confidence, n_bins)[filled] / clips[filled]).tolist(),
        "accuracy": (np.bincount(bins, correct, n_bins)[filled] / clips[filled]).tolist(),
    }


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al., 2017): the clip-weighted mean |accuracy - confidence|."""
    bins = reliability_bins(probabilities, labels, n_bins)
    gaps = np.abs(np.subtract(bins["accuracy"], bins["confidence"]))
    return float(np.dot(bins["clips"], gaps) / max(len(labels), 1))


def _unweighted_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels`` (balanced accuracy, without scikit-learn's warning when
    predictions include classes the truth lacks)."""
    return float(recall_score(labels, predictions, labels=np.unique(labels), average="macro", zero_division=0))


def _group_accuracy(
    groups: Sequence, labels: np.ndarray, predictions: np.ndarray, num_classes: Optional[int] = None
) -> dict[str, dict[str, Any]]:
    """Accuracy and UA per group; with ``num_classes``, each group's confusion matrix too (what pooled and
    bootstrapped intervals are computed from)."""
    groups = np.asarray([str(g) for g in groups], dtype=object)
    result = {}
    for group in sorted(set(groups.tolist())):
        members = groups == group
        result[group] = {
            "clips": int(members.sum()),
            "accuracy": float(accuracy_score(labels[members], predictions[members])),
            "unweighted_accuracy": _unweighted_accuracy(labels[members], predictions[members]),
        }
        if num_classes is not None:
            classes = list(range(num_classes))
            result[group]["confusion_matrix"] = confusion_matrix(
                labels[members], predictions[members], labels=classes
            ).tolist()
    return result


def classification_metrics(
    labels: Sequence[int],
    logits: np.ndarray,
    label_names: Sequence[str],
    *,
    speakers: Optional[Sequence[str]] = None,
    sexes: Optional[Sequence[Optional[str]]] = None,
    corpora: Optional[Sequence[str]] = None,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Every metric of an evaluation, JSON-ready.

    Args:
        labels (`Sequence[int]`): true class ids.
        logits (`np.ndarray` of shape `(clips, classes)`): the model's logits (calibration applies softmax).
        label_names (`Sequence[str]`): class names, index = class id.
        speakers, sexes (`Sequence[str]`, *optional*): per-clip speaker and sex for per-group accuracy; with
            speakers, ``confidence_intervals`` holds 95 % intervals of UA, WA and macro-F1 by a speaker bootstrap
            (:func:`~ser_hf.evaluation.bootstrap.speaker_bootstrap`).
        corpora (`Sequence[str]`, *optional*): per-clip corpus; ``per_corpus`` then holds each corpus' WA and UA
            (what a run on merged corpora reports for each).
    """
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype=np.float64)
    predictions = logits.argmax(axis=1)
    classes = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    counts = confusion_matrix(labels, predictions, labels=classes)
    present = np.union1d(labels, predictions).tolist()
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    metrics: dict[str, Any] = {
        "unweighted_accuracy": _unweighted_accuracy(labels, predictions),
        "accuracy": float(accuracy_score(labels, predictions)),
        # Averaged over the classes that occur (as truth or prediction): a class absent from a fold's test split
        # (LOSO, merged corpora) must not count as F1 = 0.
        "macro_f1": float(f1_score(labels, predictions, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, predictions, labels=present, average="weighted", zero_division=0)),
        "expected_calibration_error": expected_calibration_error(softmax(logits), labels, n_bins),
        "clips": int(len(labels)),
        "label_names": list(label_names),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        "confusion_matrix": counts.tolist(),
        "confusion_matrix_normalized": normalised.round(6).tolist(),
    }
    if speakers is not None:
        metrics["per_speaker"] = _group_accuracy(speakers, labels, predictions, len(label_names))
        # How far to trust UA, WA and macro-F1: resampling speakers, whose clips are correlated, not clips.
        metrics["confidence_intervals"] = pooled_intervals([metrics])
    if corpora is not None:
        metrics["per_corpus"] = _group_accuracy(corpora, labels, predictions)
    if sexes is not None and any(s is not None for s in sexes):
        metrics["per_sex"] = _group_accuracy(["unknown" if s is None else s for s in sexes], labels, predictions)
    return metrics


def clip_predictions(
    paths: Sequence[str],
    speakers: Sequence[str],
    labels: Sequence[int],
    logits: np.ndarray,
    label_names: Sequence[str],
) -> list[dict[str, Any]]:
    """Each clip's path, speaker, true and predicted label, and the model's score (softmax probability) of every
    label: what paired comparisons of two runs on the same clips (``ser-hf compare``), error analysis and the fusion
    of an ensemble's members (:func:`ser_hf.training.ensemble.fuse_clip_predictions`) read."""
    logits = np.asarray(logits, dtype=np.float64)
    probabilities = softmax(logits) if logits.size else logits
    return [
        {
            "path": str(path),
            "speaker_id": str(speaker),
            "label": label_names[int(t)],
            "prediction": label_names[int(np.argmax(scores))],
            "scores": {name: float(score) for name, score in zip(label_names, scores)},
        }
        for path, speaker, t, scores in zip(paths, speakers, labels, probabilities)
    ]


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The scalar metrics of :func:`classification_metrics`' output (what ``Trainer`` logs)."""
    return {name: metrics[name] for name in SCALAR_METRICS}


def summarize_folds(fold_metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean ± sample standard deviation of every scalar metric across folds, the per-fold table, and (when the folds
    hold per-speaker confusion matrices) the metrics of all folds' test speakers pooled, with speaker-bootstrap
    intervals."""
    summary: dict[str, Any] = {
        "folds": len(fold_metrics),
        "mean": {},
        "std": {},
        "per_fold": [scalar_metrics(m) for m in fold_metrics],
    }
    for name in SCALAR_METRICS:
        values = np.array([m[name] for m in fold_metrics], dtype=np.float64)
        summary["mean"][name] = float(values.mean())
        summary["std"][name] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    # The folds' test speakers pooled: one speaker bootstrap over all of them (a fold's 4 speakers are too few).
    summary["confidence_intervals"] = pooled_intervals(fold_metrics)
    return summary


def format_mean_std(summary: Mapping[str, Any], name: str, percent: bool = True) -> str:
    scale = 100.0 if percent else 1.0
    return f"{summary['mean'][name] * scale:.1f} ± {summary['std'][name] * scale:.1f}"


def plot_confusion_matrix(
    metrics: Mapping[str, Any], path: str | os.PathLike, normalize: bool = True, title: str = ""
) -> None:
    """Write the confusion matrix as a PNG (row-normalised recalls by default, counts in each cell)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    names = metrics["label_names"]
    values = np.array(metrics["confusion_matrix_normalized" if normalize else "confusion_matrix"])
    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * len(names), 0.8 + 0.8 * len(names)))
    ConfusionMatrixDisplay(values, display_labels=names).plot(
        ax=axes, cmap="Blues", colorbar=False, values_format=".2f" if normalize else "d", xticks_rotation=45
    )
    axes.set_title(title or f"UA {metrics['unweighted_accuracy']:.1%}, WA {metrics['accuracy']:.1%}")
    save_figure(figure, path)


def plot_training_curves(log_history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Write training/validation loss (a corpus adversary's run: its training loss's two parts too) and validation UA
    per step (from ``Trainer.state.log_history``) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list, list]:
        points = [(e["step"], e[key]) for e in log_history if key in e and not math.isnan(e[key])]
        return [p[0] for p in points], [p[1] for p in points]

    figure, (loss_axes, ua_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (
        ("loss", "training loss"),
        ("emotion_loss", "training loss: emotion classifier"),
        ("corpus_adversary_loss", "training loss: corpus adversary"),
        ("eval_loss", "validation loss"),
    ):
        steps, values = series(key)
        if steps:
            loss_axes.plot(steps, values, marker="o", markersize=3, label=label)
    loss_axes.set_xlabel("step")
    loss_axes.set_ylabel("loss")
    loss_axes.legend()
    steps, values = series("eval_unweighted_accuracy")
    ua_axes.plot(steps, values, marker="o", markersize=3, color="tab:green")
    ua_axes.set_xlabel("step")
    ua_axes.set_ylabel("validation UA")
    ua_axes.set_ylim(0, 1)
    save_figure(figure, path)
