"""``ser-hf train RECIPE.yaml [--key value ...]``: :mod:`ser_hf.train` from the ``ser-hf`` command; everything
after ``train`` (``--help`` and ``--help-all`` included) goes to it."""

from __future__ import annotations

import argparse

from ..recipe.keys import TRAIN_USAGE
from .commands import COMMANDS
from .errors import RESUME_HINT


def add_train_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf train`` on the ``ser-hf`` sub-command parsers."""
    train = commands.add_parser("train", help=COMMANDS["train"].help, add_help=False)
    train.add_argument("recipe_args", nargs=argparse.REMAINDER, help="RECIPE.yaml [--key value ...]")
    train.set_defaults(run=train_command, interrupted_hint=RESUME_HINT)
    return train


#: What ``ser-hf train`` without a recipe says, at once (the recipe parser would import torch and transformers first).
NO_RECIPE = (
    f"give a recipe, e.g. ser-hf train recipes/demo_whisper.yaml (usage: {TRAIN_USAGE}; "
    "the shipped recipes are in recipes/, recipes/README.md says what each does; ser-hf train --help lists its keys)."
)


def train_command(args: argparse.Namespace) -> int:
    if not args.recipe_args:
        raise ValueError(NO_RECIPE)  # one line "ser-hf ...: error: ...", status 2, as every input error
    # ser_hf.train answers --help (ser-hf's keys, read from source: neither torch nor transformers is imported) and
    # --help-all (the recipe parser's help of every key) itself.
    from ..train import main as train_main

    train_main(args.recipe_args)
    return 0


__all__ = ["add_train_parser", "train_command"]
