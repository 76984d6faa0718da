"""The forms a recipe value takes in YAML or on the command line, read into what the recipe dataclasses hold: a mapping
(a dict, or YAML text), a list, a range, a weight; and a type as errors name it. Shared by the dataclasses of
:mod:`.model_arguments`, :mod:`.data_arguments`, :mod:`.augmentation_arguments` and :mod:`.training_arguments`, and by
the recipe parser.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import yaml

from ..errors import RecipeError
from .yaml_io import DuplicateKeyError, load_yaml


def as_mapping(value: Any, name: str) -> Optional[dict]:
    """A mapping field given in YAML (already a dict) or on the command line (a YAML/JSON string)."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = load_yaml(value)
        except DuplicateKeyError as error:
            raise RecipeError(f"{name} sets {error.key!r} twice: {value!r}.") from None
        except yaml.YAMLError as error:
            raise RecipeError(f"{name} is not valid YAML ({getattr(error, 'problem', error)}): {value!r}.") from None
        if parsed is None or isinstance(parsed, dict):
            return parsed
    raise RecipeError(f"{name} must be a mapping such as {{key: value}}, got {value!r}.")


def as_list(value: Any) -> Optional[list]:
    """A list field given as a list, a tuple or set, or one value (``corpus: ravdess``)."""
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, (tuple, set)):
        return list(value)
    return [value]


def as_range(value: Sequence[float], name: str) -> tuple[float, float]:
    """A ``[low, high]`` range field as two floats, low first."""
    values = [float(v) for v in as_list(value)]
    if len(values) != 2 or values[0] > values[1]:
        raise RecipeError(f"{name} must be a range [low, high] with low <= high, got {value!r}.")
    return values[0], values[1]


def is_weight(value: Any) -> bool:
    """A finite number (not a boolean: YAML's ``true`` is not a weight)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def type_name(hint: Any) -> str:
    """A type as error messages name it (``Optional[list[str]]``): the model config's type check and the parser's."""
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("NoneType", "None")


__all__ = ["as_list", "as_mapping", "as_range", "is_weight", "type_name"]
