"""Where a command may write the file or folder its user names (``predict --output``, ``predict --timeline-plot``,
``data split --output``, the result file of ``kfold``, ``loco`` and ``learning-curve``, ``evaluate --output-dir``),
checked before any work: never into a model folder (``--output MODEL/config.json`` would leave a model that no longer
loads) or a corpus folder, never over a file or among files that ser-hf did not write unless ``--overwrite`` is given,
never through a link (a file is written whole under a temporary name and renamed, which would replace the link, not
write where it points), and only where the folder can be written. Run folders have their own check
(:func:`ser_hf.run_folder.check_output_dir`), ``ser-hf export`` and ``ser-hf ensemble`` theirs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from ..atomic_files import output_relation

#: Files that make a folder a model folder (a run, a fold, an export, a Hub snapshot): ser-hf writes nothing there.
MODEL_FILES = ("config.json", "model.safetensors")
#: What ``ser-hf data split`` writes at the top of its ``--output`` (beside one folder per split, or per fold).
SPLIT_FILES = ("dataset_dict.json", "audit.json", "audit.md", "summary.json")
#: The folders of a k-fold ``data split``, one per fold.
FOLD_FOLDER = re.compile(r"fold_\d+")
#: How the first bytes of a ``predict --output`` file (predictions, or a ``--timeline``) begin: a CSV header starting
#: ``file,``, or a JSON list of records whose first key is ``file``.
PREDICTION_HEAD = re.compile(rb'\A(?:\xef\xbb\xbf)?(?:file,[^\n]*\blabel\b|\s*\[\s*(?:\]|\{\s*"file"\s*:))')
#: ``--timeline-plot`` draws with matplotlib, which names itself in the PNG's ``Software`` text chunk.
MATPLOTLIB_PNG = b"Software\x00Matplotlib"
#: Bytes read to recognise one of ser-hf's files.
HEAD_BYTES = 4096
#: How a protocol's result file (:class:`ser_hf.experiments.results.ResultFile`) begins: its experiment's name first.
RESULT_HEAD = re.compile(rb'\A\s*\{\s*"experiment"\s*:\s*"(?P<experiment>[^"]*)"')


def model_file_in(folder: Path) -> Optional[str]:
    """The first of :data:`MODEL_FILES` that ``folder`` holds, or None."""
    return next((name for name in MODEL_FILES if (folder / name).is_file()), None)


def holds_audio(folder: Path) -> bool:
    """Whether ``folder`` itself holds audio files (a corpus, or a folder of recordings)."""
    from ..data.constants import AUDIO_EXTENSIONS

    suffixes = {suffix.lower() for suffix in AUDIO_EXTENSIONS}
    try:
        return any(entry.is_file() and Path(entry.name).suffix.lower() in suffixes for entry in os.scandir(folder))
    except OSError:
        return False


def check_not_model_or_corpus(
    flag: str, value: str | os.PathLike, folder: Path, data_dirs: Sequence[str | os.PathLike] = ()
) -> None:
    """Refuse to write into ``folder`` when it is a model folder, holds audio, or is, contains or lies inside one of
    ``data_dirs`` (the command's corpora). ``--overwrite`` does not lift this."""
    resolved = folder.expanduser().resolve()
    for data_dir in data_dirs:
        relation = output_relation(resolved, data_dir)
        if relation is not None:
            raise ValueError(
                f"{flag} {value}: {folder} {relation} the data directory {data_dir}; ser-hf never writes into a "
                "corpus. Choose a folder outside it."
            )
    if not resolved.is_dir():
        return
    model_file = model_file_in(resolved)
    if model_file is not None:
        raise ValueError(
            f"{flag} {value}: {folder} is a model folder (it holds {model_file}); ser-hf never writes among a "
            "model's files, even with --overwrite. Choose another folder."
        )
    if holds_audio(resolved):
        raise ValueError(
            f"{flag} {value}: {folder} holds audio files (a corpus or a folder of recordings); ser-hf never writes "
            "among them, even with --overwrite. Choose another folder."
        )


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError:
        return b""


def is_prediction_file(path: Path) -> bool:
    """Whether ``path`` is a ``ser-hf predict --output`` file (predictions or a timeline, CSV or JSON)."""
    return PREDICTION_HEAD.match(_head(path)) is not None


def is_timeline_plot(path: Path) -> bool:
    """Whether ``path`` is a PNG that matplotlib drew (as ``--timeline-plot`` does)."""
    head = _head(path)
    return head.startswith(b"\x89PNG") and MATPLOTLIB_PNG in head


def _link_target(path: Path) -> str:
    """Where the link ``path`` points, as the file system resolves it (the link's own text where it cannot)."""
    try:
        return str(path.resolve(strict=True))
    except (OSError, RuntimeError):
        return os.readlink(path)


def check_writable_folder(flag: str, value: str | os.PathLike, folder: Path) -> None:
    """Refuse, naming ``value`` as the user gave it, a ``folder`` to write in that cannot be made (a file stands in
    its path) or written (permissions, a read-only file system): said before the work, not when its result is due."""
    existing = folder.expanduser().absolute()
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {value} cannot be written: {existing} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"{flag} {value} cannot be written: {existing} is not writable (permissions, or a read-only file "
            "system); choose a folder you can write to."
        )


def check_output_file(
    flag: str,
    path: str | os.PathLike,
    overwrite: bool,
    written_by_ser_hf: Callable[[Path], bool],
    data_dirs: Sequence[str | os.PathLike] = (),
    replaced: str = "give --overwrite to replace it, or another name",
) -> None:
    """Refuse an output file named by ``flag`` (before any work) that is a folder or a link (to a folder, a file or
    a device: the link is named with where it points), lies in a model or corpus folder or in a folder that cannot be
    written, or would replace an existing file that ``written_by_ser_hf`` does not recognise, unless ``overwrite``.

    Args:
        written_by_ser_hf (`Callable[[Path], bool]`): whether an existing file at ``path`` is one this command
            wrote earlier (:func:`is_prediction_file`, :func:`is_timeline_plot`), which it replaces freely.
        replaced (`str`): what to do about a file it does not recognise, in the command's own flags (a command
            without ``--overwrite`` says what it takes instead).
    """
    path = Path(path)
    if path.is_symlink():
        target = _link_target(path)
        kind = next(
            word
            for word, test in (
                ("nothing", lambda: not path.exists()),
                ("a folder", path.is_dir),
                ("a file", path.is_file),
                ("a device or other special file", lambda: True),
            )
            if test()
        )
        raise ValueError(
            f"{flag} {path} is a link to {target} ({kind}): ser-hf writes a file whole under a temporary name and "
            "renames it, which would replace the link instead of writing there. Name a file (the link's target "
            "itself, to write there)."
        )
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder: name a file to write.")
    check_not_model_or_corpus(flag, path, path.parent, data_dirs)
    check_writable_folder(flag, path, path.parent)
    if path.exists() and not overwrite and not written_by_ser_hf(path):
        raise ValueError(f"{flag} {path} already exists and is not a file ser-hf wrote: {replaced}.")


def is_result_file(path: Path, experiment: str) -> bool:
    """Whether ``path`` is the result file of ``experiment`` (``kfold``, ``loco``, ``learning-curve``)."""
    match = RESULT_HEAD.match(_head(path))
    return match is not None and match["experiment"].decode() == experiment


def check_result_file(flag: str, path: str | os.PathLike, experiment: str) -> None:
    """Refuse a protocol's result file (``--output`` of ``ser-hf kfold``, ``loco``, ``learning-curve``) before any
    work, as :func:`check_output_file` does: a folder, a link, a folder that cannot be written, or an existing file
    that is not a result file of ``experiment`` (one that is, is read back to resume the run)."""
    check_output_file(
        flag,
        path,
        overwrite=False,
        written_by_ser_hf=lambda existing: is_result_file(existing, experiment),
        replaced=f"a {experiment} result file is read back to resume its run, any other file is never replaced; "
        "give another name",
    )


def foreign_split_entries(folder: Path) -> list[str]:
    """The entries of ``folder`` that ``ser-hf data split`` does not write: its files, the splits it saves (folders
    holding ``state.json`` or ``dataset_dict.json``), ``fold_N`` folders, and its interrupted staging folders."""
    foreign = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if entry.is_dir() and not entry.is_symlink():
            saved = (entry / "state.json").is_file() or (entry / "dataset_dict.json").is_file()
            if saved or FOLD_FOLDER.fullmatch(name) or (name.startswith(".") and name.endswith(".partial")):
                continue
            foreign.append(f"{name}/")
        elif name not in SPLIT_FILES:
            foreign.append(name)
    return foreign


def check_output_folder(
    flag: str,
    path: str | os.PathLike,
    overwrite: bool,
    data_dirs: Sequence[str | os.PathLike] = (),
    foreign_entries: Callable[[Path], Iterable[str]] = foreign_split_entries,
) -> None:
    """Refuse an output folder named by ``flag`` (before any work) that is a file, a model or corpus folder (or
    inside, or around, one of ``data_dirs``), or that holds entries ``foreign_entries`` lists (files ser-hf did not
    write), unless ``overwrite``: then the command writes its own files among them and leaves the others alone."""
    path = Path(path)
    if path.is_symlink() and not path.is_dir():
        target = _link_target(path)
        raise ValueError(
            f"{flag} {path} is a link to {target}, {'which does not exist' if not path.exists() else 'not a folder'}: "
            "choose a folder to write into."
        )
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a folder: choose a folder to write into.")
    check_not_model_or_corpus(flag, path, path, data_dirs)
    check_writable_folder(flag, path, path)
    if not path.is_dir() or overwrite:
        return
    foreign = list(foreign_entries(path))
    if foreign:
        listing = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ValueError(
            f"{flag} {path} already holds files that ser-hf did not write ({listing}): choose a new or empty "
            "folder, or give --overwrite to write among them (files of the same names are replaced)."
        )


__all__ = [
    "MODEL_FILES",
    "SPLIT_FILES",
    "check_not_model_or_corpus",
    "check_output_file",
    "check_output_folder",
    "check_result_file",
    "check_writable_folder",
    "foreign_split_entries",
    "holds_audio",
    "is_prediction_file",
    "is_result_file",
    "is_timeline_plot",
    "model_file_in",
]
