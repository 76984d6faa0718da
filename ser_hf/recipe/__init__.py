"""The recipe: the dataclasses a training run is configured with (:mod:`.arguments`), the parser that fills them from
``RECIPE.yaml [--key value ...]`` (:mod:`.parser`), recipe YAML in and out (:mod:`.yaml_io`), and the overrides the
experiment commands apply (:mod:`.overrides`). :class:`RecipeError` lives in :mod:`.errors`, which imports nothing."""

from .arguments import (
    MODEL_TYPES,
    RECIPE_DATACLASSES,
    AugmentationArguments,
    DataArguments,
    ModelArguments,
    SERTrainingArguments,
)
from .errors import RecipeError, unknown_key_message
from .overrides import command_line_values, read_recipe_values, recipe_keys, set_value
from .parser import RecipeParser, parse_recipe, read_recipe
from .yaml_io import RECIPE_FILE, DuplicateKeyError, load_yaml, write_recipe, write_recipe_file

__all__ = [
    "MODEL_TYPES",
    "RECIPE_DATACLASSES",
    "RECIPE_FILE",
    "AugmentationArguments",
    "DataArguments",
    "DuplicateKeyError",
    "ModelArguments",
    "RecipeError",
    "RecipeParser",
    "SERTrainingArguments",
    "command_line_values",
    "load_yaml",
    "parse_recipe",
    "read_recipe",
    "read_recipe_values",
    "recipe_keys",
    "set_value",
    "unknown_key_message",
    "write_recipe",
    "write_recipe_file",
]
