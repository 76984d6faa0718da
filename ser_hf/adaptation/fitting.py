"""The adapted model itself: the user's labelled clips encoded once with the model's frozen encoder (FAST mode's cache,
the states ``ser-hf suggest`` reads too), each clip's projected representation (the input of the model's
``classifier``) under the statistics the adaptation trains with and under those inference gives, the adaptation
chosen by cross-validation (:mod:`.selection`), and the model saved with its new classifier: an ordinary ser-hf model
folder (weights and feature extractor in safetensors, ``metrics.json`` and ``report.md`` with the test speakers'
scores, the card), loaded by ``pipeline``, predict, the app and the Hub like any other.

The adapted model keeps the speaker-statistics check of the model it started from, decided by that model's classifier
(``config.speaker_check_classifier``): a head that moved must not change which speakers the check gives the set's
statistics (:mod:`ser_hf.evaluation.speaker_check`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .errors import AdaptationError
from .selection import (
    AS_SAVED,
    PROJECTOR_RULES,
    STATISTICS_RULES,
    Classifier,
    PooledStates,
    Selection,
    select_adaptation,
    training_statistics,
)

logger = logging.getLogger(__name__)

#: The two standardisations of each statistics rule: as the adaptation trains, as inference gives.
SIDES = ("training", "evaluation")


@dataclass
class LabelledStates:
    """The labelled clips as the selection reads them: each clip's path, label (index into ``labels``), speaker,
    whether it is scored in the cross-validation (pseudo-labelled clips, and clips the model was fitted on, only
    train), and its projected representation standardised for training and for evaluation under each statistics rule
    (:data:`~.selection.STATISTICS_RULES`; the model's own first); ``pooled``, the projector's inputs, where the
    projector reads pooled states."""

    paths: list[str]
    labels: np.ndarray
    label_names: list[str]
    speakers: list[str]
    scored: np.ndarray
    training: dict[str, np.ndarray]
    evaluation: dict[str, np.ndarray]
    statistics: dict[str, Any]
    normalizations: dict[str, Optional[dict[str, Any]]] = field(default_factory=dict)
    digests: list[str] = field(default_factory=list)
    pooled: Optional[PooledStates] = None


def head_inputs(
    model, feature_extractor, rows: Sequence[Mapping[str, Any]], plan
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Each row's input to the model's ``classifier`` (after the projector; the model's own head on cached pooled
    encoder states, in evaluation mode), standardised with ``plan``'s statistics; and its input to the projector where
    the projector reads one pooled vector per clip whose projection is that input (Whisper's ``layer_statistics``
    pooling), `None` otherwise (a projector of frames, pooled after)."""
    from ..inputs.fast_mode import head_logits

    captured: dict[str, list] = {"classifier": [], "projector": []}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda module, inputs, output, name=name: captured[name].append(inputs[0].detach().float().cpu().numpy())
        )
        for name in captured
    ]
    try:
        head_logits(model, feature_extractor, rows, plan)
    finally:
        for hook in hooks:
            hook.remove()
    if not captured["classifier"]:
        return np.zeros((0, model.classifier.in_features)), None
    projected = np.concatenate(captured["classifier"]).astype(np.float64)
    pooled = None
    if all(batch.ndim == 2 for batch in captured["projector"]):
        pooled = np.concatenate(captured["projector"]).astype(np.float64)
        weight = model.projector.weight.detach().float().cpu().numpy().astype(np.float64)
        bias = model.projector.bias.detach().float().cpu().numpy().astype(np.float64)
        if pooled.shape[0] != projected.shape[0] or not np.allclose(pooled @ weight.T + bias, projected, atol=1e-3):
            pooled = None
    return projected, pooled


def unlabelled_normalization(feature_extractor, encoded, model):
    """How the model's head standardises the states of unlabelled recordings: each speaker's (or the folder's) own
    statistics, from their clips, where the model standardises with its group's statistics (as evaluation does,
    transductively; no label is read); the stored ones otherwise; `None` where it standardises nothing."""
    from ..inputs.speaker_normalization import NormalizationPlan, speaker_statistics
    from ..models.feature_normalization import GROUP_NORMALIZATIONS, STATISTICS_NORMALIZATIONS

    mode = getattr(feature_extractor, "normalization", None)
    if mode not in getattr(feature_extractor, "stored_statistics_normalizations", STATISTICS_NORMALIZATIONS):
        return None
    plan = NormalizationPlan(mode=mode)
    if mode in GROUP_NORMALIZATIONS:
        by_group = speaker_statistics(feature_extractor, encoded, model, plan.group_column)
        plan.speaker_statistics = {
            group: statistics.statistics(feature_extractor.variance_floor) for group, statistics in by_group.items()
        }
    return plan


def model_statistics_rule(feature_extractor) -> str:
    """The statistics rule a model applies at inference (:data:`~.selection.STATISTICS_RULES`): ``own``, ``checked``
    (speaker statistics, checked) or ``set`` (``normalization="corpus"``: the statistics of all the clips classified
    together); ``as saved`` for a model standardised otherwise (no rule to choose)."""
    from ..evaluation.speaker_check import checks_speakers

    mode = getattr(feature_extractor, "normalization", None)
    if not hasattr(feature_extractor, "speaker_statistics_check"):  # only Whisper extractors check or switch rules
        return AS_SAVED
    if mode == "corpus":
        return "set"
    if mode == "speaker":
        return "checked" if checks_speakers(feature_extractor) else "own"
    return AS_SAVED


def apply_statistics_rule(feature_extractor, rule: str) -> None:
    """Save `feature_extractor` with the statistics rule `rule` (see :func:`model_statistics_rule`)."""
    if rule == AS_SAVED or rule == model_statistics_rule(feature_extractor):
        return
    feature_extractor.speaker_statistics_check = rule == "checked"
    feature_extractor.normalization = "corpus" if rule == "set" else "speaker"


def _states_rows(encoded, group_column: str = "speaker_id"):
    from ..inputs.speaker_normalization import ENCODER_STATES_COLUMN

    return encoded.select_columns([ENCODER_STATES_COLUMN, group_column]).with_format("numpy")


def statistics_rule_plans(model, feature_extractor, labelled, others, label_ids, speakers, num_labels):
    """The normalisation plans of training and of evaluation under each statistics rule, the model's own first, and
    the record of what each gave. Each speaker's statistics come from their labelled clips and `others` (their other
    recordings: no label read), as at inference; the check runs over them all together, decided by the classifier
    the model started from."""
    import copy

    from datasets import concatenate_datasets

    from ..evaluation.speaker_check import checked_head_statistics, merged_statistics_of
    from ..inputs.speaker_normalization import ENCODER_STATES_COLUMN, NormalizationPlan, statistics_by_speaker

    rule = model_statistics_rule(feature_extractor)
    base = unlabelled_normalization(feature_extractor, labelled, model)
    if rule == AS_SAVED:
        return {AS_SAVED: (base, base)}, {}
    rows = _states_rows(labelled)
    every = rows if others is None else concatenate_datasets([_states_rows(labelled), _states_rows(others)])
    every = every.with_format("numpy")
    by_speaker = statistics_by_speaker(
        (row["speaker_id"], np.asarray(row[ENCODER_STATES_COLUMN]).reshape(1, -1)) for row in every
    )
    floor = feature_extractor.variance_floor
    own = {speaker: value.statistics(floor) for speaker, value in by_speaker.items()}
    shared = merged_statistics_of(by_speaker).statistics(floor)
    few, training_record = training_statistics(label_ids, speakers, num_labels)
    checked, check = checked_head_statistics(model, feature_extractor, every, "speaker_id", by_speaker)

    def plan(statistics: dict) -> NormalizationPlan:
        return NormalizationPlan(mode="speaker", speaker_statistics=dict(statistics))

    by_labels = {speaker: (shared if speaker in few else value) for speaker, value in own.items()}
    plans = {
        "own": (plan(by_labels), plan(own)),
        "checked": (plan(by_labels), copy.copy(plan(checked))),
        "set": (plan({speaker: shared for speaker in own}), plan({speaker: shared for speaker in own})),
    }
    plans["checked"][1].check = check
    order = [rule] + [other for other in STATISTICS_RULES if other != rule]
    record = {
        "model_rule": rule,
        "recordings_per_speaker": {speaker: int(value.count) for speaker, value in sorted(by_speaker.items())},
        "training": training_record,
        "checked": {
            "decided_by": "the classifier the model started from, over every labelled speaker's recordings together",
            "set_statistics_for_all": check["set_statistics_for_all"],
            "median_divergence": check["median_divergence"],
            "fallback": check["fallback"],
        },
    }
    return {name: plans[name] for name in order}, record


def _distinct_rows(
    keep: Sequence[bool], digests: Sequence[str], speakers: Sequence[Any], excluded: set, data_dir
) -> tuple[list[int], list[int], dict[str, int]]:
    """The rows of the clips that adapt (``keep``) and of the other clips of speakers not excluded, each clip once
    (clips with the same bytes are one clip, the first kept, the others counted in the log), and each digest's first
    row."""
    seen: dict[str, int] = {}
    labelled_rows, other_rows = [], []
    for row, (kept, digest, speaker) in enumerate(zip(keep, digests, speakers)):
        if digest in seen:
            continue
        seen[digest] = row
        if kept:
            labelled_rows.append(row)
        elif speaker not in excluded:
            other_rows.append(row)
    if len(seen) < len(digests):
        logger.warning(
            "%d clip(s) of %s have the same bytes as another clip (a copy, under another name or speaker): each is "
            "one clip, kept once.",
            len(digests) - len(seen),
            data_dir,
        )
    return labelled_rows, other_rows, seen


def _statistics_states(model, feature_extractor, recordings: Sequence[tuple[str, str]], shortest):
    """The encoder states of `recordings` (path, speaker) that give the labelled speakers' statistics only, or `None`
    where there are none."""
    if not recordings:
        return None
    from datasets import Audio, Dataset

    from ..data.decode import prepare_audio
    from ..inputs.fast_mode import encoder_states_once

    paths = [path for path, _ in recordings]
    table = Dataset.from_dict(
        {"audio": paths, "path": paths, "speaker_id": [speaker for _, speaker in recordings]}
    ).cast_column("audio", Audio(sampling_rate=feature_extractor.sampling_rate))
    prepared = prepare_audio(table, skip_invalid=True, shortest_clip=shortest)
    return encoder_states_once(model, feature_extractor, prepared, 8)


def _scored_clips(
    paths: Sequence[str],
    digests: Sequence[str],
    scored_paths: Optional[set[str]],
    fitted_digests: Optional[set[str]],
    statistics: dict[str, Any],
) -> np.ndarray:
    """Which labelled clips the estimate scores: those of `scored_paths` (resolved; default all), less those the
    model was already fitted on (`fitted_digests`), which train only (counted in `statistics`)."""
    scored = np.ones(len(paths), dtype=bool)
    if scored_paths is not None:
        scored = np.asarray([str(Path(path).resolve()) in scored_paths for path in paths])
    if fitted_digests:
        fitted = np.asarray([digest in fitted_digests for digest in digests])
        if fitted.any():
            logger.warning(
                "%d of %d labelled clips are clips the model was already fitted on (its adaptation.json): they train "
                "but never count in the estimate.",
                int(fitted.sum()),
                len(paths),
            )
        scored &= ~fitted
        statistics["clips_the_model_was_fitted_on"] = int(fitted.sum())
    return scored


def labelled_states(
    model,
    feature_extractor,
    data_dir: str | os.PathLike,
    options: Mapping[str, Any],
    labels: Optional[Sequence[str]],
    test_speakers: Sequence[str],
    scored_paths: Optional[set[str]] = None,
    statistics_recordings: Optional[Mapping[str, str]] = None,
    fitted_digests: Optional[set[str]] = None,
) -> LabelledStates:
    """Decode and encode the labelled clips of `data_dir` (a folder corpus read with `options`; the test speakers'
    left out), and standardise them under each statistics rule (see :mod:`.selection`). Clips with the same bytes are
    one clip (the first kept, the log counts the others). `scored_paths` (resolved) are the clips the cross-validation
    scores (default all; self-training's pseudo-labelled clips only train); clips whose digest is in
    `fitted_digests` (the clips the model was already fitted on) train but are never scored.
    `statistics_recordings` (path -> speaker) and the folder's clips of labels left out give statistics only."""
    from ..data.corpora import load_corpus
    from ..data.dataset_info import column_values
    from ..data.decode import ShortestClip, prepare_audio
    from ..data.file_digests import file_digests
    from ..inputs.base import minimum_clip_samples
    from ..inputs.fast_mode import encoder_states_once

    sampling_rate = feature_extractor.sampling_rate
    dataset = load_corpus("folder", str(data_dir), sampling_rate=sampling_rate, **dict(options))
    folder_names = dataset.features["label"].names
    names = list(labels) if labels else list(folder_names)
    index = {folder_names.index(name): position for position, name in enumerate(names) if name in folder_names}
    excluded = set(test_speakers)
    keep = [
        s not in excluded and label in index
        for s, label in zip(*(column_values(dataset, c) for c in ("speaker_id", "label")))
    ]
    paths_all = column_values(dataset, "path")
    digests = file_digests(paths_all)
    speaker_ids = column_values(dataset, "speaker_id")
    labelled_rows, other_rows, seen = _distinct_rows(keep, digests, speaker_ids, excluded, data_dir)
    merged = len(digests) - len(seen)
    samples, what = minimum_clip_samples(model.config, feature_extractor)
    shortest = ShortestClip(samples / sampling_rate, what) if samples > 1 else None
    labelled = dataset.select(labelled_rows)
    prepared = prepare_audio(labelled, skip_invalid=True, shortest_clip=shortest)
    if len(prepared) < len(labelled):
        logger.warning(
            "%d of %d labelled clips cannot be read by the model (undecodable, silent or too short): left out.",
            len(labelled) - len(prepared),
            len(labelled),
        )
    encoded = encoder_states_once(model, feature_extractor, prepared, 8)
    label_ids = np.asarray([index[label] for label in column_values(encoded, "label")], dtype=np.int64)
    speakers = [str(speaker) for speaker in column_values(encoded, "speaker_id")]
    paths = [str(path) for path in column_values(encoded, "path")]
    if len(set(label_ids.tolist())) < 2:
        raise AdaptationError(f"{data_dir}: the model can read clips of fewer than two emotions; label more clips.")
    # Statistics only: the labelled speakers' other recordings (the folder's clips of labels left out, and those
    # given unlabelled), which read no label.
    labelled_speakers = set(speakers)
    extra = [(p, s) for p, s in (statistics_recordings or {}).items() if s in labelled_speakers]
    extra = [(p, s) for (p, s), digest in zip(extra, file_digests([p for p, _ in extra])) if digest not in seen]
    other_rows = [row for row in other_rows if speaker_ids[row] in labelled_speakers]
    recordings = [(paths_all[row], speaker_ids[row]) for row in other_rows] + extra
    others = _statistics_states(model, feature_extractor, recordings, shortest)
    if others is not None:
        logger.info(
            "Statistics of the %d labelled speaker(s) from their %d labelled clips and %d other recordings.",
            len(labelled_speakers),
            len(paths),
            len(others),
        )
    plans, record = statistics_rule_plans(model, feature_extractor, encoded, others, label_ids, speakers, len(names))
    statistics: dict[str, Any] = {
        "normalization": getattr(feature_extractor, "normalization", None),
        "labelled_clips": len(paths),
        "other_recordings": 0 if others is None else len(others),
        "merged_copies": merged,
        **record,
    }
    digest_of = dict(zip(map(str, paths_all), digests))
    scored = _scored_clips(paths, [digest_of[path] for path in paths], scored_paths, fitted_digests, statistics)
    group = next(iter(plans.values()))[1]
    rows = _states_rows(encoded, group.group_column if group is not None else "speaker_id")
    inputs = {
        (rule, side): head_inputs(model, feature_extractor, rows, plan[index])
        for rule, plan in plans.items()
        for index, side in enumerate(SIDES)
    }
    # The projector's inputs under the rules a projector+head candidate may be saved with (PROJECTOR_RULES).
    projector_rules = [rule for rule in plans if rule in PROJECTOR_RULES]
    pooled = None
    if projector_rules and all(inputs[rule, side][1] is not None for rule in projector_rules for side in SIDES):
        pooled = PooledStates(*({rule: inputs[rule, side][1] for rule in projector_rules} for side in SIDES))
    return LabelledStates(
        paths=paths,
        labels=label_ids,
        label_names=names,
        speakers=speakers,
        scored=scored,
        training={rule: inputs[rule, "training"][0] for rule in plans},
        evaluation={rule: inputs[rule, "evaluation"][0] for rule in plans},
        statistics=statistics,
        normalizations={rule: plan[1].to_dict() if plan[1] is not None else None for rule, plan in plans.items()},
        digests=[digest_of[path] for path in paths],
        pooled=pooled,
    )


def start_classifier(model, label_names: Sequence[str]) -> tuple[Classifier, bool]:
    """The model's classifier on the user's labels, in calibrated units (its logits divided by its calibration
    temperature); a label the model lacks gets a zero row and the mean bias. Returns it and whether any label is
    new."""
    weight = model.classifier.weight.detach().float().cpu().numpy().astype(np.float64)
    bias = model.classifier.bias.detach().float().cpu().numpy().astype(np.float64)
    temperature = float(getattr(model.config, "calibration_temperature", 1.0) or 1.0)
    rows = {label: int(index) for index, label in model.config.id2label.items()}
    new = [label for label in label_names if label not in rows]
    zeros = np.zeros(weight.shape[1])
    start_weight = np.stack([weight[rows[name]] if name in rows else zeros for name in label_names])
    start_bias = np.array([bias[rows[name]] if name in rows else float(bias.mean()) for name in label_names])
    return Classifier(start_weight / temperature, start_bias / temperature), bool(new)


def set_classifier(
    model, classifier: Classifier, label_names: Sequence[str], pooled: Optional[PooledStates] = None
) -> None:
    """Give `model` the chosen classifier on the user's labels (stored in the model's own units: its forward pass
    divides by the calibration temperature), keeping the classifier it started from for the speaker check; and, for
    a classifier whose projector moved, the moved projector (from `pooled`, the states it was fitted on)."""
    import torch
    from torch import nn

    if classifier.shift is not None:
        if pooled is None:
            raise ValueError("A classifier whose projector moved needs the pooled states it was fitted on.")
        change = classifier.shift.weight_change(pooled.training)
        with torch.no_grad():
            projector = model.projector
            projector.weight += torch.tensor(change, dtype=projector.weight.dtype, device=projector.weight.device)
            projector.bias += torch.tensor(
                classifier.shift.bias, dtype=projector.bias.dtype, device=projector.bias.device
            )

    temperature = float(getattr(model.config, "calibration_temperature", 1.0) or 1.0)
    if not getattr(model.config, "speaker_check_classifier", None):
        model.config.speaker_check_classifier = {
            "labels": [model.config.id2label[i] for i in range(len(model.config.id2label))],
            "weight": model.classifier.weight.detach().float().cpu().tolist(),
            "bias": model.classifier.bias.detach().float().cpu().tolist(),
        }
    dtype = model.classifier.weight.dtype
    layer = nn.Linear(classifier.weight.shape[1], classifier.weight.shape[0]).to(model.classifier.weight.device)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(temperature * classifier.weight, dtype=dtype))
        layer.bias.copy_(torch.tensor(temperature * classifier.bias, dtype=dtype))
    model.classifier = layer.to(dtype)
    model.config.num_labels = len(label_names)
    model.config.id2label = dict(enumerate(label_names))
    model.config.label2id = {label: index for index, label in enumerate(label_names)}


def fit_adaptation(
    model_dir: Path,
    data_dir: str | os.PathLike,
    options: Mapping[str, Any],
    output_dir: Path,
    *,
    labels: Optional[Sequence[str]] = None,
    test_speakers: Sequence[str] = (),
    seed: int = 0,
    scored_paths: Optional[set[str]] = None,
    statistics_recordings: Optional[Mapping[str, str]] = None,
    fitted_digests: Optional[set[str]] = None,
) -> tuple[Any, Selection]:
    """Choose and fit the adaptation of the model in `model_dir` to the labelled clips of `data_dir`, save it in
    `output_dir` with the statistics rule chosen and its report (test speakers scored) and return ``(RunReport,
    Selection)``. `statistics_recordings` and `fitted_digests` as in :func:`labelled_states`."""
    from ..evaluation.evaluate_model import CorpusSource, TrainedModel, evaluate_model
    from ..models.runtime.loading import load_model
    from ..run_record import RunReport, SplitMetrics, SplitRecord, TrainingRecord
    from ..training.export_stage import export_model

    started = time.perf_counter()
    model, feature_extractor = load_model(model_dir, allow_onnx=False, purpose="ser-hf adapt")
    states = labelled_states(
        model,
        feature_extractor,
        data_dir,
        options,
        labels,
        test_speakers,
        scored_paths,
        statistics_recordings=statistics_recordings,
        fitted_digests=fitted_digests,
    )
    start, new_labels = start_classifier(model, states.label_names)
    selection = select_adaptation(
        start,
        states.training,
        states.evaluation,
        states.labels,
        states.speakers,
        new_labels=new_labels,
        seed=seed,
        scored=states.scored,
        label_names=states.label_names,
        pooled=states.pooled,
    )
    selection.statistics = states.statistics
    selection.fitted_clips = list(states.digests)
    rule = selection.chosen.rule
    if rule != AS_SAVED:
        selection.statistics["rule"] = rule
        selection.statistics["why"] = statistics_rule_reason(selection)
        if not selection.unchanged:  # a model kept as it was keeps its rule: its estimate line says so already
            logger.warning("Statistics rule: %s.", selection.statistics["why"])
    set_classifier(model, selection.classifier, states.label_names, states.pooled)
    apply_statistics_rule(feature_extractor, rule)
    export_model(model, feature_extractor, output_dir)
    evaluation, normalization = {}, states.normalizations.get(rule)
    if test_speakers:
        source = CorpusSource("folder", str(data_dir), options=dict(options))
        # The model in memory is the one just saved (its weights, labels and feature extractor): not loaded again.
        adapted = TrainedModel(name_or_path=str(output_dir), model=model, feature_extractor=feature_extractor)
        scored = evaluate_model(adapted, source, speakers=list(test_speakers), labels=states.label_names)
        (metrics,) = scored["evaluation"].values()
        evaluation["test"] = SplitMetrics.from_dict(metrics)
        normalization = scored.get("normalization") or normalization
        # The test speakers' clips of emotions the adapted model does not choose among: never scored, always said.
        selection.statistics["test_clips_left_unscored"] = dict(scored.get("dropped_clips") or {})
    report = RunReport(
        protocol="speaker",
        split=SplitRecord.from_dict(
            {
                "clips": {"train": len(states.paths)},
                "speakers": {"train": sorted(set(states.speakers)), "test": sorted(test_speakers)},
            }
        ),
        normalization=normalization,
        training_corpora=["folder"],
        labels=states.label_names,
        evaluation=evaluation,
        training=TrainingRecord.from_dict({"wall_seconds": round(time.perf_counter() - started, 1)}),
    )
    write_run_config(model_dir, output_dir, data_dir, options, states.label_names, test_speakers, seed)
    return report, selection


def statistics_rule_reason(selection: Selection) -> str:
    """Why the adapted model applies its statistics rule: the best cross-validated UA under each rule."""
    best: dict[str, tuple[float, str]] = {}
    for name, score in selection.scores.items():
        rule = name.rsplit(", ", 1)[1].removesuffix(" statistics") if ", " in name else selection.model_rule
        if rule not in best or score > best[rule][0]:
            best[rule] = (score, name)
    listed = "; ".join(f"{rule} {score:.1f} % ({name})" for rule, (score, name) in best.items())
    kept = selection.chosen.rule
    origin = "the model's own" if kept == selection.model_rule else f"the model's own was {selection.model_rule}"
    return f"{kept}, chosen with the adaptation by cross-validation ({origin}); best held-out UA per rule: {listed}"


def write_run_config(
    model_dir: Path,
    output_dir: Path,
    data_dir: str | os.PathLike,
    options: Mapping[str, Any],
    labels: Sequence[str],
    test_speakers: Sequence[str],
    seed: int,
) -> None:
    """The adapted model's ``run_config.json``, which its card and ``ser-hf evaluate`` read: the model section of the
    model it started from (its encoder, head and statistics are the adapted model's), the user's folder as its data,
    and no training hyperparameters (no recipe trained it: the selection's record, ``adaptation.json``, says what
    was fitted)."""
    import json

    from ..atomic_files import write_text_atomic
    from ..run_folder import RUN_CONFIG_FILE
    from ..run_record import RunConfig
    from .trained_model import trained_model_facts

    source = Path(model_dir) / RUN_CONFIG_FILE
    model = json.loads(source.read_text()).get("model", {}) if source.is_file() else {}
    facts = trained_model_facts(model_dir)
    model = {**model, "model_type": model.get("model_type") or facts["family"], "model_name_or_path": str(model_dir)}
    config = RunConfig(
        model=model,
        data={
            "corpus": ["folder"],
            "data_dir": [str(data_dir)],
            "corpus_options": dict(options),
            "labels": list(labels),
            "split_protocol": "speaker",
            "test_speakers": list(test_speakers),
        },
        training={"output_dir": str(output_dir), "seed": seed},
    )
    write_text_atomic(output_dir / RUN_CONFIG_FILE, json.dumps(config.to_dict(), indent=2, default=str) + "\n")


__all__ = [
    "LabelledStates",
    "apply_statistics_rule",
    "fit_adaptation",
    "labelled_states",
    "model_statistics_rule",
    "unlabelled_normalization",
]
