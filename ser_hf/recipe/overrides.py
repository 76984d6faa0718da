"""Recipe values as experiments handle them: read from a YAML file (with the sections that belong to an experiment
command taken out), overridden from the command line, changed by dotted keys (and written back as a self-contained
recipe by :func:`ser_hf.recipe.yaml_io.write_recipe_file`). Every key is checked against the recipe's dataclasses
before any work, with the same message as ``ser_hf.train``.

The command line's ``KEY=VALUE`` flags (``--option``, ``--label-map``) and ``ID=FOLDER`` flags (``--model_path``) are
read here too, once for every command: :func:`key_value_pairs`, :func:`model_paths`."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

from ..errors import RecipeError, unknown_key_message
from .values import flag_words
from .yaml_io import load_yaml


def recipe_keys() -> set[str]:
    """Every key a recipe may set (the fields of the four recipe dataclasses)."""
    from .parser import recipe_field_names  # the dataclasses import the models: only where a key is checked

    return set(recipe_field_names())


def read_recipe_values(path: str | os.PathLike, sections: Sequence[str] = ()) -> tuple[dict[str, Any], dict]:
    """The recipe's values and, apart, its experiment ``sections`` (such as ``sweep``), after checking that every
    other key is a recipe key."""
    from .keys import check_recipe_keys
    from .yaml_io import read_recipe_file

    values = read_recipe_file(path)
    extracted = {name: values.pop(name) for name in sections if name in values}
    check_recipe_keys(values, recipe_keys(), path)
    return values, extracted


def command_line_values(arguments: Sequence[str]) -> dict[str, Any]:
    """Recipe overrides given as ``--key value [value ...]`` (or ``--key=value``; a bare ``--flag`` is `True`,
    ``--no_flag`` `False`), as typed recipe values: each value is read as YAML, several values make a list. A dotted
    key (``--feature_extractor_config.normalization corpus``) sets one entry of a mapping (:func:`apply_overrides`)."""
    known = recipe_keys()
    values: dict[str, Any] = {}
    for token, key, given in flag_words(arguments):
        if key is None:
            raise RecipeError(f"Unexpected argument {token!r}: recipe overrides are --key value pairs.")
        if key not in known and key.startswith("no_") and key[3:] in known and not given:
            values[key[3:]] = False
            continue
        if "." in key:
            check_dotted_key(key, f"--{key}", known)
        elif key not in known:
            raise RecipeError(
                f"Unknown command-line argument --{key}: {unknown_key_message(key, known)} is not a "
                "recipe key (python -m ser_hf.train --help lists them)."
            )
        parsed = [load_yaml(value) if value != "" else "" for value in given]
        values[key] = True if not parsed else parsed[0] if len(parsed) == 1 else parsed
    return values


def check_dotted_key(key: str, option: str, known: Optional[set[str]] = None) -> str:
    """The recipe key that ``key`` (``learning_rate``, or dotted: ``model_config.lstm_hidden_size``) sets, after
    checking it names one; the error names the command-line ``option`` and suggests the closest key."""
    known = recipe_keys() if known is None else known
    top, dot, entry = key.partition(".")
    if top not in known:
        raise RecipeError(
            f"{option}: unknown recipe key {unknown_key_message(top, known)}"
            + (f" in {key!r}" if dot else "")
            + " (python -m ser_hf.train --help lists them)."
        )
    if dot and not entry:
        raise RecipeError(f"{option}: {key!r} names no entry of {top}.")
    return top


def set_value(values: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of recipe ``values`` with ``key`` set; a dotted key (``model_config.lstm_hidden_size``) sets one entry of
    a mapping value, keeping its other entries."""
    result = dict(values)
    top, dot, entry = key.partition(".")
    if not dot:
        result[key] = value
        return result
    current = result.get(top)
    if isinstance(current, str):
        current = load_yaml(current)
    if current is not None and not isinstance(current, dict):
        raise RecipeError(f"{key}: {top} is {current!r}, not a mapping whose entry {entry!r} could be set.")
    result[top] = set_value(current or {}, entry, value)
    return result


def apply_overrides(values: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of recipe ``values`` with every override set (:func:`set_value`: a dotted key sets one entry of a
    mapping)."""
    result = dict(values)
    for key, value in overrides.items():
        result = set_value(result, key, value)
    return result


def overridden_keys(overrides: Mapping[str, Any]) -> set[str]:
    """The recipe keys `overrides` change (a dotted key changes its top key)."""
    return {key.partition(".")[0] for key in overrides}


__all__ = [
    "apply_overrides",
    "check_dotted_key",
    "command_line_values",
    "overridden_keys",
    "read_recipe_values",
    "recipe_keys",
    "set_value",
]
