"""Every key a recipe may set, known without importing torch or transformers: ``python -m ser_hf.train`` and
``ser-hf train`` check a recipe's keys against it first, so that a misspelt key is answered at once rather than after
the seconds those imports take. The recipe parser then checks everything again against the dataclasses themselves.

ser-hf's own fields are read from the source of the recipe dataclasses' modules (parsed, not imported:
:mod:`ser_hf.recipe.dataclass_sources`), and the fields
``SERTrainingArguments`` inherits from the installed transformers' ``TrainingArguments`` source, so that a transformers
release that adds one does not make a valid key look misspelt.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import logging
import os
from typing import Any, Iterable, Optional, Sequence

from ..errors import RecipeError
from .dataclass_sources import recipe_class_nodes
from .errors import unknown_key_message
from .values import overrides_before_imports, value_problems
from .yaml_io import read_recipe_file

logger = logging.getLogger(__name__)

#: The recipe key that lists an ensemble's member recipes (:mod:`ser_hf.training.ensemble`); an ensemble recipe holds
#: keys of its own, which it checks itself.
ENSEMBLE_MEMBERS_KEY = "ensemble_members"

# TrainingArguments fields every transformers version has: their absence means the source was not read right.
_SURE_TRAINING_KEYS = {"output_dir", "learning_rate", "num_train_epochs", "seed"}


def _class_fields(path: str | os.PathLike, class_names: Iterable[str], own_fields_only: bool = False):
    """``{class name: init field names}`` of the dataclasses `class_names` defined in the Python file `path`, read
    from its source without importing it; `None` for a class that is missing or, with `own_fields_only`, built from a
    base class (whose fields would be missed)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=str(path))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    fields = {}
    for name in class_names:
        node = classes.get(name)
        if node is None or (own_fields_only and node.bases):
            fields[name] = None
            continue
        fields[name] = _init_fields(node)
    return fields


def _init_fields(node: ast.ClassDef) -> frozenset[str]:
    """The init field names a dataclass statement declares itself."""
    return frozenset(
        statement.target.id
        for statement in node.body
        if isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and not _is_class_variable(statement.annotation)
        and not _init_false(statement.value)
    )


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
        keys = _class_fields(path, ["TrainingArguments"], own_fields_only=True)["TrainingArguments"]
    except (OSError, SyntaxError, ValueError, ImportError) as error:
        logger.debug("TrainingArguments' fields not read from transformers' source: %s", error)
        return None
    return keys if keys is not None and _SURE_TRAINING_KEYS <= keys else None


@functools.lru_cache(maxsize=1)
def ser_hf_keys() -> frozenset[str]:
    """The fields ser-hf's recipe dataclasses (:data:`~ser_hf.recipe.dataclass_sources.RECIPE_CLASS_MODULES`) declare
    themselves, read from their modules' source: the modules import torch and transformers, which this check runs
    before."""
    return frozenset().union(*(_init_fields(node) for node in recipe_class_nodes().values()))


def _is_class_variable(annotation: ast.expr) -> bool:
    return "ClassVar" in ast.unparse(annotation)


def _init_false(value: Optional[ast.expr]) -> bool:
    """Whether a field is declared ``field(..., init=False)`` (not settable, so not a recipe key)."""
    return isinstance(value, ast.Call) and any(
        keyword.arg == "init" and isinstance(keyword.value, ast.Constant) and keyword.value.value is False
        for keyword in value.keywords
    )


def recipe_keys_before_imports() -> Optional[frozenset[str]]:
    """Every key a recipe may set, or `None` when transformers' ``TrainingArguments`` fields or ser-hf's own cannot be
    read without importing them (an installation without the sources): the parser checks the keys then."""
    training_keys = training_arguments_keys()
    if training_keys is None:
        return None
    try:
        return ser_hf_keys() | training_keys
    except OSError as error:
        logger.debug("ser-hf's recipe fields not read from its source: %s", error)
        return None


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
    problems = value_problems({**values, **overrides_before_imports(list(args[1:]))})
    if len(problems) == 1:
        raise RecipeError(f"{problems[0]} (recipe {args[0]})")
    if problems:
        numbered = " ".join(f"({number}) {problem}" for number, problem in enumerate(problems, start=1))
        raise RecipeError(f"{len(problems)} values of recipe {args[0]} cannot work: {numbered}")


__all__ = [
    "ENSEMBLE_MEMBERS_KEY",
    "check_recipe_before_imports",
    "check_recipe_keys",
    "recipe_keys_before_imports",
    "ser_hf_keys",
    "training_arguments_keys",
]
