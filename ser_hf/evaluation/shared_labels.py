"""Scoring a model on the labels it shares with a corpus: which labels (:func:`evaluated_labels`), which clips
(:func:`shared_label_clips`), and the model's choice restricted to them (:func:`scores_among`). ``ser-hf evaluate``
scores a RAVDESS model (8 labels) on CREMA-D's 6 so, and leave-one-corpus-out scores its left-out corpus so
(:func:`ser_hf.experiments.loco.restrict_choice`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ..data.dataset_info import column_values
from .metrics import classification_metrics, clip_predictions

if TYPE_CHECKING:
    from datasets import Dataset

    from .evaluate_model import CorpusSource, TrainedModel

logger = logging.getLogger(__name__)


def evaluated_labels(
    model_labels: Sequence[str], corpus_labels: Sequence[str], labels: Optional[Sequence[str]] = None
) -> list[str]:
    """The labels both the model and the corpus have (and ``labels``, when given), in the model's order."""
    wanted = set(corpus_labels) & (set(labels) if labels is not None else set(model_labels))
    return [label for label in model_labels if label in wanted]


def scores_among(
    paths: Sequence[str],
    speakers: Sequence[str],
    clip_labels: Sequence[str],
    scores: np.ndarray,
    score_labels: Sequence[str],
    labels: Sequence[str],
    *,
    sexes: Optional[Sequence[Optional[str]]] = None,
    corpora: Optional[Sequence[str]] = None,
) -> dict[str, Any]:
    """The metrics (with their speaker-bootstrap intervals) and ``clip_predictions`` of clips of `labels` whose model
    scores (`scores`: logits or log-probabilities, a column per label of `score_labels`, which may hold more) choose
    among `labels` only: how a model is scored on the labels it shares with a corpus (:func:`evaluate_on_dataset`,
    leave-one-corpus-out's left-out corpus)."""
    labels = list(labels)
    columns = [list(score_labels).index(label) for label in labels]
    chosen = np.asarray(scores)[:, columns]
    targets = [labels.index(label) for label in clip_labels]
    metrics = classification_metrics(targets, chosen, labels, speakers=speakers, sexes=sexes, corpora=corpora)
    metrics["clip_predictions"] = clip_predictions(paths, speakers, targets, chosen, labels)
    return metrics


def shared_label_clips(
    trained: TrainedModel, dataset: Dataset, source: CorpusSource, key: str, labels: Optional[Sequence[str]] = None
) -> tuple[Dataset, list[str], dict[str, int], dict[str, int], Optional[Dataset]]:
    """``(clips scored, the labels they are scored on, clips dropped by label, of them those of labels the model
    lacks, the dropped clips or None)``: the clips of the labels the model and the corpus share (and `labels`)."""
    corpus_labels = dataset.features["label"].names
    shared = evaluated_labels(trained.labels, corpus_labels, labels)
    if len(shared) < 2:
        raise ValueError(
            f"{trained.name_or_path} (labels {trained.labels}) and {source.identity} (labels "
            f"{corpus_labels}) share {len(shared)} label(s) {shared}: nothing to classify."
        )
    names = column_values(dataset, "label")
    dropped: dict[str, int] = {}
    for index in names:
        if corpus_labels[index] not in shared:
            dropped[corpus_labels[index]] = dropped.get(corpus_labels[index], 0) + 1
    # Of those, the clips whose label the model has no output for: left unscored whatever was asked, and said.
    unknown_label_clips = {label: dropped[label] for label in sorted(dropped) if label not in trained.labels}
    if unknown_label_clips:
        logger.warning(
            "%s knows no %s: %d of the %d clips of %s are left unscored (%s); its figures cover %s only.",
            trained.name,
            " or ".join(unknown_label_clips),
            sum(unknown_label_clips.values()),
            len(names),
            key,
            ", ".join(f"{label} {count}" for label, count in unknown_label_clips.items()),
            ", ".join(shared),
        )
    other_labels = None
    if dropped:
        keep_ids = {corpus_labels.index(label) for label in shared}
        other_labels = dataset.filter(lambda label: label not in keep_ids, input_columns="label")
        dataset = dataset.filter(lambda label: label in keep_ids, input_columns="label")
    return dataset, shared, dropped, unknown_label_clips, other_labels


__all__ = ["evaluated_labels", "scores_among", "shared_label_clips"]
