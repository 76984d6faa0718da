"""Corpora: every supported corpus becomes a ``datasets.Dataset`` on ser-hf's shared emotion vocabulary
(:func:`~ser_hf.data.corpora.loading.load_corpus`).

The package imports its names when first used (:mod:`ser_hf.lazy_exports`), so that what needs no ``datasets`` stays
cheap: the corpus modules (one per named corpus: its :class:`~ser_hf.data.corpora.spec.CorpusSpec` and file-name
parser), :mod:`.spec` and :mod:`.named` (the registry's modules and specs, and what a folder's file names say) load
without it, and the recipe's checks read a corpus folder through them before torch, transformers and datasets load;
:mod:`.base` (the ``Dataset`` a corpus becomes), :mod:`.folder` and :mod:`.loading` import ``datasets``.
"""

from __future__ import annotations

from ...lazy_exports import lazy_exports

#: Each public name -> the module (relative to this package) that defines it.
_EXPORTS = {
    "AUDIO_EXTENSIONS": "..constants",
    "CORPORA": ".named",
    "CORPUS_MODULES": ".named",
    "Clip": ".spec",
    "CorpusError": "..errors",
    "CorpusSpec": ".spec",
    "DEFAULT_SAMPLING_RATE": ".base",
    "InvalidClipError": "..errors",
    "VERIFY_LEVELS": "..constants",
    "build_corpus": ".base",
    "corpus_name": ".named",
    "corpus_options": ".named",
    "decode_every_clip": ".base",
    "find_audio_files": ".spec",
    "load_corpus": ".loading",
    "merge_corpora": ".loading",
    "probe_audio": ".base",
    "read_file_names": ".named",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
