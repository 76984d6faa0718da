"""``ser-hf compare RUN_DIR [RUN_DIR ...]``: one table and bar chart of finished runs. The parser imports nothing
heavy; :mod:`ser_hf.experiments.compare` (pandas, matplotlib) is imported when the command runs."""

from __future__ import annotations

import argparse

from .commands import COMMANDS


def add_compare_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf compare`` on the ``ser-hf`` sub-command parsers."""
    parser = commands.add_parser(
        "compare",
        help=COMMANDS["compare"].help,
        description="Compare finished training runs: UA, WA, macro-F1 (mean ± std over folds for k-fold runs), "
        "trainable parameters and training time, as comparison.csv/.md and a bar chart comparison.png.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="output_dir of a finished training run")
    parser.add_argument(
        "--split",
        default=None,
        help="split whose scores are compared (default: test when every run has one, else validation, which the "
        "table then says)",
    )
    parser.add_argument("--names", help="comma-separated names of the runs, in order (default: their folder names)")
    parser.add_argument(
        "--output-dir",
        default="outputs/comparison",
        help="folder for comparison.csv, comparison.md and comparison.png",
    )
    parser.set_defaults(run=compare_command)
    return parser


def compare_command(args: argparse.Namespace) -> int:
    from ..experiments.compare import compare_runs, write_comparison

    names = [name.strip() for name in args.names.split(",")] if args.names else None
    results = compare_runs(args.run_dirs, split=args.split, names=names)
    paths = write_comparison(results, args.output_dir)
    print(paths["markdown"].read_text())
    print(f"Written {', '.join(str(p) for p in paths.values())}")
    return 0


__all__ = ["add_compare_parser", "compare_command"]
