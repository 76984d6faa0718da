"""``ser-hf push RUN_DIR --repo-id NAMESPACE/NAME``: a finished run's folder to the Hub, with its model card. The
parser imports nothing heavy; the Hub card and client are imported when the command runs."""

from __future__ import annotations

import argparse

from .commands import COMMANDS


def add_push_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf push`` on the ``ser-hf`` sub-command parsers."""
    push = commands.add_parser("push", help=COMMANDS["push"].help)
    push.add_argument("run_dir", help="the run's output folder")
    push.add_argument("--repo-id", required=True, help="namespace/name of the repository (created when missing)")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--revision", help="branch to push to (created from main when missing)")
    push.add_argument("--commit-message", help="message of the commit")
    push.add_argument("--license", help="licence id for the card (default: the training corpora's)")
    push.add_argument("--no-card", action="store_true", help="keep the folder's README.md as it is")
    push.set_defaults(run=push_command)
    return push


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


__all__ = ["add_push_parser", "push_command"]
