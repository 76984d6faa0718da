"""Writing predictions as they come, one file at a time, to a ``.csv`` or ``.json`` file that appears (or replaces
the previous one) only once complete: ``ser-hf predict --output``."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import textwrap
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..atomic_files import atomic_path
from ..errors import InputError
from .constants import OUTPUT_SUFFIXES
from .results import FilePrediction


class PredictionWriter:
    """Writes predictions one file at a time to a ``.csv`` or ``.json`` file, atomically: the output appears (or
    replaces the previous one) only when the writer closes without an error, so an interrupted run leaves no half
    file.

    CSV: columns ``file`` (and ``speaker`` with ``speaker_column``), ``window, start, end, label, score``, one per
    label, then ``error``. Each file has one ``all`` row (its aggregated scores, or its error with the other columns
    empty), preceded by one row per window when it was cut into several. JSON: a list of
    :meth:`FilePrediction.to_dict`.

    Example:

    ```python
    >>> with PredictionWriter("emotions.csv", model_labels(classifier)) as writer:
    ...     for prediction in classify_files(classifier, files):
    ...         writer.write(prediction)
    ```
    """

    def __init__(
        self, path: str | os.PathLike, labels: Sequence[str], top_k: Optional[int] = None, speaker_column: bool = False
    ):
        self.path = Path(path)
        if self.path.suffix.lower() not in OUTPUT_SUFFIXES:
            raise InputError(f"output {self.path}: write .csv or .json.", parameter="output")
        self.labels, self.top_k, self.speaker_column = list(labels), top_k, speaker_column
        self.files = self.windows = self.failed = 0
        self._stack: Optional[contextlib.ExitStack] = None

    @property
    def is_json(self) -> bool:
        return self.path.suffix.lower() == ".json"

    def __enter__(self) -> "PredictionWriter":
        with contextlib.ExitStack() as stack:
            partial = stack.enter_context(atomic_path(self.path))
            self._handle = stack.enter_context(open(partial, "w", newline="", encoding="utf-8"))
            if self.is_json:
                self._handle.write("[")
            else:
                self._csv = csv.writer(self._handle)
                speaker = ["speaker"] if self.speaker_column else []
                self._csv.writerow(
                    ["file", *speaker, "window", "start", "end", "label", "score", *self.labels, "error"]
                )
            self._stack = stack.pop_all()
        return self

    def write(self, prediction: FilePrediction) -> None:
        if self.is_json:
            item = textwrap.indent(json.dumps(prediction.to_dict(self.top_k), indent=2), "  ")
            self._handle.write(("\n" if not self.files else ",\n") + item)
        else:
            self._write_rows(prediction)
        self.files += 1
        self.windows += len(prediction.windows)
        self.failed += prediction.error is not None

    def _write_rows(self, prediction: FilePrediction) -> None:
        file = [prediction.file, prediction.speaker or ""] if self.speaker_column else [prediction.file]
        if prediction.error is not None:
            duration = "" if prediction.duration is None else f"{prediction.duration:.3f}"
            self._csv.writerow([*file, "all", "0.000", duration, "", "", *([""] * len(self.labels)), prediction.error])
            return
        if len(prediction.windows) > 1:
            for index, window in enumerate(prediction.windows):
                self._csv.writerow(
                    [
                        *file,
                        index,
                        f"{window.start:.3f}",
                        f"{window.end:.3f}",
                        window.label,
                        f"{window.scores[window.label]:.6f}",
                        *(f"{window.scores[k]:.6f}" for k in self.labels),
                        "",
                    ]
                )
        scores = prediction.scores
        self._csv.writerow(
            [
                *file,
                "all",
                "0.000",
                f"{prediction.duration:.3f}",
                prediction.label,
                f"{scores[prediction.label]:.6f}",
                *(f"{scores[k]:.6f}" for k in self.labels),
                "",
            ]
        )

    def __exit__(self, *exc_info) -> bool:
        stack, self._stack = self._stack, None
        if exc_info[0] is None and self.is_json:
            self._handle.write("\n]\n" if self.files else "]\n")
        return stack.__exit__(*exc_info)


def write_predictions(
    predictions: Iterable[FilePrediction],
    path: str | os.PathLike,
    labels: Sequence[str],
    top_k: Optional[int] = None,
    speaker_column: bool = False,
) -> Path:
    """Write predictions as they come (see :class:`PredictionWriter` for the formats, chosen by the file's suffix)."""
    with PredictionWriter(path, labels, top_k=top_k, speaker_column=speaker_column) as writer:
        for prediction in predictions:
            writer.write(prediction)
    return writer.path


__all__ = ["PredictionWriter", "write_predictions"]
