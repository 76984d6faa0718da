"""Error types that every stage may raise, at the bottom of the package so that any stage can raise them without
importing the stage that explains them (an input mode raises :class:`RecipeError` for a recipe value it cannot use).
The module imports nothing: the command line names these errors without loading torch or transformers."""

from __future__ import annotations


class RecipeError(ValueError):
    """A recipe cannot be used as written: the message names the file and the key or value at fault."""


class RunRecordError(ValueError):
    """A run folder's ``metrics.json`` or ``run_config.json`` holds a value ser-hf did not write (edited by hand, or
    damaged): the message names the file, the key (a dotted path) and the value."""


__all__ = ["RecipeError", "RunRecordError"]
