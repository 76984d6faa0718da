"""Loading a trained classifier and its feature extractor: the one loader ``ser-hf predict``, ``evaluate``, ``embed``,
``export``, ``app`` and ensembles use.

:func:`load_model` takes what a user names as "the model":

- a run folder or fold folder (``config.json``, safetensors weights, ``preprocessor_config.json``);
- a Hub repository id, at a ``revision`` (branch, tag or commit), with a ``token`` for a private one;
- a folder written by ``ser-hf export --format onnx``, run in onnxruntime
  (:class:`~ser_hf.models.runtime.onnx_runtime.OnnxModelForAudioClassification`), where the caller can use one;
- a folder of LoRA adapters saved by peft (``adapter_config.json``, no ``config.json``), loaded on the base model its
  adapter config names and merged into it.

Every source is checked before any weight is read, with one error naming what is wrong: a missing folder or Hub
repository (:func:`~ser_hf.models.runtime.location.check_model_location`), a folder that is neither a model nor an
export, pickled or damaged weights, a folder whose classification head was never trained (a pretrained encoder's:
:class:`~ser_hf.models.runtime.location.UntrainedHeadError`; see
:func:`~ser_hf.models.runtime.onnx_runtime.check_model_folder`), a missing feature extractor
(:class:`~ser_hf.models.MissingFeatureExtractorError`). Before any clip, the feature extractor is checked against the
model (:func:`check_feature_extractor_fits`): the features per frame it computes (mel bins), the length of its stored
statistics, and that they are finite with positive standard deviations (:class:`FeatureExtractorMismatchError`, naming
``preprocessor_config.json`` and the key). Code stored with a Hub model runs only when the caller passes
``trust_remote_code=True``; ser-hf's own models never need it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from transformers import CONFIG_NAME
from transformers.utils import FEATURE_EXTRACTOR_NAME

from ...model_location import ModelNotFoundError
from .feature_extraction_auto import load_feature_extractor
from .location import HubUnreachableError, check_model_location, pickled_weights_refused
from .onnx_runtime import OnnxExportError, OnnxModelForAudioClassification, check_model_folder, is_onnx_export

#: The file peft writes beside a LoRA adapter's weights (and the only config of a folder of adapters).
ADAPTER_CONFIG_FILE = "adapter_config.json"

logger = logging.getLogger(__name__)

#: Values of a bad statistic named in full; the others are counted.
SHOWN_BAD_VALUES = 3


class FeatureExtractorMismatchError(ValueError):
    """A model's ``preprocessor_config.json`` that does not fit the model (edited, or copied from another model):
    features of another size than the model takes, statistics of another length than it standardises, or
    statistics that are not finite or whose standard deviations are not positive (every score would be NaN)."""


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
            with an :class:`~ser_hf.models.runtime.onnx_runtime.OnnxExportError` saying that ``purpose`` needs the
            trained model folder (embeddings and ensembles need the torch model's layers).
        purpose (`str`, *optional*): what the model is loaded for, named in that error.
        feature_extractor (*optional*): a feature extractor already loaded, used instead of the model's own.
    """
    name = os.fspath(name_or_path)
    kwargs = {"revision": revision, "token": token, "trust_remote_code": trust_remote_code}
    check_model_location(name, revision=revision, token=token)
    from .registry import register_auto_classes

    register_auto_classes()  # before any Auto class reads the folder: ser-hf's types need no trust_remote_code
    if is_lora_adapter(name):
        with pickled_weights_refused(name):
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
        model = OnnxModelForAudioClassification(name, trust_remote_code=trust_remote_code)
        check_feature_extractor_fits(model.config, feature_extractor, Path(name) / FEATURE_EXTRACTOR_NAME)
        return model, feature_extractor
    from transformers import AutoModelForAudioClassification

    with pickled_weights_refused(name):  # a pickle the checks of check_model_folder could not see
        model = AutoModelForAudioClassification.from_pretrained(name, **kwargs)
    check_feature_extractor_fits(model.config, feature_extractor, Path(name) / FEATURE_EXTRACTOR_NAME)
    return model.eval(), feature_extractor


def _model_input_size(config: Any) -> Optional[tuple[str, int]]:
    """``(config key, value)`` of the features per frame the model takes (a Whisper encoder's mel bins, a
    baseline's input size), or `None` for a model that reads the waveform."""
    from .registry import BASELINES

    if getattr(config, "model_type", None) in ("whisper", "ser_whisper"):
        return "num_mel_bins", int(config.num_mel_bins)
    for baseline in BASELINES.values():
        if isinstance(config, baseline.config_class) and baseline.input_size_field:
            return baseline.input_size_field, int(getattr(config, baseline.input_size_field))
    return None


def _statistics_width(
    config: Any, feature_extractor: Any, input_size: Optional[tuple[str, int]]
) -> Optional[tuple[int, str]]:
    """How many values the model standardises with the extractor's statistics, and what they are: one per encoder
    state (each layer the head reads, twice with layer statistics: mean and standard deviation) for ser-hf's
    Whisper, one per openSMILE functional (standardised before a selection of them), one per feature for another
    baseline."""
    from ..configuration_whisper import SerWhisperConfig

    functionals = getattr(feature_extractor, "num_functionals", None)
    if isinstance(functionals, int) and not isinstance(functionals, bool):
        return functionals, f"one per openSMILE functional of {feature_extractor.feature_set}"

    if isinstance(config, SerWhisperConfig):
        layers = config.num_hidden_layers + 1 if config.use_weighted_layer_sum else 1
        statistics = 2 if config.pools_layer_statistics else 1
        what = f"{layers} layer(s) of {config.hidden_size} encoder states"
        return statistics * layers * config.hidden_size, what + (", mean and std of each" if statistics == 2 else "")
    if input_size is not None and getattr(config, "model_type", None) != "whisper":
        return input_size[1], f"one per feature, {input_size[0]} {input_size[1]} in config.json"
    return None


def _listed(values: np.ndarray, bad: np.ndarray) -> str:
    indices = np.flatnonzero(bad)
    shown = ", ".join(f"{float(values[i])!r} at index {i}" for i in indices[:SHOWN_BAD_VALUES])
    more = f" (and {len(indices) - SHOWN_BAD_VALUES} more)" if len(indices) > SHOWN_BAD_VALUES else ""
    return shown + more


def check_feature_extractor_fits(config: Any, feature_extractor: Any, where: Union[str, os.PathLike]) -> None:
    """Raise :class:`FeatureExtractorMismatchError` naming ``where`` (the extractor's ``preprocessor_config.json``)
    and the key, before any clip, when the feature extractor does not give the inputs the model of ``config``
    takes: another ``feature_size`` than the model's mel bins (or baseline input size), ``feature_mean`` or
    ``feature_std`` of another length than the model standardises, or statistics that are not finite or standard
    deviations that are not positive. Where torch's channel error or ``"score": NaN`` would come of it, clip by
    clip."""
    from ..feature_normalization import STATISTICS_NORMALIZATIONS

    input_size = _model_input_size(config)
    feature_size = getattr(feature_extractor, "feature_size", None)
    if input_size is not None and feature_size is not None and feature_size != input_size[1]:
        raise FeatureExtractorMismatchError(
            f"{where}: feature_size is {feature_size!r}, but the model takes {input_size[1]} features per frame "
            f"({input_size[0]} in config.json): the feature extractor was edited or comes from another model; "
            "restore the preprocessor_config.json saved with the model."
        )
    stored = getattr(feature_extractor, "stored_statistics_normalizations", STATISTICS_NORMALIZATIONS)
    if getattr(feature_extractor, "normalization", None) not in stored:
        return
    width = _statistics_width(config, feature_extractor, input_size)
    for key in ("feature_mean", "feature_std"):
        stored = getattr(feature_extractor, key, None)
        if stored is None:
            continue  # the extractor says what it needs when it is called
        try:
            values = np.asarray(stored, dtype=np.float64)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1:
            raise FeatureExtractorMismatchError(
                f"{where}: {key} must be a list of numbers, got {str(stored)[:80]}: restore the "
                "preprocessor_config.json saved with the model."
            )
        if width is not None and len(values) != width[0]:
            raise FeatureExtractorMismatchError(
                f"{where}: {key} holds {len(values)} values, but the model standardises {width[0]} ({width[1]}): "
                "the statistics were edited or fitted for another model; restore the preprocessor_config.json "
                "saved with the model."
            )
        if not np.isfinite(values).all():
            raise FeatureExtractorMismatchError(
                f"{where}: {key} holds values that are not finite ({_listed(values, ~np.isfinite(values))}): every "
                "score would be NaN; restore the preprocessor_config.json saved with the model."
            )
        if key == "feature_std" and (values <= 0).any():
            raise FeatureExtractorMismatchError(
                f"{where}: feature_std must be positive, but holds {_listed(values, values <= 0)}: standardising by "
                "it gives NaN or infinite scores; restore the preprocessor_config.json saved with the model."
            )


def _load_lora_adapter(folder: str, feature_extractor: Any, **kwargs) -> tuple[Any, Any]:
    """A folder of LoRA adapters on its base model, merged (a plain transformers classifier), and the folder's
    feature extractor, or the base model's when the folder has none."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForAudioClassification

    from .ssl import merge_lora

    base = PeftConfig.from_pretrained(folder).base_model_name_or_path
    if not base:
        raise ValueError(f"{Path(folder) / ADAPTER_CONFIG_FILE} names no base_model_name_or_path to load them on.")
    try:  # a folder that is gone, or the Hub asked once (never offline), before peft or transformers try
        check_model_location(base, token=kwargs.get("token"))
    except (ModelNotFoundError, HubUnreachableError) as error:
        raise type(error)(
            f"{Path(folder) / ADAPTER_CONFIG_FILE} holds LoRA adapters for base_model_name_or_path {base!r}, which "
            f"cannot be loaded: {error}"
        ) from None
    logger.info("%s holds LoRA adapters: loading them on %s and merging them.", folder, base)
    model = merge_lora(
        PeftModel.from_pretrained(AutoModelForAudioClassification.from_pretrained(base, **kwargs), folder)
    )
    if feature_extractor is None:
        has_extractor = (Path(folder) / FEATURE_EXTRACTOR_NAME).is_file()
        feature_extractor = load_feature_extractor(folder if has_extractor else base, **kwargs)
    where = Path(folder if (Path(folder) / FEATURE_EXTRACTOR_NAME).is_file() else base) / FEATURE_EXTRACTOR_NAME
    check_feature_extractor_fits(model.config, feature_extractor, where)
    return model.eval(), feature_extractor


__all__ = [
    "ADAPTER_CONFIG_FILE",
    "FeatureExtractorMismatchError",
    "check_feature_extractor_fits",
    "is_lora_adapter",
    "load_model",
]
