"""The folder a training run writes into: which of its entries ser-hf wrote, the lock that keeps one training in it
at a time, removing a previous run without touching anything else, and finding the checkpoint a run resumes from.

A user's files are never deleted: ``overwrite_output_dir`` removes only the entries a run writes (the names below),
a run refuses to start in a folder that already holds files no ser-hf run wrote, and never in a folder that is, or
contains, one of the recipe's data directories.
"""

from __future__ import annotations

import contextlib
import fnmatch
import getpass
import json
import logging
import os
import shutil
import socket
import time
import zipfile
from pathlib import Path
from typing import Iterator, Optional, Sequence

from filelock import FileLock, Timeout

from ..atomic_files import write_text_atomic
from ..recipe.errors import RecipeError

logger = logging.getLogger(__name__)

#: The run's configuration, written when a run starts and compared when it resumes.
RUN_CONFIG_FILE = "run_config.json"
#: The lock a training holds on its output folder, and who holds it (the lock file itself is emptied on each try).
LOCK_FILE = ".ser-hf.lock"
HOLDER_FILE = ".ser-hf.lock.json"

#: Files a run writes into its folder (and each ``fold-N`` folder): reports, plots, model, card, recipe, and the
#: model's remote-code files (``*.py``, copied by ``register_for_auto_class``; see :func:`_remote_code_files`).
RUN_OUTPUT_PATTERNS: tuple[str, ...] = (
    RUN_CONFIG_FILE,
    LOCK_FILE,
    HOLDER_FILE,
    "metrics.json",
    "report.md",
    "summary.json",
    "summary.md",
    "training_curves.png",
    "confusion_matrix_*.png",
    "README.md",
    "recipe.yaml",
    "config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "preprocessor_config.json",
    "training_args.bin",
    ".*.partial",
)
#: Folders written whole by Trainer (``checkpoint-N``) or ser-hf's atomic writes (``.NAME.XXXX.partial``), which
#: overwriting removes whole.
WHOLE_FOLDER_PATTERNS: tuple[str, ...] = ("checkpoint-[0-9]*", ".*.partial")
#: Files of ``ser-hf evaluate`` reports (``reports/CORPUS-SPLIT/``) and of Trainer's logs (``runs/DATE/``).
REPORT_PATTERNS: tuple[str, ...] = (
    "eval_report.json",
    "eval_report.md",
    "confusion_matrix.png",
    "cross_corpus.json",
    "cross_corpus.md",
    "cross_corpus_ua.png",
    ".*.partial",
)
LOG_PATTERNS: tuple[str, ...] = ("events.out.tfevents.*",)

#: What is ser-hf's in a folder of each kind: (its file patterns, its subfolders by pattern and their kind).
_FOLDER_KINDS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "run": (RUN_OUTPUT_PATTERNS, {"fold-*": "run", "reports": "reports", "runs": "logs"}),
    "reports": (REPORT_PATTERNS, {"*": "reports"}),
    "logs": (LOG_PATTERNS, {"*": "logs"}),
}


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _remote_code_files() -> set[str]:
    """The model modules ``register_for_auto_class`` copies next to a saved model."""
    models = Path(__file__).parents[1] / "models"
    return {path.name for path in models.glob("*.py") if path.name != "__init__.py"}


def is_run_output(name: str) -> bool:
    """Whether an entry of a run folder (by name) is one that a ser-hf run writes."""
    subfolders = _FOLDER_KINDS["run"][1]
    return (
        _matches(name, RUN_OUTPUT_PATTERNS)
        or _matches(name, WHOLE_FOLDER_PATTERNS)
        or _matches(name, subfolders)
        or name in _remote_code_files()
    )


def is_run_folder(folder: Path) -> bool:
    """A folder a ser-hf training wrote: its ``run_config.json``, or the ``fold-N/run_config.json`` of a k-fold run."""
    return (folder / RUN_CONFIG_FILE).is_file() or any(folder.glob(f"fold-*/{RUN_CONFIG_FILE}"))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def check_output_dir(output_dir: str | os.PathLike, data_dirs: Sequence[str | os.PathLike] = ()) -> None:
    """Refuse an ``output_dir`` that is (or contains) one of the recipe's data directories, or that already holds
    files no ser-hf run wrote (a run would mix its outputs with them, and ``overwrite_output_dir`` would be asked
    to remove them). An empty or missing folder, and a previous run's folder, are fine."""
    folder = Path(output_dir).expanduser().resolve()
    for data_dir in data_dirs:
        data = Path(data_dir).expanduser().resolve()
        if _within(data, folder):
            raise RecipeError(
                f"output_dir {str(output_dir)!r} {'is' if data == folder else 'contains'} the data "
                f"directory {str(data_dir)!r}: a run writes its outputs there. Choose another "
                "output_dir (outputs/NAME, say)."
            )
    if not folder.is_dir() or is_run_folder(folder):
        return
    foreign = sorted(
        entry.name + ("/" if entry.is_dir() else "") for entry in folder.iterdir() if not is_run_output(entry.name)
    )
    if foreign:
        listing = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RecipeError(
            f"output_dir {str(output_dir)!r} already holds files that no ser-hf run wrote ({listing}). "
            "Choose a new or empty folder: ser-hf never writes among, or deletes, a user's files."
        )


def remove_run_outputs(folder: Path, kind: str = "run") -> list[str]:
    """Delete what a ser-hf run wrote in ``folder`` and keep everything else, returning the names kept: its own
    files (by name), checkpoints and staging folders whole, and inside ``fold-N``, ``reports`` and ``runs`` only
    their own files again (a folder left empty is removed). Links are removed, never followed."""
    patterns, subfolders = _FOLDER_KINDS[kind]
    if kind == "run":
        patterns = (*patterns, *_remote_code_files())
    kept = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if entry.is_dir() and not entry.is_symlink():
            inner_kind = next((k for pattern, k in subfolders.items() if fnmatch.fnmatchcase(name, pattern)), None)
            if kind == "run" and _matches(name, WHOLE_FOLDER_PATTERNS):
                shutil.rmtree(entry)
            elif inner_kind is None:
                kept.append(f"{name}/")
            else:
                kept += [f"{name}/{inner}" for inner in remove_run_outputs(entry, inner_kind)]
                if not any(entry.iterdir()):
                    entry.rmdir()
        elif name in (LOCK_FILE, HOLDER_FILE):
            continue  # the lock of the run that is removing the outputs
        elif _matches(name, patterns):
            entry.unlink()
        else:
            kept.append(name)
    return kept


# --- The lock -----------------------------------------------------------------------------------------------------


class OutputDirInUseError(RecipeError):
    """Another training holds the output folder's lock."""


def _holder_description(folder: Path) -> str:
    try:
        holder = json.loads((folder / HOLDER_FILE).read_text())
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"]))
        return f"process {holder['pid']} of {holder['user']} on {holder['host']}, started {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def hold_output_dir(output_dir: str | os.PathLike, enabled: bool = True) -> Iterator[None]:
    """Hold ``output_dir``'s lock for the whole run, so that two trainings never write one folder: the second stops
    at once with :class:`OutputDirInUseError` naming the folder and the holder. `enabled` is false on the processes
    of a distributed run other than the main one (which alone writes the folder)."""
    if not enabled:
        yield
        return
    folder = Path(output_dir)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputDirInUseError(
            f"output_dir {str(output_dir)!r} is in use by another training ({_holder_description(folder)}). Wait "
            "for it to finish, or choose another output_dir."
        ) from None
    holder = folder / HOLDER_FILE
    try:
        write_text_atomic(
            holder,
            json.dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "user": getpass.getuser(), "started": time.time()}
            )
            + "\n",
        )
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()  # the lock file stays: removing it would let two processes lock different files...
        if created and [entry.name for entry in folder.iterdir()] == [LOCK_FILE]:
            # ...except in a folder this run created and left empty (it stopped on bad input): leave no trace.
            (folder / LOCK_FILE).unlink(missing_ok=True)
            folder.rmdir()


# --- Checkpoints --------------------------------------------------------------------------------------------------


def damaged_file(folder: Path) -> Optional[tuple[Path, str]]:
    """The first file of a saved model or checkpoint that cannot be read whole (a truncated ``*.safetensors``, or a
    ``*.pt``/``*.pth``/``*.bin`` zip archive without its central directory), with the reason; `None` if all read."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(path, framework="pt") as weights:
                for name in weights.keys():
                    weights.get_slice(name)
        except Exception as error:  # safetensors raises SafetensorError, OSError, or ValueError on a bad header
            return path, f"{type(error).__name__}: {error}"
    for path in sorted([*folder.glob("*.pt"), *folder.glob("*.pth"), *folder.glob("*.bin")]):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
        except (zipfile.BadZipFile, OSError) as error:
            return path, f"not a complete archive ({error})"
    return None


def last_complete_checkpoint(output_dir: Path) -> Optional[str]:
    """The newest ``checkpoint-N`` whose save finished (it has ``trainer_state.json``) and whose files read whole, or
    `None`; each one passed over is named in a warning with the reason."""
    checkpoints = sorted(
        (p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for checkpoint in checkpoints:
        if not (checkpoint / "trainer_state.json").is_file():
            logger.warning("Ignoring %s: its save did not finish (no trainer_state.json).", checkpoint)
            continue
        damage = damaged_file(checkpoint)
        if damage is not None:
            logger.warning(
                "Ignoring %s: %s is damaged (%s); resuming from the previous complete checkpoint.",
                checkpoint,
                damage[0],
                damage[1],
            )
            continue
        return str(checkpoint)
    return None


def check_model_files(folder: str | os.PathLike) -> None:
    """Raise ``OSError`` naming the file when a saved model's weights are damaged (truncated, say), instead of
    the loader's error that names no file."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    damage = damaged_file(folder)
    if damage is not None:
        raise OSError(
            f"{damage[0]} is damaged and cannot be loaded ({damage[1]}). Export the model again, or use "
            "another of the run's checkpoints."
        )


__all__ = [
    "HOLDER_FILE",
    "LOCK_FILE",
    "OutputDirInUseError",
    "REPORT_PATTERNS",
    "RUN_CONFIG_FILE",
    "RUN_OUTPUT_PATTERNS",
    "WHOLE_FOLDER_PATTERNS",
    "check_model_files",
    "check_output_dir",
    "damaged_file",
    "hold_output_dir",
    "is_run_folder",
    "is_run_output",
    "last_complete_checkpoint",
    "remove_run_outputs",
]
