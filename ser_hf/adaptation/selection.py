"""Which adaptation to keep, chosen by cross-validation over the user's labelled speakers, with an estimate of how good
it is on new speakers of the same set-up that runs the way the saved model runs.

An adaptation on a few clips can make a model worse: too few clips to move a head safely, speakers heard in one
emotion, a set-up the model already handles. So ``ser-hf adapt`` never assumes it helps. Every candidate below is a
new linear classifier on the model's own projected representation (the input of its ``classifier`` layer, from the
cached pooled encoder states: seconds, no re-encoding), the last with its projector moved too, so each is saved as
the same architecture with other weights:

* ``unchanged``: the model as it is (its head, on the user's labels);
* ``head`` at :data:`HEAD_STRENGTHS`: the classifier refitted on the labelled clips (class-balanced cross-entropy,
  convex, ``scipy.optimize`` L-BFGS) with an L2 pull of the given strength towards the trained classifier (L2-SP);
* ``prototypes``: each emotion's mean of the labelled clips in that space, scored by distance under a shared
  isotropic variance (the nearest-class-mean few-shot learner, a linear classifier in this form);
* ``head+prototypes``: the trained head's and the prototypes' log-probabilities averaged (a product of experts);
* ``projector+head`` at :data:`PROJECTOR_STRENGTHS`: the projector and the classifier refitted together on the cached
  pooled states the projector reads, with an L2 pull of the given strength towards both trained layers (what the
  earlier adaptation through ``Trainer`` did, as one L-BFGS fit of seconds: the projector's move lies in the span of
  the labelled clips' states, so it is fitted in that span, :func:`~.heads.fit_projector_head`). It moves more than
  a head can: the 64-wide projection itself, and with it every emotion's logits (those of an emotion with few clips
  held near the model's by the pull). Listed only for models whose projector reads pooled states (Whisper's
  ``layer_statistics`` pooling), and under the ``own`` and ``set`` statistics rules only (see
  :data:`PROJECTOR_RULES`). Saved as the same architecture with both layers' weights changed.

An emotion with fewer than :data:`MIN_CLIPS_PER_LABEL` labelled clips is not adapted by a head: its classifier row
stays the model's in every head candidate (the log names it), unless the model lacks that emotion.

**Statistics rules.** A model that standardises each speaker's encoder states with that speaker's statistics can do
so three ways at inference: every speaker with their own statistics (``own``), every clip with the statistics of all
the clips classified together (``set``), or as the check of :mod:`ser_hf.evaluation.speaker_check` decides
(``checked``: the set's where the model's predictions say the speakers are heard in few emotions). Each candidate is
cross-validated under each rule, and the rule chosen is the one the adapted model is saved with, so that the model
does at inference exactly what each fold did to its held-out speakers. Each speaker's statistics come from all of
their recordings the user gave (labelled or not; they read no label).

Each candidate is scored on held-out speakers (:func:`cross_validation_folds`: leave-one-speaker-out when the speakers
are few, grouped k-fold otherwise, folds over clips when there is one speaker, said), every clip scored once out of
fold. An adaptation is kept only where its gain over the unchanged model on those held-out clips clears a paired
bootstrap interval (:func:`paired_gain`: the lower end of a one-sided 90 % bound above zero), and only from
:data:`MIN_CLIPS_PER_LABEL` labelled clips of two emotions at least and :data:`MIN_SPEAKERS` speakers, so that a
handful of lucky clips never replaces the model the user started from; among those, the best wins, and a candidate
must beat a simpler one by more than one labelled clip's worth of UA (``100 / labelled clips`` points). The winner
is refitted on every labelled clip.

**The default adaptation** is the exception to asking for a proven gain: the first ``projector+head`` listed (the
strongest pull, under ``own`` statistics for a speaker-standardised model; what the earlier adaptation through
``Trainer`` did at every k) is kept unless the folds show it worse than the model (the upper end of the same paired
interval below zero), and once kept it stands: no other candidate replaces it (on choice draws 100-103 the five
replacements by a gain over it that cleared the bound lost to it on new speakers in three cells, one by 22.5 points,
and gained 2.0 and 4.2 in two; docs/results/adapt/default-stands/). At a few labels the held-out speakers cannot tell a
gain of a few points from noise, so a rule asking for proof kept the model where adapting paid: on the choice draws
(RAVDESS and nEMO left out, draws 100-101, which no reported figure uses) the projector+head with pull 1, kept in every
cell, gained over the model in all 16 cells of k 5 and 20, and this rule gave +4.0 and +2.6 points at k = 5 on RAVDESS
and nEMO where the rule asking for proof gave +0.3 and -1.8 (docs/results/adapt/default-choice/). Speakers heard in few
emotions, whose own statistics erase them, mostly show it worse, so the model is kept there (not always at five clips
per emotion: three of the learning curve's 36 few-emotions cells lost up to five points).

**No veto by the nested estimate.** A check that kept the model wherever the nested estimate below fell under the
model's own figure on the same clips was shipped, and later removed: on the choice draws (RAVDESS and nEMO left out,
draws 100-103, all three scenarios of the learning curve, 96 adapted cells, which no reported figure uses) it gave
51.1 against 51.5 without it, and a variant vetoing only where the paired interval of the nested gain lies below
zero 51.4 (docs/results/adapt/check-choice/): at five clips per emotion the nested estimate is too noisy to veto a
gain. The estimate, the model's own figure and the nested estimate's paired gain over it
(``nested_gain_over_unchanged``) are recorded for the user to read.

**The estimate** is of the whole procedure, choice included (nested cross-validation): each outer fold's held-out
speakers are classified by the candidate that the same choice, run on the other speakers alone, keeps. Its interval is
a :data:`ESTIMATE_CONFIDENCE` prediction interval for the UA of a new group of as many speakers (speaker bootstrap:
the figure moves with the draw of the labelled speakers and with the new group's own, so a confidence interval of the
labelled speakers' figure held the UA of new speakers in only 68 % of the learning curve's cells; from two to four
speakers Student's t over their figures, and a clip interval for one, said). The model
before adaptation needs no nesting (nothing is fitted): its figure is what ``ser-hf evaluate`` gives on the labelled
clips with the same recordings. Below :data:`MIN_ESTIMATE_CLIPS_PER_LABEL` labelled clips per emotion or two
speakers, no figure is printed: the line says so instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Optional, Sequence

import numpy as np

from .heads import (
    Classifier,
    PooledStates,
    ProjectorShift,
    fit_head,
    fit_projector_head,
    fit_prototypes,
)

logger = logging.getLogger(__name__)

#: The strengths of the L2 pull towards the trained classifier that the ``head`` candidates use (in units of the mean
#: class-balanced cross-entropy per clip), strongest first.
HEAD_STRENGTHS = (1.0, 0.1, 0.01)
#: The strengths of the L2 pull towards the trained projector and classifier that the ``projector+head`` candidates use
#: (the same units as :data:`HEAD_STRENGTHS`, per weight of either layer), strongest first.
PROJECTOR_STRENGTHS = (1.0, 0.1)
#: The weight of the trained head's log-probabilities in ``head+prototypes``.
PROTOTYPE_MIX = 0.5
#: Leave one speaker out up to this many labelled speakers; grouped k-fold with this many folds beyond.
MAX_FOLDS = 10
#: The folds of the choice inside each outer fold of the nested estimate (grouped k-fold beyond this many speakers).
INNER_FOLDS = 5
#: Folds over clips when every labelled clip is one speaker's.
CLIP_FOLDS = 5
#: The confidence of the paired interval of the UA gain over the unchanged model that an adaptation must clear (its
#: lower end above zero): a one-sided 90 % bound.
GAIN_CONFIDENCE = 0.8
#: The stated level of the estimate's interval.
ESTIMATE_CONFIDENCE = 0.9
#: An emotion with fewer labelled clips than this is not adapted (its row stays the model's), and an adaptation needs
#: two emotions with this many: on the choice draws (RAVDESS left out, draws 100-101, which no reported figure uses)
#: every adaptation of one or two clips per emotion that cleared the paired interval still lost on the test speakers.
MIN_CLIPS_PER_LABEL = 5
#: Labelled clips of fewer speakers than this and the model is kept as it is: folds over one speaker's clips cannot
#: show that an adaptation carries over to new speakers (on the choice draws of TESS left out, draws 100-101, the
#: adaptations chosen on one speaker's clips lost up to 29 points on the other speaker).
MIN_SPEAKERS = 2
#: Fewer scored clips than this many per emotion (or fewer than :data:`MIN_SPEAKERS` speakers) and no estimate is
#: printed: a UA over a handful of clips moves by tens of points from one clip to the next.
MIN_ESTIMATE_CLIPS_PER_LABEL = 3
#: A speaker's labelled clips cover fewer than this share of the labels: standardised with all the labelled clips'
#: statistics in training (heard in few emotions).
MIN_LABEL_SHARE = 0.5
#: The statistics rules a speaker-standardised model can be saved with (module text); ``AS_SAVED`` for any other.
STATISTICS_RULES = ("own", "checked", "set")
AS_SAVED = "as saved"
#: The statistics rules a ``projector+head`` candidate is cross-validated and saved under: never ``checked``, whose
#: check decides with the model's projector and the classifier it started from, so that a moved projector would make
#: the saved model's check another than the one each fold ran.
PROJECTOR_RULES = ("own", "set", AS_SAVED)


@dataclass(frozen=True)
class Candidate:
    """One adaptation a user's clips are cross-validated on: its ``name``, ``kind``, (``head``) pull ``strength`` and
    the statistics ``rule`` it is standardised with. Candidates are listed simplest first; a tie goes to the
    earlier."""

    name: str
    kind: str
    strength: Optional[float] = None
    rule: str = AS_SAVED


def candidates(
    new_labels: bool, rules: Sequence[str] = (AS_SAVED,), projector_rules: Sequence[str] = ()
) -> list[Candidate]:
    """The candidates, simplest first, under each statistics rule of `rules` (the first is the model's own, which
    names carry no mention of); the unchanged model and the mix with its head only where the model knows every label
    of the user's (a head cannot name an emotion it never learnt); ``projector+head`` last, under the rules of
    `projector_rules` only (none: not listed)."""
    kinds = [] if new_labels else [("unchanged", "unchanged", None)]
    kinds += [(f"head (pull {strength:g})", "head", strength) for strength in HEAD_STRENGTHS]
    kinds += [] if new_labels else [("head+prototypes", "mixed", None)]
    kinds.append(("prototypes", "prototypes", None))
    kinds += [(f"projector+head (pull {strength:g})", "projector", strength) for strength in PROJECTOR_STRENGTHS]
    listed = []
    for name, kind, strength in kinds:
        for rule in rules:
            if kind == "projector" and rule not in projector_rules:
                continue
            suffix = "" if rule == rules[0] else f", {rule} statistics"
            listed.append(Candidate(f"{name}{suffix}", kind, strength, rule))
    return listed


def adapted_rows(labels: np.ndarray, num_labels: int, new_rows: Sequence[int] = ()) -> np.ndarray:
    """Which classifier rows an adaptation on clips of `labels` may move: the emotions with
    :data:`MIN_CLIPS_PER_LABEL` clips or more, and those the model lacks (`new_rows`, which only a fit can give a
    row); every other row stays the model's."""
    free = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels) >= MIN_CLIPS_PER_LABEL
    free[list(new_rows)] = True
    return free


def fit_candidate(
    candidate: Candidate,
    start: Classifier,
    projected: np.ndarray,
    labels: np.ndarray,
    new_rows: Sequence[int] = (),
    free: Optional[np.ndarray] = None,
) -> Classifier:
    """`candidate` fitted on the labelled clips (`projected`, `labels`), starting from the model's classifier; only
    the rows `free` marks move (default: :func:`adapted_rows` of `labels`)."""
    if candidate.kind == "unchanged":
        return start
    free = adapted_rows(labels, start.weight.shape[0], new_rows) if free is None else free
    if candidate.kind == "head":
        return fit_head(start, projected, labels, candidate.strength, free)
    prototypes = fit_prototypes(start, projected, labels, free)
    if candidate.kind == "prototypes":
        return prototypes
    if candidate.kind == "mixed":
        return Classifier(
            PROTOTYPE_MIX * start.weight + (1 - PROTOTYPE_MIX) * prototypes.weight,
            PROTOTYPE_MIX * start.bias + (1 - PROTOTYPE_MIX) * prototypes.bias,
        )
    raise ValueError(f"Unknown candidate kind {candidate.kind!r}.")


def cross_validation_folds(
    labels: np.ndarray, speakers: Sequence[Hashable], seed: int = 0, max_folds: int = MAX_FOLDS
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Train/held-out folds over the labelled clips and a line naming them: leave-one-speaker-out up to `max_folds`
    speakers, grouped k-fold (`max_folds` folds) beyond, stratified folds over clips when there is one speaker (then
    the estimate is of new clips of that speaker, not of new speakers)."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold

    groups = np.asarray([str(speaker) for speaker in speakers], dtype=object)
    distinct = len(set(groups.tolist()))
    index = np.zeros(len(labels))
    if distinct >= 2:
        if distinct <= max_folds:
            return list(
                LeaveOneGroupOut().split(index, labels, groups)
            ), f"leave-one-speaker-out ({distinct} speakers)"
        splitter = GroupKFold(n_splits=max_folds, shuffle=True, random_state=seed)
        return list(splitter.split(index, labels, groups)), f"{max_folds} folds of speakers ({distinct} speakers)"
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min())
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


def paired_gain(
    labels: np.ndarray, before: np.ndarray, candidate: np.ndarray, speakers: Sequence[Hashable], num_labels: int
) -> dict[str, Any]:
    """The candidate's UA gain over the predictions `before` (the unchanged model's, or the default adaptation's) on
    the same held-out clips, with a paired bootstrap interval at :data:`GAIN_CONFIDENCE`: over speakers from five of
    them, over clips below (fewer speakers cannot say how far a gain would move on others; clips at least say whether
    it is more than a few lucky ones)."""
    from ..evaluation.bootstrap import MIN_RELIABLE_SPEAKERS, paired_comparison

    by_speaker = len(set(map(str, speakers))) >= MIN_RELIABLE_SPEAKERS
    groups = list(speakers) if by_speaker else list(range(len(labels)))
    result = paired_comparison(
        labels, before, candidate, groups, num_labels, confidence_level=GAIN_CONFIDENCE, n_resamples=1000
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
    """The :data:`ESTIMATE_CONFIDENCE` interval of where the UA of out-of-fold predictions falls on a new group of as
    many speakers: a speaker-bootstrap prediction interval from five speakers (the scored speakers' own draw and the
    new group's, :func:`~ser_hf.evaluation.bootstrap.speaker_prediction_interval`), Student's t from two to four
    speakers, a clip interval for one (said in ``method``)."""
    from ..evaluation.bootstrap import speaker_prediction_interval

    result = speaker_prediction_interval(
        labels, predictions, speakers, num_labels, confidence_level=ESTIMATE_CONFIDENCE
    )
    low, high = result["interval"]
    return {
        "low": round(100 * low, 1),
        "high": round(100 * high, 1),
        "method": result["method"],
        "confidence_level": ESTIMATE_CONFIDENCE,
    }


@dataclass
class Selection:
    """What the cross-validation chose and measured (the ``selection`` of ``adaptation.json``)."""

    chosen: Candidate
    classifier: Classifier
    folds: str
    scores: dict[str, float]
    estimate: dict[str, Any]
    before: Optional[dict[str, Any]]
    statistics: dict[str, Any] = field(default_factory=dict)
    gains: dict[str, dict[str, Any]] = field(default_factory=dict)
    too_few_clips: Optional[str] = None
    #: Why an adaptation was kept without the cross-validation's say (the model lacks a label of the user's).
    forced: Optional[str] = None
    model_rule: str = AS_SAVED
    short_labels: dict[str, int] = field(default_factory=dict)
    #: Whether the chosen candidate is the default adaptation, kept because the folds do not show it worse.
    by_default: bool = False
    #: The nested predictions' paired UA gain over the unchanged model's on the scored clips (:func:`paired_gain`).
    nested_gain: Optional[dict[str, Any]] = None
    #: The digests of the clips the classifier was fitted on (``adaptation.json``'s ``fitted_clips``, not here).
    fitted_clips: list[str] = field(default_factory=list, repr=False)

    @property
    def unchanged(self) -> bool:
        return self.chosen.kind == "unchanged" and self.chosen.rule == self.model_rule

    def to_dict(self) -> dict[str, Any]:
        record = {
            "chosen": self.chosen.name,
            "kind": self.chosen.kind,
            "strength": self.chosen.strength,
            "statistics_rule": self.chosen.rule,
            "model_statistics_rule": self.model_rule,
            "unchanged": self.unchanged,
            "cross_validation": self.folds,
            "cross_validated_ua": self.scores,
            "gain_over_unchanged": self.gains,
            "too_few_clips": self.too_few_clips,
            "forced": self.forced,
            "by_default": self.by_default,
            "nested_gain_over_unchanged": self.nested_gain,
            "short_labels": self.short_labels,
            "estimate": self.estimate,
            "before_adaptation": self.before,
            "statistics": self.statistics,
        }
        record["estimate_line"] = estimate_line(record)
        return record

    def estimate_line(self) -> str:
        """The line ``ser-hf adapt`` ends with, the report and the card show."""
        return self.to_dict()["estimate_line"]


def _figure(estimate: Mapping[str, Any]) -> str:
    return f"{estimate['ua']:.1f} % [{estimate['low']:.1f}, {estimate['high']:.1f}]"


def estimate_line(selection: Mapping[str, Any]) -> str:
    """One line: the expected UA on new speakers of the user's set-up (or why there is no figure), with the model
    before adaptation's, and what was kept."""
    estimate, before = selection["estimate"], selection["before_adaptation"]
    if selection.get("forced"):
        kept = f"adaptation kept: {selection['chosen']}, without the cross-validation's say: {selection['forced']}"
    elif selection.get("too_few_clips") and selection["unchanged"]:
        kept = f"the model is kept unchanged: {selection['too_few_clips']}"
    elif selection["unchanged"]:
        kept = "the model is kept unchanged: no adaptation beat it on your held-out speakers"
    elif selection.get("by_default"):
        kept = f"adaptation kept: {selection['chosen']}, the default, which your held-out speakers do not show worse"
    else:
        kept = f"adaptation kept: {selection['chosen']}"
    if estimate.get("ua") is None:
        return f"No estimate of the UA on new speakers of your set-up: {estimate['too_few']} ({kept})."
    level = round(100 * estimate.get("confidence_level", 0.95))
    text = f"Expected UA on new speakers of your set-up: {_figure(estimate)} ({level} % interval)"
    if before is not None and before.get("ua") is not None and not selection["unchanged"]:
        text += f"; the model before adaptation: {_figure(before)}"
    nested = "nested cross-validation" if estimate.get("nested") else "cross-validated"
    return f"{text} ({kept}; {nested}, {selection['cross_validation']}{_interval_caveat(estimate['method'])})"


def _interval_caveat(method: str) -> str:
    """What the reader should know about an interval that is not a speaker bootstrap's."""
    if "clip" in method:
        return "; a clip interval: one speaker says nothing of how new speakers differ"
    if "Student" in method:
        return "; a Student's t interval: too few speakers to resample"
    return ""


@dataclass
class _Choice:
    """One run of the choice on some of the labelled clips: the candidate kept, every candidate's out-of-fold
    predictions and UA, the gains over the unchanged model, and why the model was kept where it was too few."""

    chosen: Candidate
    folds: list[tuple[np.ndarray, np.ndarray]]
    description: str
    predictions: dict[str, np.ndarray]
    scores: dict[str, float]
    gains: dict[str, dict[str, Any]]
    too_few: Optional[str]
    short: dict[int, int]
    #: Whether `chosen` is the default adaptation, kept because the folds do not show it worse than the model.
    by_default: bool = False


class _Problem:
    """The labelled clips as every run of the choice reads them (the candidates, their inputs under each statistics
    rule, the labels, speakers and which clips are scored)."""

    def __init__(self, start, training, evaluation, labels, speakers, new_rows, scored, seed, pooled=None):
        self.start, self.training, self.evaluation = start, training, evaluation
        self.labels, self.speakers = labels, np.asarray([str(s) for s in speakers], dtype=object)
        self.new_rows, self.scored, self.seed = list(new_rows), scored, seed
        self.num_labels = start.weight.shape[0]
        self.rules = list(training)
        # Which rows adapt is the user's clips' to say (every labelled clip counted), and the same in every fold: the
        # folds then measure the rows the saved model moves, not fewer (a fold holds fewer clips of each emotion).
        self.free = adapted_rows(labels, self.num_labels, self.new_rows)
        self.pooled = pooled
        projector_rules = [rule for rule in PROJECTOR_RULES if self.pooled and rule in self.pooled.training]
        self.listed = candidates(bool(self.new_rows), self.rules, projector_rules)
        # The default adaptation: the first projector+head listed (the strongest pull, under the first rule of
        # PROJECTOR_RULES the model has), against a model it can be compared with (unchanged listed).
        projectors = [candidate for candidate in self.listed if candidate.kind == "projector"]
        self.default = projectors[0] if projectors and not self.new_rows else None

    def fit(self, candidate: Candidate, rows: np.ndarray) -> Classifier:
        if candidate.kind == "projector":
            kernel = self.pooled.kernels(candidate.rule)[0][np.ix_(rows, rows)]
            projected = self.training[candidate.rule][rows]
            return fit_projector_head(
                self.start, projected, kernel, self.labels[rows], candidate.strength, rows, candidate.rule
            )
        return fit_candidate(
            candidate, self.start, self.training[candidate.rule][rows], self.labels[rows], self.new_rows, self.free
        )

    def predict(self, classifier: Classifier, candidate: Candidate, rows: np.ndarray) -> np.ndarray:
        kernel = None
        if classifier.shift is not None:
            kernel = self.pooled.kernels(candidate.rule)[1][np.ix_(rows, classifier.shift.rows)]
        return classifier.logits(self.evaluation[candidate.rule][rows], kernel).argmax(axis=1)

    def choose(self, rows: np.ndarray, max_folds: int = MAX_FOLDS) -> _Choice:
        """The choice (module text) on the clips `rows`: folds over their scored clips (every unscored clip trains in
        every fold), every candidate's out-of-fold predictions, the gates, and the best candidate allowed."""
        scored_rows, unscored_rows = rows[self.scored[rows]], rows[~self.scored[rows]]
        labels, speakers = self.labels[scored_rows], self.speakers[scored_rows]
        folds, description = cross_validation_folds(labels, speakers, self.seed, max_folds)
        folds = [(np.concatenate([scored_rows[train], unscored_rows]), scored_rows[held]) for train, held in folds]
        predictions = {candidate.name: np.zeros(len(self.labels), dtype=np.int64) for candidate in self.listed}
        for train, held_out in folds:
            for candidate in self.listed:
                fitted = self.fit(candidate, train)
                predictions[candidate.name][held_out] = self.predict(fitted, candidate, held_out)
        scores = {name: round(unweighted_accuracy(labels, p[scored_rows]), 2) for name, p in predictions.items()}
        gains = {}
        if not self.new_rows:
            # Against the model as it is, an adaptation must show a gain the held-out clips can tell from noise.
            unchanged = predictions[self.listed[0].name][scored_rows]
            gains = {
                candidate.name: paired_gain(
                    labels, unchanged, predictions[candidate.name][scored_rows], speakers, self.num_labels
                )
                for candidate in self.listed[1:]
            }
        counts = np.bincount(labels, minlength=self.num_labels)
        short = {label: int(count) for label, count in enumerate(counts) if 0 < count < MIN_CLIPS_PER_LABEL}
        too_few = None
        if np.count_nonzero(counts >= MIN_CLIPS_PER_LABEL) < 2:
            too_few = f"fewer than {MIN_CLIPS_PER_LABEL} labelled clips of two emotions"
        elif len(set(speakers.tolist())) < MIN_SPEAKERS:
            too_few = "clips of one speaker, which cannot show that an adaptation carries over to new speakers"
        allowed = [
            candidate
            for candidate in self.listed
            if candidate is self.listed[0]
            or (too_few is None and (candidate.name not in gains or gains[candidate.name]["low"] > 0))
        ]
        margin = 100.0 / max(len(scored_rows), 1)
        chosen, by_default = allowed[0], False
        default = self.default
        if default is not None and too_few is None and default.name in gains and gains[default.name]["high"] >= 0:
            # The default adaptation needs no proof of a gain, only no proof of a loss, and once kept it stands
            # (module text).
            chosen, by_default = default, True
        else:
            for candidate in allowed[1:]:
                if candidate is not default and scores[candidate.name] > scores[chosen.name] + margin:
                    chosen = candidate
        return _Choice(chosen, folds, description, predictions, scores, gains, too_few, short, by_default)

    def nested_predictions(self, outer: _Choice) -> np.ndarray:
        """Each outer fold's held-out clips classified by what the choice, run on that fold's other clips alone
        (:data:`INNER_FOLDS` folds), keeps and fits there."""
        predictions = np.zeros(len(self.labels), dtype=np.int64)
        for train, held_out in outer.folds:
            inner = self.choose(np.sort(train), max_folds=INNER_FOLDS)
            predictions[held_out] = self.predict(self.fit(inner.chosen, train), inner.chosen, held_out)
        return predictions


def select_adaptation(
    start: Classifier,
    training: np.ndarray | Mapping[str, np.ndarray],
    evaluation: np.ndarray | Mapping[str, np.ndarray],
    labels: np.ndarray,
    speakers: Sequence[Hashable],
    *,
    new_labels: bool | Sequence[int] = False,
    seed: int = 0,
    scored: Optional[np.ndarray] = None,
    label_names: Optional[Sequence[str]] = None,
    pooled: Optional[PooledStates] = None,
) -> Selection:
    """Cross-validate every candidate under every statistics rule, refit the winner on all the labelled clips, and
    estimate the whole procedure by nested cross-validation.

    Args:
        start (`Classifier`): the model's classifier on the user's labels (calibrated units).
        training (`np.ndarray` `(clips, width)`, or a mapping of statistics rule to one): each labelled clip's
            projected representation standardised as the adaptation trains on it under each rule; the first rule is
            the model's own (a plain array: the model's own only).
        evaluation (same): the same clips standardised as the model standardises them at inference under each rule
            (each held-out fold is scored on these).
        labels (`np.ndarray`), speakers (`Sequence`): each clip's label (index into the user's labels) and speaker.
        new_labels (`bool` or rows): the rows of the user's labels that the model lacks (`True`: some, unnamed; no
            unchanged candidate then).
        scored (`np.ndarray` of `bool`, *optional*): the clips the estimate scores (default all); the others
            (self-training's pseudo-labelled clips, clips the model was fitted on) only train.
        label_names (`Sequence[str]`, *optional*): the labels' names, for the log and the record.
        pooled (`PooledStates`, *optional*): the same clips' input to the model's projector under the rules of
            :data:`PROJECTOR_RULES` (the ``projector+head`` candidates are listed only with them, and only where every
            emotion has :data:`MIN_CLIPS_PER_LABEL` labelled clips).
    """
    if not isinstance(training, Mapping):
        training, evaluation = {AS_SAVED: training}, {AS_SAVED: evaluation}
    labels = np.asarray(labels, dtype=np.int64)
    scored = np.ones(len(labels), dtype=bool) if scored is None else np.asarray(scored, dtype=bool)
    if isinstance(new_labels, bool):  # the rows the model lacks are the zero rows start_classifier gives them
        new_rows = np.flatnonzero(~start.weight.any(axis=1)).tolist() if new_labels else []
    else:
        new_rows = [int(row) for row in new_labels]
    names = list(label_names) if label_names else [str(label) for label in range(start.weight.shape[0])]
    problem = _Problem(start, dict(training), dict(evaluation), labels, speakers, new_rows, scored, seed, pooled)
    if not scored.any():
        return _nothing_to_score(problem, names)
    choice = problem.choose(np.arange(len(labels)))
    chosen, forced = choice.chosen, None
    if choice.too_few and new_rows:  # no unchanged model to keep: the simplest adaptation, and the log says so
        missing = ", ".join(names[row] for row in new_rows)
        forced = f"the model lacks {missing}, which only a new classifier row can name ({choice.too_few})"
    scored_rows = np.flatnonzero(scored)
    estimate, before, nested_gain = _estimates(problem, choice, scored_rows, bool(new_rows))
    selection = Selection(
        chosen=chosen,
        classifier=problem.fit(chosen, np.arange(len(labels))),
        folds=choice.description,
        scores=choice.scores,
        estimate=estimate,
        before=before,
        gains=choice.gains,
        too_few_clips=choice.too_few,
        forced=forced,
        model_rule=problem.rules[0],
        short_labels={names[label]: count for label, count in choice.short.items()},
        by_default=choice.by_default and forced is None,
        nested_gain=nested_gain,
    )
    _log_choice(choice, forced, names, scored_rows, problem.speakers[scored_rows].tolist())
    return selection


def _estimates(
    problem: _Problem, choice: _Choice, scored_rows: np.ndarray, new_rows: bool
) -> tuple[dict[str, Any], Optional[dict[str, Any]], Optional[dict[str, Any]]]:
    """The estimate of the whole procedure on the scored clips (nested where there is a choice to nest; `None`
    figures, and why, where the clips are too few for one worth printing), the model's own figure before
    adaptation on them, and the estimate's paired gain over it (both `None` where the model lacks a label or the
    clips are too few)."""
    labels = problem.labels
    scored_speakers = problem.speakers[scored_rows].tolist()
    present = len(np.unique(labels[scored_rows]))

    def figure(predicted: np.ndarray) -> dict[str, Any]:
        ua = round(unweighted_accuracy(labels[scored_rows], predicted[scored_rows]), 2)
        return {"ua": ua, **interval(labels[scored_rows], predicted[scored_rows], scored_speakers, problem.num_labels)}

    if len(set(scored_speakers)) < MIN_SPEAKERS or len(scored_rows) < MIN_ESTIMATE_CLIPS_PER_LABEL * present:
        too_few = (
            f"{len(scored_rows)} scored labelled clip(s) of {len(set(scored_speakers))} speaker(s) are too few for a "
            f"figure worth printing ({MIN_ESTIMATE_CLIPS_PER_LABEL} per emotion and {MIN_SPEAKERS} speakers needed)"
        )
        return {"ua": None, "low": None, "high": None, "too_few": too_few}, None, None
    nested = problem.nested_predictions(choice) if len(problem.listed) > 1 else choice.predictions[choice.chosen.name]
    estimate = {**figure(nested), "nested": len(problem.listed) > 1}
    if new_rows:
        return estimate, None, None
    unchanged = choice.predictions[problem.listed[0].name]
    gain = paired_gain(
        labels[scored_rows], unchanged[scored_rows], nested[scored_rows], scored_speakers, problem.num_labels
    )
    return estimate, figure(unchanged), gain


def _log_choice(
    choice: _Choice,
    forced: Optional[str],
    names: Sequence[str],
    scored_rows: np.ndarray,
    scored_speakers: list,
) -> None:
    """Say what the cross-validation chose and why: the model kept for too few clips, a choice forced, labels too
    short of clips to adapt, then the scores of every candidate."""
    if choice.too_few and not forced:
        logger.warning(
            "%d labelled clips of %d speaker(s): %s; the model is kept as it is (label more clips, of more speakers, "
            "to adapt it).",
            len(scored_rows),
            len(set(scored_speakers)),
            choice.too_few,
        )
    elif forced:
        logger.warning("Adaptation kept without the cross-validation's say: %s: %s.", choice.chosen.name, forced)
    elif choice.short:
        logger.warning(
            "Too few labelled clips of %s (fewer than %d): their classifier rows stay the model's in every head "
            "adaptation%s; label more clips of them to adapt them too.",
            ", ".join(f"{names[label]} ({count})" for label, count in choice.short.items()),
            MIN_CLIPS_PER_LABEL,
            " (the projector+head adaptation kept moves every emotion's logits, held near the model's by its pull)"
            if choice.chosen.kind == "projector"
            else "",
        )
    if choice.by_default and not forced:
        gain = choice.gains[choice.chosen.name]
        logger.info(
            "Adaptation kept by default: %s; its gain over the model on your held-out speakers, %+.1f points "
            "[%+.1f, %+.1f] (%d %% interval over %s), does not show it worse.",
            choice.chosen.name,
            gain["gain"],
            gain["low"],
            gain["high"],
            round(100 * GAIN_CONFIDENCE),
            gain["over"],
        )
    logger.info(
        "Adaptation chosen by cross-validation (%s; a candidate must beat a simpler one by %.1f points): %s. UA per "
        "candidate: %s.",
        choice.description,
        100.0 / max(len(scored_rows), 1),
        choice.chosen.name,
        ", ".join(f"{name} {score:.1f}" for name, score in choice.scores.items()),
    )


def _nothing_to_score(problem: _Problem, names: Sequence[str]) -> Selection:
    """Every labelled clip is one the model was fitted on (or pseudo-labelled): nothing can be cross-validated, so the
    model is kept (the simplest adaptation where it lacks a label), and the line says why."""
    reason = "every labelled clip is one the model was already fitted on or a pseudo-labelled one, so none can score"
    chosen, forced = problem.listed[0], None
    if problem.new_rows:
        forced = f"the model lacks {', '.join(names[row] for row in problem.new_rows)} ({reason})"
    logger.warning("Nothing to cross-validate: %s; %s.", reason, "the model is kept" if not forced else forced)
    return Selection(
        chosen=chosen,
        classifier=problem.fit(chosen, np.arange(len(problem.labels))),
        folds="none (no clip to score)",
        scores={},
        estimate={"ua": None, "low": None, "high": None, "too_few": reason},
        before=None,
        too_few_clips=reason,
        forced=forced,
        model_rule=problem.rules[0],
    )


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
            "labels): they are standardised with the statistics of all the labelled clips in training, not their "
            "own.",
            len(few),
            len(by_speaker),
            needed,
        )
    return few, record


__all__ = [
    "AS_SAVED",
    "Candidate",
    "Classifier",
    "HEAD_STRENGTHS",
    "PROJECTOR_STRENGTHS",
    "PooledStates",
    "ProjectorShift",
    "STATISTICS_RULES",
    "Selection",
    "candidates",
    "cross_validation_folds",
    "estimate_line",
    "fit_candidate",
    "fit_projector_head",
    "select_adaptation",
    "training_statistics",
]
