"""Every key a recipe may set, known without importing torch or transformers: ``python -m ser_hf.train`` and
``ser-hf train`` check a recipe's keys against it first, so that a misspelt key is answered at once rather than after
the seconds those imports take. The recipe parser then checks everything again against the dataclasses themselves.

ser-hf's own fields are listed here (a test keeps the lists equal to the dataclasses' fields); the fields
``SERTrainingArguments`` inherits are read from the installed transformers' ``TrainingArguments`` source, so that a
transformers release that adds one does not make a valid key look misspelt.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import logging
import os
from typing import Any, Iterable, Optional, Sequence

from ..errors import RecipeError
from .errors import unknown_key_message
from .values import command_line_values, value_problems
from .yaml_io import read_recipe_file

logger = logging.getLogger(__name__)

#: ``ModelArguments``' fields.
MODEL_KEYS = (
    "model_type",
    "model_name_or_path",
    "model_revision",
    "reinitialize_head",
    "allow_pickled_weights",
    "model_config",
    "feature_extractor_config",
    "encoder_window_seconds",
    "pooling_mode",
    "use_weighted_layer_sum",
    "freeze_feature_encoder",
    "num_frozen_layers",
    "freeze_base_model",
    "cache_encoder_outputs",
    "finetune_top_layers",
    "cache_feature_encoder",
    "use_lora",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
)

#: ``DataArguments``' fields.
DATA_KEYS = (
    "corpus",
    "data_dir",
    "corpus_options",
    "corpus_weights",
    "train_only_corpora",
    "label_map",
    "labels",
    "sampling_rate",
    "skip_invalid",
    "split_protocol",
    "train_speakers",
    "validation_speakers",
    "test_speakers",
    "test_size",
    "validation_size",
    "num_folds",
    "folds",
    "split_seed",
    "max_duration_seconds",
    "preprocessing_num_workers",
    "cache_precision",
)

#: ``AugmentationArguments``' fields.
AUGMENTATION_KEYS = (
    "noise_prob",
    "noise_snr_db",
    "noise_files",
    "gain_prob",
    "gain_db",
    "speed_prob",
    "speed_factors",
    "pitch_prob",
    "pitch_semitones",
    "reverb_prob",
    "reverb_rt60",
    "impulse_responses",
    "lowpass_prob",
    "lowpass_hz",
    "cached_augmented_copies",
    "num_time_masks",
    "time_mask_width",
    "num_freq_masks",
    "freq_mask_width",
    "mask_time_prob",
    "mask_time_length",
    "mask_feature_prob",
    "mask_feature_length",
    "mixup_alpha",
)

#: ``SERTrainingArguments``' fields beyond transformers' ``TrainingArguments`` (see :func:`training_arguments_keys`).
SER_TRAINING_KEYS = (
    "class_weights",
    "head_learning_rate",
    "one_cycle_lr",
    "overwrite_output_dir",
    "early_stopping_patience",
    "calibrate_temperature",
    "calibration_min_clips",
    "self_training_rounds",
    "self_training_share",
    "precision",
    "defer_loss_check",
)

#: The recipe key that lists an ensemble's member recipes (:mod:`ser_hf.training.ensemble`); an ensemble recipe holds
#: keys of its own, which it checks itself.
ENSEMBLE_MEMBERS_KEY = "ensemble_members"

# TrainingArguments fields every transformers version has: their absence means the source was not read right.
_SURE_TRAINING_KEYS = {"output_dir", "learning_rate", "num_train_epochs", "seed"}


@functools.lru_cache(maxsize=1)
def training_arguments_keys() -> Optional[frozenset[str]]:
    """The init fields of transformers' ``TrainingArguments``, read from the installed package's source
    (``training_args.py``) without importing it; `None` when the source is not laid out as expected (the class
    defined elsewhere, or built from a base class), in which case nothing is checked early."""
    try:
        spec = importlib.util.find_spec("transformers")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = os.path.join(list(spec.submodule_search_locations)[0], "training_args.py")
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
    except (OSError, SyntaxError, ValueError, ImportError) as error:
        logger.debug("TrainingArguments' fields not read from transformers' source: %s", error)
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "TrainingArguments":
            if node.bases:
                return None  # fields inherited from elsewhere would be missed
            keys = frozenset(
                statement.target.id
                for statement in node.body
                if isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and not _is_class_variable(statement.annotation)
                and not _init_false(statement.value)
            )
            return keys if _SURE_TRAINING_KEYS <= keys else None
    return None


def _is_class_variable(annotation: ast.expr) -> bool:
    return "ClassVar" in ast.unparse(annotation)


def _init_false(value: Optional[ast.expr]) -> bool:
    """Whether a field is declared ``field(..., init=False)`` (not settable, so not a recipe key)."""
    return isinstance(value, ast.Call) and any(
        keyword.arg == "init" and isinstance(keyword.value, ast.Constant) and keyword.value.value is False
        for keyword in value.keywords
    )


def recipe_keys_before_imports() -> Optional[frozenset[str]]:
    """Every key a recipe may set, or `None` when transformers' ``TrainingArguments`` fields cannot be read without
    importing it."""
    training_keys = training_arguments_keys()
    if training_keys is None:
        return None
    return frozenset(MODEL_KEYS + DATA_KEYS + AUGMENTATION_KEYS + SER_TRAINING_KEYS) | training_keys


def check_recipe_keys(values: dict[str, Any], known_keys: Iterable[str], path: str | os.PathLike) -> None:
    """Stop on a recipe key that is not in ``known_keys``, naming the key, the closest known key and the file."""
    known_keys = set(known_keys)
    unknown = [key for key in values if key not in known_keys]
    if unknown:
        raise RecipeError(
            f"Unknown key(s) {', '.join(unknown_key_message(k, known_keys) for k in unknown)} in recipe {path}."
        )


def check_recipe_before_imports(args: Sequence[str]) -> None:
    """For ``RECIPE.yaml [--key value ...]``: stop on a recipe that is not a YAML mapping, holds an unknown key (with
    the recipe parser's message), a number out of its range or a path that does not exist
    (:func:`~ser_hf.recipe.values.value_problems`, on the file's values with the command line's over them), before
    torch and transformers are imported. Ensemble recipes and recipes of
    a transformers whose fields cannot be read here are left to the parser."""
    if not args or str(args[0]).startswith("-"):
        return
    values = read_recipe_file(args[0])
    known_keys = recipe_keys_before_imports()
    if known_keys is None or ENSEMBLE_MEMBERS_KEY in values:
        return
    check_recipe_keys(values, known_keys, args[0])
    problems = value_problems({**values, **command_line_values(list(args[1:]))})
    if len(problems) == 1:
        raise RecipeError(f"{problems[0]} (recipe {args[0]})")
    if problems:
        numbered = " ".join(f"({number}) {problem}" for number, problem in enumerate(problems, start=1))
        raise RecipeError(f"{len(problems)} values of recipe {args[0]} cannot work: {numbered}")


__all__ = [
    "AUGMENTATION_KEYS",
    "DATA_KEYS",
    "ENSEMBLE_MEMBERS_KEY",
    "MODEL_KEYS",
    "SER_TRAINING_KEYS",
    "check_recipe_before_imports",
    "check_recipe_keys",
    "recipe_keys_before_imports",
    "training_arguments_keys",
]
