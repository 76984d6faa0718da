"""Flags taken as spelt, never by prefix: argparse's default ``allow_abbrev=True`` took ``--num_train_epoch 3`` (a
typo) for ``--num_train_epochs`` and started training. Every ``ser-hf`` parser is a :class:`FullFlagsParser` (the
sub-command parsers too: argparse builds them with the class of their parent), and a flag it does not know is an
error naming the closest one it does (:func:`unknown_flags_message`).

Every flag of every command is spelt one way, in kebab-case (``--data-dir``), and taken in the other as well
(``--data_dir``, the spelling of the recipe keys and of ``python -m ser_hf.train``): :func:`accept_both_spellings`
gives each long flag its other spelling once the parser is built, whoever wrote the command, and ``--help``, the usage
line and argparse's own errors show the kebab-case one alone."""

from __future__ import annotations

import argparse
import contextlib
import difflib
from typing import Iterable, Iterator, Optional, Sequence

from ..errors import RecipeError

#: The attribute of an action that holds the spellings it takes without showing them (:func:`accept_both_spellings`).
HIDDEN_SPELLINGS = "hidden_option_strings"


class FullFlagsParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with ``allow_abbrev=False`` unless asked otherwise, whose help, usage and errors leave
    out the spellings a flag takes without showing them (:func:`accept_both_spellings`)."""

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def format_help(self) -> str:
        with _shown_spellings_only(self):
            return super().format_help()

    def format_usage(self) -> str:
        with _shown_spellings_only(self):
            return super().format_usage()

    def error(self, message: str):
        # argparse names a flag by all its spellings ("argument --data-dir/--data_dir: expected one argument").
        for action in self._actions:
            for hidden in getattr(action, HIDDEN_SPELLINGS, ()):
                message = message.replace(f"/{hidden}", "")
        super().error(message)


@contextlib.contextmanager
def _shown_spellings_only(parser: argparse.ArgumentParser) -> Iterator[None]:
    """``parser``'s actions without their hidden spellings while it writes its help or usage."""
    saved = [(action, action.option_strings) for action in parser._actions if getattr(action, HIDDEN_SPELLINGS, ())]
    for action, strings in saved:
        hidden = getattr(action, HIDDEN_SPELLINGS)
        action.option_strings = [option for option in strings if option not in hidden]
    try:
        yield
    finally:
        for action, strings in saved:
            action.option_strings = strings


def kebab_case(flag: str) -> str:
    """``--data_dir`` -> ``--data-dir``: the spelling ``--help`` shows."""
    return "--" + flag[2:].replace("_", "-")


def accept_both_spellings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every long flag of ``parser`` and of its sub-command parsers both spellings: the kebab-case one first (what
    ``--help`` shows and the errors name), the underscore one taken as well and hidden. A spelling another flag of the
    parser already holds is left to it, and ``--no-X`` of a boolean pair keeps its one spelling (argparse reads the
    ``--no-`` prefix to know the value)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_parser in {id(sub): sub for sub in action.choices.values()}.values():
                accept_both_spellings(sub_parser)
            continue
        if getattr(action, HIDDEN_SPELLINGS, None) is not None:
            continue
        shown, hidden = [], []
        for option in action.option_strings:
            if not option.startswith("--"):
                shown.append(option)
                continue
            if isinstance(action, argparse.BooleanOptionalAction) and option.startswith("--no-"):
                shown.append(option)
                continue
            kebab, snake = kebab_case(option), "--" + option[2:].replace("-", "_")
            for spelling, into in ((kebab, shown), (snake, hidden)):
                holder = parser._option_string_actions.get(spelling)
                if spelling not in shown + hidden and holder in (None, action):
                    into.append(spelling)
                    parser._option_string_actions[spelling] = action
        hidden = [option for option in hidden if option not in shown]
        action.option_strings = shown + hidden
        setattr(action, HIDDEN_SPELLINGS, frozenset(hidden))
    return parser


def option_strings(parser: argparse.ArgumentParser, hidden: bool = True) -> Iterator[str]:
    """Every long flag of ``parser`` and of the sub-command parsers under it; without `hidden`, only the spellings
    ``--help`` shows."""
    for action in parser._actions:
        leave_out = () if hidden else getattr(action, HIDDEN_SPELLINGS, ())
        yield from (option for option in action.option_strings if option.startswith("--") and option not in leave_out)
        if isinstance(action, argparse._SubParsersAction):
            for sub_parser in action.choices.values():
                yield from option_strings(sub_parser, hidden)


def command_parser(parser: argparse.ArgumentParser, command: str, args: Optional[argparse.Namespace] = None):
    """The parser of ``command`` under the ``ser-hf`` parser ``parser``; with the parsed ``args``, the parser of the
    sub-command they ran under it (``ser-hf data split``'s)."""
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    chosen = subparsers.choices[command]
    while args is not None:
        inner = next((a for a in chosen._actions if isinstance(a, argparse._SubParsersAction)), None)
        if inner is None or getattr(args, inner.dest, None) not in inner.choices:
            break
        chosen = inner.choices[getattr(args, inner.dest)]
    return chosen


#: The metavar of the flags whose value is a regular expression, which may start with '-' (``-(?P<speaker>[fm]\d)-``).
PATTERN_METAVAR = "PATTERN"


def pattern_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag of ``parser`` and of its sub-command parsers whose value is a pattern (:data:`PATTERN_METAVAR`)."""
    flags = set()
    for action in parser._actions:
        if action.metavar == PATTERN_METAVAR:
            flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub_parser in action.choices.values():
                flags |= pattern_flags(sub_parser)
    return flags


def attach_pattern_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """`argv` with each pattern flag joined to its value (``--speaker_regex=-(?P<speaker>..)-``): argparse takes a
    separate value that starts with '-' for a flag and answers "expected one argument". A flag of the parser after
    it is left alone (the value was forgotten: argparse says so)."""
    flags, joined, arguments = pattern_flags(parser), [], list(argv)
    known = set(option_strings(parser)) | {"-h", "-v"}
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        value = arguments[index + 1] if index + 1 < len(arguments) else ""
        if argument in flags and value.startswith("-") and value.partition("=")[0] not in known:
            joined.append(f"{argument}={value}")
            index += 2
            continue
        joined.append(argument)
        index += 1
    return joined


def closest_flag(flag: str, known: Iterable[str]) -> str | None:
    """The known flag closest to ``flag`` (``--num_train_epoch`` -> ``--num_train_epochs``), or `None`."""
    name = flag.partition("=")[0]
    matches = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_flags_message(unknown: Iterable[str], known: Iterable[str]) -> str:
    """``unrecognized arguments: --num_train_epoch 3 (did you mean --num_train_epochs?)``: the tokens argparse did not
    take, with the closest known flag of each unknown one."""
    unknown, known = list(unknown), list(known)
    matches = [match for token in unknown if token.startswith("--") and (match := closest_flag(token, known))]
    return f"unrecognized arguments: {' '.join(unknown)}" + (
        f" (did you mean {', '.join(matches)}?)" if matches else ""
    )


def add_speaker_check_argument(parser: argparse.ArgumentParser) -> None:
    """``--speaker-statistics-check`` / ``--no-speaker-statistics-check`` (default: as the model was saved)."""
    parser.add_argument(
        "--speaker-statistics-check",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="for a Whisper model standardised per speaker: check that the speakers are heard in enough emotions for "
        "statistics of their own (from the model's predictions under the statistics of all the clips), falling back "
        "to those where they are not (default: as the model was saved; the general speaker recipe and ser-hf adapt "
        "turn it on)",
    )


def key_value_pairs(
    items: Sequence[str], option: str, example: str = "KEY=VALUE", allow_empty: bool = True
) -> dict[str, str]:
    """``KEY=VALUE`` items of a repeated flag as a dict of strings (an empty VALUE where `allow_empty`); the error
    names the flag (`option`) as typed and shows the form (`example`)."""
    pairs = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip() or not (allow_empty or value.strip()):
            raise RecipeError(f"{option} {item!r} is not of the form {example}.")
        pairs[key.strip()] = value.strip()
    return pairs


def model_paths(items: Sequence[str], option: str = "--model_path") -> dict[str, str]:
    """``ID=FOLDER`` items (``--model_path``: load FOLDER wherever a recipe's ``model_name_or_path`` is ID, a local
    copy of a Hub checkpoint) as a mapping; the error names the flag as typed."""
    return key_value_pairs(items, option, "ID=FOLDER, e.g. openai/whisper-base=PATH", allow_empty=False)


__all__ = [
    "key_value_pairs",
    "model_paths",
    "FullFlagsParser",
    "accept_both_spellings",
    "add_speaker_check_argument",
    "closest_flag",
    "command_parser",
    "kebab_case",
    "option_strings",
    "unknown_flags_message",
]
