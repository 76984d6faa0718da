"""The hint a recipe error gives for a misspelt key, kept apart from the dataclasses so that the modules that word
such errors need not import transformers. :class:`~ser_hf.errors.RecipeError` itself is defined in
:mod:`ser_hf.errors`, at the bottom of the package (every stage may raise it)."""

from __future__ import annotations

import difflib
from typing import Iterable


def unknown_key_message(key: str, known: Iterable[str]) -> str:
    """``'lerning_rate' (did you mean 'learning_rate'?)``."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


__all__ = ["unknown_key_message"]
