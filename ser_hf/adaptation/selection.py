"""Which adaptation to keep, chosen by cross-validation over the user's labelled speakers, with an estimate of how good
it is on new speakers of the same set-up.

An adaptation on a few clips can make a model worse: too few clips to move a head safely, speakers heard in one
emotion, a set-up the model already handles. So ``ser-hf adapt`` never assumes it helps. Every candidate below is a
new linear classifier on the model's own projected representation (the input of its ``classifier`` layer, from the
cached pooled encoder states: seconds, no re-encoding), so each is saved as the same architecture with other weights:

* ``unchanged``: the model as it is (its head, on the user's labels);
* ``head`` at :data:`HEAD_STRENGTHS`: the classifier refitted on the labelled clips (class-balanced cross-entropy,
  convex, ``scipy.optimize`` L-BFGS) with an L2 pull of the given strength towards the trained classifier (L2-SP);
* ``prototypes``: each emotion's mean of the labelled clips in that space, scored by distance under a shared
  isotropic variance (the nearest-class-mean few-shot learner, a linear classifier in this form);
* ``head+prototypes``: the trained head's and the prototypes' log-probabilities averaged (a product of experts).

Each is scored on held-out speakers (:func:`cross_validation_folds`: leave-one-speaker-out when the speakers are few,
grouped k-fold otherwise, folds over clips when there is one speaker, said), every clip scored once out of fold, and
the unweighted accuracy of those predictions is the candidate's estimate, with a speaker-bootstrap interval (a clip
interval, said, below five speakers). An adaptation is kept only where its gain over the unchanged model on those
held-out clips clears a paired bootstrap interval (:func:`gain_over_unchanged`: the lower end of a one-sided 90 % bound
above zero), and only from :data:`MIN_CLIPS_PER_LABEL` labelled clips per emotion of :data:`MIN_SPEAKERS` speakers, so
that a handful of lucky clips never replaces the model the user started from; among those, the best wins, and a
candidate must beat a simpler one by more than one labelled clip's worth of UA (``100 / labelled clips`` points). The
winner is refitted on every labelled clip.

Statistics: the model standardises each speaker's encoder states with that speaker's statistics. A labelled speaker
heard in few emotions (fewer than half of the labels, known from the labels themselves) gets the statistics of all the
labelled clips instead, as the inference check (:mod:`ser_hf.evaluation.speaker_check`) gives such speakers: their
own statistics would erase the emotion the head must learn. The held-out speakers of each fold are standardised as the
model would standardise them at inference (the check, decided by the model the user started from).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: The strengths of the L2 pull towards the trained classifier that the ``head`` candidates use (in units of the mean
#: class-balanced cross-entropy per clip), strongest first.
HEAD_STRENGTHS = (1.0, 0.1, 0.01)
#: The weight of the trained head's log-probabilities in ``head+prototypes``.
PROTOTYPE_MIX = 0.5
#: Leave one speaker out up to this many labelled speakers; grouped k-fold with this many folds beyond.
MAX_FOLDS = 10
#: Folds over clips when every labelled clip is one speaker's.
CLIP_FOLDS = 5
#: The confidence of the paired interval of the UA gain over the unchanged model that an adaptation must clear (its
#: lower end above zero): a one-sided 90 % bound.
GAIN_CONFIDENCE = 0.8
#: Fewer labelled clips than this many per labelled emotion (on average) and the model is kept as it is: on the choice
#: draws (RAVDESS left out, draws 100-101, which no reported figure uses) every adaptation of one or two clips per
#: emotion that cleared the paired interval still lost on the test speakers.
MIN_CLIPS_PER_LABEL = 5
#: Labelled clips of fewer speakers than this and the model is kept as it is: folds over one speaker's clips cannot
#: show that an adaptation carries over to new speakers (on the choice draws of TESS left out, draws 100-101, the
#: adaptations chosen on one speaker's clips lost up to 29 points on the other speaker).
MIN_SPEAKERS = 2
#: A speaker's labelled clips cover fewer than this share of the labels: standardised with all the labelled clips'
#: statistics (heard in few emotions).
MIN_LABEL_SHARE = 0.5


@dataclass(frozen=True)
class Candidate:
    """One adaptation a user's clips are cross-validated on: its ``name``, ``kind`` and (``head``) pull ``strength``.
    Candidates are listed simplest first; a tie goes to the earlier."""

    name: str
    kind: str
    strength: Optional[float] = None


def candidates(new_labels: bool) -> list[Candidate]:
    """The candidates, simplest first; the unchanged model and the mix with its head only where the model knows every
    label of the user's (a head cannot name an emotion it never learnt)."""
    listed = [] if new_labels else [Candidate("unchanged", "unchanged")]
    listed += [Candidate(f"head (pull {strength:g})", "head", strength) for strength in HEAD_STRENGTHS]
    if not new_labels:
        listed.append(Candidate("head+prototypes", "mixed"))
    listed.append(Candidate("prototypes", "prototypes"))
    return listed


@dataclass
class Classifier:
    """A linear classifier on the projected representation, in calibrated logit units: ``logits = z @ weight.T +
    bias``."""

    weight: np.ndarray
    bias: np.ndarray

    def logits(self, projected: np.ndarray) -> np.ndarray:
        return projected @ self.weight.T + self.bias


def class_weights(labels: np.ndarray, num_labels: int) -> np.ndarray:
    """Each clip's weight in the class-balanced loss (each present label weighs the same), summing to 1."""
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    present = np.count_nonzero(counts)
    weights = 1.0 / (present * counts[labels])
    return weights / weights.sum()


def fit_head(start: Classifier, projected: np.ndarray, labels: np.ndarray, strength: float) -> Classifier:
    """The classifier minimising the class-balanced cross-entropy on (`projected`, `labels`) plus ``strength`` times
    the squared distance of its weights and biases from `start` (L2-SP), by L-BFGS from `start` (a convex problem: the
    same answer from any start)."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    num_labels, width = start.weight.shape
    weights = class_weights(labels, num_labels)
    onehot = np.eye(num_labels)[labels]
    origin = np.concatenate([start.weight.ravel(), start.bias])

    def loss(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        weight = parameters[: num_labels * width].reshape(num_labels, width)
        bias = parameters[num_labels * width :]
        log_probabilities = log_softmax(projected @ weight.T + bias, axis=1)
        value = -float(np.sum(weights * np.sum(onehot * log_probabilities, axis=1)))
        residual = weights[:, None] * (np.exp(log_probabilities) - onehot)
        gradient = np.concatenate([(residual.T @ projected).ravel(), residual.sum(axis=0)])
        offset = parameters - origin
        return value + strength * float(offset @ offset), gradient + 2 * strength * offset

    result = minimize(loss, origin, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    fitted = result.x
    return Classifier(fitted[: num_labels * width].reshape(num_labels, width), fitted[num_labels * width :])


def fit_prototypes(start: Classifier, projected: np.ndarray, labels: np.ndarray) -> Classifier:
    """The nearest-class-mean classifier: ``logit_c = -|z - mean_c|^2 / (2 var)`` up to a term shared by the classes,
    with one variance over every dimension and class (the labelled clips' spread around their class means; around
    their overall mean where every class has one clip). A label without a labelled clip keeps `start`'s row."""
    num_labels = start.weight.shape[0]
    weight, bias = start.weight.copy(), start.bias.copy()
    means = {label: projected[labels == label].mean(axis=0) for label in np.unique(labels)}
    deviations = projected - np.stack([means[label] for label in labels])
    if not np.any(deviations):
        deviations = projected - projected.mean(axis=0)
    variance = max(float(np.mean(deviations**2)), 1e-6)
    for label in range(num_labels):
        if label in means:
            weight[label] = means[label] / variance
            bias[label] = -0.5 * float(means[label] @ means[label]) / variance
    return Classifier(weight, bias)


def fit_candidate(candidate: Candidate, start: Classifier, projected: np.ndarray, labels: np.ndarray) -> Classifier:
    """`candidate` fitted on the labelled clips (`projected`, `labels`), starting from the model's classifier."""
    if candidate.kind == "unchanged":
        return start
    if candidate.kind == "head":
        return fit_head(start, projected, labels, candidate.strength)
    prototypes = fit_prototypes(start, projected, labels)
    if candidate.kind == "prototypes":
        return prototypes
    if candidate.kind == "mixed":
        return Classifier(
            PROTOTYPE_MIX * start.weight + (1 - PROTOTYPE_MIX) * prototypes.weight,
            PROTOTYPE_MIX * start.bias + (1 - PROTOTYPE_MIX) * prototypes.bias,
        )
    raise ValueError(f"Unknown candidate kind {candidate.kind!r}.")


def cross_validation_folds(
    labels: np.ndarray, speakers: Sequence[Hashable], seed: int = 0
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Train/held-out folds over the labelled clips and a line naming them: leave-one-speaker-out up to
    :data:`MAX_FOLDS` speakers, grouped k-fold (:data:`MAX_FOLDS` folds) beyond, stratified folds over clips when there
    is one speaker (then the estimate is of new clips of that speaker, not of new speakers)."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold

    groups = np.asarray([str(speaker) for speaker in speakers], dtype=object)
    distinct = len(set(groups.tolist()))
    index = np.zeros(len(labels))
    if distinct >= 2:
        if distinct <= MAX_FOLDS:
            return list(
                LeaveOneGroupOut().split(index, labels, groups)
            ), f"leave-one-speaker-out ({distinct} speakers)"
        splitter = GroupKFold(n_splits=MAX_FOLDS, shuffle=True, random_state=seed)
        return list(splitter.split(index, labels, groups)), f"{MAX_FOLDS} folds of speakers ({distinct} speakers)"
    smallest = int(np.bincount(labels)[np.bincount(labels) > 0].min())
    folds = max(2, min(CLIP_FOLDS, smallest))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    if smallest < 2:
        from sklearn.model_selection import KFold

        splitter = KFold(n_splits=min(folds, len(labels)), shuffle=True, random_state=seed)
    line = (
        f"{splitter.get_n_splits()} folds over clips (one speaker: the estimate is of new clips of that speaker, not "
        "of new speakers)"
    )
    return list(splitter.split(index, labels)), line


def gain_over_unchanged(
    labels: np.ndarray, unchanged: np.ndarray, candidate: np.ndarray, speakers: Sequence[Hashable], num_labels: int
) -> dict[str, Any]:
    """The candidate's UA gain over the unchanged model on the same held-out clips, with a paired bootstrap interval
    at :data:`GAIN_CONFIDENCE`: over speakers from five of them, over clips below (fewer speakers cannot say how far a
    gain would move on others; clips at least say whether it is more than a few lucky ones)."""
    from ..evaluation.bootstrap import MIN_RELIABLE_SPEAKERS, paired_comparison

    by_speaker = len(set(map(str, speakers))) >= MIN_RELIABLE_SPEAKERS
    groups = list(speakers) if by_speaker else list(range(len(labels)))
    result = paired_comparison(
        labels, unchanged, candidate, groups, num_labels, confidence_level=GAIN_CONFIDENCE, n_resamples=1000
    )
    low, high = result["interval"]
    return {
        "gain": round(100 * result["unweighted_accuracy_difference"], 2),
        "low": round(100 * low, 2),
        "high": round(100 * high, 2),
        "over": "speakers" if by_speaker else "clips",
    }


def unweighted_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean recall over the labels present in `labels` (scikit-learn's macro recall over them), in %."""
    from sklearn.metrics import recall_score

    present = np.unique(labels)
    return 100.0 * float(recall_score(labels, predictions, labels=present, average="macro", zero_division=0))


def interval(labels: np.ndarray, predictions: np.ndarray, speakers: Sequence[Hashable], num_labels: int) -> dict:
    """The 95 % interval of the UA of out-of-fold predictions: by speaker bootstrap from five speakers, by clip
    bootstrap below (said in ``method``)."""
    from ..evaluation.bootstrap import speaker_bootstrap

    result = speaker_bootstrap(labels, predictions, speakers, num_labels, metrics=("unweighted_accuracy",))
    chosen = result if result["reliable"] else result.get("clip_bootstrap", result)
    low, high = chosen["intervals"]["unweighted_accuracy"]
    return {"low": round(100 * low, 1), "high": round(100 * high, 1), "method": chosen["method"]}


@dataclass
class Selection:
    """What the cross-validation chose and measured (the ``selection`` of ``adaptation.json``)."""

    chosen: Candidate
    classifier: Classifier
    folds: str
    scores: dict[str, float]
    estimate: dict[str, Any]
    before: dict[str, Any]
    statistics: dict[str, Any] = field(default_factory=dict)
    gains: dict[str, dict[str, Any]] = field(default_factory=dict)
    too_few_clips: Optional[str] = None

    @property
    def unchanged(self) -> bool:
        return self.chosen.kind == "unchanged"

    def to_dict(self) -> dict[str, Any]:
        record = {
            "chosen": self.chosen.name,
            "kind": self.chosen.kind,
            "strength": self.chosen.strength,
            "unchanged": self.unchanged,
            "cross_validation": self.folds,
            "cross_validated_ua": self.scores,
            "gain_over_unchanged": self.gains,
            "too_few_clips": self.too_few_clips,
            "estimate": self.estimate,
            "before_adaptation": self.before,
            "statistics": self.statistics,
        }
        record["estimate_line"] = estimate_line(record)
        return record

    def estimate_line(self) -> str:
        """The line ``ser-hf adapt`` ends with, the report and the card show."""
        return self.to_dict()["estimate_line"]


def estimate_line(selection: Mapping[str, Any]) -> str:
    """One line: the expected UA on new speakers of the user's set-up, with the model before adaptation's."""
    estimate, before = selection["estimate"], selection["before_adaptation"]
    if selection.get("too_few_clips") and selection["unchanged"]:
        kept = f"the model is kept unchanged: {selection['too_few_clips']}"
    elif selection["unchanged"]:
        kept = "the model is kept unchanged: no adaptation beat it on your held-out speakers"
    else:
        kept = f"adaptation kept: {selection['chosen']}"
    text = f"Expected UA on new speakers of your set-up: {estimate['ua']:.1f} % [{estimate['low']:.1f}, " + (
        f"{estimate['high']:.1f}]"
    )
    if before is not None and not selection["unchanged"]:
        text += f"; the model before adaptation: {before['ua']:.1f} % [{before['low']:.1f}, {before['high']:.1f}]"
    clip_interval = "clip" in estimate["method"]
    return f"{text} ({kept}; cross-validated, {selection['cross_validation']}" + (
        "; a clip interval: too few speakers for a speaker interval)" if clip_interval else ")"
    )


def select_adaptation(
    start: Classifier,
    training: np.ndarray,
    evaluation: np.ndarray,
    labels: np.ndarray,
    speakers: Sequence[Hashable],
    *,
    new_labels: bool = False,
    seed: int = 0,
    scored: Optional[np.ndarray] = None,
) -> Selection:
    """Cross-validate every candidate and refit the winner on all the labelled clips.

    Args:
        start (`Classifier`): the model's classifier on the user's labels (calibrated units).
        training (`np.ndarray`, `(clips, width)`): each labelled clip's projected representation standardised as the
            adaptation trains on it (:func:`training_statistics`).
        evaluation (`np.ndarray`, `(clips, width)`): the same clips standardised as the model standardises them at
            inference (each held-out fold is scored on these).
        labels (`np.ndarray`), speakers (`Sequence`): each clip's label (index into the user's labels) and speaker.
        new_labels (`bool`): the user's labels include some the model lacks (no unchanged candidate then).
        scored (`np.ndarray` of `bool`, *optional*): the clips the estimate scores (default all); the others
            (self-training's pseudo-labelled clips) only train.
    """
    labels = np.asarray(labels, dtype=np.int64)
    scored = np.ones(len(labels), dtype=bool) if scored is None else np.asarray(scored, dtype=bool)
    folds, description = cross_validation_folds(labels[scored], np.asarray(speakers, dtype=object)[scored], seed)
    # Folds over the scored clips; every unscored clip trains in every fold.
    scored_rows, unscored_rows = np.flatnonzero(scored), np.flatnonzero(~scored)
    folds = [(np.concatenate([scored_rows[train], unscored_rows]), scored_rows[held]) for train, held in folds]
    listed = candidates(new_labels)
    predictions = {candidate.name: np.zeros(len(labels), dtype=np.int64) for candidate in listed}
    for train, held_out in folds:
        for candidate in listed:
            fitted = fit_candidate(candidate, start, training[train], labels[train])
            predictions[candidate.name][held_out] = fitted.logits(evaluation[held_out]).argmax(axis=1)
    scores = {
        name: round(unweighted_accuracy(labels[scored], predicted[scored]), 2)
        for name, predicted in predictions.items()
    }
    margin = 100.0 / int(scored.sum())
    num_labels = start.weight.shape[0]
    gains = {}
    if "unchanged" in predictions:
        # Against the model as it is, an adaptation must show a gain the held-out clips can tell from noise.
        gains = {
            candidate.name: gain_over_unchanged(
                labels[scored],
                predictions["unchanged"][scored],
                predictions[candidate.name][scored],
                [speaker for speaker, kept in zip(speakers, scored) if kept],
                num_labels,
            )
            for candidate in listed[1:]
        }
    present = len(np.unique(labels[scored]))
    labelled_speakers = len({str(speaker) for speaker, kept in zip(speakers, scored) if kept})
    too_few = None
    if int(scored.sum()) < MIN_CLIPS_PER_LABEL * present:
        too_few = f"fewer than {MIN_CLIPS_PER_LABEL} labelled clips per emotion"
    elif labelled_speakers < MIN_SPEAKERS:
        too_few = "clips of one speaker, which cannot show that an adaptation carries over to new speakers"
    enough = too_few is None
    if not enough:
        logger.warning(
            "%d labelled clips of %d emotion(s) and %d speaker(s): %s; the model is kept as it is (label more clips, "
            "of more speakers, to adapt it).",
            int(scored.sum()),
            present,
            labelled_speakers,
            too_few,
        )
    allowed = [
        candidate
        for candidate in listed
        if candidate.kind == "unchanged"
        or (enough and (candidate.name not in gains or gains[candidate.name]["low"] > 0))
    ]
    if not allowed:  # no unchanged model (new labels) and too few clips: the simplest adaptation
        allowed = [listed[0]]
    chosen = allowed[0]
    for candidate in allowed[1:]:
        if scores[candidate.name] > scores[chosen.name] + margin:
            chosen = candidate

    def estimate(name: str) -> dict[str, Any]:
        speakers_scored = [speaker for speaker, kept in zip(speakers, scored) if kept]
        bounds = interval(labels[scored], predictions[name][scored], speakers_scored, num_labels)
        return {"ua": scores[name], **bounds}

    selection = Selection(
        too_few_clips=too_few,
        gains=gains,
        chosen=chosen,
        classifier=fit_candidate(chosen, start, training, labels),
        folds=description,
        scores=scores,
        estimate=estimate(chosen.name),
        before=estimate("unchanged") if "unchanged" in scores else None,
    )
    logger.info(
        "Adaptation chosen by cross-validation (%s; a candidate must beat a simpler one by %.1f points): %s. UA per "
        "candidate: %s.",
        description,
        margin,
        chosen.name,
        ", ".join(f"{name} {score:.1f}" for name, score in scores.items()),
    )
    return selection


def training_statistics(
    labels: np.ndarray, speakers: Sequence[Hashable], num_labels: int
) -> tuple[set[Hashable], dict[str, Any]]:
    """The labelled speakers heard in few emotions (their clips cover fewer than :data:`MIN_LABEL_SHARE` of the
    labels present), who are standardised with the statistics of all the labelled clips, and a record of it."""
    present = len(np.unique(labels))
    needed = max(2, math.ceil(MIN_LABEL_SHARE * present))
    by_speaker: dict[Hashable, set[int]] = {}
    for label, speaker in zip(np.asarray(labels).tolist(), speakers):
        by_speaker.setdefault(speaker, set()).add(label)
    few = {speaker for speaker, heard in by_speaker.items() if len(heard) < needed}
    record = {
        "rule": (
            f"a labelled speaker whose clips cover fewer than {needed} of the {present} labels is standardised with "
            "the statistics of all the labelled clips (own statistics would erase the emotion); the others with "
            "their own"
        ),
        "speakers_with_set_statistics": sorted(str(speaker) for speaker in few),
        "speakers_with_own_statistics": sorted(str(speaker) for speaker in by_speaker if speaker not in few),
    }
    if few:
        logger.warning(
            "Adaptation statistics: %d of %d labelled speaker(s) are heard in fewer than %d emotions (from their "
            "labels): they are standardised with the statistics of all the labelled clips, not their own.",
            len(few),
            len(by_speaker),
            needed,
        )
    return few, record


__all__ = [
    "Candidate",
    "Classifier",
    "HEAD_STRENGTHS",
    "Selection",
    "candidates",
    "cross_validation_folds",
    "estimate_line",
    "fit_candidate",
    "select_adaptation",
    "training_statistics",
]
