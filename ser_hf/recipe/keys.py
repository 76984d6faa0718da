"""The check that answers a recipe before torch and transformers are imported: ``python -m ser_hf.train`` and
``ser-hf train`` run it first, so that a misspelt key or a number out of its range is answered at once rather than
after the seconds those imports take. The keys and ranges come from the recipe's generated schema
(:mod:`ser_hf.recipe.schema`); the recipe parser then checks everything again against the dataclasses themselves.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Iterable, Mapping, Optional, Sequence

from ..errors import RecipeError, unknown_key_message
from .schema import recipe_keys_before_imports, schema_is_current
from .values import value_problems

#: The recipe key that lists an ensemble's member recipes (:mod:`ser_hf.training.ensemble`); an ensemble recipe holds
#: keys of its own, which it checks itself.
ENSEMBLE_MEMBERS_KEY = "ensemble_members"
#: The usage line of training, as ``ser-hf train`` and ``python -m ser_hf.train`` print it.
TRAIN_USAGE = "ser-hf train RECIPE.yaml [--key value ...]"


def check_recipe_keys(values: dict[str, Any], known_keys: Iterable[str], path: str | os.PathLike) -> None:
    """Stop on a recipe key that is not in ``known_keys``, naming the key, the closest known key and the file."""
    known_keys = set(known_keys)
    unknown = [key for key in values if key not in known_keys]
    if unknown:
        raise RecipeError(
            f"Unknown key(s) {', '.join(unknown_key_message(k, known_keys) for k in unknown)} in recipe {path}."
        )


def split_recipe_args(args: Sequence[str]) -> tuple[Optional[str], list[str]]:
    """``RECIPE.yaml [--key value ...]`` as the recipe file (`None` without one) and the flags."""
    args = [str(arg) for arg in args]
    if args and not args[0].startswith("-"):
        return args[0], args[1:]
    return None, args


def check_recipe_before_imports(path: Optional[str], values: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """For the recipe file `path`, its `values` and the command line's `overrides` (read leniently:
    :func:`~ser_hf.recipe.values.overrides_before_imports`): stop on an unknown key of the file (with the recipe
    parser's message), a number out of its range or a path that does not exist
    (:func:`~ser_hf.recipe.values.value_problems`, on the file's values with the command line's over them), before
    torch and transformers are imported. Ensemble recipes are left to the ensemble, and keys the schema lacks under a
    transformers other than the schema's to the parser."""
    if path is None or ENSEMBLE_MEMBERS_KEY in values:
        return
    if schema_is_current():
        check_recipe_keys(values, recipe_keys_before_imports(), path)
    problems = value_problems({**values, **overrides})
    if len(problems) == 1:
        raise RecipeError(f"{problems[0]} (recipe {path})")
    if problems:
        numbered = " ".join(f"({number}) {problem}" for number, problem in enumerate(problems, start=1))
        raise RecipeError(f"{len(problems)} values of recipe {path} cannot work: {numbered}")


def unknown_flags_error(remaining: Sequence[str], known_keys: Iterable[str]) -> str:
    """The error of command-line tokens that are no recipe key, naming the closest key of each misspelt flag
    (``--num_train_epoch`` -> ``--num_train_epochs``)."""
    known = sorted(set(known_keys))
    flags = [str(token)[2:].partition("=")[0].replace("-", "_") for token in remaining if str(token).startswith("--")]
    hints = [f"--{close[0]}" for flag in flags if (close := difflib.get_close_matches(flag, known, n=1))]
    did_you_mean = f" (did you mean {', '.join(hints)}?)" if hints else ""
    return (
        f"Unknown command-line argument(s) {' '.join(map(str, remaining))}{did_you_mean}; every option is a recipe "
        "key (ser-hf train --help lists them)."
    )


__all__ = [
    "ENSEMBLE_MEMBERS_KEY",
    "TRAIN_USAGE",
    "check_recipe_before_imports",
    "check_recipe_keys",
    "split_recipe_args",
    "unknown_flags_error",
]
