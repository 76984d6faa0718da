"""``ser-hf kfold RECIPE.yaml [--folds 5] [--fold_seed 42] --output result.json [--key value ...]``: the recipe's
speaker k-fold accuracy (:mod:`ser_hf.experiments.kfold`): every speaker tested once by a model that never heard
them, the folds' test speakers pooled with a speaker-bootstrap interval, written to a result file; finished folds are
read back when the command runs again.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .commands import COMMANDS
from .errors import RESUME_HINT
from .loco import add_model_path_argument
from .output_paths import check_result_file


def add_kfold_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf kfold`` on the ``ser-hf`` sub-command parsers."""
    parser = commands.add_parser(
        "kfold",
        usage="ser-hf kfold RECIPE.yaml --output RESULT.json [--folds 5] [--fold_seed 42] "
        "[--model_path ID=FOLDER] [--key value ...]",
        help=COMMANDS["kfold"].help,
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
    )
    parser.add_argument("recipe", help="a recipe (its split settings are replaced by the k-fold's)")
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    parser.add_argument("--fold_seed", "--fold-seed", type=int, default=42, help="seed of the fold assignment")
    parser.add_argument("--output", required=True, help="the result file (JSON)")
    parser.add_argument(
        "--run_dir", "--run-dir", help="the runs' folder (default: the recipe's output_dir-kfold{folds}-seed{seed})"
    )
    parser.add_argument(
        "--fold_corpus",
        "--fold-corpus",
        help="in a recipe merging corpora, the corpus the folds split (default: the one not in train_only_corpora)",
    )
    add_model_path_argument(parser)
    # Any other --key value is a recipe override, as for ser-hf train (ser_hf.cli.parse_args).
    parser.set_defaults(run=kfold_command, interrupted_hint=RESUME_HINT, takes_recipe_flags=True, recipe_args=[])
    return parser


def kfold_command(args: argparse.Namespace) -> int:
    from ..experiments.kfold import EXPERIMENT, kfold_row, run_kfold
    from ..recipe.overrides import command_line_values
    from .flags import model_paths

    check_result_file("--output", args.output, EXPERIMENT)  # before any work: a folder, a link, another file

    document = run_kfold(
        args.recipe,
        args.output,
        folds=args.folds,
        fold_seed=args.fold_seed,
        overrides=command_line_values(args.recipe_args),
        model_paths=model_paths(args.model_paths),
        output_dir=args.run_dir,
        fold_corpus=args.fold_corpus,
        command="ser-hf " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["kfold"] else None,
    )
    print(kfold_row(document))
    print(f"written to {args.output}")
    return 0


__all__ = ["add_kfold_parser", "kfold_command"]
