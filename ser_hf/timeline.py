"""Deprecated: emotion over time moved to :mod:`ser_hf.deploy.timeline` (the deploy stage); importing a name from here
still works, with a ``DeprecationWarning``."""

from .lazy_exports import moved_module

__getattr__, __dir__ = moved_module(
    __name__, ["ser_hf.deploy.timeline", "ser_hf.deploy.voice_activity", "ser_hf.deploy.diarization"]
)
