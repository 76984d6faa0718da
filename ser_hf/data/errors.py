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


class InvalidClipsError(InvalidClipError):
    """Several clips of a corpus are unusable: every one named (up to :attr:`SHOWN`), so that they are fixed in one go;
    ``errors`` holds them all, ``path`` and ``problem`` are the first's."""

    #: How many of the unusable clips the message names.
    SHOWN = 20

    def __init__(self, corpus: str, errors: list[InvalidClipError]):
        self.corpus = corpus
        self.errors = list(errors)
        first = self.errors[0]
        CorpusError.__init__(
            self,
            self.listing(corpus, self.errors)
            + "\nFix them, or leave them out with skip_invalid: true (--skip-invalid), which lists them in the "
            "dataset's record (get_ser_info(dataset)['skipped']).",
        )
        self.path, self.problem = first.path, first.problem

    @classmethod
    def listing(cls, corpus: str, errors: list[InvalidClipError]) -> str:
        """``N unusable CORPUS clip(s):`` and a line per clip (the first :attr:`SHOWN`, then how many more):
        the error's text, and the warning of the clips ``skip_invalid`` leaves out."""
        lines = [f"  {error.path}: {error.problem}" for error in errors[: cls.SHOWN]]
        if len(errors) > cls.SHOWN:
            lines.append(f"  ... and {len(errors) - cls.SHOWN} more")
        return f"{len(errors)} unusable {corpus} clip(s):\n" + "\n".join(lines)

    def __reduce__(self):
        return type(self), (self.corpus, self.errors)


class RecordingTooLongError(InvalidClipError):
    """A recording longer than a caller's bound, found by decoding no further than the bound."""


class SplitError(ValueError):
    """A split cannot be made as asked (unknown speaker, overlapping lists, too few speakers ...)."""


class TooManyFoldsError(SplitError):
    """A speaker k-fold asked for more folds than the dataset has speakers (``folds`` and ``speakers`` say how many),
    so that each command can name the flag its user typed."""

    def __init__(self, message: str, folds: int, speakers: int):
        super().__init__(message)
        self.folds, self.speakers = folds, speakers


class LeakageError(RuntimeError):
    """A split leaks: the message says how, ``report`` has the details."""

    def __init__(self, report: LeakageReport):
        self.report = report
        super().__init__(report.describe_failures())


__all__ = ["CorpusError", "InvalidClipError", "InvalidClipsError", "LeakageError", "SplitError", "TooManyFoldsError"]
