"""Ensemble recipes: train every member recipe on the same splits, then average their probabilities (late fusion) and
save the members as one :class:`~ser_hf.models.EnsembleForAudioClassification` per split.

An ensemble recipe lists its members' recipes (paths relative to it) under ``ensemble_members``; every other key it
holds (corpus, data folder, split protocol and speakers, seed...) is given to each member, replacing the member's own,
so that all members train and are tested on the same speakers. Each member's run goes to
``OUTPUT_DIR/members/NAME`` with the recipe it was trained from; the ensemble's reports and models to ``OUTPUT_DIR``
(one ``fold-K`` folder per fold, as any run).

The ensemble's scores of a split are computed from the members' scores of its clips (each member's softmax
probabilities, as its saved model gives them through ``pipeline``, with speaker normalisation where the member uses
it): the weighted mean, exactly what the saved ensemble computes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..atomic_files import atomic_directory
from ..errors import RecipeError
from ..evaluation.metrics import classification_metrics, clip_predictions
from ..evaluation.report import write_fold_summary, write_report
from ..hub.card import write_model_card
from ..inputs.speaker_normalization import ensemble_normalization
from ..models.configuration_ensemble import EnsembleConfig
from ..models.modeling_ensemble import EnsembleForAudioClassification
from ..models.runtime.ensemble import build_ensemble, member_name
from ..recipe.keys import ENSEMBLE_MEMBERS_KEY
from ..recipe.recipe import Recipe
from ..recipe.yaml_io import read_recipe_file
from ..run_folder import RUN_CONFIG_FILE, RunDir, fold_folder
from ..run_record import EnsembleRecord, RunConfig, RunReport, SplitMetrics, TrainingRecord, ValidationChoices

logger = logging.getLogger(__name__)

#: The recipe key of the members' weights (equal by default).
MEMBER_WEIGHTS_KEY = "member_weights"
#: Where each member's run goes, under the ensemble's output folder.
MEMBERS_FOLDER = "members"


def is_ensemble_recipe(values: Mapping[str, Any]) -> bool:
    return ENSEMBLE_MEMBERS_KEY in values


def member_recipes(recipe: str | Path, values: Mapping[str, Any]) -> list[Path]:
    """The member recipes an ensemble recipe lists, resolved relative to it; each must exist and not be an
    ensemble itself."""
    members = values[ENSEMBLE_MEMBERS_KEY]
    if not isinstance(members, list) or len(members) < 2:
        raise RecipeError(
            f"{ENSEMBLE_MEMBERS_KEY} in {recipe} must list at least two member recipes; got {members!r}."
        )
    paths = []
    for member in members:
        path = Path(recipe).parent / str(member)
        if not path.is_file():
            raise RecipeError(f"Member recipe {member!r} of {recipe} not found (looked for {path}).")
        if is_ensemble_recipe(read_recipe_file(path)):
            raise RecipeError(f"Member recipe {path} of {recipe} is an ensemble itself: list its members instead.")
        paths.append(path)
    stems = [path.stem for path in paths]
    if len(set(stems)) != len(stems):
        raise RecipeError(f"The member recipes of {recipe} must have different file names; got {stems}.")
    return paths


def member_weights(recipe: str | Path, values: Mapping[str, Any], count: int) -> Optional[list[float]]:
    weights = values.get(MEMBER_WEIGHTS_KEY)
    if weights is None:
        return None
    if not isinstance(weights, list) or len(weights) != count or any(float(w) <= 0 for w in weights):
        raise RecipeError(
            f"{MEMBER_WEIGHTS_KEY} in {recipe} must give a positive weight to each of the {count} members; "
            f"got {weights!r}."
        )
    return [float(weight) for weight in weights]


def member_values(member: Path, shared: Mapping[str, Any], output_dir: Path) -> dict[str, Any]:
    """A member recipe's values with the ensemble's shared keys given to it, training into its own folder under the
    ensemble's ``output_dir``."""
    values = read_recipe_file(member)
    values.update(
        {key: value for key, value in shared.items() if key not in (ENSEMBLE_MEMBERS_KEY, MEMBER_WEIGHTS_KEY)}
    )
    values["output_dir"] = str(output_dir / MEMBERS_FOLDER / member.stem)
    return values


def fuse_clip_predictions(
    members: Sequence[Sequence[Mapping[str, Any]]],
    label_names: Sequence[str],
    weights: Optional[Sequence[float]] = None,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """``(paths, speakers, labels, log_probabilities)`` of the clips every member scored (their ``clip_predictions``):
    the logarithm of the weighted mean of the members' scores, in the first member's order of clips."""
    weights = np.asarray(weights if weights is not None else [1.0] * len(members), dtype=np.float64)
    weights = weights / weights.sum()
    by_path = [{clip["path"]: clip for clip in clips} for clips in members]
    paths = [clip["path"] for clip in members[0]]
    if any(set(own) != set(paths) for own in by_path[1:]):
        raise ValueError("The ensemble's members were evaluated on different clips: they cannot be fused.")
    probabilities = sum(
        weight * np.array([[own[path]["scores"][name] for name in label_names] for path in paths])
        for weight, own in zip(weights, by_path)
    )
    labels = np.array([label_names.index(by_path[0][path]["label"]) for path in paths])
    speakers = [by_path[0][path]["speaker_id"] for path in paths]
    return paths, speakers, labels, np.log(np.clip(probabilities, 1e-12, None))


def member_normalizations(
    member_reports: Sequence[RunReport], member_dirs: Sequence[Path]
) -> Optional[dict[str, Any]]:
    """How the members standardised their features (their reports'), as one protocol line."""
    return ensemble_normalization(
        [(member_name(path), report.normalization) for path, report in zip(member_dirs, member_reports)]
    )


def ensemble_report(
    member_reports: Sequence[RunReport],
    member_dirs: Sequence[Path],
    output_dir: Path,
    weights: Optional[Sequence[float]] = None,
) -> RunReport:
    """Fuse one split's member runs (their reports and trained model folders): save the ensemble model in
    ``output_dir`` and its report (``metrics.json``, the plots), and return the report."""
    first = member_reports[0]
    label_names = first.labels
    if any(report.labels != label_names for report in member_reports[1:]):
        raise ValueError("The ensemble's members were trained on different label sets: they cannot be fused.")
    evaluation = {}
    for split in first.evaluation:
        if not all(split in report.evaluation for report in member_reports):
            continue
        paths, speakers, labels, log_probabilities = fuse_clip_predictions(
            [report.evaluation[split].clip_predictions for report in member_reports], label_names, weights
        )
        metrics = classification_metrics(labels, log_probabilities, label_names, speakers=speakers)
        metrics["clip_predictions"] = clip_predictions(paths, speakers, labels, log_probabilities, label_names)
        evaluation[split] = SplitMetrics.from_dict(metrics)
    model = save_ensemble(member_dirs, output_dir, weights=weights)
    report = RunReport(
        protocol=first.protocol,
        fold=first.fold,
        split=first.split,
        leakage_audit=first.leakage_audit,
        normalization=member_normalizations(member_reports, member_dirs),
        training_corpora=first.training_corpora,
        labels=label_names,
        evaluation=evaluation,
        # The members' validation speakers chose what they chose for each member (reports and cards say so).
        validation_choices=_members_validation_choices(member_reports) if "validation" in evaluation else None,
        # An ensemble trains nothing itself: its time is its members'.
        training=TrainingRecord.from_dict(
            {"wall_seconds": sum(report.training.wall_seconds for report in member_reports)}
        ),
        ensemble=EnsembleRecord(
            members=[str(path) for path in member_dirs],
            weights=list(model.config.member_weights),
            member_test_ua=[
                report.evaluation["test"].unweighted_accuracy if "test" in report.evaluation else None
                for report in member_reports
            ],
        ),
    )
    write_report(output_dir, report)
    return report


def _members_validation_choices(member_reports: Sequence[RunReport]) -> Optional[ValidationChoices]:
    """What any member chose on the validation speakers; `None` when a member's report does not record it."""
    choices = [report.validation_choices for report in member_reports]
    if any(choice is None for choice in choices):
        return None
    return ValidationChoices(
        best_epoch=any(choice.best_epoch for choice in choices),
        early_stopping=any(choice.early_stopping for choice in choices),
        temperature=any(choice.temperature for choice in choices),
    )


def save_ensemble(
    member_dirs: Sequence[str | Path],
    output_dir: str | Path,
    *,
    weights: Optional[Sequence[float]] = None,
    names: Optional[Sequence[str]] = None,
    trust_remote_code: bool = False,
) -> EnsembleForAudioClassification:
    """Build the ensemble of the trained models in ``member_dirs`` (:func:`~ser_hf.models.build_ensemble`) and save it
    in ``output_dir`` with its feature extractor and ``run_config.json`` (its members and weights, and the data and
    split of its first member, where that member is a ser-hf run: for its card and ``ser-hf evaluate --split``).

    The files are staged and renamed one by one, as every run's model: a run killed mid-save leaves no half-written
    weights, and files of ``output_dir`` under other names are left alone."""
    model, feature_extractor = build_ensemble(
        member_dirs, weights=weights, names=names, trust_remote_code=trust_remote_code
    )
    member_configs = [
        (RunDir(path).read_config() if Path(path).is_dir() else None) or RunConfig() for path in member_dirs
    ]
    run_config = RunConfig(
        model={
            "model_type": EnsembleConfig.model_type,
            "members": [str(path) for path in member_dirs],
            "member_names": list(model.config.member_names),
            "member_weights": list(model.config.member_weights),
        },
        data=member_configs[0].data,
        augmentation={},
        training={"members": [config.training for config in member_configs]},
    )
    with atomic_directory(output_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        feature_extractor.save_pretrained(staging)
        (staging / RUN_CONFIG_FILE).write_text(json.dumps(run_config.to_dict(), indent=2, default=str) + "\n")
    return model


def train_ensemble(
    recipe: str | Path,
    values: Mapping[str, Any],
    flags: Sequence[str],
    train: Callable[[Recipe], list[RunReport]],
) -> list[RunReport]:
    """Train the ensemble recipe `recipe` (its `values`): each member recipe's values, updated with the ensemble's
    shared keys and the command line's `flags` (read once, typed), through ``train``
    (:func:`ser_hf.training.run_recipe.run_parsed_recipe`), then every split's (or fold's) members fused into one saved
    ensemble with its report, card and, for k-fold, the mean ± std summary. Members that finished are read back, so
    an interrupted run resumes."""
    from ..recipe.parser import RecipeParser

    members = member_recipes(recipe, values)
    weights = member_weights(recipe, values, len(members))
    overrides = RecipeParser().parse_flags(flags, str(recipe))
    # The command line's output_dir is the ensemble's; each member trains in a folder under it.
    output_dir = Path(
        overrides.pop("output_dir", None) or values.get("output_dir") or Path("outputs") / Path(recipe).stem
    )
    member_runs = []
    for member in members:
        merged = {**member_values(member, values, output_dir), **overrides}
        logger.info("Ensemble member %s: training into %s", member.name, merged["output_dir"])
        member_recipe = Recipe.from_values(merged, given=merged.keys(), path=str(member))
        member_runs.append((Path(merged["output_dir"]), train(member_recipe)))
    return fuse_members(recipe, member_runs, output_dir, weights)


def fuse_members(
    recipe: str | Path,
    member_runs: Sequence[tuple[Path, Sequence[RunReport]]],
    output_dir: Path,
    weights: Optional[Sequence[float]] = None,
) -> list[RunReport]:
    """Every split's (or fold's) member runs (each member's run folder and reports, in the same order of folds) fused
    into one saved ensemble in ``output_dir`` with its report and card, and for k-fold the mean ± std summary."""
    if len({len(reports) for _, reports in member_runs}) != 1:
        raise RecipeError(f"The members of {recipe} trained different numbers of folds: they cannot be fused.")
    reports = []
    for fold_reports in zip(*(reports for _, reports in member_runs)):
        fold = fold_reports[0].fold
        folder = fold_folder(fold) if fold is not None else ""
        member_dirs = [member_dir / folder for member_dir, _ in member_runs]
        reports.append(ensemble_report(fold_reports, member_dirs, output_dir / folder, weights))
        write_model_card(output_dir / folder)
    if len(reports) > 1:
        split = "test" if all("test" in report.evaluation for report in reports) else "validation"
        write_fold_summary(output_dir, reports, split=split)
        write_model_card(output_dir)
    logger.info("Finished: the ensemble is in %s (its members in %s)", output_dir, output_dir / MEMBERS_FOLDER)
    return reports


__all__ = [
    "ENSEMBLE_MEMBERS_KEY",
    "MEMBERS_FOLDER",
    "MEMBER_WEIGHTS_KEY",
    "ensemble_report",
    "fuse_members",
    "fuse_clip_predictions",
    "is_ensemble_recipe",
    "member_recipes",
    "member_values",
    "member_weights",
    "save_ensemble",
    "train_ensemble",
]
