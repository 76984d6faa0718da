"""The recipe's schema as data: every key a recipe may set, ser-hf's own by section with its type, default, help and
range, and transformers' ``TrainingArguments`` keys, in ``schema.json`` beside this module. The checks that answer a
recipe before torch and transformers are imported (a misspelt key, a number out of its range: :mod:`.keys`) and
``ser-hf train --help`` (:mod:`.usage`) read it, since importing the dataclasses takes seconds.

The file is generated from the dataclasses themselves, never written by hand: ``python -m ser_hf.recipe.schema``
writes it again, and a test fails (naming that command) when it differs from what the dataclasses give. It records the
transformers version it was made with; under another version, a key the file does not know is left to the recipe
parser (which imports the dataclasses), so that a transformers release that adds a key never makes it look misspelt.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Optional

from .fields import RANGE, TRAINING_ARGUMENTS_FACTS, NumberRule
from .value_forms import type_name

#: The generated schema file, shipped with the package.
SCHEMA_FILE = Path(__file__).with_name("schema.json")
#: The command that writes :data:`SCHEMA_FILE` again from the dataclasses.
REFRESH_COMMAND = "python -m ser_hf.recipe.schema"


def _section_title(class_name: str) -> str:
    """``ModelArguments`` -> ``Model``, ``SERTrainingArguments`` -> ``Training``."""
    return class_name.removesuffix("Arguments").removeprefix("SER")


def _default(field: dataclasses.Field) -> Optional[str]:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return repr(field.default_factory())
    return None


def build_schema() -> dict[str, Any]:
    """The schema of the recipe dataclasses as they are imported now (this imports torch and transformers)."""
    from transformers import TrainingArguments

    from .parser import RECIPE_DATACLASSES

    inherited = {field.name for field in dataclasses.fields(TrainingArguments) if field.init}
    sections, ranges = [], {}
    for dataclass_type in RECIPE_DATACLASSES:
        # The keys in the order the class declares them (a field declared again keeps its inherited place).
        # The types as written: the parser resolves a field's `type` in place.
        by_name = {field.name: field for field in dataclasses.fields(dataclass_type) if field.init}
        annotations = inspect.get_annotations(dataclass_type)
        keys = []
        for field in (by_name[name] for name in annotations if name in by_name):
            keys.append(
                {
                    "name": field.name,
                    "type": annotation
                    if isinstance(annotation := annotations[field.name], str)
                    else type_name(annotation),
                    "default": _default(field),
                    "help": field.metadata.get("help", ""),
                }
            )
        for field in by_name.values():
            rule = field.metadata.get(RANGE) or TRAINING_ARGUMENTS_FACTS.get(field.name, {}).get(RANGE)
            if rule is not None:
                ranges[field.name] = rule._asdict()
        description = inspect.cleandoc(dataclass_type.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        sections.append({"title": _section_title(dataclass_type.__name__), "description": description, "keys": keys})
    own = {key["name"] for section in sections for key in section["keys"]}
    return {
        "generated_by": REFRESH_COMMAND,
        "transformers_version": importlib.metadata.version("transformers"),
        "sections": sections,
        "trainer_keys": sorted(inherited - own),
        "ranges": ranges,
    }


def schema_text(schema: dict[str, Any]) -> str:
    """The schema as :data:`SCHEMA_FILE` holds it."""
    return json.dumps(schema, indent=1, ensure_ascii=False) + "\n"


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


def main() -> int:
    """Write :data:`SCHEMA_FILE` again from the dataclasses."""
    SCHEMA_FILE.write_text(schema_text(build_schema()), encoding="utf-8")
    sys.stdout.write(f"wrote {SCHEMA_FILE}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "REFRESH_COMMAND",
    "SCHEMA_FILE",
    "build_schema",
    "load_schema",
    "number_rules",
    "recipe_keys_before_imports",
    "schema_is_current",
    "schema_text",
    "ser_hf_keys",
    "training_arguments_keys",
]
