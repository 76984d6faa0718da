"""``ser-hf train RECIPE.yaml [--key value ...]``: :mod:`ser_hf.train` from the ``ser-hf`` command; everything
after ``train`` (``--help`` included) goes to the recipe parser."""

from __future__ import annotations

import argparse

from .commands import COMMANDS
from .errors import RESUME_HINT

HELP_FLAGS = ("-h", "--help")


def add_train_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf train`` on the ``ser-hf`` sub-command parsers."""
    train = commands.add_parser("train", help=COMMANDS["train"].help, add_help=False)
    train.add_argument("recipe_args", nargs=argparse.REMAINDER, help="RECIPE.yaml [--key value ...]")
    train.set_defaults(run=train_command, interrupted_hint=RESUME_HINT)
    return train


#: What ``ser-hf train`` without a recipe says, at once (the recipe parser would import torch and transformers first).
NO_RECIPE = (
    "give a recipe, e.g. ser-hf train recipes/demo_whisper.yaml (usage: ser-hf train RECIPE.yaml [--key value ...]; "
    "the shipped recipes are in recipes/, recipes/README.md says what each does; ser-hf train --help lists every key)."
)


def train_command(args: argparse.Namespace) -> int:
    if not args.recipe_args:
        raise ValueError(NO_RECIPE)  # one line "ser-hf ...: error: ...", status 2, as every input error
    if any(flag in args.recipe_args for flag in HELP_FLAGS):
        # The help is the recipe parser's (ser_hf.train parses the recipe first, and stops there); the training
        # stages (datasets, the trainer, the Hub card) are not imported to print it.
        from ..recipe.parser import parse_recipe

        parse_recipe(args.recipe_args)
    from ..train import main as train_main

    train_main(args.recipe_args)
    return 0


__all__ = ["add_train_parser", "train_command"]
