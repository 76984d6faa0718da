"""Building an ensemble from trained model folders (``ser-hf ensemble``, ensemble recipes): the members' weights and
feature extractors copied into one :class:`EnsembleForAudioClassification` that ``pipeline`` and every ser-hf command
load like any other model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

from transformers import PreTrainedModel

from ...errors import InputError
from ..configuration_ensemble import EnsembleConfig
from ..feature_extraction_ensemble import EnsembleFeatureExtractor
from ..modeling_ensemble import EnsembleForAudioClassification
from .loading import load_model


def ensemble_from_models(
    models: Sequence[PreTrainedModel],
    feature_extractors: Sequence,
    *,
    names: Optional[Sequence[str]] = None,
    weights: Optional[Sequence[float]] = None,
) -> tuple[EnsembleForAudioClassification, EnsembleFeatureExtractor]:
    """An ensemble of loaded ``models`` (with their ``feature_extractors``), which must have the same labels in the
    same order. The members' weights are copied: later changes to ``models`` do not reach the ensemble."""
    names = list(names) if names is not None else [f"member_{index}" for index in range(len(models))]
    if len(models) < 2 or len(feature_extractors) != len(models) or len(names) != len(models):
        raise ValueError(
            f"An ensemble needs at least two models, each with its feature extractor and name; got {len(models)} "
            f"models, {len(feature_extractors)} feature extractors and {len(names)} names."
        )
    labels = [models[0].config.id2label[index] for index in range(models[0].config.num_labels)]
    for name, model in zip(names[1:], models[1:]):
        own = [model.config.id2label[index] for index in range(model.config.num_labels)]
        if own != labels:
            raise ValueError(
                f"Ensemble members must have the same labels in the same order: {names[0]} has {labels}, "
                f"{name} has {own}."
            )
    if weights is not None and (len(weights) != len(models) or not all(float(w) > 0 for w in weights)):
        raise InputError(
            f"weights {list(weights)}: the members' weights (member_weights in a recipe) must be positive, one per "
            f"member ({len(models)}).",
            parameter="weights",
        )
    if any(isinstance(model, EnsembleForAudioClassification) for model in models):
        raise ValueError("An ensemble member cannot be an ensemble itself: list its members instead.")
    config = EnsembleConfig(
        members=[model.config.to_dict() for model in models],
        member_names=names,
        member_weights=[float(weight) for weight in weights] if weights is not None else None,
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )
    ensemble = EnsembleForAudioClassification(config)
    for member, model in zip(ensemble.members, models):
        member.load_state_dict(model.state_dict())
    ensemble.eval()
    return ensemble, EnsembleFeatureExtractor(members=[extractor.to_dict() for extractor in feature_extractors])


def build_ensemble(
    model_dirs: Sequence[Union[str, os.PathLike]],
    *,
    weights: Optional[Sequence[float]] = None,
    names: Optional[Sequence[str]] = None,
    trust_remote_code: bool = False,
) -> tuple[EnsembleForAudioClassification, EnsembleFeatureExtractor]:
    """An ensemble of the trained models in ``model_dirs`` (run folders, fold folders or Hub repositories), named
    after their folders unless ``names`` are given; equal ``weights`` by default."""
    models, extractors = [], []
    for model_dir in model_dirs:
        model, feature_extractor = load_model(
            model_dir, trust_remote_code=trust_remote_code, allow_onnx=False, purpose="an ensemble"
        )
        models.append(model)
        extractors.append(feature_extractor)
    if names is None:
        names = [member_name(model_dir) for model_dir in model_dirs]
    return ensemble_from_models(models, extractors, names=names, weights=weights)


def member_name(model_dir: Union[str, os.PathLike]) -> str:
    path = Path(model_dir)
    # A fold folder (outputs/ravdess_cnn2d/fold-0) is named after its run.
    return f"{path.parent.name}/{path.name}" if path.name.startswith("fold-") else path.name


__all__ = ["build_ensemble", "ensemble_from_models"]
