"""Encoder outputs computed once: each clip's hidden states of a frozen self-supervised encoder, averaged over its
real frames, cached in an Arrow file keyed by the encoder's weights and settings (:func:`encode_dataset`). FAST mode
(:mod:`.fast_mode`) trains a head on them; the feature-encoder cache (:mod:`.feature_encoder_cache`) shares the
per-clip first convolution and the key of a model's weights.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from datasets import Dataset, Features, List, Value, concatenate_datasets
from torch import nn
from transformers import Data2VecAudioForSequenceClassification, PreTrainedModel
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..data.cache_dir import ser_hf_cache_dir
from ..data.clip_index import (
    clip_digests,
    find_cached_clips,
    index_path,
    rows_in_place,
    select_clips,
    write_clip_index,
)
from ..data.dataset_info import column_values, set_ser_info
from ..data.decode import WAVEFORM_COLUMN, cast_to_precision, check_precision
from ..models.configuration_whisper import LAYER_STATISTICS
from ..models.modeling_ssl_pooling import PooledSequenceClassificationMixin
from ..models.modeling_whisper import SerWhisperForAudioClassification, pool_layer_statistics
from ..models.pooling import _VARIANCE_FLOOR
from ..models.runtime.padding import is_padding_invariant
from ..models.runtime.registry import ENCODER_FAMILIES
from .collators import PAD_TO_MULTIPLE_OF, clip_seed
from .encoder_cache_keys import (
    LOWER_STATES_COLUMN,
    encoder_cache_key,
    encoder_key,
    model_state_key,
    pools_layer_statistics,
)
from .speaker_normalization import ENCODER_STATES_COLUMN

logger = logging.getLogger(__name__)

# Each encoder family's mean-pooling classifier (transformers' own, ser-hf's for Whisper), read from the registry:
# ser-hf's pooling heads subclass them, so a family added there is cacheable with no edit here.
_SSL_CLASSIFIERS = tuple(family.model_class for family in ENCODER_FAMILIES.values())

#: Clips per `Dataset.map` batch, in units of forward batches: clips are sorted by length within a map batch, so a
#: larger one pads less (here and in the feature-encoder cache).
FORWARD_BATCHES_PER_MAP_BATCH = 8


def check_cacheable(model: Any) -> None:
    """Raise a `ValueError` unless `model`'s logits can be computed from cached, mean-pooled encoder outputs.

    That takes a transformers wav2vec 2.0 / HuBERT / WavLM / data2vec-audio `...ForSequenceClassification` (or a
    ser-hf `Ser...ForSequenceClassification` or `SerWhisperForAudioClassification` with `pooling_mode="mean"`), not
    wrapped by peft, whose whole encoder (`model.base_model`) is frozen, as
    `build_ssl_classifier(..., freeze_base_model=True)` leaves it.

    Args:
        model (`PreTrainedModel`): the classifier to check.
    """
    if _is_peft_model(model):
        raise ValueError(
            "FAST mode cannot cache the encoder of a LoRA (peft) model: its adapters train, so the encoder outputs "
            "change every step. Build the model with freeze_base_model=True and no lora_config, or train LoRA on raw "
            "audio (or merge trained adapters with ser_hf.merge_lora and freeze the result)."
        )
    if not isinstance(model, _SSL_CLASSIFIERS):
        raise ValueError(
            f"FAST mode needs a {' / '.join(family.description for family in ENCODER_FAMILIES.values())} "
            f"classifier, got {type(model).__name__}; train other models on raw audio."
        )
    pooling_mode = getattr(model.config, "pooling_mode", "mean")
    pooled_head = isinstance(model, (PooledSequenceClassificationMixin, SerWhisperForAudioClassification))
    if pooled_head and pooling_mode not in cacheable_pooling_modes(model):
        raise ValueError(
            f"FAST mode needs pooling that caches, but the model pools with pooling_mode={pooling_mode!r}, which "
            f"reads every frame, not just their statistics. Build it with pooling_mode in "
            f"{', '.join(map(repr, cacheable_pooling_modes(model)))}, or train on raw audio."
        )
    trainable = [name for name, parameter in model.base_model.named_parameters() if parameter.requires_grad]
    if trainable:
        raise ValueError(
            f"FAST mode needs the whole encoder frozen, but {len(trainable)} of its parameters train (such as "
            f"{model.base_model_prefix}.{trainable[0]}). Build the model with freeze_base_model=True, or call "
            "model.freeze_base_model()."
        )


def cacheable_pooling_modes(model: Any) -> tuple[str, ...]:
    """The `pooling_mode`s whose logits follow from cached pooled encoder states: the mean, and for Whisper each
    layer's statistics (`"layer_statistics"`)."""
    return ("mean", LAYER_STATISTICS) if isinstance(model, SerWhisperForAudioClassification) else ("mean",)


def _is_peft_model(model: Any) -> bool:
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    if isinstance(model, PeftModel):
        return True
    # Adapters injected without the PeftModel wrapper (peft.inject_adapter_in_model) train just the same.
    return isinstance(model, nn.Module) and any(isinstance(module, BaseTunerLayer) for module in model.modules())


def encode_dataset(
    model: PreTrainedModel,
    feature_extractor: SequenceFeatureExtractor,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    load_from_cache: bool = True,
    batch_group_norm: Optional[bool] = None,
    precision: str = "float32",
    lower_layer: Optional[int] = None,
    augmentation: Optional[Any] = None,
    augmentation_seed: int = 0,
    column: str = ENCODER_STATES_COLUMN,
) -> Dataset:
    """Add an `encoder_states` column: each clip's encoder hidden states, averaged over its real frames.

    A row holds `(num_hidden_layers + 1, hidden_size)` floats with `config.use_weighted_layer_sum` (every layer, the
    input embeddings first), `(hidden_size,)` otherwise (the last layer); a Whisper classifier with
    `pooling_mode="layer_statistics"` caches each layer's mean and standard deviation, `(layers, 2 * hidden_size)`.
    Each clip's value equals that of the clip encoded alone, unpadded: encoders that are exactly padding-invariant
    (layer-norm feature encoder, feature extractor returning an attention mask, not data2vec-audio) run in batches of
    clips sorted by length; group-norm encoders such as wav2vec2-base, whose first convolution normalises over the
    whole padded time axis, run in such batches on an accelerator, with that one layer run clip by clip (see
    :func:`first_conv_layer_per_clip`), and one clip per forward on CPU (see `batch_group_norm`); data2vec-audio, whose
    positional convolutions leak padding into the last frames, one clip per forward.

    The states are written by `Dataset.map` to `encoder-<key>.arrow` in `cache_dir`, where the key hashes the
    dataset's fingerprint, the model config (less the head's own fields), the encoder's weights and the feature
    extractor's settings: a second call with the same encoder and data reads the file, any change recomputes it. The
    file holds only the new column; every column of `dataset` is kept. Without a file of its own, a dataset takes the
    states of the clips that any cache of the same encoder in `cache_dir` holds (an index of clip digests beside each
    file, :mod:`~ser_hf.data.clip_index`: a merged corpus from each corpus's cache, read where they are) and encodes
    only the others, into a cache file of their own.

    Args:
        model (`PreTrainedModel`): an SSL classifier that passes :func:`check_cacheable`; run on its own device.
        feature_extractor (`SequenceFeatureExtractor`): the model's feature extractor (normalises each clip).
        dataset (`Dataset`): prepared clips, with the `waveform` column of :func:`ser_hf.prepare_audio`.
        batch_size (`int`, *optional*, defaults to 8): clips per forward pass, for padding-invariant encoders.
        cache_dir (`str` or `os.PathLike`, *optional*): where the cache file lives; defaults to
            `$HF_DATASETS_CACHE/ser_hf`.
        load_from_cache (`bool`, *optional*, defaults to `True`): reuse a cache file written for the same inputs.
        batch_group_norm (`bool`, *optional*): encode group-norm encoders in batches, their first convolution clip by
            clip; by default on an accelerator only. On CPU a single 3-5 s clip already makes matrices large enough,
            and one clip per forward was faster than masked batches (see docs/results/LOG.md).
        precision (`str`, *optional*, defaults to `"float32"`): how the states are stored, `"float32"` or
            `"float16"` (half the size; :class:`CachedEncoderHead` computes in float32 either way). Part of the key.
        lower_layer (`int`, *optional*): also cache, in a `lower_states` column, each clip's input to this encoder
            layer (`(frames, hidden_size)`, the clip's own frames only), for the layers above it to be fine-tuned on
            (:class:`~ser_hf.inputs.top_layers.TopLayersMode`); a Whisper classifier with `trim_window` and
            `layer_statistics` pooling of every layer only. Part of the key.
        augmentation (`WaveformAugmentation`, *optional*): encode each clip augmented by it (a cached augmented copy;
            each clip's draws from a generator seeded by `augmentation_seed` and the clip's `path`), as
            :class:`~ser_hf.inputs.augmented_copies.AugmentedCopiesMode` does once per copy. Both are part of the key.
        column (`str`, *optional*, defaults to `"encoder_states"`): the name of the column added.

    Returns:
        `Dataset`: `dataset` with the `encoder_states` column added (rows with an indices mapping, as after `select`
        or a split, are read in place first, as `concatenate_datasets` needs; no copy is written).
    """
    _check_encoding_inputs(model, feature_extractor, dataset, batch_size, precision, lower_layer, augmentation, column)
    cache_dir = Path(cache_dir or ser_hf_cache_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    key, reusable_key = _encoding_keys(
        model, feature_extractor, dataset, precision, lower_layer, augmentation, augmentation_seed, column
    )
    cache_file = cache_dir / f"encoder-{key}.arrow"
    if load_from_cache and cache_file.exists():
        discard_damaged_cache(cache_file, len(dataset))
    encoder = _StatesEncoder(
        model,
        feature_extractor,
        batch_size=batch_size,
        batch_group_norm=batch_group_norm,
        precision=precision,
        lower_layer=lower_layer,
        augmentation=augmentation,
        augmentation_seed=augmentation_seed,
        column=column,
        load_from_cache=load_from_cache,
    )
    states = encoder.encode_or_reuse(dataset, cache_file, key, reusable_key)
    if cache_file.exists():  # else read in place from other caches, which the reuse's own line names
        encoder.log(cache_file, len(states))

    dataset = rows_in_place(dataset)  # concatenate_datasets needs rows without an indices mapping: no copy written
    states = states.with_format(dataset.format["type"], **dataset.format["format_kwargs"])
    result = concatenate_datasets([dataset, states], axis=1)
    # The dataset's own cache file, or the files its clips' states were read from.
    return set_ser_info(result, encoder_cache=str(cache_file) if cache_file.exists() else _files_of(states))


def _files_of(states: Dataset) -> str:
    """The cache files `states` reads, joined by ``os.pathsep``."""
    return os.pathsep.join(dict.fromkeys(file["filename"] for file in states.cache_files))


def _check_encoding_inputs(
    model: PreTrainedModel,
    feature_extractor: SequenceFeatureExtractor,
    dataset: Dataset,
    batch_size: int,
    precision: str,
    lower_layer: Optional[int],
    augmentation: Optional[Any],
    column: str,
) -> None:
    """Raise a `ValueError` for any argument of :func:`encode_dataset` it cannot encode with, before the encoder's
    weights are hashed or a clip is read."""
    check_cacheable(model)
    if WAVEFORM_COLUMN not in dataset.column_names:
        raise ValueError(
            f"encode_dataset reads the {WAVEFORM_COLUMN!r} column, which the dataset lacks "
            f"(columns: {', '.join(dataset.column_names)}); run ser_hf.prepare_audio first."
        )
    if column in dataset.column_names:
        raise ValueError(f"The dataset already has an {column!r} column; remove it to encode again.")
    _check_sampling_rate(dataset, feature_extractor)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    check_precision(precision)
    if lower_layer is not None:
        check_lower_layer(model, lower_layer)
    if augmentation is not None and "path" not in dataset.column_names:
        raise ValueError("Encoding augmented copies needs the dataset's 'path' column (each clip's draws).")


def _encoding_keys(
    model: PreTrainedModel,
    feature_extractor: SequenceFeatureExtractor,
    dataset: Dataset,
    precision: str,
    lower_layer: Optional[int],
    augmentation: Optional[Any],
    augmentation_seed: int,
    column: str,
) -> tuple[str, str]:
    """The key of the dataset's cache file, and the key of the encoder alone that each cache file's clip index is filed
    under (:mod:`~ser_hf.data.clip_index`), both folding in the augmentation of an augmented copy.

    The tags joined to the augmentation are those the caches were written under: changing them orphans every cache.
    """
    key = encoder_cache_key(model, feature_extractor, dataset, precision=precision, lower_layer=lower_layer)
    reusable_key = encoder_key(model, feature_extractor, precision=precision, lower_layer=lower_layer)
    if augmentation is None:
        return key, reusable_key
    # Each clip's draws are seeded by its folder and file name (clip_seed), not its whole path, since this tag.
    key = model_state_key((key, repr(augmentation), augmentation_seed, "clip_seed:folder/name"), {})
    # An augmented copy's draws depend on the clip's folder and file name as well (clip_seed): its copies are indexed
    # by both (_clip_digests), under the augmentation's key.
    reusable_key = model_state_key((reusable_key, repr(augmentation), augmentation_seed, column, "clip_seed"), {})
    return key, reusable_key


def _state_features(model: PreTrainedModel, precision: str, lower_layer: Optional[int], column: str) -> Features:
    """The Arrow schema of the columns :func:`encode_dataset` writes: fixed-size lists, so the shape is part of the
    schema (a wrong one fails at write time) and stays plain Arrow that any reader understands, where datasets'
    `Array2D` is an extension type only datasets decodes."""
    hidden_size = model.config.hidden_size
    layers = model.config.num_hidden_layers + 1 if model.config.use_weighted_layer_sum else None
    state_width = 2 * hidden_size if pools_layer_statistics(model) else hidden_size  # means, standard deviations
    state_feature = List(Value(precision), length=state_width)
    if pools_layer_statistics(model):
        state_feature = List(state_feature, length=layers or 1)
    elif layers is not None:
        state_feature = List(state_feature, length=layers)
    features = {column: state_feature}
    if lower_layer is not None:
        features[LOWER_STATES_COLUMN] = List(List(Value(precision), length=hidden_size))
    return Features(features)


class _StatesEncoder:
    """Runs the frozen encoder over a dataset's clips through `Dataset.map` into cache files, counting the clips it
    encoded and their time for :meth:`log`.

    Padding-invariant encoders, and group-norm ones whose first convolution runs clip by clip (`batch_group_norm`), run
    in batches of `batch_size` clips sorted by length within map batches of :data:`FORWARD_BATCHES_PER_MAP_BATCH`
    forward batches (a larger map batch pads less); any other encoder one clip per forward.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        feature_extractor: SequenceFeatureExtractor,
        *,
        batch_size: int,
        batch_group_norm: Optional[bool],
        precision: str,
        lower_layer: Optional[int],
        augmentation: Optional[Any],
        augmentation_seed: int,
        column: str,
        load_from_cache: bool,
    ):
        self.model = model
        self.feature_extractor = feature_extractor
        self.batch_size = batch_size
        if batch_group_norm is None:
            batch_group_norm = model.device.type != "cpu"
        self.batched = is_padding_invariant(model, feature_extractor) or (
            batch_group_norm and _first_conv_layer_apart_is_exact(model)
        )
        self.precision = precision
        self.lower_layer = lower_layer
        self.augmentation = augmentation
        self.augmentation_seed = augmentation_seed
        self.column = column
        self.load_from_cache = load_from_cache
        self.features = _state_features(model, precision, lower_layer, column)
        self.read = [WAVEFORM_COLUMN] + (["path"] if augmentation is not None else [])
        self.encoded = {"clips": 0, "seconds": 0.0}

    def encode_or_reuse(self, dataset: Dataset, cache_file: Path, key: str, reusable_key: str) -> Dataset:
        """The states of `dataset`'s clips in `cache_file`: read back when it exists, else assembled from the caches of
        the same encoder that hold some of its clips (the others encoded), else encoded; the file is then indexed by
        its clips' digests for other datasets to reuse. The model is in eval mode meanwhile, then as it was."""
        augmented = self.augmentation is not None
        digests = None
        states = None
        was_training = self.model.training
        self.model.eval()
        try:
            # NumPy batches: the default format would make every sample of a batch a Python float.
            waveforms = dataset.select_columns(self.read).with_format("numpy")
            if self.load_from_cache and not cache_file.exists():
                digests = _clip_digests(dataset, augmented)
                states = _reuse_cached_clips(waveforms, digests, cache_file.parent, key, reusable_key, self)
            if states is None:
                states = self(waveforms, cache_file, key)
        finally:
            self.model.train(was_training)
        if cache_file.exists() and not index_path(cache_file, reusable_key).exists():
            write_clip_index(cache_file, reusable_key, digests or _clip_digests(dataset, augmented))
        return states

    def __call__(self, clips: Dataset, file: Path, fingerprint: str) -> Dataset:
        """Encode `clips` (the columns :attr:`read`) into the cache file `file`, or read it back."""
        return clips.map(
            _encode_batch,
            batched=True,
            batch_size=self.batch_size * FORWARD_BATCHES_PER_MAP_BATCH if self.batched else self.batch_size,
            fn_kwargs={
                "model": self.model,
                "feature_extractor": self.feature_extractor,
                "forward_batch_size": self.batch_size if self.batched else 1,
                "encoded": self.encoded,
                "precision": self.precision,
                "lower_layer": self.lower_layer,
                "augmentation": self.augmentation,
                "augmentation_seed": self.augmentation_seed,
                "column": self.column,
            },
            remove_columns=self.read,
            features=self.features,
            cache_file_name=str(file),
            load_from_cache_file=self.load_from_cache,
            # The key already covers what the states depend on; without it datasets would hash the model by pickling.
            new_fingerprint=fingerprint,
            desc="Encoding clips with the frozen encoder",
        )

    def log(self, cache_file: Path, num_clips: int) -> None:
        """Log how many clips were encoded, in what time and how, or that the states were read from `cache_file`."""
        if self.encoded["clips"]:
            logger.info(
                "Encoded %d clips in %.1f s (%s, %s) into %s",
                self.encoded["clips"],
                self.encoded["seconds"],
                self.model.device,
                f"batches of {self.batch_size}" if self.batched else "one clip per forward",
                cache_file,
            )
        else:
            logger.info("Loaded the encoder states of %d clips from %s", num_clips, cache_file)


def _clip_digests(dataset: Dataset, augmented: bool) -> list[str]:
    """Each clip's digest in the clip index (`clip_digests`); for an augmented copy, joined with the seed its draws
    take from the clip's folder and file name (`clip_seed`), since the same samples under another name draw other
    augmentations."""
    digests = clip_digests(dataset, WAVEFORM_COLUMN)
    if not augmented:
        return digests
    return [f"{digest}:{clip_seed(path)}" for digest, path in zip(digests, column_values(dataset, "path"))]


def _reuse_cached_clips(
    waveforms: Dataset, digests: list[str], cache_dir: Path, key: str, reusable_key: str, encode
) -> Optional[Dataset]:
    """The states of `waveforms` from the caches of the same encoder that hold some of its clips (`clip_index`), read
    where they are (:func:`select_clips`), the others encoded by `encode` into a cache file of their own, indexed for
    the next dataset that holds them; `None` when no cache holds any of them. Nothing is copied: a set of clips that
    other caches hold (a fold, an adaptation pool, a learning-curve cell) adds no file."""
    # A damaged cache of another dataset is deleted (and its clips encoded), as the dataset's own would be.
    locations = find_cached_clips(
        cache_dir,
        reusable_key,
        digests,
        usable=lambda path, rows: not discard_damaged_cache(path, rows),
        prefix="encoder",
    )
    missing = [row for row, location in enumerate(locations) if location is None]
    if len(missing) == len(locations):
        return None
    reused_files = len({path for path, _ in filter(None, locations)})
    if missing:
        missing_digests = [digests[row] for row in missing]
        part_key = model_state_key((key, "clips", *missing_digests), {})
        part_file = cache_dir / f"encoder-{part_key}.arrow"
        encode(waveforms.select(missing), part_file, part_key)
        write_clip_index(part_file, reusable_key, missing_digests)
        for position, row in enumerate(missing):
            locations[row] = (part_file, position)
    states = select_clips(locations)
    logger.info(
        "Reused the encoder states of %d of %d clips from %d cache file(s) of the same encoder; encoded %d.",
        len(locations) - len(missing),
        len(locations),
        reused_files,
        len(missing),
    )
    return states


def padded_length(num_samples: int) -> int:
    """`num_samples` rounded up to a multiple of :data:`PAD_TO_MULTIPLE_OF`."""
    return -(-num_samples // PAD_TO_MULTIPLE_OF) * PAD_TO_MULTIPLE_OF


def _check_sampling_rate(dataset: Dataset, feature_extractor: SequenceFeatureExtractor) -> None:
    audio = dataset.features.get("audio")
    rate = getattr(audio, "sampling_rate", None)
    if rate is not None and rate != feature_extractor.sampling_rate:
        raise ValueError(
            f"The clips are at {rate} Hz but the feature extractor expects {feature_extractor.sampling_rate} Hz; "
            f"load the corpus with sampling_rate={feature_extractor.sampling_rate}."
        )


def _first_conv_layer_apart_is_exact(model: PreTrainedModel) -> bool:
    """Whether a batch gives each clip its unpadded states once the first convolution runs clip by clip: a group-norm
    feature encoder (only its first layer normalises, over time) under an encoder that masks padded frames (every
    family but data2vec-audio)."""
    conv_layers = getattr(getattr(model.base_model, "feature_extractor", None), "conv_layers", None)
    return (
        getattr(model.config, "feat_extract_norm", "layer") == "group"
        and conv_layers is not None
        and not isinstance(model, Data2VecAudioForSequenceClassification)
    )


class _PerClipConvLayer(nn.Module):
    """Runs a convolution layer on each clip's own samples and zero-pads the outputs into one batch."""

    def __init__(self, layer: nn.Module, num_samples: list[int]):
        super().__init__()
        self.layer = layer
        self.num_samples = num_samples

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        conv = self.layer.conv
        width = (hidden_states.shape[-1] - conv.kernel_size[0]) // conv.stride[0] + 1
        outputs = hidden_states.new_zeros(hidden_states.shape[0], conv.out_channels, width)
        for row, length in enumerate(self.num_samples):
            output = self.layer(hidden_states[row : row + 1, :, :length])
            outputs[row, :, : output.shape[-1]] = output[0]
        return outputs


@contextmanager
def first_conv_layer_per_clip(feature_encoder: nn.Module, num_samples: list[int]):
    """Within the context, the first layer of an SSL model's convolutional feature encoder runs clip by clip.

    That layer's group norm takes its statistics over the whole time axis, padding included; nothing after it does.
    The later convolutions are unpadded ("valid"), so the frames a clip has alone read its own samples only; the frames
    past them, which padding produces, are masked (the attention mask) and zeroed before the positional convolution
    by the encoder, as the zero padding of that convolution is for a clip alone. The states of every real frame are
    then those of the clip alone, to float rounding, while the heavy layers run on the whole batch.
    """
    conv_layers = feature_encoder.conv_layers
    first = conv_layers[0]
    conv_layers[0] = _PerClipConvLayer(first, num_samples)
    try:
        yield
    finally:
        conv_layers[0] = first


def _encode_batch(
    batch: dict[str, list],
    model: PreTrainedModel,
    feature_extractor: SequenceFeatureExtractor,
    forward_batch_size: int,
    encoded: dict[str, float],
    precision: str = "float32",
    lower_layer: Optional[int] = None,
    augmentation: Optional[Any] = None,
    augmentation_seed: int = 0,
    column: str = ENCODER_STATES_COLUMN,
) -> dict[str, list[np.ndarray]]:
    start = time.perf_counter()
    waveforms = [np.asarray(waveform, dtype=np.float32) for waveform in batch[WAVEFORM_COLUMN]]
    if augmentation is not None:
        waveforms = [
            augmentation(waveform, np.random.default_rng([augmentation_seed, clip_seed(path)]))
            for waveform, path in zip(waveforms, batch["path"])
        ]
    # Longest first, so each forward batch pads little and the first one shows the peak memory.
    order = sorted(range(len(waveforms)), key=lambda index: -len(waveforms[index]))
    columns = [column] + ([LOWER_STATES_COLUMN] if lower_layer is not None else [])
    states: dict[str, list[Optional[np.ndarray]]] = {column: [None] * len(waveforms) for column in columns}
    for offset in range(0, len(order), forward_batch_size):
        indices = order[offset : offset + forward_batch_size]
        clips = [waveforms[index] for index in indices]
        if lower_layer is None:
            outputs = {column: _encode_clips(model, feature_extractor, clips)}
        else:
            outputs = dict(zip(columns, _encode_clips_and_lower_states(model, feature_extractor, clips, lower_layer)))
        for column, values in outputs.items():
            for index, value in zip(indices, values):
                states[column][index] = cast_to_precision(value, precision)
    encoded["clips"] += len(waveforms)
    encoded["seconds"] += time.perf_counter() - start
    return states


def discard_damaged_cache(cache_file: Path, rows: int) -> bool:
    """Delete a cache file that does not read back whole (cut short, another file's rows) or holds values that are not
    finite, naming it and what is wrong, so that the clips are encoded again instead of failing later without the file
    named (or training on NaN); `True` when it was discarded."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        table = Dataset.from_file(str(cache_file)).data.table
        problem = None if table.num_rows == rows else f"it holds {table.num_rows} rows for {rows} clips"
        for column in table.columns if problem is None else ():
            values = column
            while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
                values = pc.list_flatten(values)
            if pa.types.is_floating(values.type) and not pc.all(pc.is_finite(values)).as_py():
                problem = "it holds values that are not finite (NaN or infinite)"
    except Exception as error:  # noqa: BLE001 - any reading error means the file cannot be used
        problem = f"it does not read back ({type(error).__name__}: {error})"
    if problem is None:
        return False
    logger.warning(
        "The encoder cache %s is damaged (%s): deleting it and encoding the clips again.", cache_file, problem
    )
    cache_file.unlink()
    return True


def check_lower_layer(model: PreTrainedModel, lower_layer: int) -> None:
    """Raise a `ValueError` unless `model` can cache the input of its encoder layer `lower_layer` for the layers
    above to train on (:func:`encode_dataset`'s `lower_layer`)."""
    problems = []
    if not isinstance(model, SerWhisperForAudioClassification):
        problems.append(f"a Whisper classifier (got {type(model).__name__})")
    else:
        if not model.config.trim_window:
            problems.append("trim_window=True (each batch encoded through its longest clip, as the layers train)")
        if not (model.config.pools_layer_statistics and model.config.use_weighted_layer_sum):
            problems.append("pooling_mode='layer_statistics' with use_weighted_layer_sum=True")
        if not 0 <= lower_layer < model.config.num_hidden_layers:
            problems.append(
                f"a layer from 0 (every layer fine-tuned) to {model.config.num_hidden_layers - 1} (got {lower_layer})"
            )
    if problems:
        raise ValueError(f"Caching the lower layers' states needs {'; '.join(problems)}.")


@torch.no_grad()
def _encode_clips_and_lower_states(
    model: PreTrainedModel, feature_extractor: SequenceFeatureExtractor, waveforms: list[np.ndarray], lower_layer: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each clip's layer statistics (as :func:`_encode_clips`) and its input to layer `lower_layer` over its own
    frames, `(frames, hidden)`."""
    inputs = feature_extractor(
        waveforms, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt", return_state_statistics=False
    )
    features = inputs["input_features"].to(device=model.device, dtype=model.dtype)
    _, layers = model.encoder_layers(features, inputs["attention_mask"])
    mask = model.frame_mask(inputs["attention_mask"], layers[0].shape[1])
    pooled = pool_layer_statistics(layers, mask).cpu().numpy()
    lower = layers[lower_layer].float().cpu().numpy()
    frames = mask.sum(dim=1).tolist()
    return list(pooled), [lower[row, :count] for row, count in enumerate(frames)]


def _whisper_states(
    model: PreTrainedModel, feature_extractor: SequenceFeatureExtractor, waveforms: list[np.ndarray]
) -> list[tuple[np.ndarray, int]]:
    """Each clip's `pooled_encoder_states` (none longer than the window) and its number of encoder frames."""
    inputs = feature_extractor(
        waveforms, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt", return_state_statistics=False
    )
    states = model.pooled_encoder_states(
        inputs["input_features"].to(device=model.device, dtype=model.dtype), inputs["attention_mask"]
    )
    frames = model.frame_mask(inputs["attention_mask"], model.config.max_source_positions).sum(dim=1).tolist()
    return list(zip(states.cpu().numpy(), frames))


def _whisper_states_in_windows(
    model: PreTrainedModel, feature_extractor: SequenceFeatureExtractor, waveform: np.ndarray
) -> np.ndarray:
    """The pooled states of a clip longer than the encoder's window: cut into the fewest windows of equal length,
    each encoded, their means (and standard deviations) pooled over all the clip's frames, as one window would pool
    them were it long enough (the layers' states of each window see that window only)."""
    count = -(-len(waveform) // feature_extractor.n_samples)
    bounds = np.linspace(0, len(waveform), count + 1).round().astype(int)
    pieces = _whisper_states(model, feature_extractor, [waveform[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
    states = np.stack([state for state, _ in pieces]).astype(np.float64)
    weights = np.asarray([frames for _, frames in pieces], np.float64)
    weights = (weights / weights.sum()).reshape((-1,) + (1,) * (states.ndim - 1))
    if not model.config.pools_layer_statistics:
        return (states * weights).sum(axis=0).astype(np.float32)
    hidden = states.shape[-1] // 2
    means, stds = states[..., :hidden], states[..., hidden:]
    mean = (means * weights).sum(axis=0)
    # Each piece's standard deviation carries the pooling's variance floor (masked_mean_and_std): taken out, then
    # put back once.
    second_moment = ((stds**2 - _VARIANCE_FLOOR + means**2) * weights).sum(axis=0)
    std = np.sqrt(np.maximum(second_moment - mean**2, 0.0) + _VARIANCE_FLOOR)
    return np.concatenate([mean, std], axis=-1).astype(np.float32)


def _normalized_apart(
    feature_extractor: SequenceFeatureExtractor, waveforms: list[np.ndarray]
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The clips' input values, each normalised on its own (an extractor without attention mask would include the
    padding), then zero-padded, with the sample mask that gives the encoder its frame mask, and each clip's length."""
    values = [
        feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, return_tensors="np")[
            "input_values"
        ][0]
        for waveform in waveforms
    ]
    num_samples = [len(value) for value in values]
    padded = padded_length(max(num_samples))
    input_values = torch.zeros(len(values), padded)
    attention_mask = torch.zeros(len(values), padded, dtype=torch.long)
    for row, value in enumerate(values):
        input_values[row, : len(value)] = torch.from_numpy(value)
        attention_mask[row, : len(value)] = 1
    return input_values, attention_mask, num_samples


@torch.no_grad()
def _encode_clips(
    model: PreTrainedModel, feature_extractor: SequenceFeatureExtractor, waveforms: list[np.ndarray]
) -> list[np.ndarray]:
    """Each clip's pooled hidden states over its real frames: `(layers, hidden)` or `(hidden,)` means per clip (or
    a Whisper classifier's `pooled_encoder_states`)."""
    if isinstance(model, SerWhisperForAudioClassification):
        # The extractor reads each clip as it trims it (`trim_silence_db`), as `pipeline` does: a clip longer than the
        # window by its silence alone is read whole.
        whole = [feature_extractor.reads_whole(waveform) for waveform in waveforms]
        if all(whole):
            return [states for states, _ in _whisper_states(model, feature_extractor, waveforms)]
        # A clip longer than the encoder's window: encoded in windows, their statistics pooled over the whole clip.
        return [
            _whisper_states(model, feature_extractor, [waveform])[0][0]
            if fits
            else _whisper_states_in_windows(model, feature_extractor, waveform)
            for waveform, fits in zip(waveforms, whole)
        ]
    first_layer_apart = (
        len(waveforms) > 1
        and not is_padding_invariant(model, feature_extractor)
        and _first_conv_layer_apart_is_exact(model)
    )
    if first_layer_apart:
        input_values, attention_mask, num_samples = _normalized_apart(feature_extractor, waveforms)
        context = first_conv_layer_per_clip(model.base_model.feature_extractor, num_samples)
    else:
        inputs = feature_extractor(
            waveforms,
            sampling_rate=feature_extractor.sampling_rate,
            padding=True,
            # Only where padding is exact; a clip alone (one per forward) is never padded.
            pad_to_multiple_of=PAD_TO_MULTIPLE_OF if is_padding_invariant(model, feature_extractor) else None,
            return_tensors="pt",
        )
        input_values, attention_mask = inputs["input_values"], inputs.get("attention_mask")
        context = nullcontext()
    input_values = input_values.to(device=model.device, dtype=model.dtype)
    if attention_mask is not None:
        attention_mask = attention_mask.to(model.device)
    use_weighted_layer_sum = model.config.use_weighted_layer_sum
    with context:
        outputs = model.base_model(
            input_values, attention_mask=attention_mask, output_hidden_states=use_weighted_layer_sum
        )
    layers = outputs.hidden_states if use_weighted_layer_sum else (outputs.last_hidden_state,)

    num_frames = layers[0].shape[1]
    if attention_mask is None:
        frame_mask = torch.ones(layers[0].shape[:2], dtype=torch.bool, device=layers[0].device)
    else:
        frame_mask = model._get_feature_vector_attention_mask(num_frames, attention_mask)
    counts = frame_mask.sum(dim=1, keepdim=True).to(torch.float32)
    mask = frame_mask.unsqueeze(-1)
    # `where`, not a product with the mask: padded frames never reach the sum, even were they not finite.
    means = [torch.where(mask, layer.float(), 0.0).sum(dim=1) / counts for layer in layers]
    pooled = torch.stack(means, dim=1) if use_weighted_layer_sum else means[0]
    return list(pooled.cpu().numpy())


__all__ = [
    "check_lower_layer",
    "cacheable_pooling_modes",
    "check_cacheable",
    "encode_dataset",
    "first_conv_layer_per_clip",
    "padded_length",
]
