"""Error types that every stage may raise, at the bottom of the package so that any stage can raise them without
importing the stage that explains them (an input mode raises :class:`InputError` for a value it cannot use).
The module imports nothing: the command line names these errors without loading torch or transformers.

Every error of input ser-hf raises derives from :class:`SerHfError`, which the command line catches (one line, no
traceback). The library speaks to Python callers: its messages name parameters (``data_dir``, ``folds``), and an error
records the parameters it names (:attr:`SerHfError.parameters`), so that the command line writes them as the flags of
the running command, from one table (:mod:`ser_hf.cli.errors`). The stages' own kinds derive from it:
:class:`RecipeError`, :class:`InputError`, :class:`RunRecordError` here, ``CorpusError``, ``SplitError`` and
``LeakageError`` in :mod:`ser_hf.data.errors`, ``AdaptationError`` in :mod:`ser_hf.adaptation.errors`."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable, Optional

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


class SerHfError(ValueError):
    """A value ser-hf was given that it cannot use (a path, a setting, a file's content): the message says which and
    why. ``parameter`` is the library parameter at fault (``data_dir``), where one is; ``mentions`` the others the
    message names (``unlabelled_dir needs speaker_regex``). The message writes each as its name, which the command line
    replaces by the running command's flag (:func:`ser_hf.cli.errors.error_line`)."""

    #: The library parameter at fault, or `None`.
    parameter: Optional[str] = None
    #: Other parameters the message names.
    mentions: tuple[str, ...] = ()

    def __init__(self, *args: Any, parameter: Optional[str] = None, mentions: tuple[str, ...] = ()):
        super().__init__(*args)
        if parameter is not None:
            self.parameter = parameter
        if mentions:
            self.mentions = tuple(mentions)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Every parameter the message names: the one at fault first."""
        return ((self.parameter,) if self.parameter else ()) + self.mentions


class RecipeError(SerHfError):
    """A recipe cannot be used as written: the message names the file and the key or value at fault."""


class InputError(SerHfError):
    """A value a stage cannot use as its input (a model input mode, an output path, an option of a command's
    library function): the message names the parameter and the value at fault."""


class RunRecordError(SerHfError):
    """A run folder's ``metrics.json`` or ``run_config.json`` holds a value ser-hf did not write (edited by hand, or
    damaged): the message names the file, the key (a dotted path) and the value."""


def unknown_key_message(key: str, known: Iterable[str]) -> str:
    """A misspelt key or name with the closest known one, as every stage's error words it: ``'lerning_rate' (did you
    mean 'learning_rate'?)``."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


__all__ = [
    "InputError",
    "RecipeError",
    "RunRecordError",
    "SerHfError",
    "SettingHint",
    "Spelling",
    "setting_spelling",
    "unknown_key_message",
]
