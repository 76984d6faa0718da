"""The end of a training run: each split's trained model saved (LoRA merged, calibrated, safetensors), then the run's
recipe and model cards written and the run pushed to the Hub when ``push_to_hub`` is set."""

from __future__ import annotations

import os
from pathlib import Path

from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..atomic_files import atomic_directory
from ..evaluation.calibration import apply_temperature
from ..hub.card import write_model_card
from ..hub.push import push_to_hub
from ..models import merge_lora
from ..recipe.recipe import Recipe
from ..run_folder import fold_folder
from ..run_record import RunReport


def export_model(
    model, feature_extractor: SequenceFeatureExtractor, output_dir: str | os.PathLike, temperature: float = 1.0
) -> None:
    """Save the trained classifier (LoRA adapters merged in, so it loads without peft) and its feature extractor in
    safetensors, ready for ``pipeline("audio-classification", model=output_dir)``, its logits divided by the
    calibration ``temperature`` (see :func:`~ser_hf.evaluation.calibration.apply_temperature`)."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = merge_lora(model)
    if temperature != 1.0:
        apply_temperature(model, temperature)
    # Staged and renamed file by file: a run killed mid-export leaves no half-written weights behind.
    with atomic_directory(output_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        feature_extractor.save_pretrained(staging)


def finish_run(recipe: Recipe, reports: list[RunReport], /):
    """``finish_run(recipe, reports)``: the end of a run, on the main process only: write ``recipe.yaml``
    (:meth:`~ser_hf.recipe.Recipe.write_yaml`, listing the keys the recipe's file and command line gave,
    :attr:`~ser_hf.recipe.Recipe.given`) and the model cards (a k-fold run's folds with their mean ± std, and its own
    card at the top), then push the run when ``push_to_hub`` is set.

    The token comes from ``hub_token`` or ``huggingface_hub``'s usual sources; ``run_config.json`` holds it masked.
    Returns the push's `CommitInfo`, or `None`.
    """
    training_args = recipe.training
    if not training_args.should_save:
        return None
    output_dir = Path(training_args.output_dir)
    folds = [report.fold for report in reports if report.fold is not None]
    model_dirs = [output_dir / fold_folder(fold) for fold in folds] or [output_dir]
    for model_dir in model_dirs:
        recipe.write_yaml(model_dir)
        write_model_card(model_dir)
    if len(folds) > 1:  # the k-fold summary was written: a card for the whole run at the top
        recipe.write_yaml(output_dir)
        write_model_card(output_dir)
    if not training_args.push_to_hub or training_args.process_index != 0:
        return None
    push_dir = output_dir if len(folds) != 1 else model_dirs[0]
    repo_id = training_args.hub_model_id or output_dir.resolve().name
    return push_to_hub(
        push_dir,
        repo_id,
        private=training_args.hub_private_repo,
        token=training_args.hub_token,
        revision=training_args.hub_revision,
    )


__all__ = [
    "export_model",
    "finish_run",
]
