"""``ser-hf data summary|split|audit``: a corpus' counts, a split saved with its leakage audit, the audit of a saved
split. The parsers import nothing heavy; each command imports the data stage (``datasets``) when it runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.constants import PROTOCOLS
from ..data.errors import LeakageError, SplitError
from .commands import COMMANDS
from .corpus_arguments import add_corpus_arguments, csv_list, load_corpora
from .output_paths import check_output_folder

if TYPE_CHECKING:
    from datasets import DatasetDict


def add_data_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf data`` and its sub-commands on the ``ser-hf`` sub-command parsers."""
    data = commands.add_parser("data", help=COMMANDS["data"].help)
    data_commands = data.add_subparsers(dest="data_command", required=True)

    summary = data_commands.add_parser("summary", help="counts per label/speaker and durations of a corpus")
    add_corpus_arguments(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(run=data_summary)

    split = data_commands.add_parser("split", help="split a corpus and save it with its leakage audit")
    add_corpus_arguments(split)
    split.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="speaker",
        help="speaker-independent train/validation/test, k-fold, leave-one-speaker-out, or random "
        "(leaks speakers; for comparison only)",
    )
    split.add_argument(
        "--output",
        required=True,
        help="folder for save_to_disk, audit.json/md and summary.json: new, empty or an earlier split (never a "
        "model folder or a corpus)",
    )
    split.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --output folder that holds files ser-hf did not write (those of the same names are "
        "replaced, the others left alone)",
    )
    split.add_argument("--test-speakers", help="comma-separated speaker ids for the test split")
    split.add_argument("--validation-speakers", help="comma-separated speaker ids for the validation split")
    split.add_argument("--train-speakers", help="comma-separated speaker ids for training (default: all others)")
    split.add_argument(
        "--test-size",
        type=float,
        default=None,
        help="fraction of speakers (clips for random) held out for test; default 0.2 (not with speaker lists)",
    )
    split.add_argument(
        "--validation-size",
        type=float,
        default=None,
        help="fraction of speakers (clips for random) held out for validation; default 0.1 for "
        "speaker and random splits, 0 for kfold and loso",
    )
    split.add_argument("--n-splits", type=int, default=5, help="folds for --protocol kfold")
    split.add_argument("--seed", type=int, default=42)
    split.add_argument("--prepare", action="store_true", help="decode and resample the audio once into the split")
    split.add_argument("--num-proc", type=int, default=None, help="decoding processes for --prepare")
    split.add_argument("--no-file-check", action="store_true", help="skip hashing files for identical content")
    split.set_defaults(run=data_split)

    audit = data_commands.add_parser("audit", help="leakage audit of a split saved with save_to_disk")
    audit.add_argument(
        "split_dir", help="a DatasetDict of splits saved with save_to_disk (e.g. the folder ser-hf data split wrote)"
    )
    audit.add_argument("--json", action="store_true", help="print the audit as JSON instead of Markdown")
    audit.add_argument("--no-file-check", action="store_true", help="skip hashing files for identical content")
    audit.set_defaults(run=data_audit)
    return data


def data_summary(args: argparse.Namespace) -> int:
    from ..data.summary import format_summary, summarize

    summary = summarize(load_corpora(args))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def split_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`~ser_hf.data.splits.split_dataset` for the protocol's flags (and its
    defaults: a share of speakers held out for test and validation)."""
    if args.protocol == "speaker":
        check_split_flags(args)
    if args.test_size is None:
        args.test_size = 0.2
    # Speaker and random splits hold out validation speakers/clips by default; folds only when asked.
    if args.validation_size is None:
        args.validation_size = 0.1 if args.protocol in ("speaker", "random") else 0.0
    if args.protocol == "speaker":
        lists = {
            "test_speakers": csv_list(args.test_speakers),
            "validation_speakers": csv_list(args.validation_speakers),
            "train_speakers": csv_list(args.train_speakers),
        }
        return {k: v for k, v in lists.items() if v is not None} | {
            "test_size": args.test_size,
            "validation_size": args.validation_size,
            "seed": args.seed,
        }
    if args.protocol == "kfold":
        return {"n_splits": args.n_splits, "validation_size": args.validation_size, "seed": args.seed}
    if args.protocol == "loso":
        return {"validation_size": args.validation_size, "seed": args.seed}
    return {"test_size": args.test_size, "validation_size": args.validation_size, "seed": args.seed}


def check_split_flags(args: argparse.Namespace) -> None:
    """Shares of speakers given with speaker lists would be ignored: refuse them, naming both flags."""
    lists = [
        flag
        for flag, value in (
            ("--train-speakers", args.train_speakers),
            ("--validation-speakers", args.validation_speakers),
            ("--test-speakers", args.test_speakers),
        )
        if value is not None
    ]
    sizes = [
        flag
        for flag, value in (("--test-size", args.test_size), ("--validation-size", args.validation_size))
        if value is not None
    ]
    if lists and sizes:
        raise SplitError(
            f"{' and '.join(sizes)} cannot be used with {', '.join(lists)}: the split takes the "
            f"speakers named and would ignore {' and '.join(sizes)}. Give one or the other."
        )


def write_split(splits: DatasetDict, output: Path, check_files: bool = True) -> dict:
    """Save a split with ``save_to_disk`` beside its audit (JSON and Markdown) and summary; return the audit.

    Everything is written into a temporary folder beside ``output`` and moved into it once complete: an interrupted
    split leaves no half-saved dataset, and a split already in ``output`` stays as it was until then."""
    from ..atomic_files import atomic_directory
    from ..data.audit import audit_leakage
    from ..data.summary import summarize

    report = audit_leakage(splits, check_files=check_files, raise_on_leakage=False)
    with atomic_directory(output) as staging:
        splits.save_to_disk(str(staging))
        (staging / "audit.json").write_text(report.to_json())
        (staging / "audit.md").write_text(report.to_markdown())
        (staging / "summary.json").write_text(json.dumps(summarize(splits), indent=2))
    if not report.passed:
        raise LeakageError(report)
    return report.to_dict()


def data_split(args: argparse.Namespace) -> int:
    from ..data.decode import prepare_audio
    from ..data.splits import split_dataset
    from ..data.summary import format_summary, summarize

    check_output_folder("--output", args.output, args.overwrite, data_dirs=args.data_dir)
    dataset = load_corpora(args)
    if args.prepare:
        dataset = prepare_audio(dataset, num_proc=args.num_proc, skip_invalid=args.skip_invalid)
    folds = split_dataset(dataset, args.protocol, **split_options(args))
    output = Path(args.output)
    for index, splits in enumerate(folds):
        target = output if len(folds) == 1 else output / f"fold_{index}"
        write_split(splits, target, check_files=not args.no_file_check)
        print(
            f"{target}: "
            + ", ".join(
                f"{name} {len(split)} clips / {len(set(split['speaker_id']))} speakers"
                for name, split in splits.items()
            )
        )
    print(format_summary(summarize(folds[0]) if len(folds) == 1 else summarize(dataset)))
    print(f"Leakage audit passed for {len(folds)} split(s) ({args.protocol} protocol); written to {output}")
    return 0


def data_audit(args: argparse.Namespace) -> int:
    from datasets import DatasetDict, load_from_disk

    from ..data.audit import audit_leakage

    splits = load_from_disk(args.split_dir)
    if not isinstance(splits, DatasetDict):
        raise SplitError(f"{args.split_dir} holds a single Dataset, not a DatasetDict of splits.")
    report = audit_leakage(splits, check_files=not args.no_file_check, raise_on_leakage=False)
    print(report.to_json() if args.json else report.to_markdown())
    return 0 if report.passed else 1


__all__ = [
    "add_data_parser",
    "check_split_flags",
    "data_audit",
    "data_split",
    "data_summary",
    "split_options",
    "write_split",
]
