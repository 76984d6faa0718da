"""The checks of a recipe's values that need neither torch nor transformers: numbers in their range and paths that
exist. :func:`ser_hf.recipe.keys.check_recipe_before_imports` runs them on the recipe file and the command line before
torch, transformers, peft and datasets are imported (seconds of CPU on a busy machine), and the recipe dataclasses
(:mod:`ser_hf.recipe.model_arguments` and its sibling modules) run the number rules again on the parsed values; each
rule is written once, in the metadata of its field (:mod:`ser_hf.recipe.fields`).
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterator, Mapping, Optional, Sequence

from ..data.corpus_settings import corpus_name_problem, corpus_problems
from ..errors import RecipeError
from . import schema
from .fields import NumberRule, number_rules

#: What each numeric recipe value must be (:class:`~ser_hf.recipe.fields.NumberRule`): the ``range`` fact of each
#: recipe key, as the recipe's generated schema holds it (:func:`ser_hf.recipe.schema.number_rules`). Booleans are
#: never numbers (YAML's ``true`` is not a learning rate); a value that is not a number at all is left to the parser's
#: type check.
NUMBER_RULES: dict[str, NumberRule] = schema.number_rules()


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)


def number_problem(name: str, value: Any, rule: Optional[NumberRule] = None) -> Optional[str]:
    """Why `value` is not a valid `name` (by `rule`, or else its rule in :data:`NUMBER_RULES`), or `None` when it is
    (or is `None`, or is not a number at all, which the parser's type check reports)."""
    rule = NUMBER_RULES[name] if rule is None else rule
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)  # YAML reads 1e-5 as a string; the parser converts it
        except ValueError:
            return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not rule.holds(value)
    ):
        return f"{name} must be {rule.words}, got {_shown(value)}" + (f": {rule.why}." if rule.why else ".")
    return None


def check_number(name: str, value: Any) -> None:
    """Raise :class:`RecipeError` naming `name` and `value` when `value` breaks its rule in :data:`NUMBER_RULES`."""
    problem = number_problem(name, value)
    if problem:
        raise RecipeError(problem)


def check_numbers(arguments: Any) -> None:
    """Raise :class:`RecipeError` on the first field of a recipe dataclass instance that breaks its ``range`` fact
    (:func:`~ser_hf.recipe.fields.number_rules`)."""
    for name, rule in number_rules(arguments).items():
        problem = number_problem(name, getattr(arguments, name), rule)
        if problem:
            raise RecipeError(problem)


def _looks_local(location: str) -> bool:
    """Whether a model location is a path on this machine rather than a Hub id (``owner/name``)."""
    return location.startswith(("/", "./", "../", "~", ".\\", "..\\")) or os.path.isabs(location)


def value_problems(values: Mapping[str, Any]) -> list[str]:
    """Every problem of a recipe's values (file and command line merged) found without torch: numbers out of range,
    a `data_dir` that does not exist, a local `model_name_or_path` that does not exist, two corpora of one name, and
    what the corpora's options and file names contradict (:func:`ser_hf.data.corpus_settings.corpus_problems`: an
    option a corpus does not take, a regex that matches no file, a folder of other files than its corpus', speakers no
    file has)."""
    problems = [problem for name in NUMBER_RULES if name in values and (problem := number_problem(name, values[name]))]
    if problem := corpus_name_problem(values):
        problems.append(problem)
    problems += corpus_problems(values)
    data_dirs = values.get("data_dir")
    for data_dir in data_dirs if isinstance(data_dirs, list) else [data_dirs] if data_dirs is not None else []:
        if isinstance(data_dir, (str, os.PathLike)) and not os.path.isdir(os.path.expanduser(data_dir)):
            what = "is a file, not a folder" if os.path.exists(data_dir) else "does not exist"
            problems.append(f"data_dir: {str(data_dir)!r} {what}.")
    model = values.get("model_name_or_path")
    if isinstance(model, str) and _looks_local(model) and not os.path.exists(os.path.expanduser(model)):
        problems.append(f"model_name_or_path: {model!r} does not exist (a local path; Hub ids read owner/name).")
    return problems


def flag_words(args: Sequence[str]) -> Iterator[tuple[str, Optional[str], list[str]]]:
    """``(token, key, words)`` of each ``--key value [value ...]`` or ``--key=value`` group of a command line, in
    order; a token that is no flag (before the first one, or ``--`` alone) comes back as ``(token, None, [])``. Both
    readings of a recipe's flags group the words so: :func:`overrides_before_imports` and
    :func:`ser_hf.recipe.overrides.command_line_values`."""
    index = 0
    while index < len(args):
        token = str(args[index])
        index += 1
        if not token.startswith("--") or token == "--":
            yield token, None, []
            continue
        key, has_value, inline = token[2:].partition("=")
        words = [inline] if has_value else []
        while not has_value and index < len(args) and not str(args[index]).startswith("--"):
            words.append(str(args[index]))
            index += 1
        yield token, key, words


def overrides_before_imports(args: list[str]) -> dict[str, Any]:
    """``--key value [value ...]`` and ``--key=value`` pairs of a recipe's command line, each value read as YAML (a
    flag alone is `True`): what overrides the recipe file's values, for the checks above, read leniently before any
    heavy import (an unknown key or a value that is not YAML is left to the parser; the strict reading, which imports
    the parser, is :func:`ser_hf.recipe.overrides.command_line_values`)."""
    import yaml

    values: dict[str, Any] = {}
    for _, key, words in flag_words(args):
        if key is None:
            continue
        try:
            parsed = [yaml.safe_load(word) for word in words]
        except yaml.YAMLError:
            continue
        values[key] = True if not parsed else parsed[0] if len(parsed) == 1 else parsed
    return values


__all__ = [
    "NUMBER_RULES",
    "check_number",
    "check_numbers",
    "flag_words",
    "number_problem",
    "overrides_before_imports",
    "value_problems",
]
