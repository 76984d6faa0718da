"""The model card's rows of a run's settings (its hyperparameters, its augmentations), derived from the recipe's field
facts: each field that states a :class:`~ser_hf.recipe.fields.CardRow` is shown, in the rows' order, and an
augmentation's row fills its settings in from the run's augmentation section. How a card shows a setting is the
hub's business; the recipe only states, beside each key, whether and where it is shown.
"""

from __future__ import annotations

import collections
from typing import Any, Mapping

from ..recipe.fields import CARD, CardRow, field_facts


def card_rows(sections: Mapping[str, Any]) -> tuple[tuple[str, str, CardRow], ...]:
    """``(section, key, row)`` of every field the model card shows, in the card's order, of the dataclasses
    `sections` maps the run config's sections to (``{"training": SERTrainingArguments, ...}``)."""
    rows = [
        (section, name, facts[CARD])
        for section, arguments in sections.items()
        for name, facts in field_facts(arguments).items()
        if CARD in facts
    ]
    return tuple(sorted(rows, key=lambda row: row[2].row))


def row_details(row: CardRow, settings: Mapping[str, Any]) -> str:
    """`row`'s ``detail`` filled in from `settings` (a setting missing from them reads ``None``)."""
    return (row.detail or "").format_map(collections.defaultdict(lambda: None, settings))


__all__ = ["card_rows", "row_details"]
