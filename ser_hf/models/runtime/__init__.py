"""What builds, loads and runs ser-hf's models, none of it copied into a saved model: the registry of model kinds
(``registry``), the builders (``baselines``, ``ssl``, ``ensemble``, ``labels``, ``parameters``), the loaders of saved
folders and Hub repositories (``loading``, ``location``, ``feature_extraction_auto``), the ONNX runtime model
(``onnx_runtime``) and the batching rule (``padding``).

The model definitions themselves are the modules of :mod:`ser_hf.models` above this package (``configuration_*``,
``modeling_*``, ``feature_extraction_*`` and the helpers they import): those files travel with a saved model, copied
next to its weights by ``register_for_auto_class``, and import nothing from here.
"""
