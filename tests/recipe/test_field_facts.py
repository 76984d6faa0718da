"""Each recipe key's facts (range, model card row, whether it changes what is trained) live in its dataclass field's
metadata (issue 66): the number rules, the card's tables and the outcome fields are derived from the fields, a field
added with facts shows in all of them, and the tables derived equal the hand-kept ones they replaced."""

from __future__ import annotations

import dataclasses
import inspect
import math
import string
import subprocess
import sys
from types import SimpleNamespace

import pytest
from transformers import TrainingArguments

from ser_hf.errors import RecipeError
from ser_hf.hub import card
from ser_hf.hub.card_rows import card_rows, row_details
from ser_hf.recipe import fields, schema, values
from ser_hf.recipe.augmentation_arguments import AugmentationArguments
from ser_hf.recipe.data_arguments import DataArguments
from ser_hf.recipe.fields import CardRow, NumberRule
from ser_hf.recipe.model_arguments import ModelArguments
from ser_hf.recipe.parser import RECIPE_DATACLASSES
from ser_hf.recipe.training_arguments import SERTrainingArguments
from ser_hf.training.previous_run import _outcome_training_fields
from tests.conftest import REPO

# The hand-kept tables as they were before issue 66 (recipe/values.py's NUMBER_RULES, the card's _HYPERPARAMETERS and
# _AUGMENTATION_NAMES, training/stages.py's outcome fields). A key added since extends the derived tables; these keys
# must keep their facts.
_OLD_NUMBER_RULES = {
    "learning_rate": ("a positive, finite number (2.0e-5, say)", lambda value: value > 0, ""),
    "head_learning_rate": ("a positive, finite number (2.0e-5, say)", lambda value: value > 0, ""),
    "num_train_epochs": ("positive", lambda value: value > 0, "the run would save an untrained model"),
    "per_device_train_batch_size": ("at least 1", lambda value: value >= 1, ""),
    "per_device_eval_batch_size": ("at least 1", lambda value: value >= 1, ""),
    "gradient_accumulation_steps": ("at least 1", lambda value: value >= 1, ""),
    "label_smoothing_factor": ("in [0, 1) (0: no smoothing)", lambda value: 0 <= value < 1, ""),
    "weight_decay": ("0 (none) or positive", lambda value: value >= 0, ""),
    "warmup_steps": ("0 or positive", lambda value: value >= 0, "a number of steps, or below 1 a share of them"),
    "mixup_alpha": ("0 (off) or positive", lambda value: value >= 0, ""),
    "max_grad_norm": ("0 (no clipping) or positive", lambda value: value >= 0, ""),
    "save_total_limit": ("at least 1 (or left out: keep every checkpoint)", lambda value: value >= 1, ""),
    "calibration_min_clips": ("at least 1", lambda value: value >= 1, ""),
    "self_training_rounds": ("0 (off) or a positive whole number", lambda value: 0 <= value == int(value), ""),
    "corpus_adversarial_weight": ("0 (off) or positive", lambda value: value >= 0, ""),
    "starting_point_weight": ("0 (off) or positive", lambda value: value >= 0, ""),
    "self_training_share": ("in (0, 1]", lambda value: 0 < value <= 1, "the share of each emotion's clips kept"),
    "max_duration_seconds": ("a positive number of seconds", lambda value: value > 0, ""),
    "lora_r": ("at least 1", lambda value: value >= 1, ""),
    "lora_alpha": ("positive", lambda value: value > 0, ""),
    "lora_dropout": ("in [0, 1)", lambda value: 0 <= value < 1, ""),
}
_OLD_HYPERPARAMETERS = (
    "learning_rate",
    "head_learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "optim",
    "lr_scheduler_type",
    "one_cycle_lr",
    "warmup_steps",
    "weight_decay",
    "starting_point_weight",
    "max_grad_norm",
    "label_smoothing_factor",
    "class_weights",
    "early_stopping_patience",
    "metric_for_best_model",
    "precision",
    "seed",
)
_OLD_AUGMENTATION = {
    "noise_prob": ("additive noise", "SNR {noise_snr_db} dB"),
    "gain_prob": ("random gain", "{gain_db} dB"),
    "speed_prob": ("speed perturbation", "factors {speed_factors}"),
    "pitch_prob": ("pitch shift", "{pitch_semitones} semitones"),
    "reverb_prob": ("reverberation", "RT60 {reverb_rt60} s"),
}
_OLD_OUTCOME_FIELDS = {
    # TrainingArguments' (OUTCOME_TRAINING_FIELDS)
    *("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm"),
    *("num_train_epochs", "max_steps", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "optim"),
    *("optim_args", "per_device_train_batch_size", "gradient_accumulation_steps", "train_sampling_strategy"),
    *("dataloader_drop_last", "seed", "data_seed", "label_smoothing_factor", "neftune_noise_alpha", "bf16", "fp16"),
    *("eval_strategy", "eval_steps", "load_best_model_at_end", "metric_for_best_model", "greater_is_better"),
    # SERTrainingArguments' own but overwrite_output_dir and defer_loss_check (OUTCOME_NEUTRAL_SER_TRAINING_FIELDS)
    *("class_weights", "head_learning_rate", "one_cycle_lr", "early_stopping_patience", "calibrate_temperature"),
    *("calibration_min_clips", "self_training_rounds", "self_training_share", "starting_point_weight"),
    *("corpus_adversarial_weight", "precision"),
}
_PROBES = (-1, 0, 0.5, 1, 1.5, 2, 7, 2.0e-5, math.inf, -math.inf, math.nan, True, False, "1e-5", "abc", None, 3.0)


def _old_problem(name, value):
    """recipe/values.py's number_problem as it was."""
    rule, test, why = _OLD_NUMBER_RULES[name]
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not test(value):
        return f"{name} must be {rule}, got {values._shown(value)}" + (f": {why}." if why else ".")
    return None


def test_number_rules_are_the_old_ones_with_the_same_messages():
    assert set(_OLD_NUMBER_RULES) <= set(values.NUMBER_RULES)
    derived = fields.number_rules(*RECIPE_DATACLASSES)
    assert derived == values.NUMBER_RULES
    for name in _OLD_NUMBER_RULES:
        for value in _PROBES:
            assert values.number_problem(name, value) == _old_problem(name, value), (name, value)


def test_card_tables_are_the_old_ones_in_the_same_order():
    training = [name for section, name, _ in card._HYPERPARAMETERS if section == "training"]
    assert [name for name in training if name in _OLD_HYPERPARAMETERS] == list(_OLD_HYPERPARAMETERS)
    assert ("data", "max_duration_seconds") in [(section, name) for section, name, _ in card._HYPERPARAMETERS]
    assert card._HYPERPARAMETERS[len(_OLD_HYPERPARAMETERS)][1:] == (
        "max_duration_seconds",
        CardRow(20, "max_duration_seconds (random training crops)"),
    )
    shown = {name: (row.label, row.detail) for _, name, row in card._AUGMENTATION_NAMES}
    assert [name for name in shown if name in _OLD_AUGMENTATION] == list(_OLD_AUGMENTATION)
    assert {name: shown[name] for name in _OLD_AUGMENTATION} == _OLD_AUGMENTATION


def test_outcome_fields_are_the_old_ones():
    assert _OLD_OUTCOME_FIELDS <= _outcome_training_fields()
    assert (
        not {"overwrite_output_dir", "defer_loss_check", "logging_steps", "save_strategy"} & _outcome_training_fields()
    )


def test_ranges_read_from_the_schema_equal_the_dataclasses():
    """What the checks before torch read from the generated schema is what the imported dataclasses hold."""
    assert schema.number_rules() == fields.number_rules(*RECIPE_DATACLASSES)


def test_every_training_field_ser_hf_declares_says_whether_it_changes_what_is_trained():
    """A new training setting states its outcome, so that resuming a run with another value is never let through
    silently; the inherited table only holds TrainingArguments fields ser-hf does not declare again."""
    declared = inspect.get_annotations(SERTrainingArguments)
    by_name = {field.name: field for field in dataclasses.fields(SERTrainingArguments)}
    missing = [name for name in declared if fields.OUTCOME not in by_name[name].metadata]
    assert not missing, f"fields of SERTrainingArguments without an 'outcome' fact: {missing}"
    inherited = {field.name for field in dataclasses.fields(TrainingArguments)}
    assert set(fields.TRAINING_ARGUMENTS_FACTS) <= inherited
    assert not set(fields.TRAINING_ARGUMENTS_FACTS) & set(declared)


def test_card_rows_are_unique_and_their_details_name_fields():
    for rows in (card._HYPERPARAMETERS, card._AUGMENTATION_NAMES):
        places = [row.row for _, _, row in rows]
        assert len(places) == len(set(places))
    augmentation = {field.name for field in dataclasses.fields(AugmentationArguments)}
    for _, name, row in card._AUGMENTATION_NAMES:
        named = {part[1] for part in string.Formatter().parse(row.detail) if part[1]}
        assert row.label and row.detail and named <= augmentation, name


def test_only_facts_of_known_kinds_are_in_the_metadata():
    for arguments in (ModelArguments, DataArguments, AugmentationArguments, SERTrainingArguments):
        for name, facts in fields.field_facts(arguments).items():
            assert isinstance(facts.get(fields.RANGE, NumberRule("")), NumberRule), name
            assert isinstance(facts.get(fields.CARD, CardRow(0)), CardRow), name
            assert isinstance(facts.get(fields.OUTCOME, False), bool), name


# --- A field added with facts shows in every derived table -----------------------------------------------------


@dataclasses.dataclass
class _EchoAugmentation(AugmentationArguments):
    echo_prob: float = dataclasses.field(
        default=0.0,
        metadata={
            "help": "Probability of an echo.",
            "range": NumberRule("in [0, 1]", at_least=0, at_most=1),
            "card": CardRow(9, "echo", "delay {echo_ms} ms"),
        },
    )
    echo_ms: float = dataclasses.field(default=50.0, metadata={"help": "Echo delay in ms."})


@dataclasses.dataclass
class _TrainingWithExtras(SERTrainingArguments):
    curriculum_steps: int = dataclasses.field(
        default=0,
        metadata={
            "help": "Steps of easy clips first.",
            "range": fields.OFF_OR_POSITIVE,
            "card": CardRow(22),
            "outcome": True,
        },
    )
    progress_bar_colour: str = dataclasses.field(default="green", metadata={"help": "Colour.", "outcome": False})


def test_a_field_added_with_facts_shows_in_every_derived_table():
    assert fields.number_rules(_EchoAugmentation)["echo_prob"] == NumberRule("in [0, 1]", at_least=0, at_most=1)
    with pytest.raises(RecipeError, match=r"^echo_prob must be in \[0, 1\], got 1.5\.$"):
        _EchoAugmentation(echo_prob=1.5)
    rows = card_rows({"augmentation": _EchoAugmentation})
    assert rows[-1] == ("augmentation", "echo_prob", CardRow(9, "echo", "delay {echo_ms} ms"))
    assert row_details(rows[-1][2], {"echo_ms": 40}) == "delay 40 ms"

    assert "curriculum_steps" in fields.number_rules(_TrainingWithExtras)
    rows = card_rows({"training": _TrainingWithExtras, "data": DataArguments})
    assert [name for _, name, _ in rows][-3:] == ["max_duration_seconds", "soup_size", "curriculum_steps"]
    outcome = fields.outcome_fields(_TrainingWithExtras)
    assert "curriculum_steps" in outcome and "progress_bar_colour" not in outcome
    assert outcome - {"curriculum_steps"} == _outcome_training_fields()


def test_the_card_shows_a_run_as_before():
    """The card's methods on a run config: the rows of the derived tables, labels and filters as they were."""
    training = {"learning_rate": 1.0e-4, "num_train_epochs": 3, "max_steps": 50, "one_cycle_lr": True, "seed": 42}
    training |= {"class_weights": {"angry": 2}, "weight_decay": 0.0, "early_stopping_patience": None}
    augmentation = {"noise_prob": 0.5, "noise_snr_db": [10.0, 30.0], "reverb_prob": 0.2, "lowpass_prob": 0.3}
    run = SimpleNamespace(run_config=SimpleNamespace(augmentation=augmentation))
    data = SimpleNamespace(training_args=training, data_args={"max_duration_seconds": 4.0}, run=run)
    assert card.SERCardData._hyperparameters(data) == [
        ("learning_rate", 1.0e-4),
        ("max_steps", 50),
        ("one_cycle_lr", True),
        ("class_weights", '{"angry": 2}'),
        ("seed", 42),
        ("max_duration_seconds (random training crops)", 4.0),
        ("evaluation", "whole clips"),
    ]
    assert card.SERCardData._augmentation(data) == (
        "additive noise (p = 0.5, SNR [10.0, 30.0] dB); reverberation (p = 0.2, RT60 None s); "
        "band-limiting (p = 0.3, cut-off None Hz)"
    )


def test_the_number_rules_load_without_torch_or_transformers():
    code = (
        "import sys\n"
        "from ser_hf.recipe.values import NUMBER_RULES, value_problems\n"
        "print(value_problems({'lora_r': 0})[0])\n"
        "print(sorted(name for name in ('torch', 'transformers') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["lora_r must be at least 1, got 0.", "[]"]
