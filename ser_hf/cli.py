"""The ``ser-hf`` command line.

    ser-hf data summary --corpus ravdess --data-dir data/ravdess_sample [--json]
    ser-hf data split   --corpus ravdess --data-dir data/ravdess_sample --protocol speaker --output splits/ravdess
    ser-hf data audit   splits/ravdess [--json]
    ser-hf train recipes/demo.yaml [--key value ...]
    ser-hf predict outputs/demo data/ravdess_sample/Actor_08/03-01-05-01-01-01-08.flac

``--corpus``/``--data-dir`` may be repeated to merge corpora onto the shared vocabulary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

import yaml
from datasets import DatasetDict, load_from_disk

from .audit import LeakageError, audit_leakage
from .configs import RecipeError
from .corpora import CorpusError, corpus_name, load_corpus, merge_corpora
from .prepare import prepare_audio
from .splits import PROTOCOLS, SplitError, split_dataset
from .summary import format_summary, summarize

logger = logging.getLogger("ser_hf")

# load_corpus arguments with a flag of their own (not accepted through --option).
_CORPUS_ARGUMENTS = ("sampling_rate", "label_map", "labels", "skip_invalid")


def _key_values(items: Sequence[str], what: str) -> dict[str, str]:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CorpusError(f"{what} {item!r} is not of the form KEY=VALUE.")
        values[key.strip()] = value.strip()
    return values


def _csv_list(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def _add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("corpus")
    group.add_argument("--corpus", action="append", required=True,
                       help="cremad, ravdess, tess, savee, emodb or folder; repeat with --data-dir to merge corpora")
    group.add_argument("--data-dir", action="append", required=True, help="the corpus folder (one per --corpus)")
    group.add_argument("--sampling-rate", type=int, default=16000, help="rate the audio decodes to (mono)")
    group.add_argument("--label-map", action="append", default=[], metavar="LABEL=TARGET",
                       help="merge a label into another (calm=neutral) or drop it (calm=drop)")
    group.add_argument("--labels", help="comma-separated label set to keep (others are dropped)")
    group.add_argument("--skip-invalid", action="store_true", help="skip and list bad clips instead of stopping")
    group.add_argument("--option", action="append", default=[], metavar="[CORPUS:]KEY=VALUE",
                       help="a corpus-specific option, e.g. demographics_csv=PATH (cremad), speaker_regex=... "
                            "(folder)")


def _load(args: argparse.Namespace):
    if len(args.corpus) != len(args.data_dir):
        raise CorpusError(f"Give one --data-dir per --corpus (got {len(args.corpus)} corpora and "
                          f"{len(args.data_dir)} folders).")
    label_map = {k: (None if v.lower() in ("drop", "none", "") else v)
                 for k, v in _key_values(args.label_map, "--label-map").items()}
    corpora = [corpus_name(name) for name in args.corpus]
    options: dict[str, dict] = {}
    for key, value in _key_values(args.option, "--option").items():
        corpus, sep, name = key.rpartition(":")
        if not sep and len(corpora) > 1:
            raise CorpusError(f"--option {key}=... is ambiguous with several corpora; write CORPUS:{key}=...")
        if name in _CORPUS_ARGUMENTS:
            raise CorpusError(f"--option {name}=... has its own flag: use --{name.replace('_', '-')}.")
        # YAML scalars, so that true/false, numbers and null arrive typed.
        options.setdefault(corpus_name(corpus) if corpus else corpora[0], {})[name] = yaml.safe_load(value)
    unknown = set(options) - set(corpora)
    if unknown:
        raise CorpusError(f"--option names corpus {sorted(unknown)} that is not loaded.")
    datasets = [
        load_corpus(name, data_dir, sampling_rate=args.sampling_rate, label_map=label_map or None,
                    labels=_csv_list(args.labels), skip_invalid=args.skip_invalid, **options.get(name, {}))
        for name, data_dir in zip(corpora, args.data_dir)
    ]
    return datasets[0] if len(datasets) == 1 else merge_corpora(datasets, labels=_csv_list(args.labels))


def data_summary(args: argparse.Namespace) -> int:
    summary = summarize(_load(args))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _split_options(args: argparse.Namespace) -> dict:
    # Speaker and random splits hold out validation speakers/clips by default; folds only when asked.
    if args.validation_size is None:
        args.validation_size = 0.1 if args.protocol in ("speaker", "random") else 0.0
    if args.protocol == "speaker":
        lists = {"test_speakers": _csv_list(args.test_speakers),
                 "validation_speakers": _csv_list(args.validation_speakers),
                 "train_speakers": _csv_list(args.train_speakers)}
        return {k: v for k, v in lists.items() if v is not None} | {
            "test_size": args.test_size, "validation_size": args.validation_size, "seed": args.seed}
    if args.protocol == "kfold":
        return {"n_splits": args.n_splits, "validation_size": args.validation_size, "seed": args.seed}
    if args.protocol == "loso":
        return {"validation_size": args.validation_size, "seed": args.seed}
    return {"test_size": args.test_size, "validation_size": args.validation_size, "seed": args.seed}


def write_split(splits: DatasetDict, output: Path, check_files: bool = True) -> dict:
    """Save a split with ``save_to_disk`` beside its audit (JSON and Markdown) and summary; return the audit."""
    report = audit_leakage(splits, check_files=check_files, raise_on_leakage=False)
    output.mkdir(parents=True, exist_ok=True)
    splits.save_to_disk(str(output))
    (output / "audit.json").write_text(report.to_json())
    (output / "audit.md").write_text(report.to_markdown())
    (output / "summary.json").write_text(json.dumps(summarize(splits), indent=2))
    if not report.passed:
        raise LeakageError(report)
    return report.to_dict()


def data_split(args: argparse.Namespace) -> int:
    dataset = _load(args)
    if args.prepare:
        dataset = prepare_audio(dataset, num_proc=args.num_proc, skip_invalid=args.skip_invalid)
    folds = split_dataset(dataset, args.protocol, **_split_options(args))
    output = Path(args.output)
    for index, splits in enumerate(folds):
        target = output if len(folds) == 1 else output / f"fold_{index}"
        write_split(splits, target, check_files=not args.no_file_check)
        print(f"{target}: " + ", ".join(f"{name} {len(split)} clips / "
                                        f"{len(set(split['speaker_id']))} speakers" for name, split in splits.items()))
    print(format_summary(summarize(folds[0]) if len(folds) == 1 else summarize(dataset)))
    print(f"Leakage audit passed for {len(folds)} split(s) ({args.protocol} protocol); written to {output}")
    return 0


def data_audit(args: argparse.Namespace) -> int:
    splits = load_from_disk(args.split_dir)
    if not isinstance(splits, DatasetDict):
        raise SplitError(f"{args.split_dir} holds a single Dataset, not a DatasetDict of splits.")
    report = audit_leakage(splits, check_files=not args.no_file_check, raise_on_leakage=False)
    print(report.to_json() if args.json else report.to_markdown())
    return 0 if report.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ser-hf", description="Speech emotion recognition on the HF stack.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="corpora: summaries, splits, leakage audits")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    summary = data_commands.add_parser("summary", help="counts per label/speaker and durations of a corpus")
    _add_corpus_arguments(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(run=data_summary)

    split = data_commands.add_parser("split", help="split a corpus and save it with its leakage audit")
    _add_corpus_arguments(split)
    split.add_argument("--protocol", choices=PROTOCOLS, default="speaker",
                       help="speaker-independent train/validation/test, k-fold, leave-one-speaker-out, or random "
                            "(leaks speakers; for comparison only)")
    split.add_argument("--output", required=True, help="folder for save_to_disk, audit.json/md and summary.json")
    split.add_argument("--test-speakers", help="comma-separated speaker ids for the test split")
    split.add_argument("--validation-speakers", help="comma-separated speaker ids for the validation split")
    split.add_argument("--train-speakers", help="comma-separated speaker ids for training (default: all others)")
    split.add_argument("--test-size", type=float, default=0.2, help="fraction of speakers (clips for random)")
    split.add_argument("--validation-size", type=float, default=None,
                       help="fraction of speakers (clips for random) held out for validation; default 0.1 for "
                            "speaker and random splits, 0 for kfold and loso")
    split.add_argument("--n-splits", type=int, default=5, help="folds for --protocol kfold")
    split.add_argument("--seed", type=int, default=42)
    split.add_argument("--prepare", action="store_true", help="decode and resample the audio once into the split")
    split.add_argument("--num-proc", type=int, default=None, help="decoding processes for --prepare")
    split.add_argument("--no-file-check", action="store_true", help="skip hashing files for identical content")
    split.set_defaults(run=data_split)

    audit = data_commands.add_parser("audit", help="leakage audit of a split saved with save_to_disk")
    audit.add_argument("split_dir")
    audit.add_argument("--json", action="store_true")
    audit.add_argument("--no-file-check", action="store_true", help="skip hashing files for identical content")
    audit.set_defaults(run=data_audit)

    train = commands.add_parser("train", help="train and evaluate from a recipe (same as python -m ser_hf.train)",
                                add_help=False)
    train.add_argument("recipe_args", nargs=argparse.REMAINDER, help="RECIPE.yaml [--key value ...]")
    train.set_defaults(run=train_command)

    predict = commands.add_parser("predict", help="classify audio files with a trained model")
    predict.add_argument("model", help="folder (or Hub id) of a trained model")
    predict.add_argument("files", nargs="+", help="audio files")
    predict.add_argument("--top-k", type=int, default=3, help="emotions to list per file")
    predict.set_defaults(run=predict_command)
    return parser


def train_command(args: argparse.Namespace) -> int:
    from .train import main as train_main

    train_main(args.recipe_args)
    return 0


def predict_command(args: argparse.Namespace) -> int:
    """One JSON line per file: the file and its top emotions with scores, through pipeline("audio-classification")."""
    from transformers import pipeline

    from .prepare import decode_waveform

    classifier = pipeline("audio-classification", model=args.model)
    sampling_rate = classifier.feature_extractor.sampling_rate
    for path in args.files:
        waveform = decode_waveform(path, sampling_rate)
        scores = classifier({"raw": waveform, "sampling_rate": sampling_rate}, top_k=args.top_k)
        print(json.dumps({"file": path, "predictions": [{"label": s["label"], "score": round(float(s["score"]), 4)}
                                                        for s in scores]}))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (CorpusError, SplitError, LeakageError, RecipeError, ValueError, FileNotFoundError) as error:
        # Errors of input (a path, a label, a split option): one line naming it, no traceback.
        print(f"ser-hf: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
