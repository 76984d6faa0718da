"""The errors of the training stage, in a module of their own so that the command line can name them without
importing torch or transformers."""

from __future__ import annotations


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message names the step and the batch's clips."""


__all__ = ["NonFiniteLossError"]
