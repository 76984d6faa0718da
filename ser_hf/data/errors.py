"""The errors of the data stage (a corpus, a clip, a split, a leaking split), in a module of their own so that the
command line can name them without importing ``datasets``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from ..errors import SerHfError, SettingHint, Spelling, setting_spelling

if TYPE_CHECKING:
    from .audit import LeakageReport


class CorpusError(SerHfError):
    """A corpus could not be loaded: the message names the folder, file, code or value at fault."""


class InvalidClipError(CorpusError):
    """One clip is unusable (unparseable name, unknown emotion code, empty or undecodable audio)."""

    def __init__(self, path: str | os.PathLike, problem: str, kind: Optional[str] = None):
        self.path = str(path)
        self.problem = problem
        #: What is wrong in words that hold for every clip it applies to (``speaker_regex '...' does not match their
        #: paths``): clips of one kind are named once together. By default the problem itself.
        self.kind = kind or problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # Raised in datasets' worker processes too: it must survive pickling with every argument.
        return type(self), (self.path, self.problem, self.kind)


class InvalidClipsError(SettingHint, InvalidClipError):
    """Several clips of a corpus are unusable: every one accounted for (clips of one kind of problem together, up to
    :attr:`SHOWN` lines), so that they are fixed in one go; ``errors`` holds them all, ``path`` and ``problem`` are
    the first's. The remedy of leaving them out (``skip_invalid``) is offered where other clips are usable
    (``usable``: how many; `None`: not known), in the words of the caller (:meth:`message_for`)."""

    #: How many lines the message gives the unusable clips.
    SHOWN = 20
    #: Clips named for a kind of problem that many clips share.
    EXAMPLES = 3
    hint_parameters = (("skip_invalid", True),)

    def __init__(self, corpus: str, errors: list[InvalidClipError], usable: Optional[int] = None):
        self.corpus = corpus
        self.errors = list(errors)
        self.usable = usable
        first = self.errors[0]
        CorpusError.__init__(self, self.message_for(setting_spelling))
        self.path, self.problem, self.kind = first.path, first.problem, first.kind

    def message_for(self, spell: Spelling) -> str:
        """The listing, then the remedy: ``skip_invalid`` as ``spell`` writes it, where it applies and the caller
        can set it."""
        text = self.listing(self.corpus, self.errors)
        setting = spell("skip_invalid", True)
        if self.usable == 0:
            return text + f"\nNo clip of {self.corpus} is usable: fix what is named above."
        if setting is None:
            return text + "\nFix them, or move them out of the folder."
        return text + f"\nFix them, or leave them out with {setting} (each one it leaves out is logged)."

    @classmethod
    def listing(cls, corpus: str, errors: list[InvalidClipError]) -> str:
        """``N unusable CORPUS clip(s):`` and a line per clip and its problem, or, for a kind of problem more than
        :attr:`EXAMPLES` clips share (a regex that matches no path), one line saying how many and naming the first
        few; :attr:`SHOWN` lines at most, then how many more clips."""
        kinds: dict[str, list[InvalidClipError]] = {}
        for error in errors:
            kinds.setdefault(getattr(error, "kind", error.problem), []).append(error)
        lines, named = [], 0
        for kind, group in kinds.items():
            if len(group) > cls.EXAMPLES:
                if len(lines) == cls.SHOWN:
                    break
                examples = ", ".join(error.path for error in group[: cls.EXAMPLES])
                lines.append(f"  {len(group)} clips: {kind} ({examples} and {len(group) - cls.EXAMPLES} more)")
                named += len(group)
                continue
            for error in group:
                if len(lines) == cls.SHOWN:
                    break
                lines.append(f"  {error.path}: {error.problem}")
                named += 1
        if named < len(errors):
            lines.append(f"  ... and {len(errors) - named} more")
        return f"{len(errors)} unusable {corpus} clip(s):\n" + "\n".join(lines)

    def __reduce__(self):
        return type(self), (self.corpus, self.errors, self.usable)


class RecordingTooLongError(InvalidClipError):
    """A recording longer than a caller's bound, found by decoding no further than the bound."""


class SplitError(SerHfError):
    """A split cannot be made as asked (unknown speaker, overlapping lists, too few speakers ...)."""


class TooManyFoldsError(SplitError):
    """A speaker k-fold asked for more folds than the dataset has speakers (``folds`` and ``speakers`` say how many),
    so that each command can name the flag its user typed."""

    def __init__(self, message: str, folds: int, speakers: int, parameter: Optional[str] = None):
        super().__init__(message, parameter=parameter)
        self.folds, self.speakers = folds, speakers


class LeakageError(SerHfError, RuntimeError):
    """A split leaks: the message says how, ``report`` has the details. A RuntimeError too, as it was before the
    errors had a common base."""

    def __init__(self, report: LeakageReport):
        self.report = report
        super().__init__(report.describe_failures())


__all__ = ["CorpusError", "InvalidClipError", "InvalidClipsError", "LeakageError", "SplitError", "TooManyFoldsError"]
