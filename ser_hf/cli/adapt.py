"""``ser-hf adapt MODEL --data-dir FOLDER --output-dir OUT``: adapt a trained ser-hf model to a user's recordings
with a few labelled clips (and, with ``--unlabelled-dir``, their unlabelled recordings of the same set-up).

A thin shell over :func:`ser_hf.adaptation.adapt`, which checks every input before a clip is encoded, chooses the
adaptation by cross-validation over the labelled speakers (never worse there than the model it starts from) and prints
its estimate on new speakers as its last line; the output folder is an ordinary ser-hf model (card, push,
``pipeline``, predict, app). bench/adapt.py measures how many labelled clips it needs (docs/guides/your-data.md).
"""

from __future__ import annotations

import argparse

import yaml

from .commands import COMMANDS
from .corpus_arguments import csv_list, speaker_ids
from .errors import RESUME_HINT
from .flags import key_value_pairs


def add_adapt_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf adapt`` on the ``ser-hf`` sub-command parsers."""
    parser = commands.add_parser(
        "adapt",
        help=COMMANDS["adapt"].help,
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
    )
    parser.add_argument(
        "model", help="a trained ser-hf model on a speech encoder: a run's output_dir, or a Hub id (see --revision)"
    )
    parser.add_argument(
        "--data-dir", required=True, help="your labelled recordings: a folder corpus (see --label-regex)"
    )
    parser.add_argument("--output-dir", required=True, help="where the adapted model is saved")
    parser.add_argument(
        "--label-regex",
        metavar="PATTERN",
        help="read each file's emotion from its name, e.g. '_(?P<label>[a-z]+)_\\d+\\.wav$' (default: the folder "
        "layout FOLDER/<emotion>/<file>)",
    )
    parser.add_argument(
        "--speaker-regex",
        metavar="PATTERN",
        help="read each file's speaker from its path, e.g. '^(?P<speaker>[A-Z]+\\d)_' (a speaker per file: "
        "'(?P<speaker>[^/]+)$'); needed unless --option csv_path=... gives a speaker_column",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another folder-corpus option (csv_path, label_column, speaker_column, corpus_name, ...), repeatable",
    )
    parser.add_argument(
        "--labels-csv",
        metavar="SHEET.csv",
        help="a labelling sheet (ser-hf suggest, the app's labelling page): adapt on its rows answered with an "
        "emotion (paths relative to --data-dir; skip and not-speech rows left out) instead of --label-regex",
    )
    parser.add_argument("--labels", help="keep only these emotions of the folder, comma-separated")
    parser.add_argument(
        "--test-speakers",
        help="speakers kept out of the adaptation and scored (comma-separated); default: every speaker adapts",
    )
    parser.add_argument(
        "--unlabelled-dir",
        help="unlabelled recordings of the same set-up: each labelled speaker's give that speaker's statistics "
        "(as at inference), and one self-training round reads them after the adaptation (unless --no-self-train)",
    )
    parser.add_argument(
        "--no-self-train",
        dest="self_train",
        action="store_false",
        help="use --unlabelled-dir for the speakers' statistics only, with no self-training round",
    )
    parser.add_argument(
        "--self-train-on-test-speakers",
        action="store_true",
        help="let --unlabelled-dir hold recordings of --test-speakers (refused otherwise): the evaluation is then "
        "transductive, and the report and the card say so",
    )
    parser.add_argument("--revision", help="branch, tag or commit of a Hub model")
    parser.add_argument("--seed", type=int, default=42, help="seed of the cross-validation's folds (default 42)")
    parser.set_defaults(run=adapt_command, interrupted_hint=RESUME_HINT)
    return parser


def adapt_command(args: argparse.Namespace) -> int:
    from ..adaptation import adapt

    adapt(
        args.model,
        args.data_dir,
        args.output_dir,
        label_regex=args.label_regex,
        speaker_regex=args.speaker_regex,
        corpus_options={key: yaml.safe_load(value) for key, value in key_value_pairs(args.option, "--option").items()},
        labels=csv_list(args.labels),
        test_speakers=speaker_ids(args.test_speakers, "--test-speakers") or (),
        unlabelled_dir=args.unlabelled_dir,
        self_train_on_test_speakers=args.self_train_on_test_speakers,
        self_train=args.self_train,
        revision=args.revision,
        labels_csv=args.labels_csv,
        seed=args.seed,
    )
    from ..run_record import read_adaptation_record

    record = read_adaptation_record(args.output_dir)
    print(record["selection"]["estimate_line"])  # the last line: how good the kept model is expected to be
    return 0


__all__ = ["add_adapt_parser", "adapt_command"]
