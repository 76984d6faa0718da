"""Choices of the deploy stage that ``ser-hf predict`` checks before loading a model (no ``torch`` import)."""

from ..errors import InputError

#: The files ``--output`` writes: per-window and per-file results as CSV or JSON.
OUTPUT_SUFFIXES = (".csv", ".json")
#: Where ``--speaker-from`` takes each recording's speaker from: the name of the folder it lies in.
SPEAKER_SOURCES = ("folder",)

#: ``--smoothing`` of ``predict --timeline`` when not given (see ``ser_hf.deploy.timeline.Smoothing``): a segment
#: at least 3 s long keeps its own scores, a shorter one (a word, a fragment the VAD cut off, where a model trained
#: on whole utterances is least reliable) is averaged with the speech within 1.5 s of its centre.
DEFAULT_SMOOTHING = "mean:3s"


def check_window_options(window_seconds: "float | None", hop_seconds: "float | None", batch_size: int) -> None:
    """Refuse windowing options no recording could be classified with, before a model loads (:func:`predict_files
    <ser_hf.deploy.predict.predict_files>` and :func:`timeline_files <ser_hf.deploy.timeline.timeline_files>` call
    it first): a batch of no window, a hop without the window it spaces, a window or hop that is not positive."""
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.", parameter="batch_size")
    if hop_seconds is not None and window_seconds is None:
        raise InputError(
            "hop_seconds needs window_seconds: the length of the windows it spaces.",
            parameter="hop_seconds",
            mentions=("window_seconds",),
        )
    for name, value in (("window_seconds", window_seconds), ("hop_seconds", hop_seconds)):
        if value is not None and not value > 0:  # NaN included
            raise InputError(f"{name} must be positive, got {value}.", parameter=name)


__all__ = ["DEFAULT_SMOOTHING", "OUTPUT_SUFFIXES", "SPEAKER_SOURCES", "check_window_options"]
