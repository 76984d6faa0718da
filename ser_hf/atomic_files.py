"""Outputs written whole or not at all: each file goes to a temporary name in its folder, then is renamed over the
final name (``os.replace`` is atomic on POSIX and Windows). A run killed while writing leaves the previous version or
nothing, never half a report that a resumed run would take for a finished one.

Where an output may go is decided here too, once: :func:`output_relation` says whether an output path is, lies inside
or holds a folder a call reads (its audio, a model), and :func:`refuse_output_among` refuses it, naming the
parameters. Every guard of an output path (a run's ``output_dir``, ``ser-hf adapt``, ``suggest``, the labelling page,
the command line's ``--output`` checks in :mod:`ser_hf.cli.output_paths`) asks :func:`output_relation`."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Optional

from .errors import InputError


def _file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the umask, read once (setting the umask to read it
    is process-wide, so it is not done while other threads may be creating files)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def give_plain_mode(path: str | os.PathLike) -> None:
    """Give a file the mode a plain ``open(path, "w")`` would (0644 under the usual umask): writers that go through a
    temporary file, such as ``safetensors`` (and :func:`tempfile.mkstemp`), leave it readable by its owner only."""
    os.chmod(path, _FILE_MODE)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the block has written it without raising, rename it to `path`.

    Example:

    ```python
    >>> with atomic_path(output_dir / "confusion_matrix.png") as partial:
    ...     figure.savefig(partial, format="png")
    ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _naming(path, path.parent):
        handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    partial = Path(partial)
    try:
        with _naming(path, partial):
            yield partial
            give_plain_mode(partial)  # mkstemp creates the file readable by its owner only
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _naming(path: Path, temporary: Path) -> Iterator[None]:
    """An `OSError` about ``temporary`` (the temporary name, or the folder it is made in) raised again naming
    ``path``, the name the caller asked for: a user never sees the ``.partial`` name, which is gone once it fails."""
    try:
        yield
    except OSError as error:
        if str(temporary) not in (str(error.filename), str(error.filename2)):
            raise
        raise type(error)(error.errno, error.strerror, str(path)) from None


def save_figure(figure, path: str | os.PathLike) -> None:
    """Lay out a matplotlib `figure`, write it to `path` as a PNG atomically, and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=120, format="png")
    plt.close(figure)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; once the block has filled it without raising, move each of its files
    into `path` with an atomic rename (files already in `path` under other names are left alone), the small JSON
    files that describe the rest (``config.json``, ``dataset_dict.json``, ``state.json``, ...) last, so that they
    never point to data that is not there yet. Every file gets the mode a plain write would (``save_pretrained``
    writes ``model.safetensors`` readable by its owner only).

    For writers that take a folder (``save_pretrained``, ``save_to_disk``): every file of the result is complete,
    and a failure leaves `path` as it was.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with _naming(path, path.parent):
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield staging
        for source in sorted(staging.rglob("*"), key=lambda item: (item.suffix == ".json", str(item))):
            target = path / source.relative_to(staging)
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                give_plain_mode(source)
                with _naming(target, source):
                    os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def output_relation(output: str | os.PathLike, folder: str | os.PathLike) -> Optional[str]:
    """How the output path ``output`` stands to ``folder`` (both resolved: ``~`` expanded, links followed): ``"is"``,
    ``"is inside"``, ``"contains"``, or `None` where they are apart."""
    written, read = Path(output).expanduser().resolve(), Path(folder).expanduser().resolve()
    if written == read:
        return "is"
    if written.is_relative_to(read):
        return "is inside"
    return "contains" if read.is_relative_to(written) else None


def refuse_output_among(
    output: str | os.PathLike, inputs: Mapping[str, Optional[str | os.PathLike]], parameter: str = "output_dir"
) -> None:
    """Refuse the output ``output`` (the parameter ``parameter``) that is, lies inside or holds one of ``inputs``
    (parameter -> folder a call reads; `None` for one not given): ser-hf never writes its outputs among the files it
    reads (a user's audio, a model). An :class:`~ser_hf.errors.InputError` names both parameters."""
    for name, folder in inputs.items():
        relation = None if folder is None else output_relation(output, folder)
        if relation is not None:
            itself = " itself" if relation == "is" else ""
            raise InputError(
                f"{parameter} {output} {relation} {name} {folder}{itself}: ser-hf never writes its outputs among the "
                f"files it reads (audio, a model); choose another {parameter}.",
                parameter=parameter,
                mentions=(name,),
            )


__all__ = [
    "atomic_directory",
    "atomic_path",
    "give_plain_mode",
    "output_relation",
    "refuse_output_among",
    "save_figure",
    "write_text_atomic",
]
