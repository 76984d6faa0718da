"""The speaker-leakage study: how much a random (clip-level) split inflates a recipe's scores.

    ser-hf leakage-study recipes/ravdess_cnn2d.yaml --output_dir runs/leakage_cnn2d [--key value ...]

The recipe trains twice on the same clips: under its speaker-independent protocol, and under a random split with the
same train / validation / test sizes, stratified by label (the protocol most SER notebooks use, which puts every
speaker in train and test). Both splits are audited. The study writes, into the recipe's ``output_dir``:
``speaker_independent/`` and ``random/`` (two normal training runs), and ``leakage.json``, ``leakage.md`` (scores
side by side, the inflation per metric, both audits) and ``leakage.png``. Re-running resumes or reads back both runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .commands import COMMANDS

# This module's docstring is the command's help (``description``, and ``main``'s ``--help``): the parser needs it
# without importing the study (datasets, the training stages).


def add_leakage_study_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf leakage-study`` on the ``ser-hf`` sub-command parsers (the recipe parser reads the
    arguments, as for ``ser-hf train``)."""
    parser = commands.add_parser(
        "leakage-study",
        usage="ser-hf leakage-study RECIPE.yaml [--key value ...]",
        help=COMMANDS["leakage-study"].help,
        description=__doc__.replace("``", ""),  # the docstring's literals, as a terminal shows them
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", help="a recipe with split_protocol: speaker")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="recipe overrides, --key value (as ser-hf train)")
    parser.set_defaults(run=lambda args: main([args.recipe, *args.arguments]))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``ser-hf leakage-study RECIPE.yaml [--key value ...]`` (also ``python -m ser_hf.experiments.leakage``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    from ..experiments.leakage import LEAKAGE_MARKDOWN, RANDOM_RUN, SPEAKER_RUN, run_leakage_study

    study = run_leakage_study(argv)
    study_dir = Path(study["output_dir"])
    print((study_dir / LEAKAGE_MARKDOWN).read_text())
    split, rows = next(iter(study["inflation"].items()))
    print(
        f"{split} UA: {100 * rows['unweighted_accuracy'][SPEAKER_RUN]:.1f} % speaker-independent, "
        f"{100 * rows['unweighted_accuracy'][RANDOM_RUN]:.1f} % on the random split; written to {study_dir}"
    )
    return 0


__all__ = ["add_leakage_study_parser", "main"]
