"""The recipe parser: ``RECIPE.yaml [--key value ...]`` into the recipe's dataclasses. The file's values are read once,
the command line's flags once (typed by the dataclasses' fields, through :class:`RecipeParser`), the flags' values over
the file's; the dataclasses are then built from those values directly (:func:`build_sections`), which is also the
library's entry for values that come from no file (:meth:`ser_hf.recipe.Recipe.from_values`). An unknown key, a value
of the wrong type or one outside a key's choices stops the run before any work, naming the key and the file.
"""

from __future__ import annotations

import argparse
import collections.abc
import copy
import dataclasses
import enum
import functools
import os
import types
import typing
from typing import Any, Literal, Mapping, Optional, Sequence

from transformers import HfArgumentParser
from transformers.hf_argparser import string_to_bool

from ..data.split_settings import check_split_keys
from ..errors import RecipeError
from .augmentation_arguments import AugmentationArguments
from .data_arguments import DataArguments
from .fields import FACT_KEYS
from .keys import TRAIN_USAGE, check_recipe_keys, split_recipe_args, unknown_flags_error
from .model_arguments import ModelArguments
from .training_arguments import SERTrainingArguments
from .value_forms import type_name
from .yaml_io import read_recipe_file, yaml_error_line

#: The recipe's sections, in the order a recipe's parsed values come back: model, data, augmentation, training.
RECIPE_DATACLASSES = (ModelArguments, DataArguments, AugmentationArguments, SERTrainingArguments)


class RecipeParser(HfArgumentParser):
    """`HfArgumentParser` for the ``--key value`` flags after a recipe (and ``--help-all``): each flag's value typed by
    its field; a flag not given is left out (:meth:`parse_flags`), so that it never replaces the recipe's value."""

    def __init__(self, dataclass_types=RECIPE_DATACLASSES, **kwargs):
        kwargs.setdefault("usage", f"{TRAIN_USAGE} (or python -m ser_hf.train RECIPE.yaml ...)")
        # A flag is taken as spelt: argparse's prefix matching made `--num_train_epoch 3` (a typo) the epochs.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(dataclass_types, **kwargs)
        # A `dict | str` field (a mapping in YAML, or "balanced", or YAML text on the command line) reads its
        # command-line value as text, which the dataclass parses. HfArgumentParser keeps the union's second member as
        # the type, and typing caches unions: after any `Optional[str | dict]` elsewhere in the process, that member
        # is `dict`, and `--class_weights balanced` failed depending on what had been imported before.
        text_fields = {
            name
            for dataclass_type in self.dataclass_types
            for name, hint in typing.get_type_hints(dataclass_type).items()
            if {dict, str} <= set(typing.get_args(hint))
        }
        for action in self._actions:
            if action.dest in text_fields:
                action.type = str

    @staticmethod
    def _parse_dataclass_field(parser, field: dataclasses.Field) -> None:
        # HfArgumentParser hands a field's metadata to argparse's add_argument, which takes its help and choices but
        # not ser-hf's facts of the key (its range, card row, outcome: ser_hf.recipe.fields).
        argparse_field = copy.copy(field)
        argparse_field.metadata = types.MappingProxyType(
            {key: value for key, value in field.metadata.items() if key not in FACT_KEYS}
        )
        HfArgumentParser._parse_dataclass_field(parser, argparse_field)

    def parse_flags(self, args: Sequence[str], source: Optional[str] = None) -> dict[str, Any]:
        """The values of the ``--key value`` flags `args` gives, typed as their fields are, and only those: an
        unknown flag raises :class:`RecipeError` naming the closest key."""
        for action in self._actions:
            action.default = argparse.SUPPRESS
        try:
            namespace, remaining = self.parse_known_args(list(args))
        except ValueError as error:
            raise RecipeError(f"{error}{f' (recipe {source})' if source else ''}") from None
        if remaining:
            raise RecipeError(unknown_flags_error(remaining, recipe_field_names()))
        return vars(namespace)


@functools.lru_cache(maxsize=1)
def recipe_field_names() -> frozenset[str]:
    """Every key a recipe may set: the init fields of the four recipe dataclasses."""
    return frozenset(
        f.name for dataclass_type in RECIPE_DATACLASSES for f in dataclasses.fields(dataclass_type) if f.init
    )


@functools.lru_cache(maxsize=1)
def _hints() -> dict[str, Any]:
    hints = {}
    for dataclass_type in RECIPE_DATACLASSES:
        hints.update(typing.get_type_hints(dataclass_type))
    return hints


def _without_none_and_str(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [arg for arg in typing.get_args(hint) if arg not in (type(None), str)]
    return [hint]


@functools.lru_cache(maxsize=1)
def recipe_choices() -> dict[str, tuple]:
    """The values each key with choices takes, as the command line offers them: its ``choices`` metadata, its
    `Literal`'s values, or its `Enum`'s (an ``Enum | str`` field of transformers takes the enum's values)."""
    choices = {}
    for dataclass_type in RECIPE_DATACLASSES:
        for field in dataclasses.fields(dataclass_type):
            hint, listed = _hints()[field.name], field.metadata.get("choices")
            kinds = _without_none_and_str(hint)
            literal = len(kinds) == 1 and typing.get_origin(kinds[0]) is Literal and str not in typing.get_args(hint)
            if listed is None and literal:
                listed = typing.get_args(kinds[0])
            elif listed is None and len(kinds) == 1 and isinstance(kinds[0], type) and issubclass(kinds[0], enum.Enum):
                listed = [member.value for member in kinds[0]]
            if field.init and listed is not None:
                choices[field.name] = tuple(listed)
    return choices


def _check_choices(values: Mapping[str, Any], where: str) -> None:
    defaults = {f.name: f.default for dataclass_type in RECIPE_DATACLASSES for f in dataclasses.fields(dataclass_type)}
    for key, choices in recipe_choices().items():
        if key not in values:
            continue
        value = values[key]
        if value is None and defaults.get(key) is None:
            continue  # a field whose default is None (recipe.yaml of a run writes every value)
        if value not in choices and str(value) not in {str(c) for c in choices}:
            raise RecipeError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}{where}.")


def _converted(value: Any, hint: Any) -> Any:
    """A YAML string of a number or true/false key (``learning_rate: "1e-3"``) as the number or boolean, as argparse
    converted a string default; any other value as it is."""
    kinds = _without_none_and_str(hint)
    if not isinstance(value, str) or str in typing.get_args(hint) or hint is str or len(kinds) != 1:
        return value
    if kinds[0] is bool:
        return string_to_bool(value)
    return kinds[0](value) if kinds[0] in (int, float) else value


def build_sections(values: Mapping[str, Any], source: Optional[str | os.PathLike] = None) -> tuple:
    """``(model_args, data_args, augmentation_args, training_args)`` of recipe `values` (a mapping of recipe keys to
    typed values, as a recipe file holds them; `source` names the file in errors): every key, type and choice checked,
    then each dataclass built from its keys."""
    where = f" (recipe {source})" if source else ""
    check_recipe_keys(values, recipe_field_names(), source or "the recipe's values")
    _check_choices(values, where)
    check_recipe_types(values, source or "the recipe's values")
    converted = {key: _converted(value, _hints()[key]) for key, value in values.items()}
    sections = []
    try:
        for dataclass_type in RECIPE_DATACLASSES:
            names = {f.name for f in dataclasses.fields(dataclass_type) if f.init}
            sections.append(dataclass_type(**{key: value for key, value in converted.items() if key in names}))
        check_split_keys(sections[1], set(values))
    except ValueError as error:  # RecipeError, or TrainingArguments' own checks
        raise RecipeError(f"{error}{where}") from None
    return tuple(sections)


def _matches_type(value: Any, hint: Any) -> bool:
    """Whether a YAML value can stand for a field annotated `hint` (scalars written as strings are checked by
    converting them, in :func:`check_recipe_types`)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches_type(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is Literal:
        return value in args or str(value) in {str(arg) for arg in args}
    if origin in (list, tuple, set, collections.abc.Sequence) or hint in (list, tuple):
        # A single value stands for a one-item list (the dataclasses wrap it).
        items = value if isinstance(value, list) else [value]
        return not isinstance(value, dict) and (not args or all(_matches_type(item, args[0]) for item in items))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    return True  # a type the recipe cannot spell (a callable, an object): left to the dataclass' own checks


def check_recipe_types(values: Mapping[str, Any], recipe_path) -> None:
    """Stop on a recipe value of the wrong type, naming the key, the value, the expected type and the file: a YAML
    list, mapping or number would otherwise reach the dataclasses unchecked (and fail deep inside training, or not at
    all)."""
    for key, value in values.items():
        hint = _hints().get(key)
        if hint is None:
            continue
        scalar = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        converters = [arg for arg in scalar if arg in (int, float, bool)]
        if isinstance(value, str) and converters:  # converted where it can be (a YAML string such as "1e-3")
            if not any(_converts(value, arg) for arg in converters) and not _matches_type(value, hint):
                raise RecipeError(f"{key}: {value!r} is not a valid {type_name(hint)} (recipe {recipe_path}).")
            continue
        if not _matches_type(value, hint):
            raise RecipeError(f"{key}: {value!r} is not a valid {type_name(hint)} (recipe {recipe_path}).")


def _converts(text: str, scalar_type: type) -> bool:
    if scalar_type is bool:
        return text.lower() in ("true", "false", "yes", "no", "1", "0")
    try:
        scalar_type(text)
    except ValueError:
        return False
    return True


def read_recipe_args(
    args: Sequence[str], file_values: Optional[Mapping[str, Any]] = None
) -> tuple[dict[str, Any], Optional[str]]:
    """The values of ``RECIPE.yaml [--key value ...]`` (the flags' over the file's) and the file: the file read unless
    its values are given (`file_values`, read by a caller that checked them already), the flags read once."""
    path, flags = split_recipe_args(args)
    values = dict(file_values if file_values is not None else read_recipe_file(path) if path is not None else {})
    check_recipe_keys(values, recipe_field_names(), path)
    return {**values, **RecipeParser().parse_flags(flags, path)}, path


def parse_recipe(args: Sequence[str]) -> tuple:
    """``(model_args, data_args, augmentation_args, training_args)`` from ``RECIPE.yaml [--key value ...]``."""
    values, path = read_recipe_args(args)
    return build_sections(values, path)


__all__ = [
    "RECIPE_DATACLASSES",
    "RecipeParser",
    "build_sections",
    "check_recipe_types",
    "parse_recipe",
    "read_recipe_args",
    "recipe_choices",
    "recipe_field_names",
    "yaml_error_line",
]
