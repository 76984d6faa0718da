"""Model inputs standardised by statistics: the training set's (``global``) or each speaker's own (``speaker``), and
the openSMILE functionals computed once per corpus.

Speaker normalisation standardises every clip's features with the mean and standard deviation of its own speaker's
features, computed from that speaker's clips without their labels. It removes much of what differs between
speakers (vocal tract, habitual pitch and loudness, recording set-up), which a model trained on a few dozen speakers
otherwise mistakes for emotion. At evaluation it is **transductive**: each test speaker is standardised with
statistics of their own (unlabelled) test clips, so it needs several clips of every speaker, and every report says
so. It also assumes each speaker's clips span the emotions roughly as the training speakers' do: a speaker heard in
one or two emotions only gets statistics of those emotions, which erases the very differences the model needs. The
report warns where a speaker's label or duration distribution is far from the training one.

An openSMILE extractor with ``num_selected_features`` also keeps only the functionals that best separate the
emotions of the training split once standardised (as the model will see them); only the training split's labels are
read for that.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from datasets import Dataset, DatasetDict

from ..data.dataset_info import column_values
from ..data.decode import WAVEFORM_COLUMN
from ..models.feature_extraction_opensmile import functionals_minimum_samples, functionals_too_short
from ..models.feature_extraction_whisper import SerWhisperFeatureExtractor
from ..models.feature_normalization import (
    GROUP_NORMALIZATIONS,
    STATISTICS_NORMALIZATIONS,
    RunningStatistics,
    Statistics,
)
from .base import drop_clips_shorter_than

logger = logging.getLogger(__name__)

#: The column of precomputed openSMILE functionals (one vector per clip).
FUNCTIONALS_COLUMN = "functionals"
#: The column of FAST mode's cached encoder states (each clip's mean states, per layer or of the last one).
ENCODER_STATES_COLUMN = "encoder_states"
#: How far (total variation distance) a speaker's label or duration distribution may be from the training one
#: before the report warns that per-speaker statistics may erase emotion differences.
DISTRIBUTION_WARNING_DISTANCE = 0.35
#: Duration bins (seconds) for the duration-distribution check.
DURATION_BINS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0, np.inf)

TRANSDUCTIVE_PROTOCOL = (
    "speaker-normalised features (transductive): every speaker's features, test speakers' "
    "included, are standardised with statistics of that speaker's own unlabelled clips"
)
CORPUS_PROTOCOL = (
    "corpus-normalised features (transductive): every corpus' features, the evaluated corpus' included, are "
    "standardised with statistics of all that corpus' own unlabelled clips"
)

CHECKED_PROTOCOL = (
    "checked: where the model's predictions under the statistics of all the evaluated clips say the speakers are "
    "heard in few emotions, those statistics instead"
)

UTTERANCE_PROTOCOL = (
    "per-utterance normalisation: each clip's encoder states centred on the clip's own mean over its frames (no "
    "other clip needed), their standard deviations standardised with the training speakers' statistics"
)


@dataclass
class NormalizationPlan:
    """How a run standardises its model inputs: the statistics of each group of clips to feed the collators
    (``speaker``: by speaker; ``corpus``: by corpus; under ``speaker_statistics`` either way), the protocol line
    reports carry, the warnings of the distribution check, and what the check of speaker statistics decided
    (``check``, see :mod:`ser_hf.evaluation.speaker_check`)."""

    mode: str
    speaker_statistics: Optional[dict[str, Statistics]] = None
    warnings: list[str] = field(default_factory=list)
    check: Optional[dict[str, Any]] = None

    @property
    def group_column(self) -> str:
        """The column naming each clip's group of statistics (``speaker_id``, or ``corpus``)."""
        return GROUP_NORMALIZATIONS.get(self.mode, "speaker_id")

    @property
    def protocol(self) -> str:
        if self.mode == "speaker" and self.check is not None:
            return f"{TRANSDUCTIVE_PROTOCOL}, {CHECKED_PROTOCOL}"
        if self.mode == "speaker":
            return TRANSDUCTIVE_PROTOCOL
        if self.mode == "corpus":
            return CORPUS_PROTOCOL
        if self.mode == "utterance":
            return UTTERANCE_PROTOCOL
        return "features standardised with the training speakers' statistics (global)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "transductive": self.mode in GROUP_NORMALIZATIONS,
            "protocol": self.protocol,
            "speakers": sorted(self.speaker_statistics) if self.speaker_statistics else [],
            "warnings": self.warnings,
            **({"check": self.check} if self.check is not None else {}),
        }


def ensemble_normalization(plans: Sequence[tuple[str, Optional[Mapping[str, Any]]]]) -> Optional[dict[str, Any]]:
    """How an ensemble's members standardised their features (``(member name, its plan as`` :meth:`NormalizationPlan.
    to_dict` ``gives it, or None)`` per member), as one protocol line: transductive when any member's is."""
    plans = [(name, plan) for name, plan in plans if plan]
    if not plans:
        return None
    return {
        "mode": "ensemble",
        "transductive": any(plan.get("transductive", False) for _, plan in plans),
        "protocol": "; ".join(f"{name}: {plan['protocol']}" for name, plan in plans),
        "warnings": [warning for _, plan in plans for warning in plan.get("warnings", [])],
    }


# --- openSMILE functionals, once per corpus -------------------------------------------------------------------------


def _functionals_batch(batch: dict, feature_set: str, sampling_rate: int) -> dict:
    from ..models import OpenSmileFeatureExtractor

    extractor = OpenSmileFeatureExtractor(feature_set=feature_set, sampling_rate=sampling_rate, normalization="none")
    return {FUNCTIONALS_COLUMN: [extractor.functionals(waveform) for waveform in batch[WAVEFORM_COLUMN]]}


def compute_functionals_once(dataset: Dataset, feature_extractor, num_proc: Optional[int] = None) -> Dataset:
    """Add the openSMILE functionals of every clip as a column, computed once for the whole corpus before it is
    split (``datasets`` caches the result beside the decoded audio, keyed by the dataset, the feature set and the
    openSMILE version: a second run, every fold and the leakage study read it back, and the log says which it did).

    A clip shorter than openSMILE's first frame (:func:`functionals_minimum_samples`: 60 ms for eGeMAPS) would get
    functionals that are all NaN, which the extractor turns into zeros, a clip the model scores as if it were speech:
    such clips are an :class:`~ser_hf.data.corpora.base.InvalidClipError` naming them (training drops them first with
    ``skip_invalid``)."""
    if FUNCTIONALS_COLUMN in dataset.column_names:
        return dataset
    feature_set, sampling_rate = feature_extractor.feature_set, feature_extractor.sampling_rate
    drop_clips_too_short_for_functionals(dataset, feature_set, sampling_rate)
    fn_kwargs = {"feature_set": feature_set, "sampling_rate": sampling_rate}
    fingerprint = _functionals_fingerprint(dataset, fn_kwargs)
    if _map_is_cached(dataset, fingerprint):
        logger.info(
            "Reading the %s functionals of %d clips from the cache (computed by an earlier run).",
            feature_set,
            len(dataset),
        )
    else:
        logger.info("Computing %s functionals of %d clips once (cached for later runs).", feature_set, len(dataset))
    return dataset.map(
        _functionals_batch,
        batched=True,
        batch_size=16,
        num_proc=num_proc,
        fn_kwargs=fn_kwargs,
        new_fingerprint=fingerprint,
        desc=f"openSMILE {feature_set} functionals",
    )


def _functionals_fingerprint(dataset: Dataset, fn_kwargs: Mapping[str, Any]) -> str:
    """The fingerprint of the functionals' ``map``, set here rather than by ``datasets`` so that whether its cache
    exists can be told before it runs: the dataset's, the function's code, the feature set and rate, openSMILE's
    version."""
    from importlib.metadata import PackageNotFoundError, version

    from datasets.fingerprint import Hasher

    try:
        opensmile_version = version("opensmile")
    except PackageNotFoundError:
        opensmile_version = None
    return Hasher.hash([dataset._fingerprint, _functionals_batch, dict(fn_kwargs), opensmile_version])


def _map_is_cached(dataset: Dataset, fingerprint: str) -> bool:
    """Whether ``dataset.map(..., new_fingerprint=fingerprint)`` reads its result from the cache: as ``datasets``
    decides, its file ``cache-FINGERPRINT.arrow`` beside the dataset's, or a complete set of the shards a run with
    ``num_proc`` wrote (``cache-FINGERPRINT_00000_of_00004.arrow`` ...)."""
    from datasets import is_caching_enabled

    if not dataset.cache_files or not is_caching_enabled():
        return False  # an in-memory dataset, or caching off: computed every time
    folder = Path(dataset.cache_files[0]["filename"]).parent
    if (folder / f"cache-{fingerprint}.arrow").is_file():
        return True
    shards = Counter()
    for path in folder.glob(f"cache-{fingerprint}_*_of_*.arrow"):
        shards[path.stem.rsplit("_of_", 1)[1]] += 1
    return any(int(total) == found for total, found in shards.items())


def drop_clips_too_short_for_functionals(
    dataset: Dataset, feature_set: str, sampling_rate: int, skip_invalid: bool = False
) -> Dataset:
    """Stop on clips whose openSMILE functionals would all be NaN (see :func:`functionals_minimum_samples`), naming
    them; with ``skip_invalid`` drop them, with a warning. Reads the ``duration`` column (none: nothing checked)."""
    if "duration" not in dataset.column_names:
        return dataset
    minimum = functionals_minimum_samples(feature_set, sampling_rate) / sampling_rate
    return drop_clips_shorter_than(
        dataset, minimum, skip_invalid=skip_invalid, what=functionals_too_short(feature_set)
    )


# --- Statistics -----------------------------------------------------------------------------------------------------


def clip_feature_rows(feature_extractor, waveforms: Sequence[np.ndarray], model=None) -> list[np.ndarray]:
    """Each clip's features before normalisation, as rows `(n, features)` to take statistics over: its frames, or
    its one vector of openSMILE functionals. The extractor's own computation, so that statistics describe exactly what
    it standardises. A Whisper extractor standardises the encoder's pooled states: those come from `model` (the
    classifier), one row per clip, as FAST mode caches them."""
    if isinstance(feature_extractor, SerWhisperFeatureExtractor):
        return _encoder_state_rows(feature_extractor, waveforms, model)
    features = feature_extractor(
        list(waveforms),
        sampling_rate=feature_extractor.sampling_rate,
        padding=False,
        normalize=False,
        return_attention_mask=False,
    )["input_features"]
    return [np.asarray(clip, np.float32).reshape(-1, np.shape(clip)[-1]) for clip in features]


def _encoder_state_rows(feature_extractor, waveforms: Sequence[np.ndarray], model) -> list[np.ndarray]:
    pooled_encoder_states = getattr(model, "pooled_encoder_states", None)
    if pooled_encoder_states is None:
        raise ValueError(
            f"{type(feature_extractor).__name__} standardises the encoder's pooled states, which only its model "
            f"computes: pass the Whisper classifier (model=...), not {type(model).__name__ if model else 'None'}."
        )
    inputs = feature_extractor(
        list(waveforms),
        sampling_rate=feature_extractor.sampling_rate,
        return_tensors="pt",
        return_state_statistics=False,
    )
    states = pooled_encoder_states(
        inputs["input_features"].to(device=model.device, dtype=model.dtype), inputs["attention_mask"].to(model.device)
    )
    return list(states.reshape(len(waveforms), 1, -1).cpu().numpy())


def _feature_rows(
    feature_extractor, dataset: Dataset, batch_size: int = 32, model=None, group_column: str = "speaker_id"
):
    """``(speaker, rows)`` of a split (or ``(corpus, rows)`` with ``group_column="corpus"``): its clips' features
    before normalisation (see :func:`clip_feature_rows`), read from the ``functionals`` column, or the
    ``encoder_states`` column (flattened: every layer's pooled states in one row), when it is there."""
    speakers = column_values(dataset, group_column)
    for column in (FUNCTIONALS_COLUMN, ENCODER_STATES_COLUMN):
        if column in dataset.column_names:
            values = np.asarray(dataset.with_format("numpy")[column], np.float32)
            for speaker, row in zip(speakers, values.reshape(len(values), -1)):
                yield speaker, row[None, :]
            return
    if isinstance(feature_extractor, SerWhisperFeatureExtractor) and model is None:
        raise ValueError(
            f"{type(feature_extractor).__name__} standardises the encoder's states: the dataset has no "
            f"{ENCODER_STATES_COLUMN!r} column (FAST mode's cache), so pass the model that computes them. Train "
            "with cache_encoder_outputs: true (and freeze_base_model: true)."
        )
    numpy_view = dataset.with_format("numpy")
    for start in range(0, len(dataset), batch_size):
        waveforms = list(numpy_view[start : start + batch_size][WAVEFORM_COLUMN])
        rows = clip_feature_rows(feature_extractor, waveforms, model)
        yield from zip(speakers[start : start + batch_size], rows)


def statistics_by_speaker(rows: Iterable[tuple[str, np.ndarray]]) -> dict[str, RunningStatistics]:
    """Running statistics per speaker over ``(speaker, feature rows)`` pairs (a corpus' clips, or the windows of
    the recordings ``ser-hf predict`` classifies)."""
    statistics: dict[str, RunningStatistics] = {}
    for speaker, speaker_rows in rows:
        statistics.setdefault(speaker, RunningStatistics()).add(speaker_rows)
    return statistics


def speaker_statistics(
    feature_extractor, dataset: Dataset, model=None, group_column: str = "speaker_id"
) -> dict[str, RunningStatistics]:
    """Each speaker's running statistics over their clips' features (a Whisper extractor's from `model`, unless the
    dataset holds FAST mode's cached states); each corpus' with ``group_column="corpus"``. Reads no label."""
    return statistics_by_speaker(_feature_rows(feature_extractor, dataset, model=model, group_column=group_column))


def _distance(a: Counter, b: Counter) -> float:
    total_a, total_b = sum(a.values()) or 1, sum(b.values()) or 1
    return 0.5 * sum(abs(a[key] / total_a - b[key] / total_b) for key in set(a) | set(b))


def _duration_bins_by_speaker(split: Dataset) -> dict[tuple[Any, str], Counter]:
    """The binned clip durations of each ``(corpus, speaker)`` of `split` (corpus `None` without a ``corpus``
    column)."""
    durations = column_values(split, "duration")
    speakers = column_values(split, "speaker_id")
    corpora = column_values(split, "corpus") if "corpus" in split.column_names else [None] * len(split)
    bins: dict[tuple[Any, str], Counter] = {}
    for corpus, speaker, duration in zip(corpora, speakers, np.digitize(durations, DURATION_BINS)):
        bins.setdefault((corpus, speaker), Counter())[duration] += 1
    return bins


def _duration_warnings(splits: DatasetDict, reference: str, reference_description: str) -> list[str]:
    """Speakers outside the ``reference`` split whose clip durations are far from those of the other speakers of their
    own corpus: the ``reference`` split's (with the speaker's own clips left out, where the reference is the split
    itself), else, for a corpus the reference lacks (left out of training), the other speakers of the same split.
    Corpora differ in clip length by design (TESS's single words, RAVDESS's sentences), so comparing a speaker with
    the clips of other corpora would flag speakers recorded exactly as the training ones; within a corpus, the
    shipped general recipes' speakers stay well below :data:`DISTRIBUTION_WARNING_DISTANCE`
    (tests/inputs/test_duration_warning.py)."""
    reference_bins = _duration_bins_by_speaker(splits[reference])
    warnings = []
    for name, split in splits.items():
        if name == reference:
            continue
        own_bins = _duration_bins_by_speaker(split)
        for corpus, speaker in sorted(own_bins, key=lambda key: (str(key[0]), key[1])):
            others = Counter()
            for (other_corpus, other_speaker), counts in reference_bins.items():
                if other_corpus == corpus and other_speaker != speaker:
                    others.update(counts)
            described = reference_description
            if not others:
                for (other_corpus, other_speaker), counts in own_bins.items():
                    if other_corpus == corpus and other_speaker != speaker:
                        others.update(counts)
                described = f"the other {name} speakers'"
            if not others:
                continue  # no other speaker of the corpus to compare with
            distance = _distance(own_bins[(corpus, speaker)], others)
            if distance > DISTRIBUTION_WARNING_DISTANCE:
                where = f" of {corpus}" if corpus is not None else ""
                warnings.append(
                    f"{name} speaker {speaker}: clip durations far from {described}{where} (distance {distance:.2f})"
                )
    return warnings


def distribution_warnings(
    splits: DatasetDict, label_names, reference: str = "train", reference_description: str = "the training speakers'"
) -> list[str]:
    """Speakers outside the ``reference`` split (training) whose label distribution is far from its speakers' (the
    labels are read for this check only, never for the statistics), or whose clip durations are far from those of the
    other speakers of their own corpus (:func:`_duration_warnings`)."""
    train = splits[reference]
    train_labels = Counter(column_values(train, "label"))
    warnings = []
    for name, split in splits.items():
        if name == reference:
            continue
        speakers = column_values(split, "speaker_id")
        labels = column_values(split, "label")
        for speaker in sorted(set(speakers)):
            own_labels = Counter(labels[i] for i, s in enumerate(speakers) if s == speaker)
            label_distance = _distance(own_labels, train_labels)
            if label_distance > DISTRIBUTION_WARNING_DISTANCE:
                heard = ", ".join(label_names[label] for label in sorted(own_labels))
                warnings.append(
                    f"{name} speaker {speaker}: labels far from {reference_description} (distance "
                    f"{label_distance:.2f}; heard in {heard} only or mostly): per-speaker statistics may "
                    "erase the differences between emotions"
                )
    if "duration" in train.column_names:
        warnings += _duration_warnings(splits, reference, reference_description)
    return warnings


def warn_single_row_groups(by_group: Mapping[str, RunningStatistics], mode: str) -> None:
    """Say which speakers (or corpora) have one clip only: standardised with their own statistics, its features all
    become 0, and the model sees nothing of it."""
    single = sorted(group for group, statistics in by_group.items() if statistics.count == 1)
    if single:
        logger.warning(
            "%s normalisation: %s %s one clip only: standardised with its own statistics, every feature of it is 0, "
            "so the model's answer says nothing. Give each %s several clips (in several emotions), or use global "
            "statistics (feature_extractor_config: {normalization: global}).",
            mode.capitalize(),
            ", ".join(single[:10]) + (f" and {len(single) - 10} more" if len(single) > 10 else ""),
            "has" if len(single) == 1 else "have",
            mode,
        )


def training_setup_shifts(
    feature_extractor, train: Dataset, by_speaker: dict[str, RunningStatistics]
) -> dict[str, Any]:
    """How far each training corpus' and each training speaker's mean features sit from the global statistics just
    fitted (:meth:`~ser_hf.models.feature_normalization.FeatureStatisticsMixin.setup_shift`): the yardstick that
    ``ser-hf evaluate`` and ``ser-hf predict`` hold a new recording set-up against. `by_speaker`: the training split's
    statistics by speaker, as :func:`fit_normalization` computed them; each corpus' are merged from its speakers',
    so no clip is read again."""
    corpus_of = {}
    if "corpus" in train.column_names:
        corpus_of = dict(zip(column_values(train, "speaker_id"), column_values(train, "corpus")))
    corpora: dict[str, RunningStatistics] = {}
    for speaker, statistics in by_speaker.items():
        if speaker in corpus_of:
            corpora.setdefault(corpus_of[speaker], RunningStatistics()).merge(statistics)
    speaker_shifts = [feature_extractor.setup_shift(value.statistics()[0]) for value in by_speaker.values()]
    return {
        "corpora": {
            name: round(feature_extractor.setup_shift(value.statistics()[0]), 4) for name, value in corpora.items()
        },
        "speakers_median": round(float(np.median(speaker_shifts)), 4) if speaker_shifts else None,
        "speakers_max": round(float(np.max(speaker_shifts)), 4) if speaker_shifts else None,
    }


def merged_statistics(
    per_split: Mapping[str, Mapping[str, RunningStatistics]],
) -> tuple[RunningStatistics, dict[str, RunningStatistics]]:
    """From each split's statistics by group: the training split's as one (the global statistics), and each group's
    over every split (a speaker is in one split; a corpus may be in all of them, its statistics over all its clips)."""
    training = RunningStatistics()
    for statistics in per_split["train"].values():
        training.merge(statistics)
    by_group: dict[str, RunningStatistics] = {}
    for groups in per_split.values():
        for group, statistics in groups.items():
            by_group.setdefault(group, RunningStatistics()).merge(statistics)
    return training, by_group


def fit_normalization(feature_extractor, splits: DatasetDict) -> Optional[NormalizationPlan]:
    """Fit the extractor's global statistics on the training split and, for ``speaker`` normalisation, compute every
    speaker's own statistics (training, validation and test speakers alike, each from their own clips, without
    labels); for ``corpus`` normalisation, every corpus' own, over its clips in all splits. Returns `None` for
    extractors that normalise without stored statistics."""
    mode = getattr(feature_extractor, "normalization", None)
    if mode not in getattr(feature_extractor, "stored_statistics_normalizations", STATISTICS_NORMALIZATIONS):
        return None
    plan = NormalizationPlan(mode=mode)
    per_split = {
        name: speaker_statistics(feature_extractor, split, group_column=plan.group_column)
        for name, split in splits.items()
    }
    training, by_group = merged_statistics(per_split)
    feature_extractor.set_global_statistics(*training.statistics(feature_extractor.variance_floor))
    if mode == "global":  # only a globally standardised model is left exposed to a shifted set-up
        feature_extractor.setup_shifts = training_setup_shifts(feature_extractor, splits["train"], per_split["train"])
    if mode in GROUP_NORMALIZATIONS:
        warn_single_row_groups(by_group, mode)
        plan.speaker_statistics = {
            group: statistics.statistics(feature_extractor.variance_floor) for group, statistics in by_group.items()
        }
    if mode == "corpus":
        logger.info(
            "Corpus normalisation: statistics of %d corpora, each from all its clips.", len(plan.speaker_statistics)
        )
    if mode == "speaker":
        plan.warnings = distribution_warnings(splits, splits["train"].features["label"].names)
        logger.info(
            "Speaker normalisation: statistics of %d speakers, each from their own clips (transductive for "
            "the evaluated speakers).",
            len(plan.speaker_statistics),
        )
        for warning in plan.warnings:
            logger.warning("Speaker normalisation: %s.", warning)
    if getattr(feature_extractor, "num_selected_features", None):
        fit_feature_selection(feature_extractor, splits["train"], plan)
    return plan


def fit_feature_selection(feature_extractor, train: Dataset, plan: NormalizationPlan) -> None:
    """Keep the extractor's ``num_selected_features`` functionals with the highest ANOVA F statistic (between-emotion
    over within-emotion variance) on the training split, standardised as the model sees them (with each training
    speaker's own statistics under speaker normalisation). Reads the training labels only."""
    from sklearn.feature_selection import f_classif

    groups, rows = zip(*_feature_rows(feature_extractor, train, group_column=plan.group_column))
    features = feature_extractor.standardize(
        np.concatenate(rows), clip_statistics_of(plan, [{plan.group_column: group} for group in groups])
    )
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Features .* are constant", category=UserWarning)
        f_statistic, _ = f_classif(features, column_values(train, "label"))
    # A functional constant over the training clips has no F statistic (0/0): never kept before an informative one.
    ranking = np.argsort(-np.nan_to_num(f_statistic, nan=-1.0), kind="stable")
    feature_extractor.set_selected_features(ranking[: feature_extractor.num_selected_features])
    logger.info(
        "Feature selection: kept the %d of %d functionals that best separate the training split's emotions (ANOVA F).",
        feature_extractor.num_selected_features,
        feature_extractor.num_functionals,
    )


def evaluation_normalization(
    feature_extractor, dataset: Dataset, name: str, model=None
) -> Optional[NormalizationPlan]:
    """How a trained model's inputs are standardised when it is evaluated on ``dataset`` (called ``name`` in the
    warnings): with the training speakers' statistics stored in its extractor (``global``), or each evaluated
    speaker's own, computed here from their clips without labels (``speaker``, transductive), or each evaluated
    corpus' own, from all its clips (``corpus``, transductive). The training label
    distribution is not saved with a model, so the distribution check compares each speaker with all the evaluated
    clips. `model` computes the statistics of a Whisper extractor (its encoder's pooled states). Returns `None` for
    extractors that normalise without stored statistics."""
    mode = getattr(feature_extractor, "normalization", None)
    if mode not in getattr(feature_extractor, "stored_statistics_normalizations", STATISTICS_NORMALIZATIONS):
        return None
    plan = NormalizationPlan(mode=mode)
    if mode in GROUP_NORMALIZATIONS:
        by_group = speaker_statistics(feature_extractor, dataset, model, plan.group_column)
        warn_single_row_groups(by_group, mode)
        plan.speaker_statistics = {
            group: statistics.statistics(feature_extractor.variance_floor) for group, statistics in by_group.items()
        }
    if mode == "corpus":
        logger.info(
            "Corpus normalisation: statistics of %d evaluated corpus(es), each from all its clips: %s.",
            len(plan.speaker_statistics),
            CORPUS_PROTOCOL,
        )
    if mode == "speaker":
        reference = "all evaluated clips"
        plan.warnings = distribution_warnings(
            DatasetDict({reference: dataset, name: dataset}),
            dataset.features["label"].names,
            reference=reference,
            reference_description="those of the other evaluated speakers",
        )
        logger.info(
            "Speaker normalisation: statistics of %d evaluated speaker(s), each from their own clips: %s.",
            len(plan.speaker_statistics),
            TRANSDUCTIVE_PROTOCOL,
        )
        for warning in plan.warnings:
            logger.warning("Speaker normalisation: %s.", warning)
    return plan


def clip_statistics_of(
    plan: Optional[NormalizationPlan], rows: list[Mapping[str, Any]]
) -> Optional[list[Optional[Statistics]]]:
    """The statistics of each row's speaker (its corpus', under corpus normalisation), for a collator; `None`
    without either."""
    if plan is None or plan.speaker_statistics is None:
        return None
    return [plan.speaker_statistics.get(row[plan.group_column]) for row in rows]


__all__ = [
    "CORPUS_PROTOCOL",
    "ENCODER_STATES_COLUMN",
    "FUNCTIONALS_COLUMN",
    "NormalizationPlan",
    "TRANSDUCTIVE_PROTOCOL",
    "clip_feature_rows",
    "clip_statistics_of",
    "compute_functionals_once",
    "drop_clips_too_short_for_functionals",
    "distribution_warnings",
    "evaluation_normalization",
    "fit_feature_selection",
    "fit_normalization",
    "merged_statistics",
    "speaker_statistics",
    "statistics_by_speaker",
]
