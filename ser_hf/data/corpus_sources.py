"""Where a named corpus comes from, known without importing ``datasets`` (each corpus module's ``SPEC``: its
``full_name`` and ``homepage``), so that a recipe whose corpus folder is missing is answered before torch and
transformers load, with what to do: the corpora are not shipped (licences), so the message names the corpus, its
official source and the flag that points a recipe at a copy (``--data_dir PATH``)."""

from __future__ import annotations

import os
from typing import Any, Mapping, NamedTuple, Optional

from .constants import canonical_corpus_name
from .corpora.named import CORPORA


class CorpusSource(NamedTuple):
    full_name: str
    homepage: str


def corpus_source(name: str) -> Optional[CorpusSource]:
    """``full_name`` and ``homepage`` of the named corpus ``name`` (any spelling ``load_corpus`` takes), from its
    ``SPEC``; `None` for ``folder`` and unknown names."""
    spec = CORPORA.get(canonical_corpus_name(name))
    return None if spec is None else CorpusSource(spec.full_name, spec.homepage)


def _as_list(value: Any) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def missing_corpus_hint(values: Mapping[str, Any]) -> str:
    """What to do about the corpus folders of a recipe (its ``corpus`` and ``data_dir`` values, the command line's
    over the file's) that do not exist: for each named corpus, that it is not shipped with ser-hf, where its official
    source is, and ``--data_dir PATH``; for ``folder``, ``--data_dir`` to the folder of one's clips. Empty when every
    folder exists."""
    corpora = [str(corpus) for corpus in _as_list(values.get("corpus"))]
    data_dirs = _as_list(values.get("data_dir"))
    if len(corpora) == 1 and len(data_dirs) > 1:
        corpora = corpora * len(data_dirs)
    missing = [
        corpus
        for corpus, data_dir in zip(corpora, data_dirs)
        if isinstance(data_dir, (str, os.PathLike)) and not os.path.isdir(os.path.expanduser(data_dir))
    ]
    if not missing:
        return ""
    flag = "--data_dir PATH" if len(data_dirs) == 1 else f"--data_dir {' '.join(['PATH'] * len(data_dirs))}"
    sources = [source for corpus in dict.fromkeys(missing) if (source := corpus_source(corpus)) is not None]
    if not sources:
        return f"Pass the folder of your clips with {flag}."
    if len(sources) == 1:
        (source,) = sources
        how = f"download it from {source.homepage} (its official source)"
    else:
        homepages = "; ".join(f"{source.full_name}: {source.homepage}" for source in sources)
        how = f"download them from their official sources ({homepages})"
    named = " and ".join(source.full_name for source in sources)
    where = "its folder" if len(data_dirs) == 1 else "the corpora's folders, in the recipe's corpus order,"
    return (
        f"{named} {'is' if len(sources) == 1 else 'are'} not shipped with ser-hf: {how} and pass {where} with {flag}."
    )


__all__ = ["CorpusSource", "corpus_source", "missing_corpus_hint"]
