"""The errors of the data stage (a corpus, a clip, a split, a leaking split), in a module of their own so that the
command line can name them without importing ``datasets``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .audit import LeakageReport


class CorpusError(ValueError):
    """A corpus could not be loaded: the message names the folder, file, code or value at fault."""


class InvalidClipError(CorpusError):
    """One clip is unusable (unparseable name, unknown emotion code, empty or undecodable audio)."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # Raised in datasets' worker processes too: it must survive pickling with both arguments.
        return type(self), (self.path, self.problem)


class RecordingTooLongError(InvalidClipError):
    """A recording longer than a caller's bound, found by decoding no further than the bound."""


class SplitError(ValueError):
    """A split cannot be made as asked (unknown speaker, overlapping lists, too few speakers ...)."""


class LeakageError(RuntimeError):
    """A split leaks: the message says how, ``report`` has the details."""

    def __init__(self, report: LeakageReport):
        self.report = report
        super().__init__(report.describe_failures())


__all__ = ["CorpusError", "InvalidClipError", "LeakageError", "SplitError"]
