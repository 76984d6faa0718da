"""Exporting a trained model for deployment: ``ser-hf export MODEL --format onnx OUT``.

- :mod:`.onnx`: the export itself (``torch.onnx.export``), the parity check against torch with ``onnxruntime``, and
  the exported folder written whole or not at all.
- :mod:`.onnx_runtime`: the exported folder as a model that ``pipeline("audio-classification")``, ``ser-hf predict``
  and ``ser-hf evaluate`` run through an ``onnxruntime.InferenceSession``.

Nothing is imported here: each module imports torch, onnx or onnxruntime when it is used.
"""
