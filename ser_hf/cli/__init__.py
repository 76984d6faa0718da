"""The ``ser-hf`` command line.

    ser-hf data summary --corpus ravdess --data-dir data/ravdess_sample [--json]
    ser-hf data split   --corpus ravdess --data-dir data/ravdess_sample --protocol speaker --output splits/ravdess
    ser-hf data audit   splits/ravdess [--json]
    ser-hf train recipes/demo.yaml [--key value ...]
    ser-hf predict outputs/demo data/ravdess_sample/Actor_08 [--window-seconds 4 --hop-seconds 2] [--output x.csv]
    ser-hf predict outputs/speaker_normalised recordings/ --speaker-from folder   (or --speakers speakers.csv)
    ser-hf evaluate --model outputs/demo --corpus ravdess --data-dir data/ravdess_sample --split test
    ser-hf evaluate --model A --model B --corpus ravdess --data-dir R --corpus cremad --data-dir C   (a matrix)
    ser-hf push outputs/demo --repo-id me/ser-demo [--private]

``--corpus``/``--data-dir`` may be repeated to merge corpora onto the shared vocabulary (``data``), or to evaluate
on several corpora (``evaluate``). The Hub token comes from ``HF_TOKEN`` or ``hf auth login``, never a flag.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml
from datasets import DatasetDict, load_from_disk
from huggingface_hub.errors import HfHubHTTPError

from ..atomic_files import atomic_directory
from ..data.audit import LeakageError, audit_leakage
from ..data.corpora import VERIFY_LEVELS, CorpusError, corpus_name, load_corpus, merge_corpora
from ..data.decode import prepare_audio
from ..data.splits import PROTOCOLS, SplitError, split_dataset
from ..data.summary import format_summary, summarize
from ..evaluation.evaluate_model import SPLITS
from ..experiments import register_experiment_commands
from ..hub.client import use_hub_timeout
from ..hub.token import redact_log_handlers, redact_tokens
from ..predict import SPEAKER_SOURCES
from ..recipe.errors import RecipeError

logger = logging.getLogger("ser_hf")

# load_corpus arguments with a flag of their own (not accepted through --option).
_CORPUS_ARGUMENTS = ("sampling_rate", "label_map", "labels", "skip_invalid", "verify")


def _key_values(items: Sequence[str], what: str) -> dict[str, str]:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CorpusError(f"{what} {item!r} is not of the form KEY=VALUE.")
        values[key.strip()] = value.strip()
    return values


def positive_int(text: str) -> int:
    """argparse type of a count or rate that must be at least 1 (``--sampling-rate 0`` is refused as a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _csv_list(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def _add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("corpus")
    group.add_argument(
        "--corpus",
        action="append",
        required=True,
        help="cremad, ravdess, tess, savee, emodb or folder; repeat with --data-dir to merge corpora",
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


def _corpus_arguments(args: argparse.Namespace) -> tuple[list[str], dict, dict[str, dict]]:
    """``(corpora, label_map, options per corpus)`` of the corpus flags."""
    if len(args.corpus) != len(args.data_dir):
        raise CorpusError(
            f"Give one --data-dir per --corpus (got {len(args.corpus)} corpora and {len(args.data_dir)} folders)."
        )
    label_map = {
        k: (None if v.lower() in ("drop", "none", "") else v)
        for k, v in _key_values(args.label_map, "--label-map").items()
    }
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
    for corpus, values in options.items():
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
    from ..data.corpora import _LOADERS

    parameters = [
        *inspect.signature(load_corpus).parameters.values(),
        *inspect.signature(_LOADERS[corpus]).parameters.values(),
    ]
    named = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return sorted(named - {"name", "data_dir", *_CORPUS_ARGUMENTS})


def _load(args: argparse.Namespace):
    corpora, label_map, options = _corpus_arguments(args)
    datasets = [
        load_corpus(
            name,
            data_dir,
            sampling_rate=args.sampling_rate,
            label_map=label_map or None,
            labels=_csv_list(args.labels),
            skip_invalid=args.skip_invalid,
            verify=args.verify,
            **options.get(name, {}),
        )
        for name, data_dir in zip(corpora, args.data_dir)
    ]
    return datasets[0] if len(datasets) == 1 else merge_corpora(datasets, labels=_csv_list(args.labels))


def data_summary(args: argparse.Namespace) -> int:
    summary = summarize(_load(args))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _split_options(args: argparse.Namespace) -> dict:
    if args.protocol == "speaker":
        _check_split_flags(args)
    if args.test_size is None:
        args.test_size = 0.2
    # Speaker and random splits hold out validation speakers/clips by default; folds only when asked.
    if args.validation_size is None:
        args.validation_size = 0.1 if args.protocol in ("speaker", "random") else 0.0
    if args.protocol == "speaker":
        lists = {
            "test_speakers": _csv_list(args.test_speakers),
            "validation_speakers": _csv_list(args.validation_speakers),
            "train_speakers": _csv_list(args.train_speakers),
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


def _check_split_flags(args: argparse.Namespace) -> None:
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
    dataset = _load(args)
    if args.prepare:
        dataset = prepare_audio(dataset, num_proc=args.num_proc, skip_invalid=args.skip_invalid)
    folds = split_dataset(dataset, args.protocol, **_split_options(args))
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
    split.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="speaker",
        help="speaker-independent train/validation/test, k-fold, leave-one-speaker-out, or random "
        "(leaks speakers; for comparison only)",
    )
    split.add_argument("--output", required=True, help="folder for save_to_disk, audit.json/md and summary.json")
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
    audit.add_argument("split_dir")
    audit.add_argument("--json", action="store_true")
    audit.add_argument("--no-file-check", action="store_true", help="skip hashing files for identical content")
    audit.set_defaults(run=data_audit)

    train = commands.add_parser(
        "train", help="train and evaluate from a recipe (same as python -m ser_hf.train)", add_help=False
    )
    train.add_argument("recipe_args", nargs=argparse.REMAINDER, help="RECIPE.yaml [--key value ...]")
    train.set_defaults(run=train_command)

    predict = commands.add_parser(
        "predict",
        help="classify audio files or folders with a trained model, windowing long recordings",
        description="Classify audio files or folders with a trained model, windowing long recordings. A file that "
        "cannot be classified (corrupt, empty, truncated, NaN samples, too short) gets its result with an "
        "error and the others go on. Exit status: 0 when every file was classified, 1 when some were not "
        "(every result is still written), 2 on a usage error (no audio found, bad --output).",
    )
    predict.add_argument("model", help="folder or Hub id of a trained model")
    predict.add_argument(
        "files",
        nargs="*",
        help="audio files, or folders searched for audio files (default with --speakers: the files its CSV lists)",
    )
    predict.add_argument("--top-k", type=int, default=3, help="emotions to list per file")
    predict.add_argument(
        "--window-seconds",
        type=float,
        default=None,
        help="classify recordings longer than this in windows of this length (default: whole files, "
        "recordings over 30 s in 30 s windows)",
    )
    predict.add_argument(
        "--hop-seconds",
        type=float,
        default=None,
        help="seconds between window starts (default: the window length, no overlap)",
    )
    predict.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="windows per forward pass, taken across files (models without an attention mask: 1)",
    )
    predict.add_argument(
        "--output",
        help="write per-window and per-file results to a .csv or .json file, replaced "
        "only once complete (default: one JSON line per file on stdout)",
    )
    predict.add_argument("--revision", help="branch, tag or commit of a Hub model")
    predict.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model code stored with a Hub model (not needed for ser-hf models)",
    )
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")
    speakers = predict.add_argument_group(
        "speakers",
        "Group the recordings by speaker: results get a speaker column, and a model trained on "
        "speaker-normalised features (normalization: speaker) standardises each speaker's recordings with "
        "statistics of those recordings (transductive: each result depends on the speaker's other "
        "recordings).",
    ).add_mutually_exclusive_group()
    speakers.add_argument(
        "--speaker-from",
        choices=SPEAKER_SOURCES,
        help="folder: each file's speaker is the name of the folder it lies in (one folder per speaker)",
    )
    speakers.add_argument(
        "--speakers",
        metavar="CSV",
        help="a CSV with columns path,speaker_id (paths relative to the CSV's folder, or absolute) "
        "giving every file's speaker",
    )
    predict.set_defaults(run=predict_command)

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate trained models on corpora (cross-corpus on their shared labels); one model and one "
        "corpus write an evaluation report, more write a matrix",
    )
    evaluate.add_argument(
        "--model", action="append", required=True, help="folder or Hub id of a trained model (repeat for a matrix)"
    )
    _add_corpus_arguments(evaluate)
    evaluate.add_argument(
        "--split",
        choices=SPLITS,
        default="auto",
        help="auto: the model's held-out test speakers on a corpus it was trained on, every clip of "
        "another; all; or the speakers of that split of the model's run",
    )
    evaluate.add_argument("--speakers", help="comma-separated speaker ids to evaluate on (instead of --split)")
    evaluate.add_argument(
        "--output-dir",
        help="where the report goes (default: MODEL/reports/CORPUS-SPLIT for a "
        "local model, so that `ser-hf push` publishes it with the model; "
        "cross_corpus/ for a matrix)",
    )
    evaluate.add_argument("--batch-size", type=int, default=8)
    evaluate.add_argument("--revision", help="branch, tag or commit of Hub models")
    evaluate.add_argument("--trust-remote-code", action="store_true")
    evaluate.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the report to this repository")
    evaluate.add_argument(
        "--hub-repo-type",
        choices=("dataset", "model"),
        default="dataset",
        help="repository type of --push-to-hub (default: a dataset repository of its own)",
    )
    evaluate.add_argument("--hub-private-repo", action="store_true", help="create the --push-to-hub repo private")
    evaluate.set_defaults(run=evaluate_command)

    push = commands.add_parser("push", help="push a finished run (model, card, reports, recipe) to the Hub")
    push.add_argument("run_dir", help="the run's output folder")
    push.add_argument("--repo-id", required=True, help="namespace/name of the repository (created when missing)")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--revision", help="branch to push to (created from main when missing)")
    push.add_argument("--commit-message", help="message of the commit")
    push.add_argument("--license", help="licence id for the card (default: the training corpora's)")
    push.add_argument("--no-card", action="store_true", help="keep the folder's README.md as it is")
    push.set_defaults(run=push_command)
    register_experiment_commands(commands)
    return parser


def train_command(args: argparse.Namespace) -> int:
    from ..train import main as train_main

    train_main(args.recipe_args)
    return 0


def predict_command(args: argparse.Namespace) -> int:
    """Classify files and folders through pipeline("audio-classification"), windowing long recordings; one JSON line
    per file on stdout, or every window and file in --output (CSV or JSON, written as results come and renamed into
    place at the end). A file that cannot be classified gets its row with an `error`, and the exit status is 1."""
    import contextlib

    from ..models.feature_extraction_auto import load_feature_extractor
    from ..models.ssl import minimum_input_samples
    from ..predict import (
        OUTPUT_SUFFIXES,
        PredictionWriter,
        audio_classification_pipeline,
        classify_files,
        find_audio_inputs,
        model_labels,
        read_speakers_csv,
        speakers_from_folders,
        speakers_of,
    )

    if args.output is not None and Path(args.output).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output {args.output}: write .csv or .json.")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}.")
    for flag, value in (("--window-seconds", args.window_seconds), ("--hop-seconds", args.hop_seconds)):
        if value is not None and value <= 0:
            raise ValueError(f"{flag} must be positive, got {value}.")
    if args.hop_seconds is not None and args.window_seconds is None:
        raise ValueError("--hop-seconds needs --window-seconds (the length of the windows it spaces).")
    table = read_speakers_csv(args.speakers) if args.speakers is not None else None
    if not args.files and table is None:
        raise ValueError("Give audio files or folders to classify (or --speakers CSV, whose files are classified).")
    files = find_audio_inputs(args.files) if args.files else list(table)
    speakers = None
    if table is not None:
        speakers = speakers_of(files, table, args.speakers)
    elif args.speaker_from == "folder":
        speakers = speakers_from_folders(files)
    # The feature extractor through ser-hf's loader: a model folder without one gets an error naming the fix.
    feature_extractor = load_feature_extractor(
        args.model, revision=args.revision, trust_remote_code=args.trust_remote_code
    )
    classifier = audio_classification_pipeline(
        args.model, feature_extractor, revision=args.revision, trust_remote_code=args.trust_remote_code
    )
    shortest = minimum_input_samples(classifier.model.config) / feature_extractor.sampling_rate
    if args.window_seconds is not None and args.window_seconds < shortest:
        raise ValueError(
            f"--window-seconds {args.window_seconds} is shorter than the model's receptive field "
            f"({shortest:.3f} s): no window could be classified."
        )
    writer = (
        None
        if args.output is None
        else PredictionWriter(args.output, model_labels(classifier), args.top_k, speaker_column=speakers is not None)
    )
    failed = []
    with writer or contextlib.nullcontext():
        for prediction in classify_files(
            classifier,
            files,
            window_seconds=args.window_seconds,
            hop_seconds=args.hop_seconds,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            speakers=speakers,
        ):
            if writer is None:
                print(json.dumps(prediction.to_dict(args.top_k)), flush=True)
            else:
                writer.write(prediction)
            if prediction.error is not None:
                failed.append(f"{prediction.file}: {prediction.error}")
    if writer is not None:
        print(
            f"{writer.files} file(s), {writer.windows} window(s)"
            f"{f', {writer.failed} failed' if writer.failed else ''}: {writer.path}"
        )
    if failed:
        more = f"\n  ... and {len(failed) - 10} more" if len(failed) > 10 else ""
        print(
            f"ser-hf: {len(failed)} of {len(files)} file(s) could not be classified (see their error):\n  "
            + "\n  ".join(failed[:10])
            + more,
            file=sys.stderr,
        )
    return 1 if failed else 0


def _evaluation_sources(args: argparse.Namespace):
    from ..evaluation.evaluate_model import CorpusSource

    corpora, label_map, options = _corpus_arguments(args)
    verify = {"verify": args.verify} if args.verify != "header" else {}
    return [
        CorpusSource(
            name=name, data_dir=data_dir, label_map=label_map or None, options={**options.get(name, {}), **verify}
        )
        for name, data_dir in zip(corpora, args.data_dir)
    ]


def evaluate_command(args: argparse.Namespace) -> int:
    """One model on one corpus: eval_report.json/md and the confusion matrix; more: the cross-corpus matrix."""
    from ..evaluation.evaluate_model import (
        cross_corpus_matrix,
        default_output_dir,
        evaluate_model,
        format_cross_corpus,
        format_eval_report,
        write_eval_report,
    )

    sources = _evaluation_sources(args)
    labels = _csv_list(args.labels)
    load = {"revision": args.revision, "trust_remote_code": args.trust_remote_code}
    if len(args.model) == 1 and len(sources) == 1:
        report = evaluate_model(
            args.model[0],
            sources[0],
            split=args.split,
            speakers=_csv_list(args.speakers),
            labels=labels,
            batch_size=args.batch_size,
            **load,
        )
        output_dir = Path(args.output_dir or default_output_dir(args.model[0], sources[0], report["split"]["name"]))
        write_eval_report(output_dir, report)
        print(format_eval_report(report))
        print(f"Report written to {output_dir}")
    else:
        if args.speakers:
            raise ValueError("--speakers applies to one model on one corpus; a matrix uses --split.")
        split = "test" if args.split == "auto" else args.split
        output_dir = Path(args.output_dir or "cross_corpus")
        matrix = cross_corpus_matrix(
            args.model, sources, output_dir=output_dir, split=split, labels=labels, batch_size=args.batch_size, **load
        )
        print(format_cross_corpus(matrix))
        print(f"Reports written to {output_dir}")
    if args.push_to_hub:
        from ..hub.push import push_reports_to_hub

        commit = push_reports_to_hub(
            output_dir, args.push_to_hub, repo_type=args.hub_repo_type, private=args.hub_private_repo or None
        )
        print(f"Pushed to {commit.commit_url}")
    return 0


def push_command(args: argparse.Namespace) -> int:
    """Push a finished run's folder (weights, config, feature extractor, code, card, reports, recipe)."""
    from ..hub.push import push_to_hub

    commit = push_to_hub(
        args.run_dir,
        args.repo_id,
        private=args.private or None,
        revision=args.revision,
        commit_message=args.commit_message,
        create_card=not args.no_card,
        license=args.license,
    )
    print(f"Pushed {args.run_dir} to {commit.commit_url}")
    return 0


#: Errors of input (a path, a label, a split option, a recipe value, a clip), of the file system (a folder that cannot
#: be written, a name too long: OSError naming the path) or of the Hub (no access, no repository, unreachable:
#: HubPushError is a ConnectionError): one line naming it, no traceback. Anything else is a bug and keeps its
#: traceback.
USER_ERRORS = (CorpusError, SplitError, LeakageError, RecipeError, ValueError, OSError, HfHubHTTPError)


def run_reporting_errors(command: Callable[[], Any], prog: str) -> int:
    """Run ``command`` (``ser-hf``'s commands, ``python -m ser_hf.train``) and return its exit status: an error of
    input is printed as one line ``PROG: error: ...`` and gives status 2, as argparse's usage errors do."""
    try:
        status = command()
    except USER_ERRORS as error:
        print(f"{prog}: error: {redact_tokens(error_line(error))}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0


def error_line(error: BaseException) -> str:
    """The message of an error; an OSError of a path reads ``PATH: REASON`` (not ``[Errno 13] ...: 'PATH'``)."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        return f"{paths}: {error.strerror}"
    return str(error)


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line; what follows ``ser-hf train`` (``--help`` included) goes to the recipe parser."""
    args, unknown = parser.parse_known_args(argv)
    if unknown and getattr(args, "command", None) != "train":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.recipe_args = [*unknown, *args.recipe_args]
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(build_parser(), argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    redact_log_handlers()

    def command():
        use_hub_timeout()  # a bad SER_HF_HUB_TIMEOUT is an error of input: one line, like the others
        return args.run(args)

    return run_reporting_errors(command, "ser-hf")
