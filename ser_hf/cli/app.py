"""``ser-hf app MODEL``: a web app (Gradio) to upload or record speech and see the model's emotion scores, and a long
recording's emotion over time. The parser imports nothing heavy; Gradio and the model are loaded when it runs."""

from __future__ import annotations

import argparse

# ser_hf.deploy.app imports Gradio and the model's libraries only when it builds the app.
from ..deploy.app import MAX_RECORDING_MINUTES, MAX_UPLOAD_MB, TIMELINE_SECONDS
from .commands import COMMANDS
from .corpus_arguments import positive_int
from .number_arguments import non_negative_seconds, port_number


def add_app_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf app`` on the ``ser-hf`` sub-command parsers."""
    app = commands.add_parser(
        "app",
        help=COMMANDS["app"].help,
        description="Serve a web app (Gradio) for a trained model: upload or record speech and see each emotion's "
        "score; recordings longer than --timeline-seconds also get their emotion over time (a plot and a table of "
        "speech segments). It serves on this machine only unless --host or --share say otherwise. Uploads over "
        "--max-upload-mb and recordings over --max-recording-minutes are refused (logged in one line), and the "
        "recordings it receives are deleted an hour later and when it stops. The same app runs as a Hugging Face "
        "Space: see docs/space.md.",
    )
    app.add_argument("model", help="folder or Hub id of a trained model (anything ser-hf predict takes)")
    app.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    app.add_argument(
        "--port", type=port_number, default=None, help="port to serve on (default: Gradio's, 7860 or the next free)"
    )
    app.add_argument(
        "--share", action="store_true", help="also open a public link through Gradio's share servers (72 hours)"
    )
    app.add_argument(
        "--timeline-seconds",
        type=non_negative_seconds,
        default=TIMELINE_SECONDS,
        help="recordings longer than this also get their emotion over time (inf: never)",
    )
    app.add_argument(
        "--max-upload-mb",
        type=float,
        default=MAX_UPLOAD_MB,
        help=f"refuse uploads larger than this many MB, before they are stored (default: {MAX_UPLOAD_MB:g})",
    )
    app.add_argument(
        "--max-recording-minutes",
        type=float,
        default=MAX_RECORDING_MINUTES,
        help=f"refuse recordings longer than this, before they are decoded (default: {MAX_RECORDING_MINUTES:g}; "
        "ser-hf predict takes any length)",
    )
    app.add_argument("--revision", help="branch, tag or commit of a Hub model")
    app.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model code stored with a Hub model (not needed for ser-hf models)",
    )
    label = app.add_argument_group(
        "labelling page",
        "--label FOLDER adds a first tab where you label the clips ser-hf suggest chose among FOLDER's recordings "
        "(a button and a key per emotion, every answer saved in the sheet at once) and adapt the model on them; the "
        "adapted model is then served in the Try tab beside the original.",
    )
    label.add_argument("--label", metavar="FOLDER", help="your unlabelled recordings: adds the labelling page")
    label.add_argument(
        "--sheet",
        metavar="SHEET.csv",
        help="the labelling sheet (default: FOLDER.labels.csv beside FOLDER); written by ser-hf suggest first if it "
        "does not exist",
    )
    label.add_argument(
        "--speaker-regex",
        metavar="PATTERN",
        help="read each recording's speaker from its path (as ser-hf suggest and adapt do), when the sheet is written",
    )
    label.add_argument(
        "--per-emotion",
        type=positive_int,
        default=5,
        metavar="N",
        help="clips suggested per emotion, when the sheet is written (default 5)",
    )
    label.add_argument(
        "--adapted-dir",
        metavar="DIR",
        help="where the adapted models go (default: SHEET.adapted beside the sheet)",
    )
    app.set_defaults(run=app_command)
    return app


def app_command(args: argparse.Namespace) -> int:
    """Load the model and serve its web app until interrupted."""
    from ..deploy.app import build_app, launch_options, require_gradio

    try:
        require_gradio()
    except ImportError as error:
        raise ValueError(str(error)) from None  # an error of set-up: one line, as the other commands report
    limits = {"--max-upload-mb": args.max_upload_mb, "--max-recording-minutes": args.max_recording_minutes}
    for flag, value in limits.items():
        if not value > 0:  # NaN included
            raise ValueError(f"{flag} must be positive, got {value}.")
    options = {
        "revision": args.revision,
        "trust_remote_code": args.trust_remote_code,
        "timeline_seconds": args.timeline_seconds,
        "max_recording_minutes": args.max_recording_minutes,
    }
    if args.label is None:
        app = build_app(args.model, **options)
    else:
        from pathlib import Path

        from .labelling_page import build_labelling_app

        folder = Path(args.label).expanduser()
        sheet = args.sheet or folder.resolve().with_name(f"{folder.resolve().name}.labels.csv")
        app = build_labelling_app(
            args.model,
            folder,
            sheet,
            output_dir=args.adapted_dir,
            speaker_regex=args.speaker_regex,
            per_emotion=args.per_emotion,
            **options,
        )
    # Gradio's own start-up lines are quieted: its hint names launch(share=True), where the flag here is --share.
    try:
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            quiet=True,
            prevent_thread_lock=True,
            **launch_options(args.max_upload_mb),
        )
    except OSError as error:
        if "port" not in str(error).lower():
            raise
        # Gradio's message names its environment variable and launch()'s argument; here the choice is --port.
        if args.port is not None:
            busy = f"port {args.port} is in use (or cannot be opened there): pass another --port"
        else:
            busy = "every port Gradio tries by default (from 7860) is in use: pass a free one with --port"
        raise OSError(f"Cannot serve on {args.host}: {busy}, or stop what holds it.") from None
    where = f" and at {app.share_url} (public, for 72 hours)" if getattr(app, "share_url", None) else ""
    hint = "" if where else " (--share adds a public link)"
    local = getattr(app, "local_url", None) or f"http://{args.host}:{args.port or 7860}/"
    print(f"ser-hf app: {args.model} served at {local}{where}{hint}; Ctrl-C stops it.", flush=True)
    app.block_thread()
    return 0


__all__ = ["add_app_parser", "app_command"]
