"""Choices of the evaluation stage that the command line offers without loading a model (no ``torch`` import)."""

#: ``split`` values: ``auto`` is the model's held-out test speakers on a corpus it was trained on, every clip of
#: any other corpus; ``train``/``validation``/``test`` are the speakers of that split of the model's run.
SPLITS = ("auto", "all", "train", "validation", "test")

__all__ = ["SPLITS"]
