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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..errors import RecipeError
from .selection import Classifier, Selection, select_adaptation, training_statistics

logger = logging.getLogger(__name__)


@dataclass
class LabelledStates:
    """The labelled clips as the selection reads them: each clip's path, label (index into ``labels``), speaker,
    whether it is scored in the cross-validation (pseudo-labelled clips only train), and its projected
    representation standardised for training and for evaluation."""

    paths: list[str]
    labels: np.ndarray
    label_names: list[str]
    speakers: list[str]
    scored: np.ndarray
    training: np.ndarray
    evaluation: np.ndarray
    statistics: dict[str, Any]
    normalization: Optional[dict[str, Any]] = None


def projected_representation(model, feature_extractor, rows: Sequence[Mapping[str, Any]], plan) -> np.ndarray:
    """Each row's input to the model's ``classifier`` (after the projector; the model's own head on cached pooled
    encoder states, in evaluation mode), standardised with ``plan``'s statistics."""
    from ..inputs.fast_mode import head_logits

    captured = []
    hook = model.classifier.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    try:
        head_logits(model, feature_extractor, rows, plan)
    finally:
        hook.remove()
    if not captured:
        return np.zeros((0, model.classifier.in_features))
    return np.concatenate([tensor.detach().float().cpu().numpy() for tensor in captured]).astype(np.float64)


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


def labelled_states(
    model,
    feature_extractor,
    data_dir: str | os.PathLike,
    options: Mapping[str, Any],
    labels: Optional[Sequence[str]],
    test_speakers: Sequence[str],
    scored_paths: Optional[set[str]] = None,
) -> LabelledStates:
    """Decode and encode the labelled clips of `data_dir` (a folder corpus read with `options`; the test speakers'
    left out) and standardise them (see the module text). `scored_paths` (resolved) are the clips the
    cross-validation scores: the others (self-training's pseudo-labelled clips) only train."""
    import copy

    from ..data.corpora import load_corpus
    from ..data.dataset_info import column_values
    from ..data.decode import ShortestClip, prepare_audio
    from ..evaluation.speaker_check import (
        checked_head_statistics,
        checks_speakers,
        merged_statistics_of,
    )
    from ..inputs.base import minimum_clip_samples
    from ..inputs.fast_mode import encoder_states_once
    from ..inputs.speaker_normalization import ENCODER_STATES_COLUMN, speaker_statistics

    sampling_rate = feature_extractor.sampling_rate
    dataset = load_corpus("folder", str(data_dir), sampling_rate=sampling_rate, **dict(options))
    folder_names = dataset.features["label"].names
    names = list(labels) if labels else list(folder_names)
    index = {folder_names.index(name): position for position, name in enumerate(names) if name in folder_names}
    excluded = set(test_speakers)
    dataset = dataset.filter(
        lambda speaker, label: speaker not in excluded and label in index, input_columns=["speaker_id", "label"]
    )
    samples, what = minimum_clip_samples(model.config, feature_extractor)
    shortest = ShortestClip(samples / sampling_rate, what) if samples > 1 else None
    prepared = prepare_audio(dataset, skip_invalid=True, shortest_clip=shortest)
    if len(prepared) < len(dataset):
        logger.warning(
            "%d of %d labelled clips cannot be read by the model (undecodable, silent or too short): left out.",
            len(dataset) - len(prepared),
            len(dataset),
        )
    encoded = encoder_states_once(model, feature_extractor, prepared, 8)
    label_ids = np.asarray([index[label] for label in column_values(encoded, "label")], dtype=np.int64)
    speakers = [str(speaker) for speaker in column_values(encoded, "speaker_id")]
    paths = [str(path) for path in column_values(encoded, "path")]
    if len(set(label_ids.tolist())) < 2:
        raise RecipeError(f"{data_dir}: the model can read clips of fewer than two emotions; label more clips.")
    base = unlabelled_normalization(feature_extractor, encoded, model)
    statistics: dict[str, Any] = {"normalization": getattr(feature_extractor, "normalization", None)}
    training_plan = evaluation_plan = base
    if base is not None and base.mode == "speaker":
        few, statistics["training"] = training_statistics(label_ids, speakers, len(names))
        by_group = speaker_statistics(feature_extractor, encoded, model, base.group_column)
        shared = merged_statistics_of(by_group).statistics(feature_extractor.variance_floor)
        training_plan = copy.copy(base)
        training_plan.speaker_statistics = {
            group: (shared if group in few else value) for group, value in base.speaker_statistics.items()
        }
        if checks_speakers(feature_extractor):
            rows = encoded.select_columns([ENCODER_STATES_COLUMN, base.group_column]).with_format("numpy")
            evaluation_plan = copy.copy(base)
            # Decided by the classifier the model started from (checked_head_statistics uses speaker_check_head).
            evaluation_plan.speaker_statistics, check = checked_head_statistics(
                model, feature_extractor, rows, base.group_column, by_group
            )
            statistics["evaluation"] = {
                "rule": "as at inference: the speaker check of the model the adaptation starts from",
                "set_statistics_for_all": check["set_statistics_for_all"],
                "fallback": check["fallback"],
            }
    columns = [ENCODER_STATES_COLUMN] + ([base.group_column] if base is not None else [])
    rows = encoded.select_columns(columns).with_format("numpy")
    scored = np.ones(len(paths), dtype=bool)
    if scored_paths is not None:
        scored = np.asarray([str(Path(path).resolve()) in scored_paths for path in paths])
    return LabelledStates(
        paths=paths,
        labels=label_ids,
        label_names=names,
        speakers=speakers,
        scored=scored,
        training=projected_representation(model, feature_extractor, rows, training_plan),
        evaluation=projected_representation(model, feature_extractor, rows, evaluation_plan),
        statistics=statistics,
        normalization=evaluation_plan.to_dict() if evaluation_plan is not None else None,
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


def set_classifier(model, classifier: Classifier, label_names: Sequence[str]) -> None:
    """Give `model` the chosen classifier on the user's labels (stored in the model's own units: its forward pass
    divides by the calibration temperature), keeping the classifier it started from for the speaker check."""
    import torch
    from torch import nn

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
) -> tuple[Any, Selection]:
    """Choose and fit the adaptation of the model in `model_dir` to the labelled clips of `data_dir`, save it in
    `output_dir` with its report (test speakers scored) and return ``(RunReport, Selection)``."""
    from ..evaluation.evaluate_model import CorpusSource, TrainedModel, evaluate_model
    from ..models.runtime.loading import load_model
    from ..run_record import RunReport, SplitMetrics, SplitRecord, TrainingRecord
    from ..training.export_stage import export_model

    started = time.perf_counter()
    model, feature_extractor = load_model(model_dir, allow_onnx=False, purpose="ser-hf adapt")
    states = labelled_states(model, feature_extractor, data_dir, options, labels, test_speakers, scored_paths)
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
    )
    selection.statistics = states.statistics
    set_classifier(model, selection.classifier, states.label_names)
    export_model(model, feature_extractor, output_dir)
    evaluation, normalization = {}, states.normalization
    if test_speakers:
        source = CorpusSource("folder", str(data_dir), options=dict(options))
        # The model in memory is the one just saved (its weights, labels and feature extractor): not loaded again.
        adapted = TrainedModel(name_or_path=str(output_dir), model=model, feature_extractor=feature_extractor)
        scored = evaluate_model(adapted, source, speakers=list(test_speakers), labels=states.label_names)
        (metrics,) = scored["evaluation"].values()
        evaluation["test"] = SplitMetrics.from_dict(metrics)
        normalization = scored.get("normalization") or normalization
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
    from ..recipe.adaptation import trained_model_facts
    from ..run_folder import RUN_CONFIG_FILE
    from ..run_record import RunConfig

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


__all__ = ["LabelledStates", "fit_adaptation", "labelled_states", "unlabelled_normalization"]
