"""The ``ser-hf`` command line.

    ser-hf data summary --corpus ravdess --data-dir data/ravdess_sample [--json]
    ser-hf data split   --corpus ravdess --data-dir data/ravdess_sample --protocol speaker --output splits/ravdess
    ser-hf data audit   splits/ravdess [--json]
    ser-hf train recipes/demo.yaml [--key value ...]
    ser-hf predict outputs/demo data/ravdess_sample/Actor_08 [--window-seconds 4 --hop-seconds 2] [--output x.csv]
    ser-hf predict outputs/speaker_normalised recordings/ --speaker-from folder   (or --speakers speakers.csv)
    ser-hf evaluate --model outputs/demo --corpus ravdess --data-dir data/ravdess_sample --split test
    ser-hf evaluate --model A --model B --corpus ravdess --data-dir R --corpus cremad --data-dir C   (a matrix)
    ser-hf export outputs/demo --format onnx outputs/demo-onnx [--parity-audio data/ravdess_sample]
    ser-hf ensemble outputs/opensmile outputs/cnn2d --output-dir outputs/ensemble [--weights 0.6 0.4]
    ser-hf push outputs/demo --repo-id me/ser-demo [--private]
    ser-hf app outputs/demo [--host 127.0.0.1 --port 7860]   (a web app: the app extra, ser_hf.extras)
    ser-hf adapt outputs/demo --data-dir MY_CLIPS --output-dir MY_MODEL --speaker-regex PATTERN
    ser-hf suggest outputs/demo MY_RECORDINGS --speaker-regex PATTERN --output sheet.csv
    ser-hf kfold recipes/demo.yaml --folds 5 --output kfold.json
    ser-hf loco recipes/general_whisper_base.yaml --output loco.json
    ser-hf learning-curve outputs/demo --data-dir DIR --adapt-speakers A,B --test-speakers C --output curve.json
    ser-hf sweep recipes/demo.yaml --grid learning_rate=1.0e-3,3.0e-3
    ser-hf compare outputs/a outputs/b
    ser-hf leakage-study recipes/demo.yaml
    ser-hf embed outputs/demo --corpus ravdess --data-dir data/ravdess_sample
    ser-hf cache list   (or ser-hf cache delete --older-than 30 [--yes], ser-hf cache delete --all)

``--corpus``/``--data-dir`` may be repeated to merge corpora onto the shared vocabulary (``data``), or to evaluate
on several corpora (``evaluate``). The Hub token comes from ``HF_TOKEN`` or ``hf auth login``, never a flag.

One module per command (:data:`.commands.COMMANDS` lists them, and a test keeps the lines above listing each), each
with an ``add_*_parser`` that registers it here and the function that runs it; the corpus flags they share are in
:mod:`.corpus_arguments`, the one-line error report in :mod:`.errors`. Building the parser imports argparse and light
constants only: each command imports its machinery (torch, transformers, datasets ...) when it runs, so that ``ser-hf
--help`` and ``ser-hf COMMAND --help`` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Collection, Optional, Sequence

from .. import __version__
from ..hub.token import redact_log_handlers
from ..hub_timeouts import use_hub_timeout
from .commands import COMMANDS
from .corpus_arguments import corpus_option_names, positive_int
from .errors import DEBUG_VARIABLE, USER_ERRORS, command_spelling, error_line, run_reporting_errors
from .flags import (
    FullFlagsParser,
    accept_both_spellings,
    attach_pattern_values,
    command_parser,
    option_strings,
    unknown_flags_message,
)

logger = logging.getLogger("ser_hf")

#: ``ser-hf --debug``: errors keep their traceback (see :func:`.errors.run_reporting_errors`).
DEBUG_FLAG = "--debug"
#: The flags ``ser-hf`` itself takes before the command.
GLOBAL_FLAGS = ("-v", "--verbose", DEBUG_FLAG, "-h", "--help", "--version")


def build_parser(commands_to_build: Optional[Collection[str]] = None) -> argparse.ArgumentParser:
    """The ``ser-hf`` parser. Each command of `commands_to_build` (every one when `None`) gets its full parser from
    its module (:data:`.commands.COMMANDS`); the others are listed by name and help only, as ``ser-hf --help`` shows
    them, and their modules are not imported. Every parser takes flags as spelt, never by prefix
    (:class:`.flags.FullFlagsParser`; argparse builds the sub-command parsers with their parent's class), each long
    flag in kebab-case and in the underscore spelling too (:func:`.flags.accept_both_spellings`)."""
    parser = FullFlagsParser(
        prog="ser-hf",
        description="Speech emotion recognition on the HF stack. An error of input (a path, a value, a model file) is "
        f"one line 'ser-hf: error: ...' and exit status 2; --debug (or {DEBUG_VARIABLE}=1) shows its traceback "
        "instead.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"ser-hf {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"on an error, show the full traceback instead of one line (also: {DEBUG_VARIABLE}=1 in the "
        "environment, which python -m ser_hf.train reads too); may follow the command, except after train, whose "
        "--debug is TrainingArguments'",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        if commands_to_build is None or name in commands_to_build:
            module = importlib.import_module(f".{command.module}", __name__)
            getattr(module, f"add_{command.module}_parser")(commands)
        else:
            commands.add_parser(name, help=command.help)
    return accept_both_spellings(parser)


def command_named(argv: Sequence[str]) -> Optional[str]:
    """The command a command line runs: its first argument after ``ser-hf``'s own flags, when that is a command."""
    for argument in argv:
        if argument not in GLOBAL_FLAGS:
            return argument if argument in COMMANDS else None
    return None


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line; what follows ``ser-hf train`` (``--help`` included) goes to the recipe parser."""
    args, unknown = parser.parse_known_args(attach_pattern_values(parser, sys.argv[1:] if argv is None else argv))
    if DEBUG_FLAG in unknown and getattr(args, "command", None) != "train":  # `ser-hf predict ... --debug`
        unknown.remove(DEBUG_FLAG)
        args.debug = True
    # Commands that run a recipe (train, kfold) pass the flags they do not know to the recipe parser.
    takes_recipe_flags = getattr(args, "command", None) == "train" or getattr(args, "takes_recipe_flags", False)
    if unknown and not takes_recipe_flags:
        parser.error(unknown_flags_message(unknown, option_strings(parser, hidden=False)))
    if unknown:
        args.recipe_args = [*unknown, *args.recipe_args]
    return args


#: Loggers of the HTTP clients huggingface_hub uses, which log each request at INFO.
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_named(argv)
    parser = build_parser({command} if command else ())
    args = parse_args(parser, argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # Every HTTP request the Hub client makes (one line each at INFO) only with --verbose.
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    redact_log_handlers()

    def command():
        use_hub_timeout()  # a bad SER_HF_HUB_TIMEOUT is an error of input: one line, like the others
        return args.run(args)

    takes_recipe_flags = args.command == "train" or getattr(args, "takes_recipe_flags", False)
    return run_reporting_errors(
        command,
        "ser-hf",
        interrupted_hint=getattr(args, "interrupted_hint", None),
        debug=args.debug,
        spell=command_spelling(command_parser(parser, args.command, args), takes_recipe_flags),
    )


__all__ = [
    "COMMANDS",
    "command_named",
    "USER_ERRORS",
    "build_parser",
    "corpus_option_names",
    "error_line",
    "main",
    "parse_args",
    "positive_int",
    "run_reporting_errors",
]
