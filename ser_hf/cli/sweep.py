"""``ser-hf sweep RECIPE.yaml --grid KEY=V1,V2 [--random N] [--key value ...]``: train a recipe at every point of a
grid and rank the points (:mod:`ser_hf.experiments.sweep`). The parser imports nothing heavy; the sweep (pandas,
the recipe parser, the training stages) is imported when the command runs."""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from ..experiments.constants import BACKENDS
from .commands import COMMANDS


def add_sweep_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf sweep`` on the ``ser-hf`` sub-command parsers (its own parser reads the arguments, so that
    recipe overrides pass through as in ``ser-hf train``)."""
    # The description is the sweep parser's whole help (its options included): no options section of its own.
    parser = commands.add_parser(
        "sweep",
        help=COMMANDS["sweep"].help,
        usage=argparse.SUPPRESS,
        description=build_sweep_parser().format_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument("-h", "--help", action="help", help=argparse.SUPPRESS)
    parser.add_argument("recipe", help=argparse.SUPPRESS)
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(run=lambda args: main([args.recipe, *args.arguments]))
    return parser


def build_sweep_parser(prog: str = "ser-hf sweep") -> argparse.ArgumentParser:
    """The parser of the sweep's own options; what it does not know (``--key value``) overrides the recipe."""
    parser = argparse.ArgumentParser(
        prog=prog,
        allow_abbrev=False,
        usage=f"{prog} RECIPE.yaml [--grid KEY=V1,V2 ...] [--random N] [options] [--key value ...]",
        description="Train a recipe at every point of a grid (or N of them), each point in its own folder under "
        "the recipe's output_dir, and rank them. Flags not listed here (--key value) override the recipe "
        "for every point, as in ser_hf.train.",
    )
    parser.add_argument("recipe", help="the recipe to sweep (it may hold a sweep: section)")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a recipe key (or model_config.KEY) and its values, read as YAML; repeat for more keys",
    )
    parser.add_argument(
        "--random",
        type=int,
        default=None,
        metavar="N",
        help="train N points drawn at random from the grid (--backend optuna: N points its sampler picks)",
    )
    parser.add_argument("--metric", default=None, help="metric that ranks the points (default: unweighted_accuracy)")
    parser.add_argument(
        "--split",
        default=None,
        choices=("validation", "test"),
        help="split the metric is read on (default: validation; test means tuning on it)",
    )
    parser.add_argument("--sweep-seed", type=int, default=None, help="seed of the random draw (default: 0)")
    parser.add_argument(
        "--backend",
        default=None,
        choices=BACKENDS,
        help="grid: every point or --random N of them; optuna: its TPE sampler picks N points (pip install optuna)",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the recipe and list the points; train nothing")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``ser-hf sweep`` (also ``python -m ser_hf.experiments.sweep``); returns 1 if a point failed."""
    from ..experiments.sweep import SWEEP_CSV, SWEEP_MARKDOWN, SWEEP_PNG, run_sweep

    parser = build_sweep_parser()
    args, overrides = parser.parse_known_args(argv)
    options = {
        "grid_options": args.grid,
        "random_points": args.random,
        "metric": args.metric,
        "split": args.split,
        "seed": args.sweep_seed,
        "backend": args.backend,
    }
    table, spec, points = run_sweep(args.recipe, options, overrides, dry_run=args.dry_run)
    if args.dry_run:
        print(table.to_string(index=False))
        return 0
    sweep_dir = points[0].run_dir.parent
    print((sweep_dir / SWEEP_MARKDOWN).read_text())
    print(f"Written {sweep_dir / SWEEP_CSV}, {sweep_dir / SWEEP_MARKDOWN}, {sweep_dir / SWEEP_PNG}")
    return 1 if (table["status"] != "finished").any() else 0


__all__ = ["add_sweep_parser", "build_sweep_parser", "main"]
