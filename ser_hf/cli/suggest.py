"""``ser-hf suggest MODEL FOLDER --per-emotion N --speaker-regex PATTERN --output SHEET.csv``: which of your unlabelled
recordings to label first, written to a labelling sheet that the app's labelling page (``ser-hf app MODEL --label
FOLDER``), or any spreadsheet, fills in and ``ser-hf adapt --labels-csv SHEET.csv`` reads.

A thin shell over :func:`ser_hf.adaptation.suggest.suggest`: the recordings are encoded once with the model's frozen
encoder, into the cache the adaptation reads back, so the adaptation encodes none of them again.
"""

from __future__ import annotations

import argparse

from .commands import COMMANDS
from .corpus_arguments import positive_int


def add_suggest_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf suggest`` on the ``ser-hf`` sub-command parsers."""
    parser = commands.add_parser(
        "suggest",
        help=COMMANDS["suggest"].help,
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
    )
    parser.add_argument(
        "model", help="a trained ser-hf model on a speech encoder (one ser-hf adapt takes): a folder or a Hub id"
    )
    parser.add_argument("folder", help="your unlabelled recordings, in any layout")
    parser.add_argument(
        "--output", required=True, metavar="SHEET.csv", help="the labelling sheet written (outside FOLDER)"
    )
    parser.add_argument(
        "--per-emotion",
        type=positive_int,
        default=5,
        metavar="N",
        help="clips suggested per emotion of the model (default 5)",
    )
    parser.add_argument(
        "--speaker-regex",
        metavar="PATTERN",
        help="read each file's speaker from its path, e.g. '^(?P<speaker>[A-Z]+\\d)_' (a speaker per file: "
        "'(?P<speaker>[^/]+)$'), as ser-hf adapt reads it (needed)",
    )
    parser.add_argument("--revision", help="branch, tag or commit of a Hub model")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="clips per forward pass (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clustering (default 0)")
    parser.set_defaults(run=suggest_command)
    return parser


def suggest_command(args: argparse.Namespace) -> int:
    from ..adaptation.suggest import suggest

    result = suggest(
        args.model,
        args.folder,
        args.output,
        per_emotion=args.per_emotion,
        speaker_regex=args.speaker_regex,
        revision=args.revision,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    unusable = f"; {len(result.unusable)} cannot be used (listed in {result.unusable_file})" if result.unusable else ""
    print(
        f"{len(result.rows)} of {result.recordings} recordings to label, in order, in {result.sheet}{unusable}. "
        f"Label them in the app (ser-hf app {args.model} --label {args.folder} --sheet {result.sheet}) or in the "
        f"sheet's label column, then: ser-hf adapt {args.model} --data-dir {args.folder} --labels-csv "
        f"{result.sheet} --output-dir ADAPTED",
        flush=True,
    )
    return 0


__all__ = ["add_suggest_parser", "suggest_command"]
