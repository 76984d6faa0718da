"""Loading a trained classifier and its feature extractor: the one loader ``ser-hf predict``, ``evaluate``, ``embed``,
``export``, ``app`` and ensembles use.

:func:`load_model` takes what a user names as "the model":

- a run folder or fold folder (``config.json``, safetensors weights, ``preprocessor_config.json``);
- a Hub repository id, at a ``revision`` (branch, tag or commit), with a ``token`` for a private one;
- a folder written by ``ser-hf export --format onnx``, run in onnxruntime
  (:class:`~ser_hf.models.onnx_runtime.OnnxModelForAudioClassification`), where the caller can use one;
- a folder of LoRA adapters saved by peft (``adapter_config.json``, no ``config.json``), loaded on the base model its
  adapter config names and merged into it.

Every source is checked before any weight is read, with one error naming what is wrong: a missing folder or Hub
repository (:func:`~ser_hf.models.location.check_model_location`), a folder that is neither a model nor an export,
pickled or damaged weights (:func:`~ser_hf.models.onnx_runtime.check_model_folder`), a missing feature extractor
(:class:`~ser_hf.models.MissingFeatureExtractorError`). Code stored with a Hub model runs only when the caller passes
``trust_remote_code=True``; ser-hf's own models never need it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional, Union

from transformers import CONFIG_NAME

from .feature_extraction_auto import load_feature_extractor
from .location import check_model_location
from .onnx_runtime import OnnxExportError, OnnxModelForAudioClassification, check_model_folder, is_onnx_export

#: The file peft writes beside a LoRA adapter's weights (and the only config of a folder of adapters).
ADAPTER_CONFIG_FILE = "adapter_config.json"

logger = logging.getLogger(__name__)


def is_lora_adapter(name_or_path: Union[str, os.PathLike]) -> bool:
    """Whether ``name_or_path`` is a local folder of LoRA adapters saved by peft (``adapter_config.json`` and no
    ``config.json``: the base model is loaded from where the adapter config says)."""
    folder = Path(name_or_path)
    return (folder / ADAPTER_CONFIG_FILE).is_file() and not (folder / CONFIG_NAME).is_file()


def load_model(
    name_or_path: Union[str, os.PathLike],
    *,
    revision: Optional[str] = None,
    token: Union[str, bool, None] = None,
    trust_remote_code: bool = False,
    allow_onnx: bool = True,
    purpose: str = "this",
    feature_extractor: Any = None,
) -> tuple[Any, Any]:
    """``(model, feature_extractor)`` of a trained audio classifier: a folder, a Hub id, an ONNX export or a folder
    of LoRA adapters (see the module docstring), in evaluation mode.

    Args:
        name_or_path: the model's folder or Hub repository id.
        revision (`str`, *optional*): branch, tag or commit of a Hub model.
        token (`str` or `bool`, *optional*): the Hub token for a private repository (default: the logged-in one).
        trust_remote_code (`bool`, *optional*, defaults to `False`): run model code stored with a Hub model.
        allow_onnx (`bool`, *optional*, defaults to `True`): whether an ONNX export is loaded; `False` refuses one
            with an :class:`~ser_hf.models.onnx_runtime.OnnxExportError` saying that ``purpose`` needs the trained
            model folder (embeddings and ensembles need the torch model's layers).
        purpose (`str`, *optional*): what the model is loaded for, named in that error.
        feature_extractor (*optional*): a feature extractor already loaded, used instead of the model's own.
    """
    name = os.fspath(name_or_path)
    kwargs = {"revision": revision, "token": token, "trust_remote_code": trust_remote_code}
    check_model_location(name, revision=revision, token=token)
    if is_lora_adapter(name):
        return _load_lora_adapter(name, feature_extractor, **kwargs)
    if is_onnx_export(name) and not allow_onnx:
        raise OnnxExportError(
            f"{name} is an ONNX export: {purpose} needs the trained model folder it was exported from."
        )
    # A folder that is neither a model nor an export, pickled or damaged weights: the file at fault, before loading.
    check_model_folder(name)
    if feature_extractor is None:
        feature_extractor = load_feature_extractor(name, check_location=False, **kwargs)  # located just above
    if is_onnx_export(name):
        return OnnxModelForAudioClassification(name, trust_remote_code=trust_remote_code), feature_extractor
    from transformers import AutoModelForAudioClassification

    import ser_hf.models  # noqa: F401  (registers ser-hf's model types with the Auto classes)

    model = AutoModelForAudioClassification.from_pretrained(name, **kwargs)
    return model.eval(), feature_extractor


def _load_lora_adapter(folder: str, feature_extractor: Any, **kwargs) -> tuple[Any, Any]:
    """A folder of LoRA adapters on its base model, merged (a plain transformers classifier), and the folder's
    feature extractor, or the base model's when the folder has none."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForAudioClassification
    from transformers.utils import FEATURE_EXTRACTOR_NAME

    import ser_hf.models  # noqa: F401  (registers ser-hf's model types with the Auto classes)

    from .ssl import merge_lora

    base = PeftConfig.from_pretrained(folder).base_model_name_or_path
    if not base:
        raise ValueError(f"{Path(folder) / ADAPTER_CONFIG_FILE} names no base_model_name_or_path to load them on.")
    logger.info("%s holds LoRA adapters: loading them on %s and merging them.", folder, base)
    model = merge_lora(
        PeftModel.from_pretrained(AutoModelForAudioClassification.from_pretrained(base, **kwargs), folder)
    )
    if feature_extractor is None:
        has_extractor = (Path(folder) / FEATURE_EXTRACTOR_NAME).is_file()
        feature_extractor = load_feature_extractor(folder if has_extractor else base, **kwargs)
    return model.eval(), feature_extractor


__all__ = ["ADAPTER_CONFIG_FILE", "is_lora_adapter", "load_model"]
