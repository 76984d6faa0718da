"""The corpus flags shared by ``ser-hf data``, ``evaluate`` and ``embed`` (``--corpus``/``--data-dir``, repeatable,
``--sampling-rate``, ``--label-map``, ``--labels``, ``--skip-invalid``, ``--verify``, ``--option``) and what they
load. Building the flags imports nothing heavy; the corpus loaders (``datasets``) are imported when a command runs.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Optional

import yaml

from ..data.constants import CORPUS_NAMES, VERIFY_LEVELS
from ..data.errors import CorpusError
from .flags import key_value_pairs

#: load_corpus arguments with a flag of their own (not accepted through --option).
CORPUS_ARGUMENTS = ("sampling_rate", "label_map", "labels", "skip_invalid", "verify")


def positive_int(text: str) -> int:
    """argparse type of a count or rate that must be at least 1 (``--sampling-rate 0`` is refused as a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def csv_list(value: Optional[str]) -> Optional[list[str]]:
    """The items of a comma-separated flag (``--labels a,b``), or None when it was not given."""
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def speaker_ids(value: Optional[str], flag: str = "--speakers") -> Optional[list[str]]:
    """The speaker ids of a comma-separated flag (``--speakers 03,04``); a CSV file given instead (``ser-hf predict
    --speakers`` takes one) is an error saying which flag takes what."""
    ids = csv_list(value)
    if ids and len(ids) == 1 and (ids[0].lower().endswith(".csv") or Path(ids[0]).is_file()):
        raise ValueError(
            f"{flag} {ids[0]}: this command's {flag} takes speaker ids separated by commas (e.g. {flag} 03,04); a CSV "
            "of path,speaker_id is what ser-hf predict's --speakers takes."
        )
    return ids


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``corpus`` group of flags to a command's parser."""
    group = parser.add_argument_group("corpus")
    group.add_argument(
        "--corpus",
        action="append",
        required=True,
        help=f"{', '.join(CORPUS_NAMES[:-1])} or {CORPUS_NAMES[-1]}; repeat with --data-dir to merge corpora",
    )
    group.add_argument("--data-dir", action="append", required=True, help="the corpus folder (one per --corpus)")
    group.add_argument("--sampling-rate", type=positive_int, default=16000, help="rate the audio decodes to (mono)")
    group.add_argument(
        "--label-map",
        action="append",
        default=[],
        metavar="LABEL=TARGET",
        help="merge a label into another (calm=neutral) or drop it (calm=drop)",
    )
    group.add_argument("--labels", help="comma-separated label set to keep (others are dropped)")
    group.add_argument("--skip-invalid", action="store_true", help="skip and list bad clips instead of stopping")
    group.add_argument(
        "--verify",
        choices=VERIFY_LEVELS,
        default="header",
        help="header: read every file's header (default); full: also decode every clip whole, naming "
        "files cut short or corrupt past their header",
    )
    group.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="[CORPUS:]KEY=VALUE",
        help="a corpus-specific option, e.g. demographics_csv=PATH (cremad), speaker_regex=... (folder)",
    )


def parse_corpus_arguments(args: argparse.Namespace) -> tuple[list[str], dict, list[dict]]:
    """``(corpora, label_map, options of each corpus)`` of the corpus flags. ``--option KEY=VALUE`` sets an option of
    the only corpus; with several, ``CORPUS:KEY=VALUE`` sets it for every corpus of that loader and ``N:KEY=VALUE``
    for the N-th (from 1), which tells apart two corpora of one loader (two folder corpora)."""
    from ..data.corpora import corpus_name

    if len(args.corpus) != len(args.data_dir):
        raise CorpusError(
            f"Give one --data-dir per --corpus (got {len(args.corpus)} corpora and {len(args.data_dir)} folders)."
        )
    label_map = {
        k: (None if v.lower() in ("drop", "none", "") else v)
        for k, v in key_value_pairs(args.label_map, "--label-map").items()
    }
    corpora = [corpus_name(name) for name in args.corpus]
    options: list[dict] = [{} for _ in corpora]
    for key, value in key_value_pairs(args.option, "--option").items():
        target, sep, name = key.rpartition(":")
        if not sep and len(corpora) > 1:
            raise CorpusError(
                f"--option {key}=... is ambiguous with several corpora; write CORPUS:{key}=... (every corpus of that "
                f"loader) or N:{key}=... (the N-th --corpus, from 1)."
            )
        if name in CORPUS_ARGUMENTS:
            raise CorpusError(f"--option {name}=... has its own flag: use --{name.replace('_', '-')}.")
        if not sep:
            indices = [0]
        elif target.isdigit():
            if not 1 <= int(target) <= len(corpora):
                raise CorpusError(
                    f"--option {key}=...: there is no corpus {target} (--corpus is given {len(corpora)} times)."
                )
            indices = [int(target) - 1]
        else:
            indices = [index for index, corpus in enumerate(corpora) if corpus == corpus_name(target)]
            if not indices:
                raise CorpusError(f"--option names corpus {[target]} that is not loaded.")
        for index in indices:
            # YAML scalars, so that true/false, numbers and null arrive typed.
            options[index][name] = yaml.safe_load(value)
    for corpus, values in zip(corpora, options):
        accepted = corpus_option_names(corpus)
        for name in values:
            if name not in accepted:
                raise CorpusError(
                    f"--option {name}=...: corpus {corpus} has no option {name!r}; its options are "
                    f"{', '.join(accepted)}."
                )
    return corpora, label_map, options


def corpus_option_names(corpus: str) -> list[str]:
    """What ``--option`` can set for a corpus: the keywords of ``load_corpus`` without a flag of their own
    (``check_audio``) and those of the corpus' loader (``demographics_csv`` for cremad, ``csv_path`` ... for
    folder), read from their signatures so that the list cannot drift from what the loaders take."""
    from ..data.corpora import corpus_options, load_corpus

    parameters = inspect.signature(load_corpus).parameters.values()
    named = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return sorted((named | set(corpus_options(corpus))) - {"name", "data_dir", *CORPUS_ARGUMENTS})


def load_corpora(args: argparse.Namespace):
    """The corpus the flags name (loaded with ``load_corpus``), or the corpora merged onto their shared labels."""
    from ..data.corpora import load_corpus, merge_corpora

    corpora, label_map, options = parse_corpus_arguments(args)
    datasets = [
        load_corpus(
            name,
            data_dir,
            sampling_rate=args.sampling_rate,
            label_map=label_map or None,
            labels=csv_list(args.labels),
            skip_invalid=args.skip_invalid,
            verify=args.verify,
            **corpus_options,
        )
        for name, data_dir, corpus_options in zip(corpora, args.data_dir, options)
    ]
    return datasets[0] if len(datasets) == 1 else merge_corpora(datasets, labels=csv_list(args.labels))


__all__ = [
    "CORPUS_ARGUMENTS",
    "add_corpus_arguments",
    "corpus_option_names",
    "csv_list",
    "load_corpora",
    "parse_corpus_arguments",
    "positive_int",
    "speaker_ids",
]
