"""Choices of the deploy stage that ``ser-hf predict`` checks before loading a model (no ``torch`` import)."""

#: The files ``--output`` writes: per-window and per-file results as CSV or JSON.
OUTPUT_SUFFIXES = (".csv", ".json")
#: Where ``--speaker-from`` takes each recording's speaker from: the name of the folder it lies in.
SPEAKER_SOURCES = ("folder",)

#: ``--smoothing`` of ``predict --timeline`` when not given (see ``ser_hf.deploy.timeline.Smoothing``): a segment
#: at least 3 s long keeps its own scores, a shorter one (a word, a fragment the VAD cut off, where a model trained
#: on whole utterances is least reliable) is averaged with the speech within 1.5 s of its centre.
DEFAULT_SMOOTHING = "mean:3s"

__all__ = ["DEFAULT_SMOOTHING", "OUTPUT_SUFFIXES", "SPEAKER_SOURCES"]
