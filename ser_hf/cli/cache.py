"""``ser-hf cache list`` and ``ser-hf cache delete``: what ser-hf keeps in ``$HF_DATASETS_CACHE/ser_hf`` (decoded
audio, encoder states, map caches), and deleting it by age or all of it. A thin shell over
:mod:`ser_hf.inputs.cache_folder`, imported when the command runs."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .commands import COMMANDS
from .number_arguments import non_negative_days


def add_cache_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf cache`` on the ``ser-hf`` sub-command parsers."""
    parser = commands.add_parser(
        "cache",
        help=COMMANDS["cache"].help,
        description="List or delete what ser-hf keeps in its cache folder, $HF_DATASETS_CACHE/ser_hf: the decoded "
        "audio (one copy of each clip, shared by every dataset that holds it), the encoder states of FAST mode, the "
        "feature-encoder outputs, their clip indices, and the map caches datasets writes beside them. Only files "
        "ser-hf wrote are ever deleted: another file there is listed as 'other' and kept, and so are lock files. A "
        "cache deleted is computed again when a run needs it.",
    )
    actions = parser.add_subparsers(dest="cache_action", required=True, metavar="{list,delete}")
    listing = actions.add_parser(
        "list",
        aliases=["scan"],
        help="list the cache files: kind, size, clips, last use, where the clips come from",
        description="List ser-hf's cache files, the least recently used first: kind, size, clips (rows), last use "
        "(the latest access or modification time), the folder the decoded clips come from; then the total by kind.",
    )
    listing.set_defaults(run=list_command)
    delete = actions.add_parser(
        "delete",
        help="delete cache files unused for some days (--older-than DAYS), or all of them (--all)",
        description="Delete ser-hf's cache files unused for more than --older-than DAYS days (by their last access "
        "or modification time), or every one of them with --all. Lists what it deletes first and asks to confirm; "
        "--yes deletes without asking. Without --yes and without a terminal to ask on, nothing is deleted (a dry "
        "run). Never deletes a file ser-hf did not write, nor a lock file.",
    )
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--older-than",
        type=non_negative_days,
        metavar="DAYS",
        help="delete the caches unused for more than DAYS days (0 or more)",
    )
    which.add_argument("--all", action="store_true", help="delete every cache file ser-hf wrote")
    delete.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    delete.set_defaults(run=delete_command)
    for sub in (listing, delete):
        sub.add_argument(
            "--cache-dir",
            default=None,
            help="the cache folder (default: $HF_DATASETS_CACHE/ser_hf, where ser-hf writes its caches)",
        )
    listing.add_argument("--json", action="store_true", help="print the entries as JSON")
    return parser


def list_command(args: argparse.Namespace) -> int:
    from ..data.cache_dir import ser_hf_cache_dir
    from ..inputs.cache_folder import scan_cache

    folder = args.cache_dir or ser_hf_cache_dir()
    entries = scan_cache(folder)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], indent=1))
        return 0
    print(_table(entries, f"ser-hf cache folder {folder}"))
    return 0


def delete_command(args: argparse.Namespace) -> int:
    from ..data.cache_dir import ser_hf_cache_dir
    from ..inputs.cache_folder import delete_entries, entries_to_delete, human_size, scan_cache

    folder = args.cache_dir or ser_hf_cache_dir()
    chosen = entries_to_delete(scan_cache(folder), older_than_days=None if args.all else args.older_than)
    size = sum(entry.size for entry in chosen)
    what = "every cache" if args.all else f"the caches unused for more than {args.older_than:g} days"
    if not chosen:
        print(f"Nothing to delete in {folder} ({what}).")
        return 0
    print(_table(chosen, f"To delete from {folder}: {what}"))
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"Dry run: {len(chosen)} cache(s), {human_size(size)}, not deleted; pass --yes to delete them.")
            return 0
        answer = input(f"Delete {len(chosen)} cache(s), {human_size(size)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 0
    freed = delete_entries(chosen)
    print(f"Deleted {len(chosen)} cache(s), {human_size(freed)} freed.")
    return 0


def _table(entries, title: str) -> str:
    from ..inputs.cache_folder import human_size

    now = time.time()
    rows = [("KIND", "SIZE", "CLIPS", "LAST USE", "FILE", "CLIPS FROM")]
    for entry in entries:
        last_use = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
        rows.append(
            (
                entry.kind,
                human_size(entry.size),
                "" if entry.clips is None else str(entry.clips),
                f"{last_use} ({entry.age_days(now):.0f} d)",
                entry.path.name,
                entry.source or "",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [title, ""] + ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    totals: dict[str, list[int]] = {}
    for entry in entries:
        totals.setdefault(entry.kind, [0, 0])
        totals[entry.kind][0] += 1
        totals[entry.kind][1] += entry.size
    lines.append("")
    lines += [f"{kind}: {count} file(s), {human_size(size)}" for kind, (count, size) in sorted(totals.items())]
    lines.append(f"total: {human_size(sum(entry.size for entry in entries))}")
    return "\n".join(lines)


__all__ = ["add_cache_parser", "delete_command", "list_command"]
