"""Choices of the data stage that the command line offers without loading a corpus (no ``datasets`` import)."""

#: How much of every clip :func:`~ser_hf.data.corpora.load_corpus` checks (``verify``): ``"header"`` reads its header
#: (empty, missing and unreadable files fail), ``"full"`` also decodes it whole.
VERIFY_LEVELS = ("header", "full")

#: Split protocols by name, as recipes and the CLI name them.
PROTOCOLS = ("speaker", "kfold", "loso", "random")

#: How the decoded waveforms and the cached encoder outputs are stored (``cache_precision``): float32, or float16 at
#: half the size (see docs/results/LOG.md, "Scale").
CACHE_PRECISIONS = ("float32", "float16")
#: How :func:`~ser_hf.data.decode.prepare_audio` stores the decoded waveforms: 16-bit integer PCM (the default), or
#: float16 or float32; readers get float32 in every case.
WAVEFORM_PRECISIONS = ("int16", "float16", "float32")

#: Audio formats every loader accepts: libsndfile reads the first ones, FFmpeg (through torchcodec) the others.
AUDIO_EXTENSIONS: tuple[str, ...] = (
    ".wav",
    ".flac",
    ".mp3",
    ".ogg",
    ".opus",
    ".aiff",
    ".aif",
    ".m4a",
    ".aac",
    ".wma",
    ".webm",
)

#: The corpus registry: each named corpus is the module ``ser_hf/data/corpora/<name>.py``, and this tuple is the one
#: list of them. :mod:`ser_hf.data.corpora.named` imports its modules from it (``CORPUS_MODULES``), from which the
#: specs, parsers, loaders and the checks of a corpus folder before heavy imports derive; the help texts read it here.
#: Adding a corpus is its module, one entry here, a test that loads it and its row in docs/guides/corpora.md
#: (``tests/data/test_corpus_registry.py`` checks each).
NAMED_CORPORA: tuple[str, ...] = ("cremad", "ravdess", "tess", "savee", "emodb", "nemo", "banglaser")

#: The names ``load_corpus`` takes: the named corpora, then ``folder`` (a folder or CSV of one's own clips).
CORPUS_NAMES: tuple[str, ...] = (*NAMED_CORPORA, "folder")

#: Other spellings of corpus names that ``load_corpus`` takes (after lower-casing).
CORPUS_ALIASES: dict[str, str] = {"crema-d": "cremad", "crema_d": "cremad", "emo-db": "emodb", "csv": "folder"}


def canonical_corpus_name(name: str) -> str:
    """A corpus name as ``load_corpus`` reads it (``CREMA-D`` -> ``cremad``, ``RAVDESS`` -> ``ravdess``), the name in
    a named corpus' ``corpus`` column; unknown names are returned lower-cased, not refused."""
    key = str(name).lower()
    return CORPUS_ALIASES.get(key, key)


__all__ = [
    "AUDIO_EXTENSIONS",
    "CACHE_PRECISIONS",
    "CORPUS_ALIASES",
    "CORPUS_NAMES",
    "NAMED_CORPORA",
    "PROTOCOLS",
    "VERIFY_LEVELS",
    "WAVEFORM_PRECISIONS",
    "canonical_corpus_name",
]
