"""The corpora, from the registry :data:`~ser_hf.data.constants.NAMED_CORPORA`, without importing ``datasets``: the
named corpora's modules and specs, the loader name of any spelling, each corpus' loader and its options, and what a
corpus folder's file names say (:func:`read_file_names`), which the recipe's checks read before torch, transformers
and datasets load."""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterable, Optional

from ...errors import unknown_key_message
from ..audio_files import walk_audio_files
from ..constants import CORPUS_NAMES, NAMED_CORPORA, canonical_corpus_name
from ..errors import CorpusError, InvalidClipError
from .folder import load_folder
from .spec import CorpusSpec, find_audio_files, parse_clip

if TYPE_CHECKING:
    from datasets import Dataset

#: The corpus modules, imported from the registry :data:`~ser_hf.data.constants.NAMED_CORPORA` (the one list every
#: name, parser, loader and help text derives from). A corpus module holds a ``SPEC`` (:class:`CorpusSpec`, whose name
#: is the module's), a ``parse(path) -> Clip`` and, where it reads side tables, a ``load(data_dir, **options)``; it
#: imports no ``datasets`` at its top, so that its file names parse before heavy libraries load.
CORPUS_MODULES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"{__package__}.{name}") for name in NAMED_CORPORA
)

#: The corpora ``load_corpus`` knows, by name.
CORPORA: dict[str, CorpusSpec] = {module.SPEC.name: module.SPEC for module in CORPUS_MODULES}


def corpus_name(name: str) -> str:
    """The loader name for a corpus name or alias (``CREMA-D`` -> ``cremad``); errors list the known corpora."""
    key = canonical_corpus_name(name)
    if key not in CORPUS_NAMES:
        raise CorpusError(f"Unknown corpus {name!r}; ser-hf loads {', '.join(sorted(CORPUS_NAMES))}.")
    return key


def corpus_module(name: str) -> ModuleType:
    """The module of the named corpus ``name`` (any spelling :func:`corpus_name` takes); ``folder`` has none."""
    key = corpus_name(name)
    if key not in NAMED_CORPORA:
        raise CorpusError(f"{name!r} is not a named corpus (those are {', '.join(NAMED_CORPORA)}).")
    return CORPUS_MODULES[NAMED_CORPORA.index(key)]


def _standard_loader(module: ModuleType) -> Callable[..., Dataset]:
    def load(data_dir: Path, **build_options) -> Dataset:
        from .base import build_corpus  # imports datasets

        return build_corpus(module.SPEC, find_audio_files(data_dir), module.parse, **build_options)

    return load


#: Each corpus' loader, by name: a corpus module's ``load``, or the standard one (its files, parsed by its ``parse``),
#: then the folder corpus'. Each imports ``datasets`` when called, not before.
LOADERS: dict[str, Callable[..., Dataset]] = {
    **{module.SPEC.name: getattr(module, "load", None) or _standard_loader(module) for module in CORPUS_MODULES},
    "folder": load_folder,
}

#: The keyword arguments every loader takes from ``load_corpus`` itself: not a corpus' own options.
_COMMON_LOADER_ARGUMENTS = ("data_dir", "sampling_rate", "label_map", "labels", "skip_invalid", "check_audio")


def corpus_options(name: str) -> list[str]:
    """The options a corpus' loader takes besides ``load_corpus``'s own (``corpus_options`` in a recipe): the folder
    corpus' ``label_regex``, nEMO's ``metadata_tsv`` and so on, read from the loader's signature."""
    parameters = inspect.signature(LOADERS[corpus_name(name)]).parameters.values()
    return [
        parameter.name
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and parameter.name not in _COMMON_LOADER_ARGUMENTS
    ]


def corpus_options_problem(name: str, options: Iterable[str]) -> Optional[str]:
    """What is wrong with the options ``options`` given to the corpus ``name`` (those its loader does not take, each
    with the closest it does), or `None`: ``load_corpus``'s error, which the recipe's checks give before it runs."""
    key = corpus_name(name)
    known = corpus_options(key)
    unknown = sorted(set(options) - set(known))
    if not unknown:
        return None
    named = ", ".join(unknown_key_message(option, known) for option in unknown)
    return f"Corpus {key!r} has no option{'s' if len(unknown) > 1 else ''} {named}: " + (
        f"its options are {', '.join(known)}." if known else "it takes no corpus options."
    )


@dataclass(frozen=True)
class FileNames:
    """What the file names of a named corpus' folder say, read as its loader reads them but with nothing decoded.

    Args:
        spec (`CorpusSpec`): the corpus.
        files (`int`): how many audio files the folder holds (every one its loader would read).
        speakers (`frozenset[str]`): the speakers of the files whose names parse.
        invalid (`tuple[InvalidClipError, ...]`): the files whose names the corpus' parser refuses, or whose emotion
            code it does not know: each one an error of the loader (unless ``skip_invalid``), or a skipped clip.
    """

    spec: CorpusSpec
    files: int
    speakers: frozenset[str]
    invalid: tuple[InvalidClipError, ...]


def read_file_names(name: str, data_dir: str | os.PathLike) -> FileNames:
    """Parse the name of every audio file below ``data_dir`` as the named corpus ``name`` does (the speakers, and the
    files it refuses), without reading any audio. The corpora's side tables (CREMA-D's ``VideoDemographics.csv``,
    nEMO's ``data.tsv``) are not read: what they add is checked by the loader."""
    module = corpus_module(name)
    paths, _ = walk_audio_files(Path(data_dir).expanduser().resolve())
    speakers, invalid = set(), []
    for path in paths:
        try:
            speakers.add(parse_clip(module.SPEC, module.parse, path).speaker_id)
        except InvalidClipError as error:
            invalid.append(error)
    return FileNames(module.SPEC, len(paths), frozenset(speakers), tuple(invalid))


__all__ = [
    "CORPORA",
    "CORPUS_MODULES",
    "LOADERS",
    "FileNames",
    "corpus_module",
    "corpus_name",
    "corpus_options",
    "corpus_options_problem",
    "read_file_names",
]
