"""Choices of the data stage that the command line offers without loading a corpus (no ``datasets`` import)."""

#: How much of every clip :func:`~ser_hf.data.corpora.load_corpus` checks (``verify``): ``"header"`` reads its header
#: (empty, missing and unreadable files fail), ``"full"`` also decodes it whole.
VERIFY_LEVELS = ("header", "full")

#: Split protocols by name, as recipes and the CLI name them.
PROTOCOLS = ("speaker", "kfold", "loso", "random")

__all__ = ["PROTOCOLS", "VERIFY_LEVELS"]
