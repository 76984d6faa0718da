"""The recipe parser: ``RECIPE.yaml [--key value ...]`` into the recipe's dataclasses. The YAML sets the parser's
defaults (as TRL's ``TrlParser`` does) and command-line flags override them; an unknown key, a value of the wrong type
or one outside a key's choices stops the run before any work, naming the key and the file.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import enum
import os
import sys
import types
import typing
from typing import Any, Literal, Mapping, Optional, Sequence

from transformers import HfArgumentParser

from ..errors import RecipeError
from .augmentation_arguments import AugmentationArguments
from .data_arguments import DataArguments
from .fields import FACT_KEYS
from .keys import check_recipe_keys
from .model_arguments import ModelArguments
from .training_arguments import SERTrainingArguments
from .usage import TRAIN_USAGE, unknown_flags_error
from .value_forms import type_name
from .yaml_io import read_recipe_file, yaml_error_line

#: The recipe's sections, in the order a recipe's parsed values come back: model, data, augmentation, training.
RECIPE_DATACLASSES = (ModelArguments, DataArguments, AugmentationArguments, SERTrainingArguments)


class RecipeParser(HfArgumentParser):
    """`HfArgumentParser` for ``RECIPE.yaml [--key value ...]``: the YAML sets the parser's defaults (as TRL's
    ``TrlParser`` does), command-line flags override them, and unknown keys in either are errors."""

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

    def field_names(self) -> set[str]:
        return {
            f.name for dataclass_type in self.dataclass_types for f in dataclasses.fields(dataclass_type) if f.init
        }

    def parse_recipe(self, args: Optional[Sequence[str]] = None) -> tuple:
        """Parse ``[RECIPE.yaml] [--key value ...]`` into the dataclasses; a recipe key that is not a field of any
        of them raises :class:`RecipeError` naming the key and the file, before anything else runs."""
        args = list(sys.argv[1:]) if args is None else list(args)
        recipe_path, values = None, {}
        if args and not args[0].startswith("-"):
            recipe_path, args = args[0], args[1:]
        if recipe_path is not None:
            values = read_recipe(recipe_path, self.field_names())
        return self.parse_values(values, args, recipe_path)

    def parse_values(
        self, values: Mapping[str, Any], args: Sequence[str] = (), recipe_path: Optional[str] = None
    ) -> tuple:
        """Parse recipe `values` (the mapping a recipe file holds; `recipe_path` names its file in errors) and
        ``--key value`` `args` over them into the dataclasses: every key checked as in a file, strings parsed from
        `args` only."""
        values, args = dict(values), list(args)
        where = f" (recipe {recipe_path})" if recipe_path else ""
        check_recipe_keys(values, self.field_names(), recipe_path or "the recipe's values")
        if values:
            # argparse checks choices on the command line only; a recipe's values are checked here.
            for action in self._actions:
                if action.dest in values and action.choices is not None:
                    value = values[action.dest]
                    if value is None and action.default is None:
                        continue  # a field whose default is None (recipe.yaml of a run writes every value)
                    if value not in action.choices and str(value) not in {str(c) for c in action.choices}:
                        raise RecipeError(
                            f"{action.dest}: {value!r} is not one of {', '.join(map(str, action.choices))}{where}."
                        )
            check_recipe_types(values, self.dataclass_types, recipe_path or "the recipe's values")
            self.set_defaults(**values)
        try:
            parsed = self.parse_args_into_dataclasses(args=args, return_remaining_strings=True)
        except ValueError as error:  # RecipeError, or TrainingArguments' own checks
            raise RecipeError(f"{error}{where}") from None
        *dataclasses_, remaining = parsed
        if remaining:
            raise RecipeError(unknown_flags_error(remaining, self.field_names()))
        given = set(values) | {arg[2:].partition("=")[0] for arg in args if arg.startswith("--")}
        for data_args in (d for d in dataclasses_ if isinstance(d, DataArguments)):
            try:
                data_args.check_split_keys(given)
            except RecipeError as error:
                raise RecipeError(f"{error}{where}") from None
        return tuple(dataclasses_)


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


def check_recipe_types(values: dict[str, Any], dataclass_types: Sequence[type], recipe_path) -> None:
    """Stop on a recipe value of the wrong type, naming the key, the value, the expected type and the file.

    argparse converts string defaults with each option's type, but a YAML list, mapping or number set as a default
    would reach the dataclasses unchecked (and fail deep inside training, or not at all)."""
    hints = {}
    for dataclass_type in dataclass_types:
        hints.update(typing.get_type_hints(dataclass_type))
    for key, value in values.items():
        hint = hints.get(key)
        if hint is None:
            continue
        scalar = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        converters = [arg for arg in scalar if arg in (int, float, bool)]
        if isinstance(value, str) and converters:  # argparse converts it (a YAML string such as "1e-3", or a typo)
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


def read_recipe(path: str | os.PathLike, known_keys: set[str]) -> dict[str, Any]:
    """The recipe's key/value pairs, after checking that it is a YAML mapping of known keys."""
    values = read_recipe_file(path)
    check_recipe_keys(values, known_keys, path)
    return values


def parse_recipe(args: Optional[Sequence[str]] = None):
    """``(model_args, data_args, augmentation_args, training_args)`` from ``RECIPE.yaml [--key value ...]``."""
    return RecipeParser().parse_recipe(args)


__all__ = [
    "RECIPE_DATACLASSES",
    "RecipeParser",
    "check_recipe_keys",
    "check_recipe_types",
    "parse_recipe",
    "read_recipe",
    "read_recipe_file",
    "yaml_error_line",
]
