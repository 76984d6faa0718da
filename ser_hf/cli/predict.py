"""``ser-hf predict MODEL FILES_OR_FOLDERS``: classify audio through ``pipeline("audio-classification")``, windowing
long recordings. The parser imports nothing heavy; the model is loaded (torch, transformers) when the command runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..deploy.audio_inputs import audio_inputs
from ..deploy.constants import DEFAULT_SMOOTHING, OUTPUT_SUFFIXES, SPEAKER_SOURCES
from ..extras import install_hint
from ..model_location import check_local_model_path
from .commands import COMMANDS
from .corpus_arguments import positive_int
from .flags import add_speaker_check_argument
from .number_arguments import hop_seconds, positive_seconds
from .output_paths import check_output_file, is_prediction_file, is_timeline_plot


def add_predict_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf predict`` on the ``ser-hf`` sub-command parsers."""
    predict = commands.add_parser(
        "predict",
        help=COMMANDS["predict"].help,
        description="Classify audio files or folders with a trained model, windowing long recordings. A file that "
        "cannot be classified (corrupt, empty, truncated, NaN samples, too short) gets its result with an "
        "error and the others go on. Exit status: 0 when every file was classified, 1 when some were not "
        "(every result is still written), 2 on a usage error (no audio found, bad --output).",
    )
    predict.add_argument("model", help="folder or Hub id of a trained model, or a folder of `ser-hf export`")
    predict.add_argument(
        "files",
        nargs="*",
        help="audio files, or folders searched for audio files (default with --speakers: the files its CSV lists)",
    )
    predict.add_argument("--top-k", type=positive_int, default=3, help="emotions to list per file (at least 1)")
    predict.add_argument(
        "--window-seconds",
        type=positive_seconds,
        default=None,
        help="classify recordings longer than this in windows of this length (default: whole files, "
        "recordings over 30 s in 30 s windows)",
    )
    predict.add_argument(
        "--hop-seconds",
        type=hop_seconds,
        default=None,
        help="seconds between window starts, at least 0.01 (default: the window length, no overlap)",
    )
    predict.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="windows per forward pass, taken across files (default: %(default)s; models without an attention "
        "mask: 1)",
    )
    predict.add_argument(
        "--output",
        help="write per-window and per-file results to a .csv or .json file, replaced "
        "only once complete (default: one JSON line per file on stdout); never in a model folder or a folder of "
        "audio, and over an existing file only if an earlier ser-hf predict wrote it (or with --overwrite)",
    )
    predict.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --output (or --timeline-plot) file that ser-hf did not write",
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
    add_speaker_check_argument(predict)
    add_timeline_arguments(predict)
    predict.set_defaults(run=predict_command)
    return predict


def add_timeline_arguments(predict: argparse.ArgumentParser) -> None:
    """``--timeline`` and its options: emotion over time by voice activity (``ser_hf.deploy.timeline``)."""
    timeline = predict.add_argument_group(
        "emotion over time",
        "--timeline cuts each recording into speech segments by voice activity (Silero VAD: "
        f"{install_hint('timeline')}) and classifies each: --output gets one row per segment (file, start, end, "
        "speaker, label, score_<label>...; JSON: one record per file with its segments).",
    )
    timeline.add_argument("--timeline", action="store_true", help="classify each speech segment over time")
    timeline.add_argument(
        "--timeline-plot",
        metavar="PNG_OR_FOLDER",
        help="draw each timeline (scores stacked over time, silence shaded): a .png file for one recording, "
        "otherwise a folder that gets <name>.timeline.png per recording",
    )
    timeline.add_argument(
        "--smoothing",
        default=DEFAULT_SMOOTHING,
        help="none; mean:3s (mean over the speech within 1.5 s of each segment's centre: segments of 3 s or "
        "more keep their scores); mean:N (N segments); exponential:2s (causal, half-life) "
        f"(default: {DEFAULT_SMOOTHING})",
    )
    timeline.add_argument(
        "--segment-context-seconds",
        type=float,
        metavar="SECONDS",
        help="classify each segment with up to this much of the audio around it, never past the middle of the pause "
        "to the next segment (models trained on whole clips heard their silence; 0: the speech alone; inf: all of "
        "each pause up to its middle) (default: 1 s, ser_hf.deploy.timeline.DEFAULT_SEGMENT_CONTEXT)",
    )
    timeline.add_argument(
        "--rttm",
        metavar="FILE",
        help="a diarisation (RTTM): each segment gets the speaker whose turn overlaps it most, cut at turn changes",
    )
    timeline.add_argument("--vad-threshold", type=float, default=0.5, help="speech probability threshold (0.5)")
    timeline.add_argument("--min-speech-seconds", type=float, default=0.25, help="shorter speech is dropped (0.25)")
    timeline.add_argument(
        "--min-silence-seconds", type=float, default=0.3, help="shorter pauses do not end a segment (0.3)"
    )
    timeline.add_argument(
        "--max-segment-seconds",
        type=float,
        default=10.0,
        help="longer speech is cut at its longest pause, for finer steps in time (10)",
    )


def predict_command(args: argparse.Namespace) -> int:
    """Classify files and folders through pipeline("audio-classification"), windowing long recordings; one JSON line
    per file on stdout, or every window and file in --output (CSV or JSON, written as results come and renamed into
    place at the end). A file that cannot be classified gets its row with an `error`, and the exit status is 1."""
    # Paths first, at once: the deploy stage's classifying imports torch and transformers, and ser_hf.models (which
    # registers the model types). A model folder that is not there is named from its name alone.
    check_local_model_path(args.model)
    inputs = audio_inputs(args.files) if args.files else None  # each file with its path in the folder named
    if args.output is not None and Path(args.output).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output {args.output}: write .csv or .json.")
    if args.output is not None:
        check_output_file("--output", args.output, args.overwrite, is_prediction_file)
    if args.timeline:
        return timeline_command(args, list(inputs or ()))
    if args.timeline_plot is not None or args.rttm is not None:
        raise ValueError("--timeline-plot and --rttm go with --timeline.")
    from ..deploy.predict import predict_files  # torch and transformers: once every argument is known to be usable

    if args.no_progress:  # transformers' own bars too (loading the weights)
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

    def print_json_line(prediction) -> None:
        print(json.dumps(prediction.to_dict(args.top_k)), flush=True)

    summary = predict_files(
        args.model,
        list(inputs) if inputs else None,
        speakers_csv=args.speakers,
        speaker_from=args.speaker_from,
        searched_paths=inputs,
        output=args.output,
        top_k=args.top_k,
        window_seconds=args.window_seconds,
        hop_seconds=args.hop_seconds,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        on_prediction=print_json_line if args.output is None else None,
        speaker_statistics_check=args.speaker_statistics_check,
    )
    if summary.output is not None:
        failed = f", {len(summary.failed)} failed" if summary.failed else ""
        print(f"{summary.files} file(s), {summary.windows} window(s){failed}: {summary.output}")
    if summary.failed:
        more = f"\n  ... and {len(summary.failed) - 10} more" if len(summary.failed) > 10 else ""
        print(
            f"ser-hf: {len(summary.failed)} of {summary.files} file(s) could not be classified (see their error):\n  "
            + "\n  ".join(summary.failed[:10])
            + more,
            file=sys.stderr,
        )
    return 1 if summary.failed else 0


def timeline_command(args: argparse.Namespace, files: list[str]) -> int:
    """``--timeline``: one :class:`ser_hf.deploy.timeline.Timeline` per recording (:func:`~ser_hf.deploy.timeline.
    timeline_files`, which checks its options) of each of `files` (those found in the files and folders named), printed
    as JSON lines or written to --output, each drawn to --timeline-plot."""
    from ..deploy.timeline import timeline_files

    if args.speakers is not None or args.speaker_from is not None:
        raise ValueError("--timeline takes its speakers from --rttm, not --speakers or --speaker-from.")

    def print_json_line(timeline) -> None:
        print(json.dumps(timeline.to_dict()), flush=True)

    summary = timeline_files(
        args.model,
        files,
        rttm=args.rttm,
        smoothing=args.smoothing,
        context_seconds=args.segment_context_seconds,
        window_seconds=args.window_seconds,
        hop_seconds=args.hop_seconds,
        batch_size=args.batch_size,
        output=args.output,
        plot=args.timeline_plot,
        check_plot=lambda path: check_output_file("--timeline-plot", path, args.overwrite, is_timeline_plot),
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        on_timeline=print_json_line if args.output is None else None,
        threshold=args.vad_threshold,
        min_speech_seconds=args.min_speech_seconds,
        min_silence_seconds=args.min_silence_seconds,
        max_segment_seconds=args.max_segment_seconds,
    )
    if summary.output is not None:
        print(f"{summary.files} file(s), {summary.segments} speech segment(s): {summary.output}")
    if summary.plots:
        print(f"timeline plot(s): {', '.join(str(path) for path in summary.plots)}")
    return 0


__all__ = ["add_predict_parser", "predict_command", "timeline_command"]
