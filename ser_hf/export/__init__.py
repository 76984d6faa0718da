"""Deprecated: the ONNX export moved to :mod:`ser_hf.deploy.onnx_export` and running an export to
:mod:`ser_hf.models.onnx_runtime`; :mod:`.onnx` and :mod:`.onnx_runtime` here still import, with a
``DeprecationWarning``."""
