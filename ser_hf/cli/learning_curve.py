"""``ser-hf learning-curve MODEL --data-dir FOLDER --adapt-speakers A,B --test-speakers C,D --output curve.json``:
how many labelled clips an adaptation of MODEL needs on your corpus, measured through ``ser-hf adapt`` itself
(:mod:`ser_hf.experiments.learning_curve`): for each k and each draw, k x (labels) clips of the adaptation speakers
labelled as a user would (at random, or as ``ser-hf suggest`` orders them; or k of each emotion, the oracle), the
model adapted on them, scored on the test speakers beside the adaptation's own estimate. The result file is written
after every cell; the same command started again resumes.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

import yaml

from .commands import COMMANDS
from .corpus_arguments import csv_list, speaker_ids
from .errors import RESUME_HINT
from .flags import key_value_pairs
from .output_paths import check_result_file


def add_learning_curve_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf learning-curve`` on the ``ser-hf`` sub-command parsers."""
    from ..experiments.constants import LEARNING_CURVE_ARMS, LEARNING_CURVE_DEFAULTS, LEARNING_CURVE_SCENARIOS

    parser = commands.add_parser(
        "learning-curve",
        help=COMMANDS["learning-curve"].help,
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
    )
    parser.add_argument("model", help="a trained ser-hf model on a speech encoder: a run's output_dir, or a Hub id")
    parser.add_argument("--data-dir", required=True, help="the corpus folder")
    parser.add_argument(
        "--corpus", default="folder", help="a named corpus (ser-hf data summary lists them) or folder (the default)"
    )
    parser.add_argument("--label-regex", metavar="PATTERN", help="a folder corpus' label pattern")
    parser.add_argument("--speaker-regex", metavar="PATTERN", help="a folder corpus' speakers")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a corpus option")
    parser.add_argument("--adapt-speakers", required=True, help="speakers whose clips adapt")
    parser.add_argument("--test-speakers", required=True, help="speakers scored, never adapted on")
    parser.add_argument("--labels", help="the labels scored (default: the corpus' labels that the model has)")
    parser.add_argument(
        "--ks", type=int, nargs="+", default=list(LEARNING_CURVE_DEFAULTS["ks"]), help="labelled clips per emotion"
    )
    parser.add_argument(
        "--draws", type=int, nargs="+", default=list(LEARNING_CURVE_DEFAULTS["draws"]), help="draw seeds"
    )
    parser.add_argument(
        "--arms",
        nargs="+",
        choices=LEARNING_CURVE_ARMS,
        default=list(LEARNING_CURVE_DEFAULTS["arms"]),
        help="what is scored at each k (default: %(default)s)",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=LEARNING_CURVE_SCENARIOS,
        default=list(LEARNING_CURVE_DEFAULTS["scenarios"]),
        help="what the speakers and recordings are like: ordinary; few-emotions: every speaker heard in two emotions "
        "only; telephone-babble: every clip heard through a telephone from a room where others talk (default: "
        "%(default)s)",
    )
    parser.add_argument("--output", required=True, help="the result file (JSON), written after every cell")
    parser.add_argument("--work-dir", help="where the cells' folders go (default: OUTPUT.work)")
    parser.add_argument("--keep-models", action="store_true", help="keep every cell's model")
    parser.set_defaults(run=learning_curve_command, interrupted_hint=RESUME_HINT)
    return parser


def learning_curve_command(args: argparse.Namespace) -> int:
    from ..experiments.learning_curve import EXPERIMENT, run_learning_curve, summary_table

    check_result_file("--output", args.output, EXPERIMENT)  # before any work: a folder, a link, another file

    options: dict[str, Any] = {
        key: yaml.safe_load(value) for key, value in key_value_pairs(args.option, "--option").items()
    }
    if args.label_regex:
        options["label_regex"] = args.label_regex
    if args.speaker_regex:
        options["speaker_regex"] = args.speaker_regex
    document = run_learning_curve(
        args.model,
        args.data_dir,
        args.output,
        corpus=args.corpus,
        corpus_options=options,
        adapt_speakers=speaker_ids(args.adapt_speakers, "--adapt-speakers"),
        test_speakers=speaker_ids(args.test_speakers, "--test-speakers"),
        labels=csv_list(args.labels),
        ks=args.ks,
        draws=args.draws,
        arms=args.arms,
        scenarios=args.scenarios,
        work_dir=args.work_dir,
        keep_models=args.keep_models,
        command="ser-hf " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["learning-curve"] else None,
    )
    print(summary_table(document["summary"]))
    print(f"written to {args.output}")
    return 0


__all__ = ["add_learning_curve_parser", "learning_curve_command"]
