"""Deprecated: classifying recordings moved to :mod:`ser_hf.deploy.classify`, :mod:`ser_hf.deploy.pipelines`,
:mod:`ser_hf.deploy.results`, :mod:`ser_hf.deploy.speakers`, :mod:`ser_hf.deploy.windows`,
:mod:`ser_hf.deploy.writers`, :mod:`ser_hf.deploy.audio_inputs`, :mod:`ser_hf.deploy.constants` (the deploy stage);
importing a name from here still works, with a ``DeprecationWarning``."""

from .lazy_exports import moved_module

__getattr__, __dir__ = moved_module(
    __name__,
    [
        "ser_hf.deploy.classify",
        "ser_hf.deploy.pipelines",
        "ser_hf.deploy.results",
        "ser_hf.deploy.speakers",
        "ser_hf.deploy.windows",
        "ser_hf.deploy.writers",
        "ser_hf.deploy.audio_inputs",
        "ser_hf.deploy.constants",
    ],
)
