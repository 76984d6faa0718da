"""``ser-hf train --help`` without torch or transformers: ser-hf's own recipe keys, grouped as the recipe dataclasses
group them (model, data, augmentation, training), read from the source of their modules
(:mod:`ser_hf.recipe.dataclass_sources`) as :mod:`ser_hf.recipe.keys` reads their names. transformers'
``TrainingArguments`` keys (some 150) are behind ``--help-all``, which is the recipe parser's full help and imports
transformers to print it.

A misspelt command-line flag is answered here too, before the imports (:func:`check_command_line_flags`).
"""

from __future__ import annotations

import ast
import difflib
import functools
import textwrap
from typing import Iterable, NamedTuple, Optional, Sequence

from ..errors import RecipeError
from .dataclass_sources import recipe_class_nodes
from .keys import recipe_keys_before_imports, training_arguments_keys

#: The usage line of training, as ``ser-hf train`` and ``python -m ser_hf.train`` print it.
TRAIN_USAGE = "ser-hf train RECIPE.yaml [--key value ...]"
#: ``--help``/``-h``: ser-hf's own keys, at once; ``--help-all``: every key, transformers' included.
HELP_FLAGS = ("-h", "--help")
HELP_ALL_FLAG = "--help-all"
#: Help lines are wrapped to this width, as argparse does on an 80-column terminal.
HELP_WIDTH = 100


class RecipeKey(NamedTuple):
    name: str
    type: str
    default: str
    help: str


class RecipeSection(NamedTuple):
    title: str
    description: str
    keys: tuple[RecipeKey, ...]


def _section_title(class_name: str) -> str:
    """``ModelArguments`` -> ``Model``, ``SERTrainingArguments`` -> ``Training``."""
    return class_name.removesuffix("Arguments").removeprefix("SER")


def _help_text(node: Optional[ast.expr]) -> str:
    """A field's ``metadata={"help": ...}`` as text; an f-string's parts that need ser-hf's model registry (which
    imports torch) read "see --help-all", the others (the corpus names) are filled in."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        from ..data.constants import CORPUS_NAMES  # no datasets import

        names = {"CORPUS_NAMES": CORPUS_NAMES}
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
                continue
            try:
                parts.append(
                    str(eval(compile(ast.Expression(part.value), "<help>", "eval"), {"__builtins__": {}}, names))
                )
            except Exception:  # a name of the model registry (it imports torch)
                parts.append(f"see {HELP_ALL_FLAG}")
        return "".join(parts)
    return ast.unparse(node)


def _field_key(statement: ast.AnnAssign) -> Optional[RecipeKey]:
    value = statement.value
    keywords = {keyword.arg: keyword.value for keyword in value.keywords} if isinstance(value, ast.Call) else {}
    if isinstance(keywords.get("init"), ast.Constant) and keywords["init"].value is False:
        return None
    if "ClassVar" in ast.unparse(statement.annotation):
        return None
    help_node = None
    metadata = keywords.get("metadata")
    if isinstance(metadata, ast.Dict):
        for key, item in zip(metadata.keys, metadata.values):
            if isinstance(key, ast.Constant) and key.value == "help":
                help_node = item
    if "default" in keywords:
        default = ast.unparse(keywords["default"])
    elif "default_factory" in keywords:
        factory = keywords["default_factory"]
        default = ast.unparse(factory.body) if isinstance(factory, ast.Lambda) else f"{ast.unparse(factory)}()"
    elif value is not None and not isinstance(value, ast.Call):
        default = ast.unparse(value)
    else:
        default = ""
    return RecipeKey(statement.target.id, ast.unparse(statement.annotation), default, _help_text(help_node))


@functools.lru_cache(maxsize=1)
def recipe_sections() -> tuple[RecipeSection, ...]:
    """ser-hf's recipe keys by dataclass (:data:`~ser_hf.recipe.dataclass_sources.RECIPE_CLASS_MODULES`), each with
    its type, default and help, read from their modules' source without importing them."""
    sections = []
    for name, node in recipe_class_nodes().items():
        keys = tuple(
            key
            for statement in node.body
            if isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and (key := _field_key(statement)) is not None
        )
        description = (ast.get_docstring(node) or "").split("\n\n")[0].replace("\n", " ")
        sections.append(RecipeSection(_section_title(name), description, keys))
    return tuple(sections)


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, HELP_WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)


def train_help() -> str:
    """What ``ser-hf train --help`` prints: the usage, then ser-hf's keys by section, then a pointer to
    ``--help-all`` for transformers' ``TrainingArguments`` keys."""
    lines = [
        f"usage: {TRAIN_USAGE}",
        "       python -m ser_hf.train RECIPE.yaml [--key value ...]   (the same; also under accelerate launch)",
        "",
        *_wrapped(
            "Train and evaluate a speech emotion classifier from a recipe (a flat YAML file of the keys below). "
            "Every key is also a flag: --key value overrides the recipe (--key alone sets a true/false key to true). "
            "Flags are taken as spelt, never by prefix. recipes/README.md says what each shipped recipe does.",
            "",
        ),
    ]
    for section in recipe_sections():
        lines += ["", f"{section.title} keys:", *_wrapped(section.description, "  ")]
        for key in section.keys:
            default = f" (default: {key.default})" if key.default not in ("", "None") else ""
            lines.append(f"  --{key.name} {key.type}{default}")
            lines += _wrapped(key.help, "      ")
    training_keys = training_arguments_keys()
    own_keys = {key.name for section in recipe_sections() for key in section.keys}
    count = f"{len(training_keys - own_keys)} " if training_keys else ""
    lines += [
        "",
        "transformers' TrainingArguments keys:",
        *_wrapped(
            f"The {count}keys of transformers' Trainer (output_dir, num_train_epochs, learning_rate, "
            "per_device_train_batch_size, seed, logging_steps, ...) are recipe keys too: ser-hf train "
            f"{HELP_ALL_FLAG} lists every key with its help (it loads transformers, a few seconds).",
            "  ",
        ),
        "",
        "options:",
        "  -h, --help    this help",
        f"  {HELP_ALL_FLAG}    every key, transformers' TrainingArguments included",
    ]
    return "\n".join(lines) + "\n"


def help_requested(args: Sequence[str]) -> Optional[str]:
    """``--help-all`` or ``--help`` when either is on the command line (``--help-all`` first), else `None`."""
    args = [str(arg) for arg in args]
    if HELP_ALL_FLAG in args:
        return HELP_ALL_FLAG
    return next((arg for arg in args if arg in HELP_FLAGS), None)


def check_command_line_flags(args: Sequence[str]) -> None:
    """Stop on a ``--flag`` after the recipe that is no recipe key, naming the closest key, before torch and
    transformers are imported; nothing is checked when the keys cannot be read without them (the parser checks)."""
    known = recipe_keys_before_imports()
    if known is None:
        return
    unknown = []
    for token in map(str, args):
        if not token.startswith("--"):
            continue
        name = token[2:].partition("=")[0].replace("-", "_")
        # HfArgumentParser also takes --no_KEY for a true/false key that defaults to true.
        if name not in known and not (name.startswith("no_") and name[3:] in known):
            unknown.append(token.partition("=")[0])
    if unknown:
        raise RecipeError(unknown_flags_error(unknown, known))


def unknown_flags_error(remaining: Sequence[str], known_keys: Iterable[str]) -> str:
    """The error of command-line tokens that are no recipe key, naming the closest key of each misspelt flag
    (``--num_train_epoch`` -> ``--num_train_epochs``)."""
    known = sorted(set(known_keys))
    flags = [str(token)[2:].partition("=")[0].replace("-", "_") for token in remaining if str(token).startswith("--")]
    hints = [f"--{close[0]}" for flag in flags if (close := difflib.get_close_matches(flag, known, n=1))]
    did_you_mean = f" (did you mean {', '.join(hints)}?)" if hints else ""
    return (
        f"Unknown command-line argument(s) {' '.join(map(str, remaining))}{did_you_mean}; every option is a recipe "
        "key (ser-hf train --help lists them)."
    )


__all__ = [
    "HELP_ALL_FLAG",
    "HELP_FLAGS",
    "TRAIN_USAGE",
    "RecipeKey",
    "RecipeSection",
    "check_command_line_flags",
    "help_requested",
    "recipe_sections",
    "train_help",
    "unknown_flags_error",
]
