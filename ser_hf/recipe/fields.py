"""What a recipe key means beyond its type and help: the range its number must be in, how the model card shows it, and
whether it changes what a run trains. Each fact is written once, in the metadata of the key's dataclass field (in
:mod:`ser_hf.recipe.model_arguments` and its sibling modules), beside its ``help`` (as TRL keeps ``help`` and
``choices`` there)::

    lora_r: int = field(default=8, metadata={"help": "LoRA rank.", "range": AT_LEAST_ONE})

under the keys :data:`RANGE` (a :class:`NumberRule`), :data:`CARD` (a :class:`CardRow`) and :data:`OUTCOME` (`True`
where another value trains another model). The fields ``SERTrainingArguments`` inherits from transformers'
``TrainingArguments`` without declaring them again have theirs in :data:`TRAINING_ARGUMENTS_FACTS`. Every table a
reader needs is derived from the fields: :func:`number_rules` (the range checks of :mod:`ser_hf.recipe.values`),
:func:`ser_hf.hub.card_rows.card_rows` (the model card's hyperparameters and augmentation) and
:func:`outcome_fields` (the training settings a resumed run must share,
:func:`ser_hf.training.previous_run.check_same_recipe`).

This module imports neither torch nor transformers. The checks that answer a recipe before those imports read the
ranges from the recipe's generated schema (:mod:`ser_hf.recipe.schema`), which is made from these facts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, NamedTuple, Optional

#: The metadata key of a field's range (:class:`NumberRule`).
RANGE = "range"
#: The metadata key of how the model card shows a field (:class:`CardRow`); a field without one is not on the card.
CARD = "card"
#: The metadata key of whether a field changes what a run trains (`True`), or only how it runs, logs, saves (`False`).
OUTCOME = "outcome"
#: ser-hf's keys of a field's metadata; the others (``help``, ``choices``) are argparse's.
FACT_KEYS = (RANGE, CARD, OUTCOME)


class NumberRule(NamedTuple):
    """What a numeric recipe value must be. Booleans are never numbers (YAML's ``true`` is not a learning rate), nor
    is anything infinite or NaN.

    Attributes:
        words (`str`): the rule as the error states it (``"{key} must be {words}, got {value}"``).
        greater_than, at_least, below, at_most (`float`, *optional*): the bounds the value is tested against.
        whole (`bool`): the value must be a whole number.
        why (`str`): a clause the error ends on, or ``""``.
    """

    words: str
    greater_than: Optional[float] = None
    at_least: Optional[float] = None
    below: Optional[float] = None
    at_most: Optional[float] = None
    whole: bool = False
    why: str = ""

    def holds(self, value: float) -> bool:
        """Whether a finite number `value` is within the rule's bounds."""
        return (
            (self.greater_than is None or value > self.greater_than)
            and (self.at_least is None or value >= self.at_least)
            and (self.below is None or value < self.below)
            and (self.at_most is None or value <= self.at_most)
            and (not self.whole or value == int(value))
        )


class CardRow(NamedTuple):
    """How the model card shows a recipe key.

    Attributes:
        row (`int`): its place among the card's rows of its kind (the hyperparameters, the augmentations).
        label (`str`, *optional*): the words shown for it; the key itself when not set.
        detail (`str`, *optional*): an augmentation's settings, a `str.format` template over the run's augmentation
            section (``"SNR {noise_snr_db} dB"``).
    """

    row: int
    label: Optional[str] = None
    detail: Optional[str] = None


# Rules several keys share.
#: torch's optimizers accept an infinite rate and fail (or train to NaN) at the first step; a negative one climbs the
#: loss; zero trains nothing and still saves the model as a finished run.
POSITIVE_RATE = NumberRule("a positive, finite number (2.0e-5, say)", greater_than=0)
AT_LEAST_ONE = NumberRule("at least 1", at_least=1)
OFF_OR_POSITIVE = NumberRule("0 (off) or positive", at_least=0)

#: The facts of the ``TrainingArguments`` fields that ``SERTrainingArguments`` inherits without declaring them again
#: (their fields, and metadata, are transformers'): the same keys as a field's metadata. A field it declares again
#: (``eval_strategy``, ``save_total_limit``, ...) holds its facts in its own metadata instead. A field in neither
#: leaves what is trained as it is (``logging_dir``, ``report_to``, ...).
TRAINING_ARGUMENTS_FACTS: dict[str, dict[str, Any]] = {
    "learning_rate": {RANGE: POSITIVE_RATE, CARD: CardRow(1), OUTCOME: True},
    "per_device_train_batch_size": {RANGE: AT_LEAST_ONE, CARD: CardRow(3), OUTCOME: True},
    "per_device_eval_batch_size": {RANGE: AT_LEAST_ONE},
    "gradient_accumulation_steps": {RANGE: AT_LEAST_ONE, CARD: CardRow(4), OUTCOME: True},
    "num_train_epochs": {
        RANGE: NumberRule("positive", greater_than=0, why="the run would save an untrained model"),
        CARD: CardRow(5),
        OUTCOME: True,
    },
    "max_steps": {CARD: CardRow(6), OUTCOME: True},
    "optim": {CARD: CardRow(7), OUTCOME: True},
    "optim_args": {OUTCOME: True},
    "lr_scheduler_type": {CARD: CardRow(8), OUTCOME: True},
    "lr_scheduler_kwargs": {OUTCOME: True},
    "warmup_steps": {
        RANGE: NumberRule("0 or positive", at_least=0, why="a number of steps, or below 1 a share of them"),
        CARD: CardRow(10),
        OUTCOME: True,
    },
    "weight_decay": {RANGE: NumberRule("0 (none) or positive", at_least=0), CARD: CardRow(11), OUTCOME: True},
    "adam_beta1": {OUTCOME: True},
    "adam_beta2": {OUTCOME: True},
    "adam_epsilon": {OUTCOME: True},
    "max_grad_norm": {RANGE: NumberRule("0 (no clipping) or positive", at_least=0), CARD: CardRow(13), OUTCOME: True},
    "label_smoothing_factor": {
        RANGE: NumberRule("in [0, 1) (0: no smoothing)", at_least=0, below=1),
        CARD: CardRow(14),
        OUTCOME: True,
    },
    "seed": {CARD: CardRow(19), OUTCOME: True},
    "data_seed": {OUTCOME: True},
    "dataloader_drop_last": {OUTCOME: True},
    "neftune_noise_alpha": {OUTCOME: True},
    "bf16": {OUTCOME: True},
    "fp16": {OUTCOME: True},
    "eval_steps": {OUTCOME: True},
}


def _facts(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {key: metadata[key] for key in FACT_KEYS if key in metadata}


def field_facts(arguments: Any) -> dict[str, dict[str, Any]]:
    """The facts of each field of a recipe dataclass (or instance) that has any, in field order: those its metadata
    states, or for an inherited ``TrainingArguments`` field, :data:`TRAINING_ARGUMENTS_FACTS`'."""
    facts = {}
    for field in dataclasses.fields(arguments):
        stated = _facts(field.metadata) or TRAINING_ARGUMENTS_FACTS.get(field.name)
        if stated:
            facts[field.name] = dict(stated)
    return facts


def number_rules(*arguments: Any) -> dict[str, NumberRule]:
    """Each numeric field of the recipe dataclasses (or instances) `arguments` with its :class:`NumberRule`."""
    return {name: facts[RANGE] for one in arguments for name, facts in field_facts(one).items() if RANGE in facts}


def outcome_fields(arguments: Any) -> frozenset[str]:
    """The fields of a recipe dataclass (or instance) whose facts say that they change what a run trains."""
    return frozenset(name for name, facts in field_facts(arguments).items() if facts.get(OUTCOME))


__all__ = [
    "AT_LEAST_ONE",
    "CARD",
    "CardRow",
    "FACT_KEYS",
    "NumberRule",
    "OFF_OR_POSITIVE",
    "OUTCOME",
    "POSITIVE_RATE",
    "RANGE",
    "TRAINING_ARGUMENTS_FACTS",
    "field_facts",
    "number_rules",
    "outcome_fields",
]
