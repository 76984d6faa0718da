"""``ser-hf train --help`` without torch or transformers: ser-hf's own recipe keys, grouped as the recipe dataclasses
group them (model, data, augmentation, training), read from the recipe's generated schema
(:mod:`ser_hf.recipe.schema`). It is command-line text, so it lives with the commands; ``python -m ser_hf.train``
prints the same help. transformers' ``TrainingArguments`` keys (some 100) are behind ``--help-all``, which is
the recipe parser's full help and imports transformers to print it.

A misspelt command-line flag is answered here too, before the imports (:func:`check_command_line_flags`).
"""

from __future__ import annotations

import textwrap
from typing import Optional, Sequence

from ..errors import RecipeError
from ..recipe.keys import TRAIN_USAGE, unknown_flags_error
from ..recipe.schema import load_schema, recipe_keys_before_imports, schema_is_current, training_arguments_keys

#: ``--help``/``-h``: ser-hf's own keys, at once; ``--help-all``: every key, transformers' included.
HELP_FLAGS = ("-h", "--help")
HELP_ALL_FLAG = "--help-all"
#: Help lines are wrapped to this width, as argparse does on an 80-column terminal.
HELP_WIDTH = 100


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, HELP_WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)


def train_help() -> str:
    """What ``ser-hf train --help`` prints: the usage, then ser-hf's keys by section, then a pointer to
    ``--help-all`` for transformers' ``TrainingArguments`` keys."""
    lines = [
        f"usage: {TRAIN_USAGE}",
        "       python -m ser_hf.train RECIPE.yaml [--key value ...]   (the same; also under accelerate launch)",
        "",
        *_wrapped(
            "Train and evaluate a speech emotion classifier from a recipe (a flat YAML file of the keys below). "
            "Every key is also a flag: --key value overrides the recipe (--key alone sets a true/false key to true). "
            "Flags are taken as spelt, never by prefix. recipes/README.md says what each shipped recipe does.",
            "",
        ),
    ]
    for section in load_schema()["sections"]:
        lines += ["", f"{section['title']} keys:", *_wrapped(section["description"], "  ")]
        for key in section["keys"]:
            default = f" (default: {key['default']})" if key["default"] not in (None, "None") else ""
            lines.append(f"  --{key['name']} {key['type']}{default}")
            lines += _wrapped(key["help"], "      ")
    count = f"{len(training_keys_)} " if (training_keys_ := training_arguments_keys()) else ""
    lines += [
        "",
        "transformers' TrainingArguments keys:",
        *_wrapped(
            f"The {count}keys of transformers' Trainer (output_dir, num_train_epochs, learning_rate, "
            "per_device_train_batch_size, seed, logging_steps, ...) are recipe keys too: ser-hf train "
            f"{HELP_ALL_FLAG} lists every key with its help (it loads transformers, a few seconds).",
            "  ",
        ),
        "",
        "options:",
        "  -h, --help    this help",
        f"  {HELP_ALL_FLAG}    every key, transformers' TrainingArguments included",
    ]
    return "\n".join(lines) + "\n"


def help_requested(args: Sequence[str]) -> Optional[str]:
    """``--help-all`` or ``--help`` when either is on the command line (``--help-all`` first), else `None`."""
    args = [str(arg) for arg in args]
    if HELP_ALL_FLAG in args:
        return HELP_ALL_FLAG
    return next((arg for arg in args if arg in HELP_FLAGS), None)


def check_command_line_flags(args: Sequence[str]) -> None:
    """Stop on a ``--flag`` after the recipe that is no recipe key, naming the closest key, before torch and
    transformers are imported; nothing is checked under a transformers other than the schema's (the parser checks)."""
    if not schema_is_current():
        return
    known = recipe_keys_before_imports()
    unknown = []
    for token in map(str, args):
        if not token.startswith("--"):
            continue
        name = token[2:].partition("=")[0].replace("-", "_")
        # HfArgumentParser also takes --no_KEY for a true/false key that defaults to true.
        if name not in known and not (name.startswith("no_") and name[3:] in known):
            unknown.append(token.partition("=")[0])
    if unknown:
        raise RecipeError(unknown_flags_error(unknown, known))


__all__ = ["HELP_ALL_FLAG", "HELP_FLAGS", "check_command_line_flags", "help_requested", "train_help"]
