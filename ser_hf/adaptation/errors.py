"""The error of the adaptation stage, in a module of its own that imports nothing heavy: the labelling page and the
command line name it without loading torch."""

from __future__ import annotations

from ..errors import SerHfError


class AdaptationError(SerHfError):
    """An adaptation (``adapt``, ``suggest``, the learning curve, the labelling page) cannot run as asked: the message
    names the parameter (``data_dir``, ``speaker_regex``) or the file and the value at fault."""


__all__ = ["AdaptationError"]
