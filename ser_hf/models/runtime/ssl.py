"""Pretrained speech encoders (wav2vec 2.0, HuBERT, WavLM, data2vec-audio, Whisper) as emotion classifiers.

:func:`build_ssl_classifier` loads a checkpoint (or builds from a config) as a `...ForSequenceClassification` with the
task's labels, then applies one training regime:

- full fine-tuning, with the convolutional feature encoder frozen (`freeze_feature_encoder`, the default);
- the lowest `num_frozen_layers` transformer layers frozen, with everything that feeds them;
- `freeze_base_model`: the whole encoder frozen, only the head trains ("FAST");
- LoRA through peft (`lora_config`): the encoder frozen, low-rank adapters on its attention projections, the head
  (`projector`, `classifier` and, for pooling heads, `pooler`) trained in full; :func:`merge_lora` folds the adapters
  back into a plain transformers model for export.

Mean pooling gives transformers' own classes. Any other `pooling_mode` gives the `Ser...ForSequenceClassification`
subclasses of :mod:`ser_hf.models.modeling_ssl_pooling`, which save with their own `model_type` and code. Whisper
checkpoints always give :class:`~ser_hf.models.modeling_whisper.SerWhisperForAudioClassification` (transformers' class
averages the padding of the 30-s window too), whose window can be shortened (`encoder_window_seconds`).
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any, Mapping, Optional, Sequence, Union

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import (
    AutoConfig,
    PreTrainedConfig,
    PreTrainedModel,
    Wav2Vec2FeatureExtractor,
    WhisperFeatureExtractor,
)
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..configuration_whisper import LAYER_STATISTICS, WHISPER_FRAMES_PER_SECOND, SerWhisperConfig
from ..feature_extraction_whisper import UTTERANCE_NORMALIZATION, SerWhisperFeatureExtractor
from ..pooling import POOLING_MODES
from .feature_extraction_auto import load_feature_extractor
from .labels import Labels, label_maps
from .location import check_model_location, check_weights_readable
from .parameters import count_parameters
from .registry import ENCODER_FAMILIES

logger = logging.getLogger(__name__)

#: Attention projections of every supported encoder: where LoRA adapters go by default.
DEFAULT_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj")
#: The linear modules of a Whisper encoder layer, every one of which gets LoRA adapters with ``finetune_top_layers``
#: by default: the attention's projections and the feed-forward block's two.
TOP_LAYERS_LORA_TARGET_MODULES = (*DEFAULT_LORA_TARGET_MODULES, "fc1", "fc2")
#: Head modules trained in full under LoRA (`pooler` exists only with a pooling head).
HEAD_MODULES = ("projector", "pooler", "classifier")
# Keys of `from_pretrained` keyword arguments that also apply when loading the checkpoint's config.
_HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "force_download", "subfolder")
# Fields of a serialized config that describe the file, not the model.
_SERIALIZATION_KEYS = ("model_type", "transformers_version", "architectures", "auto_map")


# The family of every `model_type` build_ssl_classifier accepts: the checkpoints' and ser-hf's pooling-head types.
_FAMILY_OF_MODEL_TYPE = {
    **ENCODER_FAMILIES,
    **{family.pooling_config_class.model_type: family for family in ENCODER_FAMILIES.values()},
}
#: `model_type`s :func:`build_ssl_classifier` accepts.
SSL_MODEL_TYPES = tuple(_FAMILY_OF_MODEL_TYPE)


def build_ssl_classifier(
    model_name_or_config: Union[str, os.PathLike, PreTrainedConfig],
    labels: Optional[Labels] = None,
    *,
    id2label: Optional[Mapping[int, str]] = None,
    label2id: Optional[Mapping[str, int]] = None,
    pooling_mode: Optional[str] = None,
    use_weighted_layer_sum: Optional[bool] = None,
    classifier_proj_size: Optional[int] = None,
    freeze_feature_encoder: bool = True,
    num_frozen_layers: int = 0,
    freeze_base_model: bool = False,
    lora_config: Optional[LoraConfig] = None,
    config_overrides: Optional[Mapping[str, Any]] = None,
    reinitialize_head: bool = False,
    match_head_labels: bool = False,
    encoder_window_seconds: Optional[int] = None,
    **from_pretrained_kwargs,
) -> Union[PreTrainedModel, PeftModel]:
    """Build a speech emotion classifier on a self-supervised encoder.

    Args:
        model_name_or_config (`str`, `os.PathLike` or `PreTrainedConfig`):
            A Hub id or folder of a wav2vec 2.0 / HuBERT / WavLM / data2vec-audio / Whisper checkpoint (for example
            `"facebook/wav2vec2-base"`, `"openai/whisper-base"`; Whisper's decoder is never read, so an encoder-only
            folder does), whose weights are loaded; or a config, for a randomly initialised model.
        labels (`datasets.ClassLabel` or `Sequence[str]`, *optional*):
            The task's labels, usually `dataset.features["label"]`; or pass `id2label` (and `label2id`).
        pooling_mode (`str`, *optional*):
            `"mean"` (transformers' own head), `"max"`, `"mean_max"`, `"statistics"`, `"attention"` or
            `"attentive_statistics"`; for Whisper also `"layer_statistics"` (each layer's mean and standard deviation
            over the clip's frames, concatenated; see `SerWhisperConfig`). Defaults to the checkpoint's own head
            (mean for the published encoders).
        use_weighted_layer_sum (`bool`, *optional*):
            Classify a learned softmax-weighted sum of all hidden layers (SUPERB) instead of the last one.
        classifier_proj_size (`int`, *optional*):
            Width of the projector before pooling; defaults to the config's (256).
        freeze_feature_encoder (`bool`, *optional*, defaults to `True`):
            Freeze the convolutional feature encoder, the usual choice when fine-tuning on small corpora.
        num_frozen_layers (`int`, *optional*, defaults to 0):
            Freeze the lowest `num_frozen_layers` transformer layers and everything below them (feature encoder,
            feature projection, positional convolution, input layer norm): training a module under frozen layers
            would still cost the backward pass through them.
        freeze_base_model (`bool`, *optional*, defaults to `False`):
            Freeze the whole encoder; only the head (and the layer weights) train. Fast, and a strong baseline.
        lora_config (`peft.LoraConfig`, *optional*):
            Train LoRA adapters instead (see :func:`ssl_lora_config`); the result is a `peft.PeftModel`.
        config_overrides (`Mapping[str, Any]`, *optional*):
            Config fields to set before the model is built, such as `{"layerdrop": 0.0, "mask_time_prob": 0.05}`.
        reinitialize_head (`bool`, *optional*, defaults to `False`):
            Start a new head on a checkpoint whose head was fine-tuned for other labels. Without it such a checkpoint
            is refused (a head of the same size but other labels would otherwise load silently, with the wrong
            meaning); a checkpoint fine-tuned for exactly `labels` keeps its head either way.
        match_head_labels (`bool`, *optional*, defaults to `False`):
            Start from a checkpoint fine-tuned for other labels (a trained emotion classifier being adapted): its
            head is kept, the classifier's rows matched to `labels` by name: a label both have keeps its row, a label
            the checkpoint lacks gets a new one, and the checkpoint's rows of labels not in `labels` are dropped.
        encoder_window_seconds (`int`, *optional*):
            Whisper only: shorten the encoder's window (30 s for OpenAI's checkpoints) to this many seconds by keeping
            its first positional embeddings (see :func:`set_encoder_window`); pass the same value to
            :func:`build_ssl_feature_extractor`. Saved with the model.
        **from_pretrained_kwargs:
            Passed to `from_pretrained` (`revision`, `cache_dir`, `token`, `dtype`, `attn_implementation`,
            `use_safetensors`, ...).

    Returns:
        A `...ForSequenceClassification`, or a `peft.PeftModel` wrapping one when `lora_config` is given.

    Example:

    ```python
    >>> from ser_hf.models import build_ssl_classifier, ssl_lora_config
    >>> model = build_ssl_classifier(
    ...     "facebook/wav2vec2-base", dataset.features["label"], pooling_mode="attentive_statistics",
    ...     lora_config=ssl_lora_config(r=8),
    ... )
    ```
    """
    _check_regime(freeze_feature_encoder, num_frozen_layers, freeze_base_model, lora_config)
    config, pretrained = _starting_config(model_name_or_config, from_pretrained_kwargs)
    family, pooling_mode = _family_and_pooling(config, pooling_mode)
    settings = _config_settings(config_overrides, use_weighted_layer_sum, classifier_proj_size)
    settings["id2label"], settings["label2id"] = label_maps(labels, id2label, label2id)
    head_labels = fine_tuned_labels(config) if pretrained is not None else None
    task_labels = [settings["id2label"][i] for i in sorted(settings["id2label"])]
    _check_head_choice(pretrained, head_labels, task_labels, reinitialize_head, match_head_labels)
    config_class, model_class, pooling = _classes_for_pooling(family, pooling_mode)
    config = _convert_config(config, config_class, {**settings, **pooling})
    if pretrained is None:
        model = model_class(config)
    else:
        model = _load_classifier(
            model_class, pretrained, config, head_labels, task_labels, match_head_labels, from_pretrained_kwargs
        )
    if encoder_window_seconds is not None:
        set_encoder_window(model, encoder_window_seconds)
    model = _apply_regime(model, freeze_feature_encoder, num_frozen_layers, freeze_base_model, lora_config)
    logger.info("Built %s: %s", type(model).__name__, count_parameters(model))
    return model


def _hub_kwargs(from_pretrained_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `from_pretrained` that also say where the checkpoint's other files are read from (its
    config, its weights file)."""
    return {key: from_pretrained_kwargs[key] for key in _HUB_KWARGS if key in from_pretrained_kwargs}


def _family_and_pooling(config: PreTrainedConfig, pooling_mode: Optional[str]) -> tuple[Any, str]:
    """The encoder family of `config`'s `model_type` and the pooling the classifier takes (:func:`_pooling_mode`),
    refusing a model type no family has and a pooling the family's heads lack."""
    family = _FAMILY_OF_MODEL_TYPE.get(config.model_type)
    if family is None:
        raise ValueError(
            f"model_type {config.model_type!r} is not a supported speech encoder; expected one of "
            f"{', '.join(SSL_MODEL_TYPES)}."
        )
    pooling_mode = _pooling_mode(config, pooling_mode)
    pooling_modes = POOLING_MODES + ((LAYER_STATISTICS,) if family.config_class is SerWhisperConfig else ())
    if pooling_mode not in pooling_modes:
        raise ValueError(f"pooling_mode must be one of {', '.join(pooling_modes)}, got {pooling_mode!r}.")
    return family, pooling_mode


def _pooling_mode(config: PreTrainedConfig, pooling_mode: Optional[str]) -> str:
    """`pooling_mode`, or when it is not given the checkpoint's own (transformers' configs have none: the mean)."""
    return pooling_mode if pooling_mode is not None else getattr(config, "pooling_mode", "mean")


def _starting_config(
    model_name_or_config: Union[str, os.PathLike, PreTrainedConfig], from_pretrained_kwargs: Mapping[str, Any]
) -> tuple[PreTrainedConfig, Optional[Union[str, os.PathLike]]]:
    """The config the classifier starts from, and the checkpoint whose weights it loads (`None` for a config given
    directly, whose model is initialised at random). A checkpoint's location and weights are checked first, so that a
    misspelt folder or an unreadable file is named before transformers asks the Hub."""
    if isinstance(model_name_or_config, PreTrainedConfig):
        if from_pretrained_kwargs:
            raise ValueError(f"{sorted(from_pretrained_kwargs)} only apply when loading a checkpoint, not a config.")
        return copy.deepcopy(model_name_or_config), None
    pretrained = model_name_or_config
    check_model_location(
        pretrained, revision=from_pretrained_kwargs.get("revision"), token=from_pretrained_kwargs.get("token")
    )
    check_weights_readable(pretrained)
    return AutoConfig.from_pretrained(pretrained, **_hub_kwargs(from_pretrained_kwargs)), pretrained


def _check_head_choice(
    pretrained: Optional[Union[str, os.PathLike]],
    head_labels: Optional[list[str]],
    task_labels: list[str],
    reinitialize_head: bool,
    match_head_labels: bool,
) -> None:
    """Raise a `ValueError` unless what becomes of the checkpoint's classification head is clear: a head fine-tuned
    for other labels is kept only when matched to the task's by name (`match_head_labels`) or replaced when asked
    (`reinitialize_head`), never loaded silently with the wrong meaning."""
    if match_head_labels and reinitialize_head:
        raise ValueError("match_head_labels keeps the checkpoint's head and reinitialize_head replaces it: pick one.")
    if match_head_labels and head_labels is None:
        raise ValueError(
            f"match_head_labels: {pretrained or 'a config'} has no fine-tuned classification head (its labels are "
            "transformers' placeholders, LABEL_0 onwards): start from a trained ser-hf model."
        )
    if match_head_labels and not set(head_labels) & set(task_labels):
        raise ValueError(
            f"match_head_labels: {pretrained} was fine-tuned for {head_labels}, none of this task's {task_labels}; "
            "set reinitialize_head=True to train a new head on its encoder instead."
        )
    if head_labels is not None and head_labels != task_labels and not reinitialize_head and not match_head_labels:
        raise ValueError(
            f"{pretrained} has a classification head fine-tuned for the labels {head_labels}, not this task's "
            f"{task_labels}. Set reinitialize_head=True (recipe key reinitialize_head: true) to train a new head on "
            "its encoder."
        )


def _load_classifier(
    model_class: type,
    pretrained: Union[str, os.PathLike],
    config: PreTrainedConfig,
    head_labels: Optional[list[str]],
    task_labels: list[str],
    match_head_labels: bool,
    from_pretrained_kwargs: dict[str, Any],
) -> PreTrainedModel:
    """`model_class` with the checkpoint's weights: a head fine-tuned for exactly the task's labels kept, one for other
    labels matched to them row by row (`match_head_labels`) or started anew (as :func:`_check_head_choice` allowed),
    a head of another shape (other labels, another pooling) initialised."""
    # A head of another shape (other labels, another pooling) is left out of the loaded weights and initialised.
    from_pretrained_kwargs.setdefault("ignore_mismatched_sizes", True)
    # Matched by label below: the classifier of another number of labels is expected to differ in shape.
    expected_shapes = ("classifier.",) if match_head_labels else ()
    model = _load_quietly(model_class, pretrained, config, from_pretrained_kwargs, expected_shapes)
    if head_labels is None or head_labels == task_labels:
        return model
    if match_head_labels:
        _match_classifier_rows(model, pretrained, head_labels, task_labels, from_pretrained_kwargs)
        return model
    # Same shape, other labels: it was loaded, so start it anew here (PyTorch's default initialisation).
    for name, module in model.named_modules():
        if name.split(".")[0] in HEAD_MODULES and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    logger.info(
        "%s: new classification head for %s (the checkpoint's was for %s).", pretrained, task_labels, head_labels
    )
    return model


def _apply_regime(
    model: PreTrainedModel,
    freeze_feature_encoder: bool,
    num_frozen_layers: int,
    freeze_base_model: bool,
    lora_config: Optional[LoraConfig],
) -> Union[PreTrainedModel, PeftModel]:
    """`model` under its training regime (checked by :func:`_check_regime`): LoRA adapters, the whole encoder frozen,
    or its lowest layers frozen; the feature encoder frozen under each, and under full fine-tuning unless asked not."""
    if freeze_feature_encoder or lora_config is not None or freeze_base_model:
        # Besides freezing its weights, this stops the feature encoder marking the waveform as requiring grad: with
        # the encoder frozen (LoRA, freeze_base_model) autograd would otherwise record the frozen convolutions and
        # run their backward pass for nothing (slower LoRA steps, more saved activations: see docs/results/LOG.md).
        model.freeze_feature_encoder()
    if lora_config is not None:
        return apply_lora(model, lora_config)
    if freeze_base_model:
        model.freeze_base_model()
    elif num_frozen_layers:
        freeze_encoder_layers(model, num_frozen_layers)
    return model


def _match_classifier_rows(
    model: PreTrainedModel,
    pretrained: Union[str, os.PathLike],
    head_labels: Sequence[str],
    task_labels: Sequence[str],
    from_pretrained_kwargs: Mapping[str, Any],
) -> None:
    """Give `model`'s final linear ``classifier`` the checkpoint's row of every task label it was fine-tuned for (the
    rest of the head loaded as it was); a task label it lacks keeps its new row (PyTorch's initialisation)."""
    import torch
    from safetensors import safe_open
    from transformers.utils import cached_file

    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise ValueError(f"match_head_labels needs a final linear classifier; {type(model).__name__} has none.")
    weights_file = cached_file(str(pretrained), "model.safetensors", **_hub_kwargs(from_pretrained_kwargs))
    with safe_open(weights_file, framework="pt") as weights:
        if not {"classifier.weight", "classifier.bias"} <= set(weights.keys()):
            raise ValueError(f"match_head_labels: {weights_file} holds no classifier.weight and classifier.bias.")
        weight, bias = weights.get_tensor("classifier.weight"), weights.get_tensor("classifier.bias")
    if tuple(weight.shape) != (len(head_labels), classifier.in_features):
        raise ValueError(
            f"match_head_labels: {weights_file}'s classifier is {tuple(weight.shape)}, not ({len(head_labels)}, "
            f"{classifier.in_features}) as its config's labels and the head's width say."
        )
    kept, new = [], []
    with torch.no_grad():
        for row, label in enumerate(task_labels):
            if label in head_labels:
                classifier.weight[row] = weight[head_labels.index(label)].to(classifier.weight.dtype)
                classifier.bias[row] = bias[head_labels.index(label)].to(classifier.bias.dtype)
                kept.append(label)
            else:
                new.append(label)
    dropped = [label for label in head_labels if label not in task_labels]
    logger.info(
        "%s: head kept for %s%s%s.",
        pretrained,
        ", ".join(kept),
        f"; new rows (trained from scratch) for {', '.join(new)}" if new else "",
        f"; its rows for {', '.join(dropped)} dropped (this task chooses among its own labels)" if dropped else "",
    )


#: The weights a classifier built on a pretrained encoder starts without: its head (and the layer weights).
_HEAD_PREFIXES = ("projector.", "classifier.", "pooler.", "layer_weights")


class _DropLoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


def _load_quietly(
    model_class, pretrained, config, from_pretrained_kwargs, expected_shapes: Sequence[str] = ()
) -> PreTrainedModel:
    """`model_class.from_pretrained` without transformers' load-report table: the new head's missing weights, which
    every classifier built on an encoder expects, are logged at debug level; anything else the checkpoint lacks, holds
    in excess or holds in another shape, in one warning line naming the keys."""
    # A filter, not a higher level: transformers 5 checks a tensor-parallel plan, and warns about it, whenever its
    # logger's level is WARNING or above.
    transformers_logger = logging.getLogger("transformers.modeling_utils")
    report_filter = _DropLoadReport()
    transformers_logger.addFilter(report_filter)
    try:
        model, info = model_class.from_pretrained(
            pretrained, config=config, output_loading_info=True, **from_pretrained_kwargs
        )
    finally:
        transformers_logger.removeFilter(report_filter)
    missing = sorted(info.get("missing_keys") or [])
    expected = [key for key in missing if key.startswith(_HEAD_PREFIXES)]
    if expected:
        logger.debug("%s: a new head, initialised: %s", pretrained, ", ".join(expected))
    problems = {
        "missing (initialised)": [key for key in missing if key not in expected],
        "not used": sorted(info.get("unexpected_keys") or []),
        "of another shape (initialised)": sorted(
            str(key)
            for key in info.get("mismatched_keys") or []
            if not str(key[0] if isinstance(key, tuple) else key).startswith(expected_shapes)
        ),
    }
    problems = {what: keys for what, keys in problems.items() if keys}
    if problems:
        logger.warning(
            "%s: weights %s",
            pretrained,
            "; ".join(
                f"{what}: {', '.join(keys[:5])}" + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
                for what, keys in problems.items()
            ),
        )
    return model


def _check_regime(freeze_feature_encoder, num_frozen_layers, freeze_base_model, lora_config) -> None:
    if num_frozen_layers < 0:
        raise ValueError(f"num_frozen_layers must be >= 0, got {num_frozen_layers}.")
    if num_frozen_layers and not freeze_feature_encoder:
        raise ValueError(
            "num_frozen_layers freezes the feature encoder too: it cannot go with freeze_feature_encoder=False."
        )
    if num_frozen_layers and freeze_base_model:
        raise ValueError("Pass num_frozen_layers or freeze_base_model, not both (freeze_base_model freezes all).")
    if lora_config is not None and (num_frozen_layers or freeze_base_model):
        raise ValueError("LoRA already freezes the whole encoder: drop num_frozen_layers and freeze_base_model.")


def _classes_for_pooling(family, pooling_mode: str) -> tuple[type, type, dict[str, str]]:
    """The config and model classes of an encoder `family` for `pooling_mode`, and the config setting that names it
    (transformers' own classes, for the mean, have none)."""
    if pooling_mode == "mean":
        pooling = {"pooling_mode": pooling_mode} if family.config_class is family.pooling_config_class else {}
        return family.config_class, family.model_class, pooling
    return family.pooling_config_class, family.pooling_model_class, {"pooling_mode": pooling_mode}


def check_config_overrides(
    model_name_or_path: Union[str, os.PathLike],
    config_overrides: Mapping[str, Any],
    *,
    pooling_mode: Optional[str] = None,
    use_weighted_layer_sum: Optional[bool] = None,
    **hub_kwargs,
) -> None:
    """Apply `config_overrides`, `pooling_mode` and `use_weighted_layer_sum` to the checkpoint's config as
    :func:`build_ssl_classifier` will, reading only the checkpoint's ``config.json``: a value the config refuses (a
    layer the encoder lacks, ...) raises its own error before any weights or audio are read. A checkpoint whose config
    cannot be read here is left to :func:`build_ssl_classifier`, which names what is missing; a name that points
    nowhere (a misspelt local folder) raises :func:`check_model_location`'s error at once, before transformers asks
    the Hub for it."""
    check_model_location(model_name_or_path, revision=hub_kwargs.get("revision"), token=hub_kwargs.get("token"))
    try:
        config = AutoConfig.from_pretrained(model_name_or_path, **hub_kwargs)
    except (OSError, ValueError):
        return
    family = _FAMILY_OF_MODEL_TYPE.get(config.model_type)
    if family is None:
        return
    config_class, _, pooling = _classes_for_pooling(family, _pooling_mode(config, pooling_mode))
    _convert_config(config, config_class, {**_config_settings(config_overrides, use_weighted_layer_sum), **pooling})


def _config_settings(
    config_overrides: Optional[Mapping[str, Any]],
    use_weighted_layer_sum: Optional[bool],
    classifier_proj_size: Optional[int] = None,
) -> dict[str, Any]:
    """The config fields :func:`build_ssl_classifier` (and :func:`check_config_overrides`) set: `config_overrides`,
    with the arguments given explicitly on top."""
    settings = dict(config_overrides or {})
    if use_weighted_layer_sum is not None:
        settings["use_weighted_layer_sum"] = use_weighted_layer_sum
    if classifier_proj_size is not None:
        settings["classifier_proj_size"] = classifier_proj_size
    return settings


def _convert_config(config: PreTrainedConfig, config_class: type, settings: Mapping[str, Any]) -> PreTrainedConfig:
    """`config` as an instance of `config_class` (same encoder family) with `settings` applied."""
    fields = {key: value for key, value in config.to_dict().items() if key not in _SERIALIZATION_KEYS}
    if not issubclass(config_class, tuple(family.pooling_config_class for family in ENCODER_FAMILIES.values())):
        fields.pop("pooling_mode", None)
        fields.pop("pooling_attention_size", None)
    fields.update(settings)
    name_or_path = fields.pop("_name_or_path", "")
    converted = config_class(**fields)
    converted._name_or_path = name_or_path
    return converted


def freeze_encoder_layers(model: PreTrainedModel, num_frozen_layers: int) -> None:
    """Freeze the lowest `num_frozen_layers` transformer layers of an SSL classifier and everything that feeds them.

    That is the convolutional feature encoder, the feature projection, the masked-frame embedding, the positional
    convolution and (in the post-norm encoders, which normalise before the first layer) the encoder's layer norm.
    """
    config = model.config
    if not 0 < num_frozen_layers <= config.num_hidden_layers:
        raise ValueError(f"num_frozen_layers must be in 1..{config.num_hidden_layers}, got {num_frozen_layers}.")
    model.freeze_feature_encoder()
    if isinstance(config, SerWhisperConfig):
        # Whisper: the convolutions (frozen above) and fixed positional embeddings feed the layers directly.
        for layer in model.encoder.layers[:num_frozen_layers]:
            layer.requires_grad_(False)
        return
    encoder_model = model.base_model
    frozen = [
        encoder_model.feature_projection,
        encoder_model.encoder.pos_conv_embed,
        *encoder_model.encoder.layers[:num_frozen_layers],
    ]
    if not getattr(config, "do_stable_layer_norm", False):
        frozen.append(encoder_model.encoder.layer_norm)
    for module in frozen:
        module.requires_grad_(False)
    if getattr(encoder_model, "masked_spec_embed", None) is not None:
        encoder_model.masked_spec_embed.requires_grad_(False)


def set_encoder_window(model: PreTrainedModel, seconds: int) -> None:
    """Shorten a Whisper classifier's encoder window to `seconds` by keeping its first `50 * seconds` positional
    embeddings (`config.max_source_positions`).

    Whisper was trained on 30-s windows only; a short clip padded to 30 s pays for all of them. A shorter window costs
    far less and keeps the features close to the 30-s ones (docs/results/LOG.md measures both). The model's feature
    extractor must use the same window (`chunk_length`): :func:`build_ssl_feature_extractor` with the same
    `encoder_window_seconds`.
    """
    config = model.config
    if not isinstance(config, SerWhisperConfig):
        raise ValueError(
            f"encoder_window_seconds applies to Whisper encoders, not to model_type {config.model_type!r}."
        )
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise ValueError(f"encoder_window_seconds must be a whole number of seconds >= 1, got {seconds!r}.")
    positions = seconds * WHISPER_FRAMES_PER_SECOND
    available = config.max_source_positions
    if positions > available:
        raise ValueError(
            f"encoder_window_seconds={seconds} needs {positions} positional embeddings, but this encoder has "
            f"{available} ({available / WHISPER_FRAMES_PER_SECOND:g} s): choose at most "
            f"{available // WHISPER_FRAMES_PER_SECOND} s."
        )
    if positions == available:
        return
    encoder = model.encoder
    embeddings = encoder.embed_positions
    shortened = nn.Embedding(positions, embeddings.embedding_dim, device=embeddings.weight.device)
    shortened.weight.data.copy_(embeddings.weight.data[:positions])
    shortened.to(embeddings.weight.dtype).requires_grad_(False)
    encoder.embed_positions = shortened
    encoder.max_source_positions = positions
    config.max_source_positions = positions
    logger.info("Whisper encoder window: %d s (the first %d of %d positions).", seconds, positions, available)


def _check_whisper_only(
    feature_extractor,
    encoder_window_seconds: Optional[int],
    normalization: str,
    trim_silence_db: Optional[float],
    speaker_statistics_check: bool = False,
    dereverberation: Optional[str] = None,
    dereverberation_taps: Optional[int] = None,
) -> None:
    if (
        encoder_window_seconds is not None
        or normalization != "none"
        or trim_silence_db is not None
        or dereverberation is not None
        or dereverberation_taps is not None
    ):
        name = feature_extractor.__name__ if isinstance(feature_extractor, type) else type(feature_extractor).__name__
        raise ValueError(
            "encoder_window_seconds, normalization, trim_silence_db and dereverberation (with dereverberation_taps) "
            f"apply to Whisper encoders, not to {name}."
        )
    if speaker_statistics_check:
        raise ValueError("speaker_statistics_check applies to Whisper encoders with speaker normalization.")


def check_feature_extractor(model: PreTrainedModel, feature_extractor: SequenceFeatureExtractor) -> None:
    """Raise a `ValueError` naming both values when a Whisper classifier's feature extractor does not give the inputs
    its encoder takes: the number of mel bins, and the window (`chunk_length` against `max_source_positions`)."""
    config = getattr(model, "config", None)
    if not isinstance(config, SerWhisperConfig):
        return
    if not isinstance(feature_extractor, SerWhisperFeatureExtractor):
        raise ValueError(
            f"A Whisper classifier needs a SerWhisperFeatureExtractor (it returns the attention mask the model pools "
            f"the clip's frames with), got {type(feature_extractor).__name__}; build it with "
            "build_ssl_feature_extractor."
        )
    if feature_extractor.feature_size != config.num_mel_bins:
        raise ValueError(
            f"The feature extractor computes {feature_extractor.feature_size} mel bins but the encoder takes "
            f"{config.num_mel_bins} (num_mel_bins): use the checkpoint's own preprocessor_config.json."
        )
    if feature_extractor.chunk_length * WHISPER_FRAMES_PER_SECOND != config.max_source_positions:
        raise ValueError(
            f"The feature extractor's window is {feature_extractor.chunk_length:g} s (chunk_length) but the "
            f"encoder's is {config.window_seconds:g} s (max_source_positions={config.max_source_positions}): pass "
            "the same encoder_window_seconds to build_ssl_classifier and build_ssl_feature_extractor."
        )
    utterance = feature_extractor.normalization == UTTERANCE_NORMALIZATION
    if utterance != config.center_frames:
        raise ValueError(
            f"The feature extractor's normalization is {feature_extractor.normalization!r} but the model's "
            f"center_frames is {config.center_frames}: per-utterance normalisation needs both "
            f"(normalization='{UTTERANCE_NORMALIZATION}' with center_frames=True), other normalisations neither."
        )


def ssl_lora_config(
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
    target_modules: Sequence[str] = DEFAULT_LORA_TARGET_MODULES,
    modules_to_save: Sequence[str] = ("projector", "classifier"),
    **kwargs,
) -> LoraConfig:
    """A `peft.LoraConfig` for an SSL classifier: adapters on the attention projections, the head trained in full.

    Args:
        r (`int`, *optional*, defaults to 8): Rank of the adapters.
        lora_alpha (`int`, *optional*, defaults to 16): Scaling numerator; the update is scaled by `lora_alpha / r`.
        lora_dropout (`float`, *optional*, defaults to 0.05): Dropout on the adapters' input.
        target_modules (`Sequence[str]`, *optional*): Module names that get adapters; defaults to the attention's
            `q_proj`, `k_proj`, `v_proj` and `out_proj`. Add `"intermediate_dense"`, `"output_dense"` for the
            feed-forward layers.
        modules_to_save (`Sequence[str]`, *optional*): Modules trained in full and saved with the adapter;
            :func:`apply_lora` adds the `pooler` of pooling heads.
        **kwargs: Other `LoraConfig` fields (`bias`, `use_rslora`, `init_lora_weights`, ...).
    """
    if kwargs.get("task_type") is not None:
        raise ValueError("Leave task_type unset: peft's task types are for text models and pass input_ids.")
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=list(target_modules),
        modules_to_save=list(modules_to_save),
        **kwargs,
    )


def apply_lora(model: PreTrainedModel, config: LoraConfig) -> PeftModel:
    """Wrap an SSL classifier in LoRA adapters, training its head (`projector`, `pooler`, `classifier`) in full.

    Head modules missing from `config.modules_to_save` are added. With `use_weighted_layer_sum`, the layer weights
    (a bare parameter, which peft cannot list in `modules_to_save`) are trained too; adapter-only checkpoints do not
    hold them, so export with :func:`merge_lora`.
    """
    if config.task_type is not None:
        raise ValueError("Leave task_type unset: peft's task types are for text models and pass input_ids.")
    config = copy.deepcopy(config)
    modules_to_save = list(config.modules_to_save or [])
    for name in HEAD_MODULES:
        if getattr(model, name, None) is not None and name not in modules_to_save:
            modules_to_save.append(name)
    config.modules_to_save = modules_to_save
    check_lora_targets(model, config.target_modules)
    peft_model = get_peft_model(model, config)
    # Whisper's layer-statistics head concatenates the layers: it learns no layer weights.
    layer_weights = getattr(model, "layer_weights", None)
    if layer_weights is not None:
        layer_weights.requires_grad_(True)
        logger.warning(
            "LoRA with use_weighted_layer_sum: the layer weights train, but peft adapter checkpoints do not store "
            "them; save the model with merge_lora(model).save_pretrained(...)."
        )
    return peft_model


def check_lora_targets(model: PreTrainedModel, target_modules: Any) -> None:
    """Raise a `ValueError` naming the recipe key, the names at fault and the encoder's own linear modules when a
    LoRA target (a module name, as peft matches it by its last part) names no module of `model`'s encoder, before
    peft wraps anything: a Whisper classifier has no decoder, so a decoder module (`encoder_attn`) is one of them.
    A regular expression (a string) is left to peft."""
    if target_modules is None or isinstance(target_modules, str):
        return
    encoder = model.base_model  # Whisper's classifier answers with its encoder
    names = {name.rsplit(".", 1)[-1] for name, _ in encoder.named_modules() if name}
    missing = sorted(str(target) for target in target_modules if str(target) not in names)
    if missing:
        linear = sorted({name.rsplit(".", 1)[-1] for name, m in encoder.named_modules() if isinstance(m, nn.Linear)})
        decoder = ""
        if isinstance(model.config, SerWhisperConfig):
            decoder = " (a Whisper classifier keeps the encoder only: decoder modules cannot be adapted)"
        raise ValueError(
            f"lora_target_modules: {', '.join(missing)} name no module of this {model.config.model_type} encoder"
            f"{decoder}; its linear modules are {', '.join(linear)}. Set lora_target_modules to some of them "
            f"(default: {', '.join(DEFAULT_LORA_TARGET_MODULES)})."
        )


def merge_lora(model: PeftModel) -> PreTrainedModel:
    """Fold the LoRA adapters into the encoder's weights and return the plain transformers classifier.

    The result saves and loads like any `...ForSequenceClassification` (no peft needed) and gives the adapted
    model's outputs. Its parameters keep the `requires_grad` flags of LoRA training.
    """
    if not isinstance(model, PeftModel):
        raise TypeError(f"merge_lora expects a peft.PeftModel, got {type(model).__name__}.")
    return model.merge_and_unload()


def fine_tuned_labels(config: PreTrainedConfig) -> Optional[list[str]]:
    """The labels a checkpoint's classification head was fine-tuned for, or `None` for a bare encoder (whose config
    holds transformers' placeholder labels ``LABEL_0``, ``LABEL_1``, ...)."""
    id2label = getattr(config, "id2label", None) or {}
    names = [id2label[i] for i in sorted(id2label)]
    if not names or names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return names


def minimum_input_samples(config: PreTrainedConfig) -> int:
    """Samples a clip needs for the model to output one frame: the receptive field of an SSL encoder's convolutional
    feature encoder (400 samples, 25 ms, for wav2vec2-base geometry), 1 for models without one (the baselines'
    feature extractors pad a short clip to one analysis window themselves)."""
    kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
    if not kernels or not strides:
        return 1
    receptive_field = 1
    for kernel, stride in zip(reversed(kernels), reversed(strides)):
        receptive_field = (receptive_field - 1) * stride + kernel
    return receptive_field


def build_ssl_feature_extractor(
    model_name_or_config: Union[str, os.PathLike, PreTrainedConfig],
    *,
    encoder_window_seconds: Optional[int] = None,
    normalization: str = "none",
    trim_silence_db: Optional[float] = None,
    speaker_statistics_check: bool = False,
    dereverberation: Optional[str] = None,
    dereverberation_taps: Optional[int] = None,
    **from_pretrained_kwargs,
) -> SequenceFeatureExtractor:
    """The feature extractor matching an SSL encoder: the checkpoint's own, or one derived from a config.

    Whisper encoders get a :class:`~ser_hf.models.SerWhisperFeatureExtractor` with the checkpoint's settings, the
    window `encoder_window_seconds` (the checkpoint's by default), the `normalization` of the encoder's states and
    `trim_silence_db` (each clip's leading and trailing silence trimmed; `None`: not), `dereverberation` (`"wpe"`:
    each clip's reverberation taken out before the log-mel, by a prediction filter `dereverberation_taps` frames
    long, 10 where `None`; `None`: not), and whether speaker statistics
    are checked (`speaker_statistics_check`, see :mod:`ser_hf.evaluation.speaker_check`).

    A checkpoint without one raises :class:`~ser_hf.models.MissingFeatureExtractorError` naming it. A config gets a
    16 kHz `Wav2Vec2FeatureExtractor` normalising each clip; it returns an attention mask only for encoders whose
    feature encoder uses layer norm (`feat_extract_norm="layer"`, data2vec-audio). Group-norm encoders such as
    `wav2vec2-base` were trained on unmasked zero padding, so transformers feeds them none; their outputs then depend
    slightly on the padding of the batch.
    """
    whisper_changes = {
        "normalization": normalization,
        "trim_silence_db": trim_silence_db,
        "speaker_statistics_check": speaker_statistics_check,
        "dereverberation": dereverberation,
        "dereverberation_taps": dereverberation_taps,
    }
    window = {} if encoder_window_seconds is None else {"chunk_length": encoder_window_seconds}
    if not isinstance(model_name_or_config, PreTrainedConfig):
        feature_extractor = load_feature_extractor(model_name_or_config, **from_pretrained_kwargs)
        if isinstance(feature_extractor, WhisperFeatureExtractor):
            return SerWhisperFeatureExtractor.from_whisper(feature_extractor, **whisper_changes, **window)
        _check_whisper_only(feature_extractor, encoder_window_seconds, **whisper_changes)
        return feature_extractor
    if model_name_or_config.model_type in ("whisper", SerWhisperConfig.model_type):
        checkpoint_window = model_name_or_config.max_source_positions // WHISPER_FRAMES_PER_SECOND
        return SerWhisperFeatureExtractor(
            feature_size=model_name_or_config.num_mel_bins,
            **{"chunk_length": checkpoint_window, **window, **whisper_changes},
        )
    _check_whisper_only(Wav2Vec2FeatureExtractor, encoder_window_seconds, **whisper_changes)
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=getattr(model_name_or_config, "feat_extract_norm", "layer") == "layer",
    )


__all__ = [
    "DEFAULT_LORA_TARGET_MODULES",
    "SSL_MODEL_TYPES",
    "TOP_LAYERS_LORA_TARGET_MODULES",
    "apply_lora",
    "build_ssl_classifier",
    "build_ssl_feature_extractor",
    "check_feature_extractor",
    "check_lora_targets",
    "fine_tuned_labels",
    "freeze_encoder_layers",
    "ssl_lora_config",
    "merge_lora",
    "minimum_input_samples",
    "set_encoder_window",
]
