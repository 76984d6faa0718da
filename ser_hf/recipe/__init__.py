"""The recipe: the dataclasses a training run is configured with, one module per section (:mod:`.model_arguments`,
:mod:`.data_arguments`, :mod:`.augmentation_arguments`, :mod:`.training_arguments`), the parser that builds them from
values (a recipe file's, the command line's flags over them: :mod:`.parser`), recipe YAML in and out (:mod:`.yaml_io`),
the overrides the experiment commands apply (:mod:`.overrides`), and :class:`Recipe` (:mod:`.recipe`), the four
sections as one object with the keys its file and command line gave and the one form a run saves them in. What a recipe
is checked against before torch and transformers import (its keys, ranges and help) is the generated schema
(:mod:`.schema`, written by :mod:`.generate_schema`). :class:`RecipeError` lives in :mod:`ser_hf.errors`, which
imports nothing (``ser_hf.recipe.RecipeError`` is the same class).

The names are imported when first used (:mod:`ser_hf.lazy_exports`): ``from ser_hf.recipe import RecipeError`` does
not load transformers."""

from ..lazy_exports import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS = {
    "AugmentationArguments": ".augmentation_arguments",
    "DataArguments": ".data_arguments",
    "MODEL_TYPES": ".model_arguments",
    "ModelArguments": ".model_arguments",
    "SERTrainingArguments": ".training_arguments",
    "RecipeError": "..errors",
    "command_line_values": ".overrides",
    "read_recipe_values": ".overrides",
    "recipe_keys": ".overrides",
    "set_value": ".overrides",
    "Recipe": ".recipe",
    "RECIPE_DATACLASSES": ".parser",
    "RecipeParser": ".parser",
    "parse_recipe": ".parser",
    "build_sections": ".parser",
    "RECIPE_FILE": ".yaml_io",
    "DuplicateKeyError": ".yaml_io",
    "load_yaml": ".yaml_io",
    "write_recipe": ".yaml_io",
    "write_recipe_file": ".yaml_io",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
