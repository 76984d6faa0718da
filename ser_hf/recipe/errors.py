"""The error of a recipe that cannot be used as written, and the hint its messages give for a misspelt key. Kept apart
from the dataclasses so that the many modules that catch it need not import transformers. :class:`RecipeError` itself
is defined in :mod:`ser_hf.errors`, at the bottom of the package (every stage may raise it), and re-exported here."""

from __future__ import annotations

import difflib
from typing import Iterable

from ..errors import RecipeError


def unknown_key_message(key: str, known: Iterable[str]) -> str:
    """``'lerning_rate' (did you mean 'learning_rate'?)``."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


__all__ = ["RecipeError", "unknown_key_message"]
