"""Writes the recipe's schema (:data:`ser_hf.recipe.schema.SCHEMA_FILE`) from the recipe dataclasses:
``python -m ser_hf.recipe.generate_schema`` after a recipe key is added or changed (``tests/recipe/test_keys.py`` fails
until then). It imports the dataclasses, and so torch and transformers; :mod:`ser_hf.recipe.schema` reads the file
without them.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import json
import sys
from typing import Any, Optional

from ..atomic_files import write_text_atomic
from .fields import RANGE, TRAINING_ARGUMENTS_FACTS
from .schema import REFRESH_COMMAND, SCHEMA_FILE
from .value_forms import type_name


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


def main() -> int:
    """Write :data:`~ser_hf.recipe.schema.SCHEMA_FILE` again from the dataclasses."""
    write_text_atomic(SCHEMA_FILE, schema_text(build_schema()))
    sys.stdout.write(f"wrote {SCHEMA_FILE}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_schema", "main", "schema_text"]
