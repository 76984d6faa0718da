"""Train and evaluate a speech emotion classifier from a recipe.

    ser-hf train recipes/demo.yaml [--key value ...]
    python -m ser_hf.train recipes/ravdess_crnn.yaml [--key value ...]
    accelerate launch -m ser_hf.train recipes/cremad_full.yaml
    ser-hf train --help        (ser-hf's keys, at once; --help-all: transformers' TrainingArguments keys too)

:func:`main` checks the recipe's keys, then runs it through :func:`ser_hf.training.run_recipe.run_recipe`, the one
sequence a sweep's points run too: the configuration (YAML, then command-line overrides), logging, the output folder
held, then the data, each split trained and evaluated, the k-fold summary, the card and the push, each a call into the
stage that does the work. The keys are checked before torch and transformers are imported (seconds on a busy machine),
so that a misspelt key is answered at once.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional, Sequence

from .cli.train_help import HELP_ALL_FLAG, check_command_line_flags, help_requested, train_help
from .data.corpus_sources import missing_corpus_hint
from .errors import RecipeError
from .recipe.keys import check_recipe_before_imports, split_recipe_args
from .recipe.values import overrides_before_imports
from .recipe.yaml_io import read_recipe_file

if TYPE_CHECKING:
    from .run_record import RunReport


def main(args: Optional[Sequence[str]] = None) -> list[RunReport]:
    """Run a recipe; returns the report of every split trained (one, or one per fold), each a
    :class:`~ser_hf.run_record.RunReport` (``report.evaluation["test"].unweighted_accuracy``). An ensemble recipe
    (``ensemble_members``, see :mod:`ser_hf.training.ensemble`) trains each member recipe, then fuses them.
    ``--help`` prints ser-hf's recipe keys at once; ``--help-all`` every key, transformers' included."""
    args = list(sys.argv[1:] if args is None else args)
    help_flag = help_requested(args)
    if help_flag == HELP_ALL_FLAG:
        from .recipe.parser import RecipeParser

        RecipeParser().print_help()
        return []
    if help_flag is not None:
        sys.stdout.write(train_help())
        return []
    # The recipe file and the flags, each read once; its keys and values, and the flags' names, checked before torch
    # and transformers load: a misspelt key is answered at once; a missing corpus folder, with where the corpus comes
    # from and the flag to pass.
    path, flags = split_recipe_args(args)
    values = read_recipe_file(path) if path is not None else {}
    overrides = overrides_before_imports(flags)
    try:
        check_recipe_before_imports(path, values, overrides)
    except RecipeError as error:
        hint = missing_corpus_hint({**values, **overrides}) if path is not None else None
        if hint:
            raise RecipeError(f"{error} {hint}") from None
        raise
    check_command_line_flags(flags)
    from .training.run_recipe import run_recipe

    return run_recipe(args, file_values=values)


if __name__ == "__main__":
    from .cli.errors import RESUME_HINT, recipe_spelling, run_reporting_errors

    # The errors `ser-hf train` prints as one line (a recipe mistake, a corpus or split problem, a folder that cannot
    # be written) are printed the same way here, also under `accelerate launch -m ser_hf.train`; so is Ctrl-C.
    sys.exit(run_reporting_errors(main, "ser_hf.train", interrupted_hint=RESUME_HINT, spell=recipe_spelling))
