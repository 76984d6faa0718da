"""The recipe's schema as data: every key a recipe may set, ser-hf's own by section with its type, default, help and
range, and transformers' ``TrainingArguments`` keys, in ``schema.json`` beside this module. The checks that answer a
recipe before torch and transformers are imported (a misspelt key, a number out of its range: :mod:`.keys`) and
``ser-hf train --help`` (:mod:`.usage`) read it, since importing the dataclasses takes seconds.

The file is generated from the dataclasses themselves, never written by hand: ``python -m
ser_hf.recipe.generate_schema`` writes it again, and a test fails (naming that command) when it differs from what the
dataclasses give. It records the transformers version it was made with; under another version, a key the file does
not know is left to the recipe parser (which imports the dataclasses), so that a transformers release that adds a key
never makes it look misspelt.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from pathlib import Path
from typing import Any

from .fields import NumberRule

#: The generated schema file, shipped with the package.
SCHEMA_FILE = Path(__file__).with_name("schema.json")
#: The command that writes :data:`SCHEMA_FILE` again from the dataclasses (:mod:`ser_hf.recipe.generate_schema`).
REFRESH_COMMAND = "python -m ser_hf.recipe.generate_schema"


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The shipped schema (:data:`SCHEMA_FILE`), read once."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def ser_hf_keys() -> frozenset[str]:
    """The keys ser-hf's recipe dataclasses declare themselves (their own fields and the ``TrainingArguments`` fields
    ``SERTrainingArguments`` declares again with ser-hf's defaults)."""
    return frozenset(key["name"] for section in load_schema()["sections"] for key in section["keys"])


def training_arguments_keys() -> frozenset[str]:
    """transformers' ``TrainingArguments`` keys that ser-hf does not declare again."""
    return frozenset(load_schema()["trainer_keys"])


def recipe_keys_before_imports() -> frozenset[str]:
    """Every key a recipe may set, as the schema knows it."""
    return ser_hf_keys() | training_arguments_keys()


def schema_is_current() -> bool:
    """Whether the installed transformers is the one the schema was made with (else a key the schema lacks may be a
    key of this transformers: the parser decides)."""
    try:
        return importlib.metadata.version("transformers") == load_schema()["transformers_version"]
    except importlib.metadata.PackageNotFoundError:
        return False


def number_rules() -> dict[str, NumberRule]:
    """The range of each numeric recipe key (:class:`~ser_hf.recipe.fields.NumberRule`), as the schema holds it; none
    while there is no schema yet (its first :func:`main` imports the dataclasses, which read the ranges)."""
    if not SCHEMA_FILE.exists():
        return {}
    return {name: NumberRule(**rule) for name, rule in load_schema()["ranges"].items()}


__all__ = [
    "REFRESH_COMMAND",
    "SCHEMA_FILE",
    "load_schema",
    "number_rules",
    "recipe_keys_before_imports",
    "schema_is_current",
    "ser_hf_keys",
    "training_arguments_keys",
]
