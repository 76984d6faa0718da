"""Recipe YAML in and out: the loader that reads recipes with YAML 1.2's scalars and refuses a key set twice, the
reader of a recipe file (its errors name the file and the line), and the writers of ``recipe.yaml`` (a run's
settings, in the recipe's sections) and of the recipes experiments generate."""

from __future__ import annotations

import collections.abc
import os
import re
from pathlib import Path
from typing import Any, Collection, Mapping, Optional

import yaml

from ..atomic_files import write_text_atomic
from ..errors import RecipeError

#: The recipe a run writes into its folder, which ``python -m ser_hf.train`` runs again.
RECIPE_FILE = "recipe.yaml"

# --- Loading ------------------------------------------------------------------------------------------------------


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping sets one key twice (PyYAML would keep the last value without a word)."""

    def __init__(self, key: Any, first_line: int, second_line: int, mark):
        self.key, self.first_line, self.second_line = key, first_line, second_line
        super().__init__(problem=f"{key!r} is set twice (lines {first_line} and {second_line})", problem_mark=mark)


class RecipeLoader(yaml.SafeLoader):
    """YAML with the 1.2 core schema's scalars: ``1e-5`` is a float (PyYAML reads a string) and only ``true``/
    ``false`` are booleans (PyYAML turns ``eval_strategy: no`` into `False`); a key set twice in one mapping is an
    error (:class:`DuplicateKeyError`), as the YAML specification says, instead of the last value winning."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults` merges keys that the mapping may then override
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if isinstance(key, collections.abc.Hashable) and key in lines:
                    raise DuplicateKeyError(key, lines[key], line, key_node.start_mark)
                if isinstance(key, collections.abc.Hashable):
                    lines[key] = line
        return super().construct_mapping(node, deep=deep)


_REPLACED_TAGS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")
RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)|[-+]?(?:[0-9][0-9_]*)\.[0-9_]*"
        r"|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_yaml(text) -> Any:
    """Parse recipe YAML (a string or an open file) with :class:`RecipeLoader`."""
    return yaml.load(text, Loader=RecipeLoader)


def read_recipe_file(path: str | os.PathLike) -> dict[str, Any]:
    """The recipe's key/value pairs, after checking that the file is a YAML mapping that sets each key once (its keys
    are not checked: see :func:`check_recipe_keys`)."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = load_yaml(handle)
    except FileNotFoundError:
        raise RecipeError(f"Recipe file {path} does not exist.") from None
    except UnicodeDecodeError:
        raise RecipeError(f"Recipe {path}, {_first_non_utf8(path)}. Save the recipe as UTF-8.") from None
    except DuplicateKeyError as error:
        raise RecipeError(
            f"Recipe {path} sets {error.key!r} twice (lines {error.first_line} and "
            f"{error.second_line}): keep one of them."
        ) from None
    except yaml.YAMLError as error:
        raise RecipeError(f"Recipe {path} is not valid YAML: {yaml_error_line(error)}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RecipeError(f"Recipe {path} must be a mapping of keys to values, not a {type(values).__name__}.")
    return values


def _first_non_utf8(path: str | os.PathLike) -> str:
    """Where a file stops being UTF-8: ``line 3: not UTF-8 text (invalid continuation byte at byte 41, b'\\xe9')``
    (the stream's own error counts from the chunk it was decoding, not from the file's start)."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, byte = data[: error.start].count(b"\n") + 1, data[error.start : error.start + 1]
        return f"line {line}: not UTF-8 text ({error.reason} at byte {error.start}, {byte!r})"
    return "not UTF-8 text"


def yaml_error_line(error: yaml.YAMLError) -> str:
    """PyYAML's error on one line: ``line 2, column 2: expected ',' or ']', but got ':' (while parsing a flow
    sequence at line 1, column 4)``, instead of its multi-line excerpt of the file."""
    problem = getattr(error, "problem", None)
    if problem is None:
        return " ".join(str(error).split())
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    line = f"{where}{problem}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context:
        at = f" at line {context_mark.line + 1}, column {context_mark.column + 1}" if context_mark is not None else ""
        line += f" ({context}{at})"
    if "python/" in problem:
        line += "; recipes are read with a safe loader, which builds no Python objects: write plain values"
    return line


# --- Writing ------------------------------------------------------------------------------------------------------


def write_recipe(
    output_dir: str | os.PathLike,
    sections: Mapping[str, Mapping[str, Any]],
    given: Optional[Collection[str]] = None,
    source: Optional[str | os.PathLike] = None,
) -> Path:
    """Write ``recipe.yaml``: the keys the run's recipe and command line set, with the values the run used, in the
    recipe's sections (``# Model``, ``# Data``, ``# Augmentation``, ``# Training``). Token keys are never written.

    Args:
        sections (`Mapping[str, Mapping[str, Any]]`): each section's arguments as a dict (``dataclasses.asdict``,
            ``TrainingArguments.to_dict``), e.g. ``{"Model": {...}, "Data": {...}}``.
        given (`Collection[str]`, *optional*): the keys the recipe and command line set; every key when not given.
        source (`str`, *optional*): the recipe file the run was read from, named in the header.
    """
    origin = f" (from {Path(source).name} and the command line)" if source else ""
    lines = [f"# The recipe of this run as ser-hf ran it{origin}.", "# python -m ser_hf.train recipe.yaml", ""]
    for title, values in sections.items():
        chosen = {
            key: _plain(value)
            for key, value in values.items()
            if (given is None or key in given) and not key.endswith("_token")
        }
        if chosen:
            text = yaml.dump(chosen, Dumper=_RecipeDumper, sort_keys=False, allow_unicode=True, width=119)
            lines += [f"# {title}", text.rstrip(), ""]
    path = Path(output_dir) / RECIPE_FILE
    write_text_atomic(path, "\n".join(lines))
    return path


class _RecipeDumper(yaml.SafeDumper):
    """Block-style YAML, with lists of scalars on one line as the shipped recipes write them."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(value is None or isinstance(value, (str, int, float, bool)) for value in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_RecipeDumper.add_representer(list, _represent_list)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(getattr(value, "value", value))


def write_recipe_file(path: str | os.PathLike, values: Mapping[str, Any], header: Optional[str] = None) -> Path:
    """Write recipe ``values`` as YAML (floats as ``1.0e-05``, which the recipe loader reads as floats)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(dict(values), sort_keys=False, allow_unicode=True)
    write_text_atomic(path, (f"# {header}\n" if header else "") + text)
    return path


__all__ = [
    "DuplicateKeyError",
    "RECIPE_FILE",
    "RecipeLoader",
    "load_yaml",
    "read_recipe_file",
    "write_recipe",
    "write_recipe_file",
    "yaml_error_line",
]
