"""Deprecated: finding the audio files a command is given moved to :mod:`ser_hf.deploy.audio_inputs` (the deploy
stage); importing a name from here still works, with a ``DeprecationWarning``."""

from .lazy_exports import moved_module

__getattr__, __dir__ = moved_module(__name__, ["ser_hf.deploy.audio_inputs"])
