"""Deprecated: running an ONNX export moved to :mod:`ser_hf.models.onnx_runtime`, :mod:`ser_hf.deploy.pipelines` (the
deploy stage); importing a name from here still works, with a ``DeprecationWarning``."""

from ..lazy_exports import moved_module

__getattr__, __dir__ = moved_module(__name__, ["ser_hf.models.onnx_runtime", "ser_hf.deploy.pipelines"])
