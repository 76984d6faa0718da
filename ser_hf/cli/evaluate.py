"""``ser-hf evaluate --model M [--model ...] --corpus C --data-dir D [...]``: an evaluation report of a model on a
corpus, or the cross-corpus matrix of several. The parser imports nothing heavy; the evaluation (torch, transformers)
is imported when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.constants import SPLITS
from ..inputs.degradations import condition_usage, parse_condition
from .commands import COMMANDS
from .corpus_arguments import add_corpus_arguments, csv_list, parse_corpus_arguments, positive_int, speaker_ids
from .flags import add_speaker_check_argument
from .output_paths import check_output_folder


def add_evaluate_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf evaluate`` on the ``ser-hf`` sub-command parsers."""
    evaluate = commands.add_parser(
        "evaluate",
        help=COMMANDS["evaluate"].help,
    )
    evaluate.add_argument(
        "--model", action="append", required=True, help="folder or Hub id of a trained model (repeat for a matrix)"
    )
    add_corpus_arguments(evaluate)
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
    add_speaker_check_argument(evaluate)
    evaluate.add_argument(
        "--emotions-per-speaker",
        type=positive_int,
        metavar="N",
        help="evaluate as if each speaker were heard in N emotions only (talk-show clips): each keeps the clips of N "
        "of the evaluated emotions, every emotion still tested, drawn with --condition-seed",
    )
    evaluate.add_argument(
        "--conditions",
        nargs="+",
        type=recording_condition,
        metavar="CONDITION",
        help="also score the same clips under each of these recording conditions, degraded on the fly and seeded by "
        f"--condition-seed, each with its UA and its change against clean: {condition_usage()} (e.g. "
        "--conditions pink_noise:snr=10 telephone opus:bitrate=12k reverb:rt60=0.6 babble:snr=5)",
    )
    evaluate.add_argument(
        "--condition-seed",
        type=int,
        default=0,
        help="the draw of --emotions-per-speaker and of the --conditions' degradations (0)",
    )
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
    return evaluate


def recording_condition(text: str):
    """``--conditions``' reader: a bad condition is a usage error naming it, before anything is loaded."""
    try:
        return parse_condition(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def evaluation_sources(args: argparse.Namespace):
    """One :class:`~ser_hf.evaluation.evaluate_model.CorpusSource` per ``--corpus``/``--data-dir``."""
    from ..evaluation.evaluate_model import CorpusSource

    corpora, label_map, options = parse_corpus_arguments(args)
    verify = {"verify": args.verify} if args.verify != "header" else {}
    return [
        CorpusSource(name=name, data_dir=data_dir, label_map=label_map or None, options={**corpus_options, **verify})
        for name, data_dir, corpus_options in zip(corpora, args.data_dir, options)
    ]


def evaluate_command(args: argparse.Namespace) -> int:
    """One model on one corpus: eval_report.json/md and the confusion matrix; more: the cross-corpus matrix."""
    from ..evaluation.cross_corpus import cross_corpus_matrix, format_cross_corpus
    from ..evaluation.eval_report import format_eval_report, write_eval_report
    from ..evaluation.evaluate_model import EVAL_REPORT_JSON, default_output_dir, evaluate_model

    if args.output_dir is not None:  # before a model or a clip is read
        check_output_folder("--output-dir", args.output_dir, overwrite=True, data_dirs=args.data_dir)
    sources = evaluation_sources(args)
    speakers = speaker_ids(args.speakers)
    labels = csv_list(args.labels)
    load = {"revision": args.revision, "trust_remote_code": args.trust_remote_code}
    if len(args.model) == 1 and len(sources) == 1:
        report = evaluate_model(
            args.model[0],
            sources[0],
            split=args.split,
            speakers=speakers,
            labels=labels,
            batch_size=args.batch_size,
            speaker_statistics_check=args.speaker_statistics_check,
            emotions_per_speaker=args.emotions_per_speaker,
            condition_seed=args.condition_seed,
            conditions=args.conditions or (),
            **load,
        )
        output_dir = Path(args.output_dir or default_output_dir(args.model[0], sources[0], report["split"]["name"]))
        write_eval_report(output_dir, report)
        print(format_eval_report(report))
        print(f"Report written to {output_dir}")
        failed = (report.get("recording_conditions") or {}).get("failed")
        if failed:  # after the report is written: the passes scored are kept, the failure is still an error
            raise ValueError(
                f"condition {failed[0]['condition']} could not be scored ({failed[0]['error']})"
                + (f", and {len(failed) - 1} other condition(s)" if len(failed) > 1 else "")
                + f"; the clean figures and the other conditions' are written to {output_dir / EVAL_REPORT_JSON}."
            )
    else:
        if args.speakers:
            raise ValueError("--speakers applies to one model on one corpus; a matrix uses --split.")
        if args.speaker_statistics_check is not None or args.emotions_per_speaker is not None or args.conditions:
            raise ValueError(
                "--speaker-statistics-check, --emotions-per-speaker and --conditions apply to one model on one "
                "corpus; a matrix uses each model's own statistics on every clip."
            )
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


__all__ = ["add_evaluate_parser", "evaluate_command", "evaluation_sources", "recording_condition"]
