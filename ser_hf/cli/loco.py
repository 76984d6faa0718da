"""``ser-hf loco RECIPE.yaml [--seeds 42 7 43] [--normalizations corpus ...] --output result.json [--key value ...]``:
the recipe's leave-one-corpus-out accuracy (:mod:`ser_hf.experiments.loco`): each of its corpora left out in turn,
the model trained on every speaker of the others and scored on every speaker of the one left out, written to a result
file after every cell; finished cells are read back when the command runs again.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .commands import COMMANDS
from .errors import RESUME_HINT
from .output_paths import check_result_file


def add_loco_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf loco`` on the ``ser-hf`` sub-command parsers."""
    from ..experiments.loco import NORMALIZATIONS

    parser = commands.add_parser(
        "loco",
        usage="ser-hf loco RECIPE.yaml --output RESULT.json [--seeds 42 ...] [--normalizations corpus ...] "
        "[--corpora A B ...] [--model_path ID=FOLDER] [--score_labels EMOTION ...] [--key value ...]",
        help=COMMANDS["loco"].help,
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
    )
    parser.add_argument("recipe", help="a recipe of two corpora or more (its split settings are replaced)")
    parser.add_argument("--output", required=True, help="the result file (JSON), written after every cell")
    parser.add_argument(
        "--seeds",
        "--seed",
        type=int,
        nargs="+",
        help="training seeds, each a run of every cell (default: the recipe's)",
    )
    parser.add_argument(
        "--normalizations",
        nargs="+",
        choices=list(NORMALIZATIONS),
        help="feature_extractor_config.normalization values, each a run of every cell (default: the recipe's)",
    )
    parser.add_argument(
        "--corpora", nargs="+", metavar="NAME", help="the recipe's corpora in play, by name (default: all)"
    )
    add_model_path_argument(parser)
    parser.add_argument("--run_dir", "--run-dir", help="the cells' runs (default: the recipe's output_dir-loco)")
    parser.add_argument(
        "--score_labels",
        "--score-labels",
        nargs="+",
        metavar="EMOTION",
        help="score each left-out corpus on its emotions among these (default: those every corpus in play holds); "
        "BENCHMARKS.md's four-corpus rows: neutral happy sad angry fearful surprised",
    )
    # Any other --key value is a recipe override, as for ser-hf train (--data_dir A B C: the corpora's folders).
    parser.set_defaults(run=loco_command, interrupted_hint=RESUME_HINT, takes_recipe_flags=True, recipe_args=[])
    return parser


def add_model_path_argument(parser: argparse.ArgumentParser) -> None:
    """``--model_path ID=FOLDER`` (repeatable), read by :func:`ser_hf.cli.flags.model_paths`."""
    parser.add_argument(
        "--model_path",
        "--model-path",
        dest="model_paths",
        action="append",
        default=[],
        metavar="ID=FOLDER",
        help="load FOLDER where the recipe's model_name_or_path is ID (a local copy of a Hub checkpoint; repeatable)",
    )


def loco_command(args: argparse.Namespace) -> int:
    from ..experiments.loco import EXPERIMENT, loco_row, run_loco
    from ..recipe.overrides import command_line_values
    from .flags import model_paths

    check_result_file("--output", args.output, EXPERIMENT)  # before any work: a folder, a link, another file

    document = run_loco(
        args.recipe,
        args.output,
        seeds=args.seeds,
        normalizations=args.normalizations,
        corpora=args.corpora,
        model_paths=model_paths(args.model_paths),
        overrides=command_line_values(args.recipe_args),
        run_dir=args.run_dir,
        score_labels=args.score_labels,
        command="ser-hf " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["loco"] else None,
    )
    print(loco_row(document))
    print(f"written to {args.output}")
    return 0


__all__ = ["add_loco_parser", "add_model_path_argument", "loco_command"]
