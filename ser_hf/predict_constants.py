"""Choices of :mod:`ser_hf.predict` that ``ser-hf predict`` checks before loading a model (no ``torch`` import)."""

#: The files ``--output`` writes: per-window and per-file results as CSV or JSON.
OUTPUT_SUFFIXES = (".csv", ".json")
#: Where ``--speaker-from`` takes each recording's speaker from: the name of the folder it lies in.
SPEAKER_SOURCES = ("folder",)

__all__ = ["OUTPUT_SUFFIXES", "SPEAKER_SOURCES"]
