"""How ``ser-hf`` and ``python -m ser_hf.train`` report an error of input: one line ``PROG: error: ...``, exit
status 2, no traceback; ``ser-hf --debug`` or ``SER_HF_DEBUG=1`` lets the error through with its traceback."""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..errors import SerHfError, SettingHint, Spelling
from ..extras import MissingExtraError
from ..hub.token import redact_tokens
from ..training.errors import NonFiniteLossError

#: Errors of input (:class:`~ser_hf.errors.SerHfError`: a path, a label, a split option, a recipe value, a clip, an
#: adaptation's folders; ValueError for those the libraries under ser-hf raise), of the file system (a folder that
#: cannot be written, a name too long: OSError naming the path) or of the Hub (no access, no repository, unreachable:
#: HubPushError is a ConnectionError), a training loss that turned NaN (its message names the step, the clips and the
#: fix), and an optional part of ser-hf that a command needs and is not installed (MissingExtraError, naming the
#: command that installs it): one line naming it, no traceback. Anything else is a bug and keeps its traceback.
#: ``huggingface_hub``'s ``HfHubHTTPError`` is an OSError: it is caught without importing the Hub client before a
#: command needs it.
USER_ERRORS = (SerHfError, NonFiniteLossError, MissingExtraError, ValueError, OSError)

#: What ``ser-hf train`` (and ``python -m ser_hf.train``) says after Ctrl-C: a run saves checkpoints and picks up from
#: the last one when the same command runs again.
RESUME_HINT = "re-run the same command to resume from its last checkpoint"

#: The exit status of a command stopped by Ctrl-C (SIGINT), as shells report it: 128 + 2.
INTERRUPTED_STATUS = 130

#: Set (to anything but ``0``, ``false``, ``no``, ``off`` or nothing) to see the traceback behind an error's one line:
#: for every command, ``python -m ser_hf.train`` (under ``accelerate launch`` too), the sweep and the Space app.
DEBUG_VARIABLE = "SER_HF_DEBUG"


def debug_requested(flag: bool = False) -> bool:
    """Whether errors should keep their traceback: ``--debug`` (``flag``), or :data:`DEBUG_VARIABLE` set."""
    return flag or os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no", "off")


def run_reporting_errors(
    command: Callable[[], Any],
    prog: str,
    interrupted_hint: Optional[str] = None,
    debug: bool = False,
    spell: Optional[Spelling] = None,
) -> int:
    """Run ``command`` (``ser-hf``'s commands, ``python -m ser_hf.train``) and return its exit status: an error of
    input is printed as one line ``PROG: error: ...`` and gives status 2, as argparse's usage errors do; Ctrl-C is
    one line ``PROG: interrupted`` (followed by ``; interrupted_hint`` when given) and status 130, not the traceback
    of wherever the command happened to be. With ``debug`` (``ser-hf --debug``) or ``SER_HF_DEBUG=1`` both are
    raised again, so that Python prints their traceback (and exits with status 1, or 130 for Ctrl-C). Every
    traceback printed from here on (debug, a bug's, a thread's) goes through :func:`print_redacted_traceback`, so a
    Hub token that an error echoes is never printed, with or without ``--debug``. ``spell`` writes the library
    parameters an error's remedy names as the running command sets them (:func:`command_spelling`)."""
    redact_printed_tracebacks()
    try:
        status = command()
    except USER_ERRORS as error:
        if debug_requested(debug):
            raise
        print(f"{prog}: error: {redact_tokens(error_line(error, spell))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug_requested(debug):
            raise
        print(f"{prog}: interrupted{f'; {interrupted_hint}' if interrupted_hint else ''}", file=sys.stderr)
        return INTERRUPTED_STATUS
    return status if isinstance(status, int) else 0


def print_redacted_traceback(error_type, error, trace, file=None) -> None:
    """Print a traceback as Python does (chained causes and contexts included), with every Hub token in it (the
    user's own, ``Bearer ...``, ``hf_...``) replaced by ``<REDACTED>``: an exception's message, its ``args`` and
    the messages of what caused it may all echo a request's ``Authorization`` header."""
    text = "".join(traceback.format_exception(error_type, error, trace))
    try:
        text = redact_tokens(text)
    except Exception:  # the user's saved token could not be read: at least the environment's and the patterns
        text = redact_tokens(text, tokens=[os.environ.get("HF_TOKEN", "")])
    print(text, end="", file=sys.stderr if file is None else file)


def _print_redacted_thread_traceback(hook_args) -> None:
    if hook_args.exc_type is not SystemExit:
        print_redacted_traceback(hook_args.exc_type, hook_args.exc_value, hook_args.exc_traceback)


def redact_printed_tracebacks() -> None:
    """Make Python print uncaught exceptions (of the main thread and of other threads) through
    :func:`print_redacted_traceback`; the tracebacks ``--debug`` lets through are printed there. A hook someone
    else installed (a debugger's, a test runner's) is left in place."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = print_redacted_traceback
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _print_redacted_thread_traceback


def error_line(error: BaseException, spell: Optional[Spelling] = None) -> str:
    """The message of an error; an OSError of a path reads ``PATH: REASON`` (not ``[Errno 13] ...: 'PATH'``),
    transformers' refusal of a model's own code names the command-line flag as well as the Python argument, an
    error whose remedy is a library parameter (:class:`~ser_hf.errors.SettingHint`) names it as ``spell`` writes it
    (the running command's flag, :func:`command_spelling`), and the parameters a library error names
    (:attr:`~ser_hf.errors.SerHfError.parameters`) are written as the running command's flags
    (:meth:`CommandSpelling.flag`)."""
    if spell is not None and isinstance(error, SettingHint):
        return error.message_for(spell)
    flag_of = getattr(spell, "flag", None)
    if flag_of is not None and isinstance(error, SerHfError) and error.parameters:
        return in_flags(str(error), error.parameters, flag_of)
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        return f"{paths}: {error.strerror}"
    remote_code = _REMOTE_CODE_REFUSAL.search(str(error)) if isinstance(error, ValueError) else None
    if remote_code is not None and "trust_remote_code=True" in str(error):
        return remote_code_line(remote_code["name"])
    return str(error)


#: The library parameters whose command-line flag has another name in some command: parameter -> the destinations
#: of the flags that set it, tried in turn in the running command's parser (``ser-hf suggest --output`` is
#: ``suggest(sheet=)``, ``ser-hf app --adapted-dir`` the labelling page's ``output_dir``). Every parameter is also
#: the destination of the flag of its own name (``data_dir`` -> ``--data-dir``); with the parsers, this is the one
#: table from the library's words to the command line's.
PARAMETER_FLAGS: dict[str, tuple[str, ...]] = {
    "corpus_options": ("option",),
    "sheet": ("output",),
    "output_dir": ("adapted_dir",),
    "folder": ("label",),
    "speakers_csv": ("speakers",),
    "plot": ("timeline_plot",),
}


class CommandSpelling:
    """How the command of ``parser`` writes a library parameter (the one place the command line maps parameters to its
    flags). Called as a :data:`~ser_hf.errors.Spelling` ``(name, value)``, it writes a setting: a flag of its own
    whose destination is the parameter (``--skip-invalid``); for a command that runs a recipe
    (``takes_recipe_flags``), the recipe key and its override flag; for one that passes corpus options (``--option
    KEY=VALUE``), that; `None` where it cannot set it, so that no hint names a flag it does not take. :meth:`flag`
    names a parameter by the flag alone, for the messages of :class:`~ser_hf.errors.SerHfError`."""

    def __init__(self, parser: argparse.ArgumentParser, takes_recipe_flags: bool = False):
        self.parser, self.takes_recipe_flags = parser, takes_recipe_flags

    def flag(self, name: str) -> Optional[str]:
        """The flag (kebab-case, as ``--help`` shows it) that sets the parameter ``name``, or `None`."""
        for dest in (name, *PARAMETER_FLAGS.get(name, ())):
            for action in self.parser._actions:
                if action.dest == dest and action.option_strings:
                    return next((option for option in action.option_strings if option.startswith("--")), None)
        return None

    def __call__(self, name: str, value: Any) -> Optional[str]:
        written = "true" if value is True else "false" if value is False else str(value)
        for action in self.parser._actions:
            if action.dest == name and action.option_strings:
                flag = next(option for option in action.option_strings if option.startswith("--"))
                return flag if isinstance(action, argparse._StoreTrueAction) and value is True else f"{flag} {written}"
        if self.takes_recipe_flags and (in_recipe := recipe_spelling(name, value)) is not None:
            return in_recipe
        option = next((action for action in self.parser._actions if "--option" in action.option_strings), None)
        if option is not None and name in _corpus_parameters():
            return f"--option {name}={written}"
        return None


def command_spelling(parser: argparse.ArgumentParser, takes_recipe_flags: bool = False) -> CommandSpelling:
    """How the command of ``parser`` writes library parameters: :class:`CommandSpelling`."""
    return CommandSpelling(parser, takes_recipe_flags)


def in_flags(message: str, parameters: Sequence[str], flag_of: Callable[[str], Optional[str]]) -> str:
    """``message`` with the first mention of each of ``parameters`` (a whole name: ``data_dir``, not ``data_dirs``,
    ``--data_dir``, ``data_dir/`` nor ``data_dir.json``) written as the flag ``flag_of`` gives it; a parameter the
    command has no flag for stays as it is."""
    for name in parameters:
        flag = flag_of(name)
        if flag is not None:
            message = re.sub(rf"(?<![\w./-]){re.escape(name)}(?![\w/-]|\.\w)", lambda _: flag, message, count=1)
    return message


def recipe_spelling(name: str, value: Any) -> Optional[str]:
    """A recipe key as a recipe and its override flag set it (``skip_invalid: true in the recipe (--skip_invalid
    true)``), for ``ser-hf train`` and ``python -m ser_hf.train``; `None` for a name that is no recipe key."""
    from ..recipe.schema import ser_hf_keys

    written = "true" if value is True else "false" if value is False else str(value)
    return f"{name}: {written} in the recipe (--{name} {written})" if name in ser_hf_keys() else None


def _corpus_parameters() -> set[str]:
    """The keywords ``load_corpus`` takes, which ``--option KEY=VALUE`` passes on."""
    import inspect

    from ..data.corpora import load_corpus

    return set(inspect.signature(load_corpus).parameters) - {"name", "data_dir"}


#: transformers' refusal to load a model whose config.json (``auto_map``) names code of its own, without
#: ``trust_remote_code=True`` (``dynamic_module_utils.resolve_trust_remote_code``): several lines, a Python argument.
_REMOTE_CODE_REFUSAL = re.compile(r"The repository (?P<name>.+?) contains custom code which must be executed")


def remote_code_line(name: str) -> str:
    """The refusal of a model's own code, in one line giving both forms of the permission: the flag of the commands
    that take it and the Python argument (``ser-hf train`` runs no model code of its own)."""
    where = f"the .py files in {name}" if Path(name).is_dir() else f"https://huggingface.co/{name}/tree/main"
    return (
        f"{name} holds model code of its own (auto_map in its config.json names code that is not ser-hf's), which "
        "runs only if you allow it: pass --trust-remote-code on the command line (ser-hf predict, evaluate, export, "
        f"ensemble, app) or trust_remote_code=True in Python, once you have read that code ({where}) and trust it."
    )


__all__ = [
    "DEBUG_VARIABLE",
    "INTERRUPTED_STATUS",
    "PARAMETER_FLAGS",
    "RESUME_HINT",
    "USER_ERRORS",
    "CommandSpelling",
    "command_spelling",
    "debug_requested",
    "error_line",
    "in_flags",
    "print_redacted_traceback",
    "recipe_spelling",
    "redact_printed_tracebacks",
    "remote_code_line",
    "run_reporting_errors",
]
