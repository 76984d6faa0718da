"""What a training run does with a run already in its output folder: refuse to resume or read back one that another
recipe wrote or that saw other clips, and remove it (only the files ser-hf wrote) when ``overwrite_output_dir`` is
set."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Mapping

from ..data.splits import clip_changes, records_contents
from ..errors import RecipeError
from ..recipe.augmentation_arguments import AugmentationArguments
from ..recipe.data_arguments import DataArguments
from ..recipe.fields import OUTCOME, field_facts, outcome_fields
from ..recipe.model_arguments import ModelArguments
from ..recipe.training_arguments import SERTrainingArguments
from ..run_folder import CLIP_FINGERPRINT_FILE, RUN_CONFIG_FILE, RunDir, remove_run_outputs
from ..run_record import RunConfig

logger = logging.getLogger(__name__)


def _outcome_training_fields() -> set[str]:
    """The training settings that change what a run trains (its optimiser, schedule, batches, seed, precision, and
    which epoch it keeps): a finished or interrupted run with other values is not this recipe's run. Each field's
    ``outcome`` fact says it (:func:`ser_hf.recipe.fields.outcome_fields`), not its logging, saving or output."""
    return set(outcome_fields(SERTrainingArguments))


def check_same_recipe(output_dir: Path, run_config: RunConfig | Mapping[str, Any]) -> None:
    """Refuse to resume (or read back) a run in ``output_dir`` that another model, data, augmentation or training
    setting wrote (``run_config``: the resolved recipe, :meth:`~ser_hf.recipe.Recipe.to_run_config`; of the training
    settings, those that change what is trained, :func:`_outcome_training_fields`: not its logging, saving or
    output)."""
    run = RunDir(output_dir)
    if not run.has(RUN_CONFIG_FILE):
        return
    if not run.holds_progress():
        return  # that run stopped before its first checkpoint (on bad input, say): nothing to mix with
    previous, current = run.read_config(), RunConfig.from_dict(run_config)
    training_fields = _outcome_training_fields()

    def comparable(config: RunConfig, section: str, arguments) -> dict:
        # Of the training settings, those that change what is trained; of the others, all but those whose facts say
        # they do not (which folds run, how many processes decode).
        values = json.loads(json.dumps(getattr(config, section), default=str)) or {}
        if section == "training":
            return {key: value for key, value in values.items() if key in training_fields}
        neutral = {name for name, facts in field_facts(arguments).items() if facts.get(OUTCOME) is False}
        return {key: value for key, value in values.items() if key not in neutral}

    changed = {}
    for section, arguments in (
        ("model", ModelArguments),
        ("data", DataArguments),
        ("augmentation", AugmentationArguments),
        ("training", SERTrainingArguments),
    ):
        before, now = comparable(previous, section, arguments), comparable(current, section, arguments)
        defaults = _field_defaults(arguments)
        keys = sorted(
            key
            for key in set(before) | set(now)
            # A key the earlier ser-hf did not record, at its default now: a setting added since, not a change.
            if before.get(key) != now.get(key) and not (key not in before and now.get(key) == defaults.get(key))
        )
        if keys:
            changed[section] = keys
    if changed:
        raise RecipeError(
            f"{output_dir} holds a run with other {' and '.join(changed)} settings ("
            + "; ".join(f"{section}: {', '.join(keys)}" for section, keys in changed.items())
            + "): reading its results back, or resuming it, would pass that run off as this recipe's. Choose "
            "another output_dir, or set overwrite_output_dir to train anew in this one."
        )


def check_same_clips(output_dir: Path, fingerprint: Mapping[str, Any]) -> None:
    """Refuse to resume (or read back) a run in ``output_dir`` that trained or was evaluated on other clips than
    ``splits`` now hold (:func:`~ser_hf.data.splits.clip_fingerprint`: clips deleted, added, relabelled or with other
    bytes since), naming each split that changed, by how much and up to five of its clips; a run that recorded no
    fingerprint passes, one whose fingerprint lacks the clips' contents (an earlier ser-hf) is refused."""
    run = RunDir(output_dir)
    if not run.holds_progress():
        return
    before = run.read_json(CLIP_FINGERPRINT_FILE)
    if before is None:
        return
    if not isinstance(before, dict) or not all(records_contents(record) for record in before.values()):
        raise RecipeError(
            f"{output_dir} holds a run whose {CLIP_FINGERPRINT_FILE} an earlier ser-hf wrote without the clips' "
            "contents (a digest of each clip's bytes), so it cannot vouch for the clips that run saw. Set "
            "overwrite_output_dir to train anew on the corpus as it is, or choose another output_dir."
        )
    changes = clip_changes(before, fingerprint)
    if changes:
        raise RecipeError(
            f"{output_dir} holds a run on other clips than the corpus holds now ({'; '.join(changes)}; recorded "
            f"in {output_dir / CLIP_FINGERPRINT_FILE}): reading its results back, or resuming it, would report "
            "clips that are gone or leave out new ones. Set overwrite_output_dir to train anew on the corpus as it "
            "is, or choose another output_dir."
        )


def _field_defaults(arguments: type) -> dict[str, Any]:
    """Each field's default as a run's record holds it (JSON values)."""
    defaults = {}
    for field in dataclasses.fields(arguments):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return json.loads(json.dumps(defaults, default=str))


def remove_previous_run(output_dir: Path, training_args: SERTrainingArguments) -> None:
    """Remove the run in ``output_dir`` (``overwrite_output_dir``): only the files a ser-hf run writes
    (:func:`~ser_hf.run_folder.remove_run_outputs`), in a folder that a ser-hf run wrote (it holds
    ``run_config.json``); anything else there is kept and named. The main process removes them while the others
    wait."""
    with training_args.main_process_first(desc="removing the previous run"):
        if training_args.should_save and RunDir(output_dir).is_run_folder():
            logger.warning("overwrite_output_dir: removing the previous run's outputs in %s", output_dir)
            kept = remove_run_outputs(output_dir)
            if kept:
                logger.warning("Kept in %s (not written by ser-hf): %s", output_dir, ", ".join(kept))


__all__ = [
    "check_same_clips",
    "check_same_recipe",
    "remove_previous_run",
]
