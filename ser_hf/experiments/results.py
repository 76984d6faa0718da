"""The result file of a protocol experiment (``ser-hf learning-curve``): one JSON document, written atomically after
every finished cell, read back to skip those cells when the run starts again, with what every result under
docs/results records first: the command, the date, the commit and the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..atomic_files import write_text_atomic
from ..errors import RecipeError


def machine_description(device: Optional[str] = None) -> str:
    """Cores, CPU model, GPU (where `device` is a CUDA one; by default wherever torch sees one), library versions,
    date and the load average (other work on a shared machine)."""
    import torch
    import transformers

    where = f"{os.cpu_count()} cores ({_cpu_model()})"
    if (device is None or str(device).startswith("cuda")) and torch.cuda.is_available():
        where += f", GPU {torch.cuda.get_device_name()}"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    return (
        f"{platform.node()}: {where}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}, {time.strftime('%Y-%m-%d %H:%M')}, load average {load}"
    )


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, where ``platform.processor()`` is empty), without trademark
    signs (``Intel Xeon Processor``)."""
    import re

    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine() or "unknown CPU"
    return re.sub(r"\s*\((?:R|TM)\)", "", name)


def source_commit() -> str:
    """The commit of the ser-hf checkout that runs (``git rev-parse HEAD`` beside the package), "unknown" outside
    one (an installed wheel)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def run_fields(command: Optional[str] = None, device: Optional[str] = None) -> dict[str, str]:
    """``command`` (unless given, the command line this process started with, as it can be typed again:
    ``python -m bench.inference --quick``), ``date``, ``commit`` and ``machine`` (:func:`machine_description` of
    `device`)."""
    import shlex

    return {
        "command": shlex.join(["python", *sys.orig_argv[1:]]) if command is None else command,
        "date": time.strftime("%Y-%m-%d"),
        "commit": source_commit(),
        "machine": machine_description(device),
    }


def file_fingerprint(paths) -> str:
    """A digest of the files' bytes (and names): what a result measured, not where it lay."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        path = Path(path)
        digest.update(path.name.encode())
        if path.is_file():
            with open(path, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


#: The settings key of the clips an experiment measured (a :func:`~ser_hf.data.splits.rows_fingerprint` record: their
#: number, their number per speaker, and each clip's label, speaker and a digest of its bytes, by name).
CLIPS_SETTING = "clips"


def first_difference(key: str, written: Any, value: Any) -> tuple[str, Any, Any]:
    """Where two settings differ, down to the first differing entry of mappings (``recipe_values.labels``)."""
    if isinstance(written, dict) and isinstance(value, dict):
        for name in sorted(set(written) | set(value), key=str):
            if written.get(name) != value.get(name):
                return first_difference(f"{key}.{name}", written.get(name), value.get(name))
    return key, written, value


def read_result_file(
    path: str | os.PathLike, experiment: str, remedy: str = "give another file", parameter: Optional[str] = None
) -> dict[str, Any]:
    """The result file of `experiment` (``loco``, ``kfold``, ``learning-curve``) at `path`, refused in one line naming
    the file and what is wrong (ending with `remedy`, which may name the caller's `parameter`) where it cannot be read
    or is not such a file."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RecipeError(f"{path}: cannot be read back as a result file ({error}).") from None
    where = f"{path}: not a {experiment} result file"
    if not isinstance(document, dict):
        raise RecipeError(f"{where} (a JSON {type(document).__name__}, not an object); {remedy}.", parameter=parameter)
    if not isinstance(document.get("settings"), dict) or not isinstance(document.get("cells", []), list):
        raise RecipeError(f"{where} (no settings object or no list of cells); {remedy}.", parameter=parameter)
    if any(not isinstance(cell, dict) or "key" not in cell for cell in document.get("cells", [])):
        raise RecipeError(f"{where} (a cell without its key); {remedy}.", parameter=parameter)
    if document.get("experiment") != experiment:
        raise RecipeError(
            f"{path} holds a {document.get('experiment')!r} result, not {experiment!r}: {remedy}.", parameter=parameter
        )
    return document


class ResultFile:
    """A protocol's result file: its settings (which a run started again must share), its finished cells, and a
    summary recomputed from them at every write.

    Args:
        path (`Path`): the JSON file.
        experiment (`str`): the protocol's name (``learning-curve``).
        settings (`Mapping`): what defines the experiment (model, corpus, speakers, arms, k, draws); a file written
            with other settings is refused, naming the first setting that differs, instead of mixing two experiments.
        summarize (`Callable`): the summary of a list of cells.
        command (`str`, *optional*): the command line recorded.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        experiment: str,
        settings: Mapping[str, Any],
        summarize: Callable[[list[dict]], Any],
        command: Optional[str] = None,
    ):
        self.path = Path(path)
        self.experiment = experiment
        from .. import __version__

        # What produced the cells is part of what they measured: another ser-hf version is another experiment.
        self.settings = json.loads(json.dumps({**settings, "ser_hf_version": __version__}, default=str))
        self.summarize = summarize
        self.fields = run_fields(command)
        self.cells: list[dict] = []
        if self.path.is_file():
            self._read_back()

    def _read_back(self) -> None:
        document = read_result_file(self.path, self.experiment, "give another output", "output")
        for key, value in self.settings.items():
            written = document["settings"].get(key)
            if key == CLIPS_SETTING:
                if written != value:
                    self._refuse_other_clips(written, value)
                continue
            if written != value:
                key, written, value = first_difference(key, written, value)
                raise RecipeError(
                    f"{self.path} was written with {key} = {written!r}, not {value!r}: give another output to run "
                    "other settings, the same settings to resume, or delete the file to start over.",
                    parameter="output",
                )
        self.cells = list(document.get("cells", []))

    def _refuse_other_clips(self, written: Any, value: Any) -> None:
        """Refuse the file, written on other clips than ``value`` (a :func:`~ser_hf.data.splits.rows_fingerprint`
        record, or one per member of an ensemble), naming up to five of the clips that changed."""
        from ..data.splits import changed_clips, name_changed_clips, records_contents

        remedy = "give another output to measure the corpora as they are, or delete the file to start over."
        single = records_contents(value)
        records = ({"": written}, {"": value}) if single else (written, value)
        if not isinstance(records[0], dict) or not all(records_contents(r) for r in records[0].values()):
            raise RecipeError(
                f"{self.path} was written by an earlier ser-hf, which did not record the clips' contents (a digest "
                f"of each clip's bytes), so it cannot vouch for the clips it measured: {remedy}",
                parameter="output",
            )
        changes = {}
        for member in sorted({*records[0], *records[1]}):
            before, now = records[0].get(member), records[1].get(member)
            prefix = f"{member}: " if member else ""
            for name, what in changed_clips(before or {"files": {}}, now or {"files": {}}).items():
                changes[prefix + name] = what
        if not changes:  # the same clips, recorded otherwise
            return
        listing = name_changed_clips(changes, since="since the result file was written")
        raise RecipeError(f"{self.path}: {listing}; {remedy}", parameter="output")

    def done(self, key: str) -> bool:
        """Whether the cell `key` is finished (a resumed run skips it)."""
        return any(cell["key"] == key for cell in self.cells)

    def add(self, cell: dict) -> None:
        """Record a finished cell and write the file."""
        self.cells.append(cell)
        self.write()

    def document(self) -> dict[str, Any]:
        # The settings last: they list every clip measured (one line each), which a reader of the figures skips.
        return {
            "experiment": self.experiment,
            **self.fields,
            "summary": self.summarize(self.cells),
            "cells": self.cells,
            "settings": self.settings,
        }

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self.document(), indent=2) + "\n")


__all__ = [
    "CLIPS_SETTING",
    "ResultFile",
    "file_fingerprint",
    "machine_description",
    "read_result_file",
    "run_fields",
    "source_commit",
]
