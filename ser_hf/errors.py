"""Error types that every stage may raise, at the bottom of the package so that any stage can raise them without
importing the stage that explains them (an input mode raises :class:`RecipeError` for a recipe value it cannot use).
The module imports nothing: the command line names these errors without loading torch or transformers."""

from __future__ import annotations

from typing import Any, Callable, Optional

#: How a caller sets a library parameter, for an error whose remedy is one: ``(name, value)`` -> the words that set
#: it (``skip_invalid=True`` in Python, ``--skip-invalid`` for ``ser-hf evaluate``), or `None` where it cannot.
Spelling = Callable[[str, Any], Optional[str]]


def setting_spelling(name: str, value: Any) -> str:
    """A parameter as a recipe sets it (``skip_invalid: true``), the Python argument of the same name: an error's own
    ``str()``."""
    written = "true" if value is True else "false" if value is False else str(value)
    return f"{name}: {written}"


class SettingHint:
    """An error whose remedy is a parameter of the library (``skip_invalid``), which each caller sets its own way:
    ``hint_parameters`` lists the ``(name, value)`` pairs its remedies name, :meth:`message_for` writes its message
    with them spelt by the caller (the command line spells them with the running command's own flags, in one place:
    :func:`ser_hf.cli.errors.command_spelling`), leaving out a remedy the caller cannot apply."""

    hint_parameters: tuple[tuple[str, Any], ...] = ()

    def message_for(self, spell: Spelling) -> str:
        raise NotImplementedError


class RecipeError(ValueError):
    """A recipe cannot be used as written: the message names the file and the key or value at fault."""


class RunRecordError(ValueError):
    """A run folder's ``metrics.json`` or ``run_config.json`` holds a value ser-hf did not write (edited by hand, or
    damaged): the message names the file, the key (a dotted path) and the value."""


__all__ = ["RecipeError", "RunRecordError", "SettingHint", "Spelling", "setting_spelling"]
