"""argparse types of the numeric flags of ``ser-hf predict`` and ``ser-hf app``: a value that is not a finite number
in range (``nan``, ``inf``, ``1e400``, a port past 65535) is a usage error naming the flag, at parse time, before any
heavy library is imported."""

from __future__ import annotations

import argparse
import math

#: The finest step between windows of ``--hop-seconds``: one 10-ms frame of the feature extractors (mel frames step
#: 10 ms, wav2vec2's 20 ms). Windows closer than that hold the same audio give or take a frame, and a 10-minute
#: recording cut every 0.1 ms would be 6 million windows.
MIN_HOP_SECONDS = 0.01
#: The ports a server can listen on.
PORTS = range(1, 65536)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None


def positive_seconds(text: str) -> float:
    """A length in seconds: finite and positive (``nan``, ``inf``, ``1e400``, ``0`` are refused)."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text!r}")
    return value


def hop_seconds(text: str) -> float:
    """The step between windows in seconds: a :func:`positive_seconds` of at least :data:`MIN_HOP_SECONDS`."""
    value = positive_seconds(text)
    if value < MIN_HOP_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_HOP_SECONDS:g} s, got {text!r}: windows closer than one 10-ms feature frame hold "
            "the same audio, and a long recording would be cut into hundreds of thousands of them"
        )
    return value


def non_negative_seconds(text: str) -> float:
    """A threshold in seconds: 0 or more, ``inf`` for never (``nan`` is refused)."""
    value = _number(text)
    if not value >= 0:  # NaN included
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds (inf: never), got {text!r}")
    return value


def non_negative_days(text: str) -> float:
    """A number of days: finite and 0 or more (``ser-hf cache delete --older-than``)."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 or more days, got {text!r}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value not in PORTS:
        raise argparse.ArgumentTypeError(f"must be a port number from {PORTS[0]} to {PORTS[-1]}, got {text!r}")
    return value


__all__ = [
    "MIN_HOP_SECONDS",
    "hop_seconds",
    "non_negative_days",
    "non_negative_seconds",
    "port_number",
    "positive_seconds",
]
