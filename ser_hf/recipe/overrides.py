"""Recipe values as experiments handle them: read from a YAML file (with the sections that belong to an experiment
command taken out), overridden from the command line, changed by dotted keys, written back as a self-contained
recipe. Every key is checked against the recipe's dataclasses before any work, with the same message as
``ser_hf.train``."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import yaml

from ..atomic_files import write_text_atomic
from .arguments import RecipeError, RecipeParser, load_yaml


def recipe_keys() -> set[str]:
    """Every key a recipe may set (the fields of the four recipe dataclasses)."""
    return RecipeParser().field_names()


def unknown_key_message(key: str, known: Iterable[str]) -> str:
    """``'lerning_rate' (did you mean 'learning_rate'?)``."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def read_recipe_values(path: str | os.PathLike, sections: Sequence[str] = ()) -> tuple[dict[str, Any], dict]:
    """The recipe's values and, apart, its experiment ``sections`` (such as ``sweep``), after checking that every
    other key is a recipe key."""
    try:
        values = load_yaml(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"Recipe file {path} does not exist.") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"Recipe {path} is not valid YAML: {error}") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise RecipeError(f"Recipe {path} must be a mapping of keys to values, not a {type(values).__name__}.")
    extracted = {name: values.pop(name) for name in sections if name in values}
    known = recipe_keys()
    unknown = [key for key in values if key not in known]
    if unknown:
        raise RecipeError(
            f"Unknown key(s) {', '.join(unknown_key_message(k, known) for k in unknown)} in recipe {path}."
        )
    return values, extracted


def command_line_values(arguments: Sequence[str]) -> dict[str, Any]:
    """Recipe overrides given as ``--key value [value ...]`` (or ``--key=value``; a bare ``--flag`` is `True`,
    ``--no_flag`` `False`), as typed recipe values: each value is read as YAML, several values make a list."""
    known = recipe_keys()
    values: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        token = arguments[index]
        if not token.startswith("--") or token == "--":
            raise RecipeError(f"Unexpected argument {token!r}: recipe overrides are --key value pairs.")
        key, has_value, inline = token[2:].partition("=")
        index += 1
        given = [inline] if has_value else []
        while not has_value and index < len(arguments) and not arguments[index].startswith("--"):
            given.append(arguments[index])
            index += 1
        if key not in known and key.startswith("no_") and key[3:] in known and not given:
            values[key[3:]] = False
            continue
        if key not in known:
            raise RecipeError(
                f"Unknown command-line argument --{key}: {unknown_key_message(key, known)} is not a "
                "recipe key (python -m ser_hf.train --help lists them)."
            )
        parsed = [load_yaml(value) if value != "" else "" for value in given]
        values[key] = True if not parsed else parsed[0] if len(parsed) == 1 else parsed
    return values


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


def write_recipe_file(path: str | os.PathLike, values: Mapping[str, Any], header: Optional[str] = None) -> Path:
    """Write recipe ``values`` as YAML (floats as ``1.0e-05``, which the recipe loader reads as floats)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(dict(values), sort_keys=False, allow_unicode=True)
    write_text_atomic(path, (f"# {header}\n" if header else "") + text)
    return path


__all__ = [
    "command_line_values",
    "read_recipe_values",
    "recipe_keys",
    "set_value",
    "unknown_key_message",
    "write_recipe_file",
]
