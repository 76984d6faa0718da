"""Evaluation of any trained model on any corpus: ``ser-hf evaluate``.

A model (a run's output folder or a Hub repository id) is evaluated on a corpus loaded by :func:`ser_hf.load_corpus`:
every clip, the held-out speakers of the model's own run (``--split test``), or a list of speakers. When the corpus
is not one the model was trained on (cross-corpus evaluation), clips whose label the model does not know are dropped
and the model's choice is restricted to the labels both share, so that a RAVDESS model (8 labels) is scored on
CREMA-D's 6. :func:`~ser_hf.evaluation.cross_corpus.cross_corpus_matrix` does this for several models and corpora
on the labels all of them share.

Reports reuse the run reports' pieces (:func:`ser_hf.evaluation.metrics.classification_metrics`,
:func:`ser_hf.evaluation.report.format_report`, :func:`ser_hf.evaluation.metrics.plot_confusion_matrix`):
``eval_report.json``, ``eval_report.md`` and ``confusion_matrix.png`` per evaluation (:mod:`.eval_report`);
``cross_corpus.json``, ``cross_corpus.md`` and ``cross_corpus_ua.png`` for a matrix (:mod:`.cross_corpus`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets
from torch.utils.data import DataLoader
from transformers import PreTrainedModel

from ..data.corpora import CORPORA, corpus_name, load_corpus
from ..data.corpora.folder import folder_corpus_name
from ..data.corpus_settings import options_of_each_corpus
from ..data.dataset_info import column_values
from ..data.decode import WAVEFORM_COLUMN, prepare_audio
from ..inputs.collators import AudioClassificationCollator, FunctionalsCollator, padding_multiple
from ..inputs.degradations import RecordingCondition, distinct_conditions
from ..inputs.fast_mode import encoder_states_once, encodes_once, head_logits
from ..inputs.speaker_normalization import (
    ENCODER_STATES_COLUMN,
    FUNCTIONALS_COLUMN,
    NormalizationPlan,
    compute_functionals_once,
    ensemble_normalization,
    evaluation_normalization,
    speaker_statistics,
)
from ..models import EnsembleForAudioClassification  # importing ser_hf.models registers its model types
from ..models.feature_normalization import GROUP_NORMALIZATIONS
from ..models.runtime.loading import load_model
from ..models.runtime.padding import is_padding_invariant
from ..run_folder import (
    EVAL_REPORT_JSON,
    EVAL_REPORT_MARKDOWN,
    METRICS_FILE,
    REPORTS_DIR,
    RunDir,
)
from ..run_record import RunConfig, RunReport
from .clip_lengths import leave_out_clips_too_long, leave_out_clips_too_short, readable_clips
from .conditions import check_conditions_for_clips, condition_record, degraded_clips, keep_emotions_per_speaker
from .constants import INTERVAL_METRICS, SPLITS
from .eval_report import corpus_relation, write_eval_report
from .report import validation_choices
from .setup_shift import setup_shift_report, standardized_states
from .shared_labels import evaluated_labels, scores_among, shared_label_clips
from .speaker_check import checked_head_statistics, checks_speakers, set_speaker_check, warn_unchecked

logger = logging.getLogger(__name__)


@dataclass
class CorpusSource:
    """A corpus to evaluate on.

    Args:
        name (`str`): loader name (``ravdess``, ``cremad``, ...).
        data_dir (`str`): the corpus folder.
        label_map (`dict`, *optional*): merges/drops of labels, as in :func:`ser_hf.load_corpus`.
        options (`dict`, *optional*): the loader's own options (``demographics_csv=...``).
    """

    name: str
    data_dir: str
    label_map: Optional[dict[str, Optional[str]]] = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.name = corpus_name(self.name)

    @property
    def identity(self) -> str:
        """The corpus' name in runs, reports, logs and default output folders: the loader's, or a folder corpus'
        ``corpus_name`` option (its ``corpus`` column and speaker prefix), else its folder's name, as the loader
        names it (:func:`~ser_hf.data.corpora.folder.folder_corpus_name`)."""
        if self.name != "folder":
            return self.name
        return str(self.options.get("corpus_name") or folder_corpus_name(self.data_dir))

    @property
    def full_name(self) -> str:
        return CORPORA[self.name].full_name if self.name in CORPORA else self.identity


@dataclass
class TrainedModel:
    """A trained classifier, its feature extractor, and what its training run recorded (when it was found).

    Attributes:
        name_or_path (`str`): the folder or Hub id it was loaded from.
        model (`PreTrainedModel`), feature_extractor: ready for inference.
        run_report (`RunReport`, *optional*): the run's ``metrics.json`` (split speakers, labels, metrics).
        run_config (`RunConfig`, *optional*): the run's ``run_config.json`` (corpora).
    """

    name_or_path: str
    model: PreTrainedModel
    feature_extractor: Any
    run_report: Optional[RunReport] = None
    run_config: Optional[RunConfig] = None

    @property
    def labels(self) -> list[str]:
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    @property
    def name(self) -> str:
        path = Path(self.name_or_path)
        return path.resolve().name if path.exists() else self.name_or_path

    @property
    def corpora(self) -> list[str]:
        """The corpora the model was trained on, when its run recorded them (``run_config.json``, else the
        ``training_corpora`` of its ``metrics.json``), a folder corpus by its ``corpus_name``; empty when unknown."""
        if self.run_config is not None and self.run_config.data.get("corpus"):
            return [
                CorpusSource(name, data_dir, options=options).identity
                for name, data_dir, options in self.training_sources()
            ]
        # metrics.json records each corpus by its dataset name: a folder corpus' corpus_name as it is.
        return list((self.run_report.training_corpora if self.run_report else None) or [])

    def training_sources(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(loader name, data_dir, corpus options)`` of each corpus the model's run read (``run_config.json``);
        empty when unknown."""
        return run_training_sources(self.run_config)

    def split_speakers(self, split: str, corpus: str) -> list[str]:
        """The speakers of ``corpus`` in ``split`` of the model's run (merged runs prefix them with the corpus)."""
        if self.run_report is None:
            raise ValueError(
                f"{self.name_or_path} has no {METRICS_FILE}, so its {split} speakers are unknown: "
                "pass the speakers to evaluate on instead."
            )
        speakers = self.run_report.split.speakers
        if split not in speakers:
            raise ValueError(
                f"The run of {self.name_or_path} has no {split} split (its splits: {', '.join(speakers)})."
            )
        prefixed = len(self.corpora) > 1
        return [
            s.split(":", 1)[1] if prefixed else s
            for s in speakers[split]
            if not prefixed or s.startswith(f"{corpus}:")
        ]


def run_training_sources(run_config: Optional[RunConfig]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(loader name, data_dir, corpus options)`` of each corpus a run read, from its ``run_config.json`` (each
    corpus' own options where several were read); empty without one."""
    data = run_config.data if run_config is not None else {}
    names = list(data.get("corpus") or [])
    data_dirs = list(data.get("data_dir") or []) + [""] * len(names)
    options = data.get("corpus_options") or {}
    if isinstance(options, Mapping) and len(names) > 1:  # keyed by the names as written or as the loader names them
        options = {name: options.get(name) or options.get(corpus_name(name)) or {} for name in names}
    each = options_of_each_corpus(names, options)
    return [(corpus_name(name), data_dirs[index], each[index]) for index, name in enumerate(names)]


def load_trained_model(
    name_or_path: str,
    *,
    revision: Optional[str] = None,
    token: Optional[str] = None,
    trust_remote_code: bool = False,
    device: Optional[str] = None,
) -> TrainedModel:
    """Load a classifier and its feature extractor from a folder or a Hub repository, with its run's
    ``metrics.json`` and ``run_config.json`` when they are there, loaded by
    :func:`~ser_hf.models.runtime.loading.load_model` (a folder, a Hub id, an ONNX export run in onnxruntime, or a
    folder of LoRA adapters; a folder or repository without a feature extractor raises
    :class:`~ser_hf.models.MissingFeatureExtractorError` naming it, before the weights are read)."""
    model, feature_extractor = load_model(
        name_or_path, revision=revision, token=token, trust_remote_code=trust_remote_code
    )
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
    run = RunDir.find(name_or_path, revision=revision, token=token)
    return TrainedModel(
        name_or_path=name_or_path,
        model=model,
        feature_extractor=feature_extractor,
        run_report=run.read_report(),
        run_config=run.read_config(),
    )


#: The folder corpus' options that say how its files are laid out (where the labels and speakers come from).
FOLDER_LAYOUT_OPTIONS = ("csv_path", "path_column", "label_column", "speaker_column", "speaker_regex", "label_regex")


def with_training_layout(trained: TrainedModel, source: CorpusSource) -> CorpusSource:
    """A folder corpus given without any layout option (:data:`FOLDER_LAYOUT_OPTIONS`) is read as the model's run
    read the one folder corpus it trained on: with its options, and, for the same folder, its ``corpus_name`` too (so
    that ``--split auto`` finds its test speakers); another folder keeps its own name and no CSV of the training
    one. Any other source is returned as it is."""
    if source.name != "folder" or any(key in source.options for key in FOLDER_LAYOUT_OPTIONS):
        return source
    folders = [(data_dir, options) for name, data_dir, options in trained.training_sources() if name == "folder"]
    if len(folders) != 1 or not folders[0][1]:
        return source
    data_dir, options = folders[0]
    same = bool(data_dir) and Path(data_dir).expanduser().resolve() == Path(source.data_dir).expanduser().resolve()
    carried = {key: value for key, value in options.items() if same or key not in ("csv_path", "corpus_name")}
    logger.info(
        "Reading %s as the run of %s read its folder corpus%s: %s.",
        source.data_dir,
        trained.name_or_path,
        " (the same folder)" if same else "",
        ", ".join(f"{key}={value}" for key, value in carried.items()),
    )
    return dataclasses.replace(source, options={**carried, **source.options})


def load_evaluation_corpus(
    source: CorpusSource,
    sampling_rate: int,
    *,
    num_proc: Optional[int] = None,
    speakers: Optional[Sequence[str]] = None,
) -> Dataset:
    """The corpus at the model's rate, decoded once (the cache of :func:`ser_hf.prepare_audio`); with ``speakers``,
    only their clips, chosen before anything is decoded (a speaker the corpus lacks is an error naming it)."""
    dataset = load_corpus(
        source.name, source.data_dir, sampling_rate=sampling_rate, label_map=source.label_map, **source.options
    )
    if speakers is not None:
        dataset = _speakers_clips(dataset, source, speakers)
    return prepare_audio(dataset, num_proc=num_proc)


def _speakers_clips(dataset: Dataset, source: CorpusSource, speakers: Sequence[str]) -> Dataset:
    unknown = sorted(set(speakers) - set(column_values(dataset, "speaker_id")))
    if unknown:
        raise ValueError(f"Speakers {unknown} are not in {source.identity} at {source.data_dir}.")
    wanted = set(speakers)
    return dataset.filter(lambda speaker: speaker in wanted, input_columns="speaker_id")


@torch.no_grad()
def predict_logits(
    model: PreTrainedModel,
    feature_extractor,
    dataset: Dataset,
    batch_size: int = 8,
    normalization: Optional[NormalizationPlan] = None,
) -> np.ndarray:
    """The model's logits for every clip of a prepared dataset, in its order (whole clips, padded per batch; the
    openSMILE functionals when the dataset has them). With speaker ``normalization``, each clip's features are
    standardised with its speaker's statistics (rows need ``speaker_id``)."""
    if not is_padding_invariant(model, feature_extractor):
        batch_size = 1  # padding would change the output (no attention mask, data2vec-audio): as predict does
    if FUNCTIONALS_COLUMN in dataset.column_names:
        collator, columns = FunctionalsCollator(feature_extractor, normalization=normalization), [FUNCTIONALS_COLUMN]
    else:
        collator = AudioClassificationCollator(
            feature_extractor, normalization=normalization, pad_to_multiple_of=padding_multiple(feature_extractor)
        )
        columns = [WAVEFORM_COLUMN]
    if normalization is not None and normalization.speaker_statistics is not None:
        columns.append(normalization.group_column)
    rows = dataset.select_columns(columns).with_format("numpy")
    loader = DataLoader(rows, batch_size=batch_size, collate_fn=collator)
    model.eval()
    outputs = []
    for batch in loader:
        batch = {key: value.to(model.device) for key, value in batch.items() if isinstance(value, torch.Tensor)}
        outputs.append(model(**batch).logits.float().cpu().numpy())
    logits = np.concatenate(outputs) if outputs else np.zeros((0, model.config.num_labels), dtype=np.float32)
    return _finite(logits)


def _finite(logits: np.ndarray) -> np.ndarray:
    """`logits`, or an error naming the clips whose scores are NaN or infinite: never a NaN score in a report."""
    non_finite = np.flatnonzero(~np.isfinite(logits).all(axis=1))
    if len(non_finite):
        raise ValueError(
            f"The model's scores are not finite (NaN or infinite) for {len(non_finite)} of {len(logits)} clips "
            f"(rows {', '.join(map(str, non_finite[:5]))}{', ...' if len(non_finite) > 5 else ''}): its weights or "
            "its preprocessor_config.json statistics hold NaN or infinite values."
        )
    return logits


def _model_logits(
    model: PreTrainedModel,
    feature_extractor,
    dataset: Dataset,
    key: str,
    batch_size: int,
    other_clips: Optional[Dataset] = None,
) -> tuple[np.ndarray, Optional[NormalizationPlan], Optional[dict[str, Any]]]:
    """A model's logits for the clips of ``dataset`` (called ``key`` in warnings), how its inputs were
    standardised (a model trained on speaker-normalised features gets each evaluated speaker's statistics, from their
    clips here and without their labels, transductive, as training computes the test speakers'), and, for a model
    standardised with its training statistics, how far the recordings sit from them (:mod:`.setup_shift`).

    Corpus or speaker statistics come from ``dataset`` and ``other_clips`` together: the clips of labels the model
    does not score are recordings of the same corpus and speakers all the same. A Whisper classifier whose logits
    follow from its pooled encoder states (FAST mode's cache) encodes each clip once: the states that give the
    statistics are the ones its head reads (:func:`encoder_states_once`)."""
    grouped = getattr(feature_extractor, "normalization", None) in GROUP_NORMALIZATIONS
    statistics_clips = dataset
    if grouped and other_clips is not None and len(other_clips):
        statistics_clips = concatenate_datasets([dataset, other_clips])  # the scored clips first
    if grouped and callable(getattr(feature_extractor, "functionals", None)):
        # openSMILE: the functionals computed once (and cached) serve both the speakers' statistics and the model.
        statistics_clips = compute_functionals_once(statistics_clips, feature_extractor)
        dataset = statistics_clips.select(range(len(dataset)))
    if grouped and encodes_once(model, feature_extractor):
        encoded = encoder_states_once(model, feature_extractor, statistics_clips, batch_size)
        normalization = evaluation_normalization(feature_extractor, encoded, key, model)
        if checks_speakers(feature_extractor):
            check_evaluated_speakers(model, feature_extractor, encoded, normalization)
        logits = cached_states_logits(model, feature_extractor, encoded.select(range(len(dataset))), normalization)
        return logits, normalization, None  # a shift is measured under global statistics only
    normalization = evaluation_normalization(feature_extractor, statistics_clips, key, model)
    warn_unchecked(feature_extractor)
    with standardized_states(model) as standardized:
        logits = predict_logits(model, feature_extractor, dataset, batch_size=batch_size, normalization=normalization)
    shift = setup_shift_report(feature_extractor, dataset, model, standardized)
    return logits, normalization, shift


def check_evaluated_speakers(model, feature_extractor, encoded: Dataset, plan: NormalizationPlan) -> None:
    """Replace, in ``plan``, the statistics of evaluated speakers heard in too few emotions with those of all the
    evaluated clips (:mod:`.speaker_check`), recording what was decided under ``plan.check``."""
    rows = encoded.select_columns([ENCODER_STATES_COLUMN, plan.group_column]).with_format("numpy")
    by_group = speaker_statistics(feature_extractor, encoded, model, plan.group_column)
    plan.speaker_statistics, plan.check = checked_head_statistics(
        model, feature_extractor, rows, plan.group_column, by_group
    )


def cached_states_logits(
    model: PreTrainedModel,
    feature_extractor,
    encoded: Dataset,
    normalization: Optional[NormalizationPlan] = None,
    batch_size: int = 256,
) -> np.ndarray:
    """The model's logits from each clip's cached pooled encoder states (its own head, as FAST mode trains it:
    :class:`~ser_hf.inputs.fast_mode.CachedEncoderHead`), standardised with each row's group statistics of
    ``normalization``, divided by the model's calibration temperature as its forward pass divides them."""
    columns = [ENCODER_STATES_COLUMN]
    if normalization is not None and normalization.speaker_statistics is not None:
        columns.append(normalization.group_column)
    rows = encoded.select_columns(columns).with_format("numpy")
    return _finite(head_logits(model, feature_extractor, rows, normalization, batch_size))


def _ensemble_logits(
    model: EnsembleForAudioClassification,
    feature_extractor,
    dataset: Dataset,
    key: str,
    batch_size: int,
    other_clips: Optional[Dataset] = None,
) -> tuple[np.ndarray, Optional[dict[str, Any]]]:
    """An ensemble's logits, member by member (each with its own inputs and, where it was trained on
    speaker-normalised features, each evaluated speaker's statistics of those inputs), fused as its forward pass
    fuses them; and the members' normalisation as one protocol line."""
    member_logits, plans = [], []
    for name, member, extractor in zip(model.config.member_names, model.members, feature_extractor.extractors):
        logits, plan, _ = _model_logits(member, extractor, dataset, f"{key}, {name}", batch_size, other_clips)
        member_logits.append(torch.from_numpy(logits))
        plans.append((name, plan.to_dict() if plan is not None else None))
    return model.fuse(member_logits).numpy(), ensemble_normalization(plans)


def _selection(
    trained: TrainedModel, source: CorpusSource, split: str, speakers: Optional[Sequence[str]]
) -> tuple[str, Optional[list[str]]]:
    """``(split name, speakers to keep or None for every clip)``."""
    if speakers is not None:
        speakers = [str(s) for s in speakers]
        return "speakers " + ", ".join(speakers), speakers
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}.")
    if split == "auto":
        split = "test" if source.identity in trained.corpora else "all"
    if split == "all":
        return "all", None
    if source.identity not in trained.corpora:
        raise ValueError(
            f"split {split!r} selects speakers of the run of {trained.name_or_path}, which was not "
            f"trained on {source.identity} (its corpora: {', '.join(trained.corpora) or 'unknown'})."
        )
    return split, trained.split_speakers(split, source.identity)


def _training_overlap(trained: TrainedModel, source: CorpusSource, speakers: Sequence[str]) -> Optional[dict]:
    """The evaluated speakers that each split of the model's own run used (only for a corpus it was trained on)."""
    if trained.run_report is None or source.identity not in trained.corpora:
        return None
    evaluated = set(speakers)
    return {
        split: sorted(evaluated & set(trained.split_speakers(split, source.identity)))
        for split in trained.run_report.split.speakers
    }


def evaluate_on_dataset(
    trained: TrainedModel,
    dataset: Dataset,
    source: CorpusSource,
    *,
    split: str = "auto",
    speakers: Optional[Sequence[str]] = None,
    labels: Optional[Sequence[str]] = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Evaluate a model on a prepared corpus; returns the evaluation report (see :func:`evaluate_model`)."""
    split_name, keep = _selection(trained, source, split, speakers)
    corpus_labels = dataset.features["label"].names
    if keep is not None:
        dataset = _speakers_clips(dataset, source, keep)
    key = f"{source.identity} ({split_name})"
    dataset, shared, dropped, unknown_label_clips, other_labels = shared_label_clips(
        trained, dataset, source, key, labels
    )
    dataset, unscored = leave_out_clips_too_short(trained, dataset, key)
    dataset, too_long = leave_out_clips_too_long(trained, dataset, key)
    unscored += too_long
    # Corpus or speaker statistics are label-free: the clips of other labels are recordings of the corpus and its
    # speakers all the same, read for the statistics (never scored).
    other_clips, other_unreadable = None, 0
    if other_labels is not None and _group_statistics(trained.model, trained.feature_extractor):
        other_clips, other_unreadable = readable_clips(trained, other_labels)
    if len(dataset) == 0:
        too_short = f"; {len(unscored)} clip(s) the model cannot score: {unscored[0]['error']}" if unscored else ""
        raise ValueError(
            f"No clip of {source.identity} at {source.data_dir} is left to evaluate ({split_name}, labels "
            f"{shared}){too_short}."
        )

    if isinstance(trained.model, EnsembleForAudioClassification):
        logits, normalization = _ensemble_logits(
            trained.model, trained.feature_extractor, dataset, key, batch_size, other_clips
        )
        setup_shift = None
    else:
        logits, plan, setup_shift = _model_logits(
            trained.model, trained.feature_extractor, dataset, key, batch_size, other_clips
        )
        normalization = plan.to_dict() if plan is not None else None
    if normalization is not None and normalization.get("transductive"):
        normalization["statistics_clips"] = statistics_clips_record(
            dataset, other_clips, len(unscored) + other_unreadable, split_name
        )
    clip_speakers = column_values(dataset, "speaker_id")
    metrics = scores_among(  # the model chooses among the shared labels only
        column_values(dataset, "path"),
        clip_speakers,
        [corpus_labels[i] for i in column_values(dataset, "label")],
        logits,
        trained.labels,
        shared,
        sexes=column_values(dataset, "sex") if "sex" in dataset.column_names else None,
        corpora=column_values(dataset, "corpus") if "corpus" in dataset.column_names else None,
    )
    scored = {
        "labels": shared,
        "restricted_to_shared_labels": shared != trained.labels,
        # Clips left out for their label, by label: those of labels the model lacks and those not asked for.
        "dropped_clips": dropped,
        # Of them, the clips of labels the model has no output for, by label (left unscored; a WARNING says so).
        "unknown_label_clips": unknown_label_clips,
        # Clips the model cannot classify (too short), each with its error, as ser-hf predict reports them.
        "unscored_clips": unscored,
    }
    report = _evaluation_report(trained, source, split_name, key, sorted(set(clip_speakers)), len(dataset), scored)
    report.update(normalization=normalization, setup_shift=setup_shift, evaluation={key: metrics})
    logger.info(
        "%s on %s: UA %.1f%%, WA %.1f%% on %d clips (%d labels)",
        trained.name,
        key,
        100 * metrics["unweighted_accuracy"],
        100 * metrics["accuracy"],
        metrics["clips"],
        len(shared),
    )
    if report["training_overlap"] and report["training_overlap"].get("train"):
        logger.warning(
            "%s trained on speakers %s that this evaluation uses: these scores are not speaker-independent.",
            trained.name,
            report["training_overlap"]["train"],
        )
    return report


def _evaluation_report(
    trained: TrainedModel,
    source: CorpusSource,
    split_name: str,
    key: str,
    speakers: list[str],
    clips: int,
    scored: Mapping[str, Any],
) -> dict[str, Any]:
    """What an evaluation report says of the model, the corpus and the clips (`scored`: which labels and clips were
    scored): the protocol, the provenance of every figure (what the model trained on, whether this corpus is one of
    them) and the overlap of the evaluated `speakers` with the model's own run."""
    overlap = _training_overlap(trained, source, speakers)
    relation = corpus_relation(trained.corpora, source.identity)
    cross_corpus = relation == "cross-corpus"
    return {
        "protocol": "cross-corpus" if cross_corpus else "within-corpus",
        "fold": None,
        "model": trained.name_or_path,
        "model_labels": trained.labels,
        "corpus": source.name,
        "corpus_name": source.full_name,
        "training_corpora": trained.corpora or None,
        "corpus_relation": relation,
        "data_dir": str(source.data_dir),
        "split": {"name": split_name, "clips": {key: clips}, "speakers": {key: speakers}},
        **scored,
        "cross_corpus": cross_corpus,
        "training_overlap": overlap,
        "speaker_independent": None if overlap is None else not overlap.get("train"),
        # What the validation speakers of the model's own run chose (the best epoch only where they did).
        "run_validation_choices": (
            validation_choices(trained.run_report, trained.run_config.training if trained.run_config else None)
            if trained.run_report is not None and overlap is not None
            else None
        ),
    }


def _group_statistics(model, feature_extractor) -> bool:
    """Whether the model (any member of an ensemble) standardises by corpus or speaker statistics computed from the
    evaluated clips."""
    if isinstance(model, EnsembleForAudioClassification):
        return any(_group_statistics(m, e) for m, e in zip(model.members, feature_extractor.extractors))
    return getattr(feature_extractor, "normalization", None) in GROUP_NORMALIZATIONS


def statistics_clips_record(
    scored: Dataset, other_clips: Optional[Dataset], left_out: int, split_name: str
) -> dict[str, Any]:
    """Which clips corpus or speaker statistics came from: every clip of the evaluated selection (``split_name``)
    the model can read, whatever its label: the scored ones and those of labels not scored (by label); ``left_out``:
    clips the model cannot read (too short, too long), in neither."""
    names = scored.features["label"].names
    other: dict[str, int] = {}
    for label in column_values(other_clips, "label") if other_clips is not None else []:
        other[names[label]] = other.get(names[label], 0) + 1
    return {
        "clips": len(scored) + sum(other.values()),
        "scored_clips": len(scored),
        "other_labels": dict(sorted(other.items())),
        "left_out": left_out,
        "selection": split_name,
    }


def evaluate_model(
    model: str | TrainedModel,
    source: CorpusSource,
    *,
    split: str = "auto",
    speakers: Optional[Sequence[str]] = None,
    labels: Optional[Sequence[str]] = None,
    batch_size: int = 8,
    output_dir: Optional[str | os.PathLike] = None,
    speaker_statistics_check: Optional[bool] = None,
    emotions_per_speaker: Optional[int] = None,
    condition_seed: int = 0,
    conditions: Sequence[RecordingCondition] = (),
    **load_kwargs,
) -> dict[str, Any]:
    """Evaluate a trained model on a corpus and (with ``output_dir``) write its report.

    Args:
        model (`str` or `TrainedModel`): a run's output folder, a Hub repository id, or a loaded model.
        source (`CorpusSource`): the corpus to evaluate on.
        split (`str`, *optional*, defaults to `"auto"`): one of :data:`SPLITS`.
        speakers (`Sequence[str]`, *optional*): evaluate on these speakers instead of a split.
        labels (`Sequence[str]`, *optional*): restrict the evaluation further to these labels.
        output_dir (`str`, *optional*): write ``eval_report.json``, ``eval_report.md`` and ``confusion_matrix.png``.
        speaker_statistics_check (`bool`, *optional*): check the evaluated speakers' statistics
            (:mod:`.speaker_check`) or not, for a Whisper model standardised per speaker (default: as it was saved).
        emotions_per_speaker (`int`, *optional*): evaluate as if each speaker were heard in this many emotions only:
            each keeps the clips of that many of the evaluated labels, every label still tested
            (:func:`~.conditions.keep_emotions_per_speaker`, drawn with ``condition_seed``); the report says so under
            ``condition``.
        condition_seed (`int`, *optional*, defaults to 0): the draw of ``emotions_per_speaker`` and of the
            ``conditions``' degradations: the same seed gives the same figures.
        conditions (`Sequence[RecordingCondition]`, *optional*): recording conditions
            (:func:`~ser_hf.inputs.degradations.parse_conditions` reads ``pink_noise:snr=10``, ``telephone``, ...):
            the same clips are scored again under each, degraded on the fly (:func:`~.conditions.degraded_clips`),
            and ``recording_conditions`` holds each one's UA, WA and macro-F1 with their speaker-bootstrap intervals
            and the change of UA against the clean clips with a paired interval
            (:func:`~.conditions.condition_record`).

    Returns:
        `dict`: the report: the model and corpus, the split and its speakers, the labels evaluated (those the model
        and the corpus share), the clips dropped for other labels (``dropped_clips``, by label) and among them those
        of labels the model does not know (``unknown_label_clips``), whether it is cross-corpus, which evaluated
        speakers the model's own run trained or validated on, how the features were standardised
        (``normalization``: a model trained on speaker-normalised features gets each evaluated speaker's statistics,
        from their clips here, and the report says it is transductive), the clips too short for the model to classify
        (``unscored_clips``, each with its error, left out of the metrics), and every metric under ``evaluation``.
    """
    conditions = distinct_conditions(conditions)
    for condition in conditions:  # a codec FFmpeg lacks is said before anything is loaded
        condition.check_available()
    trained = model if isinstance(model, TrainedModel) else load_trained_model(model, **load_kwargs)
    set_speaker_check(trained.feature_extractor, speaker_statistics_check, trained.name_or_path)
    source = with_training_layout(trained, source)
    _, keep = _selection(trained, source, split, speakers)  # the clips to evaluate are chosen before decoding
    dataset = load_evaluation_corpus(source, trained.feature_extractor.sampling_rate, speakers=keep)
    if emotions_per_speaker is not None:
        evaluated = evaluated_labels(trained.labels, dataset.features["label"].names, labels)
        dataset = keep_emotions_per_speaker(dataset, emotions_per_speaker, condition_seed, evaluated)
    # A condition the clips cannot take (babble among one speaker's clips) is refused before the clean pass.
    check_conditions_for_clips(conditions, [str(value) for value in column_values(dataset, "speaker_id")])
    selection = {"split": split, "speakers": speakers, "labels": labels, "batch_size": batch_size}
    report = evaluate_on_dataset(trained, dataset, source, **selection)
    if conditions:
        report["recording_conditions"] = score_conditions(
            trained, dataset, source, report, conditions, condition_seed, **selection
        )
    if emotions_per_speaker is not None:
        report["condition"] = {
            "emotions_per_speaker": emotions_per_speaker,
            "seed": condition_seed,
            "protocol": "each evaluated speaker keeps the clips of this many emotions only, every emotion tested "
            "(ser_hf.evaluation.conditions.keep_emotions_per_speaker)",
        }
    if output_dir is not None:
        write_eval_report(output_dir, report)
    return report


def score_conditions(
    trained: TrainedModel,
    dataset: Dataset,
    source: CorpusSource,
    clean_report: Mapping[str, Any],
    conditions: Sequence[RecordingCondition],
    seed: int,
    **selection,
) -> dict[str, Any]:
    """The clips of ``dataset`` scored under each of ``conditions`` as :func:`evaluate_on_dataset` scored them clean
    (``clean_report``; ``selection``: its split, speakers, labels and batch size), each condition's figures set beside
    the clean ones (:func:`~.conditions.condition_record`). A condition that fails on the clips (an encoder that
    refuses one, samples turned non-finite) is listed under ``failed`` with its error, and the others are scored: the
    passes already done are never lost to it."""
    ((key, clean),) = clean_report["evaluation"].items()
    records, failed = [], []
    for condition in conditions:
        try:
            degraded = degraded_clips(dataset, condition, seed, trained.feature_extractor.sampling_rate)
            (metrics,) = evaluate_on_dataset(trained, degraded, source, **selection)["evaluation"].values()
        except Exception as error:  # any failure of this condition's pass is its own; the report keeps the rest
            logger.debug("%s failed", condition, exc_info=True)
            logger.warning("%s on %s under %s: not scored (%s)", trained.name, key, condition, error)
            failed.append(
                {
                    "condition": str(condition),
                    "family": condition.family,
                    "description": condition.description(),
                    "error": f"{type(error).__name__}: {error}",
                }
            )
            continue
        records.append(condition_record(condition, clean, metrics))
        logger.info(
            "%s on %s under %s: UA %.1f%% (clean %.1f%%)",
            trained.name,
            key,
            condition,
            100 * metrics["unweighted_accuracy"],
            100 * clean["unweighted_accuracy"],
        )
    return {
        "seed": seed,
        "protocol": "the same clips, each degraded once under each condition (ser_hf.inputs.degradations), seeded by "
        "the seed, the clip's folder and file name and the condition; change: UA under the condition minus clean UA, "
        "with a paired speaker-bootstrap interval",
        "clean": {
            "clips": clean["clips"],
            **{name: clean[name] for name in INTERVAL_METRICS},
            "confidence_intervals": clean.get("confidence_intervals"),
        },
        "conditions": records,
        **({"failed": failed} if failed else {}),
    }


def folder_slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "-", text).strip("-")


def default_output_dir(model: str, source: CorpusSource, split_name: str) -> Path:
    """``MODEL/reports/<corpus>-<split>`` for a local model (pushed with it), else ``eval_reports/<repo>/...``; the
    corpus by its :attr:`~CorpusSource.identity` (a folder corpus by its ``corpus_name``, else its folder's name).
    Where that folder holds the report of another corpus folder under the same name (two folders both called
    ``wav``), the corpus' folder gets a suffix of its own (a digest of its path): a report never replaces another
    corpus'."""
    slug = folder_slug(f"{source.identity}-{split_name}")
    parent = Path(model) / REPORTS_DIR if Path(model).is_dir() else Path("eval_reports") / model.replace("/", "__")
    if source.name == "folder" and _reported_data_dir(parent / slug) not in (None, _resolved(source.data_dir)):
        digest = hashlib.blake2b(_resolved(source.data_dir).encode(), digest_size=4).hexdigest()
        slug = folder_slug(f"{source.identity}-{digest}-{split_name}")
    return parent / slug


def _resolved(data_dir: str | os.PathLike) -> str:
    return str(Path(data_dir).expanduser().resolve())


def _reported_data_dir(output_dir: Path) -> Optional[str]:
    """The corpus folder whose report ``output_dir`` holds (resolved), or `None` when it holds none."""
    try:
        return _resolved(json.loads((output_dir / EVAL_REPORT_JSON).read_text())["data_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


__all__ = [
    "CorpusSource",
    "EVAL_REPORT_JSON",
    "EVAL_REPORT_MARKDOWN",
    "SPLITS",
    "TrainedModel",
    "default_output_dir",
    "evaluate_model",
    "evaluate_on_dataset",
    "head_logits",
    "load_evaluation_corpus",
    "load_trained_model",
    "predict_logits",
    "score_conditions",
    "run_training_sources",
]
