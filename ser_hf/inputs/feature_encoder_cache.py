"""The frozen convolutional feature encoder of an SSL model, run once per clip instead of at every training step.

wav2vec 2.0, HuBERT, WavLM and data2vec-audio start with a stack of convolutions (the *feature encoder*, 4.2 M
parameters in the base models) that turns 16 kHz samples into 512-channel frames at 50 Hz. Fine-tuning keeps it
frozen (ser-hf's default, as in transformers' audio-classification example), and so do LoRA and frozen layers, yet a
training step still runs it on every clip of every epoch: 14 % of a wav2vec2-base training step on CPU
(docs/results/LOG.md). It has no dropout and nothing random, so when the training clips are neither cropped nor
augmented a clip's frames never change:

- :func:`encode_feature_encoder_outputs` computes them once per clip into an Arrow cache file (keyed by the clips, the
  feature encoder's config and weights and the feature extractor's settings) and adds them as an `extract_features`
  column (transformers' name for them), with the clip's `num_samples`;
- :class:`FeatureEncoderOutputsCollator` pads them into batches, with the usual attention mask over samples;
- :func:`accept_feature_encoder_outputs` lets the model take such a batch as its `input_values`: its feature encoder
  returns 3-D inputs `(batch, channels, frames)` as they are and still runs on waveforms, so everything after it
  (feature projection, SpecAugment masking, transformer, pooling, loss) is the model's own code, and the saved model
  is unchanged;
- :class:`FeatureEncoderCacheMode` is the input mode (:mod:`ser_hf.inputs.base`) through which training and the
  leakage study use them.

Every clip is normalised and encoded on its own, unpadded (a group-norm first layer clip by clip, as FAST mode does),
and batches carry an attention mask, so each clip trains on the frames it has alone. For encoders whose feature
extractor returns an attention mask that is what a batch of raw audio computes (to float rounding). Group-norm
encoders (wav2vec2-base, hubert-base) get no attention mask on raw audio, so there padding changes every clip's
normalisation and frames; with the cache they train on each clip as `pipeline("audio-classification")` and
`ser-hf predict` run it, one clip alone.
"""

from __future__ import annotations

import json
import logging
import os
import time
import types
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Array2D, Dataset, DatasetDict, Features, Value, concatenate_datasets
from torch import nn
from transformers import set_seed
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..data.cache_dir import ser_hf_cache_dir
from ..data.clip_index import rows_in_place
from ..data.dataset_info import get_ser_info, set_ser_info
from ..data.decode import WAVEFORM_COLUMN, cast_to_precision, check_precision
from ..errors import RecipeError
from .augment import waveform_augmentation
from .base import InputMode, drop_clips_shorter_than, receptive_field_seconds
from .encoder_cache_keys import model_state_key
from .encoder_states import FORWARD_BATCHES_PER_MAP_BATCH, first_conv_layer_per_clip, padded_length
from .raw_audio import RawAudioMode

logger = logging.getLogger(__name__)

#: Column of each clip's feature-encoder frames, `(frames, channels)` float32 (or float16, `precision`).
FEATURES_COLUMN = "extract_features"
#: Column of each clip's length in samples (the attention mask of a batch covers that many).
NUM_SAMPLES_COLUMN = "num_samples"
#: Bump when what is cached changes, so cache files written by older code are not reused.
FEATURE_CACHE_VERSION = 1
# Config fields the feature encoder's outputs depend on.
_FEATURE_ENCODER_CONFIG_KEYS = (
    "conv_dim",
    "conv_stride",
    "conv_kernel",
    "conv_bias",
    "num_feat_extract_layers",
    "feat_extract_norm",
    "feat_extract_activation",
)


def feature_encoder(model: nn.Module) -> Optional[nn.Module]:
    """The convolutional feature encoder of an SSL classifier (through a peft wrapper), or `None` for other models."""
    base = getattr(_unwrapped(model), "base_model", None)
    encoder = getattr(base, "feature_extractor", None)
    return encoder if isinstance(encoder, nn.Module) and hasattr(encoder, "conv_layers") else None


def feature_cache_blockers(
    model: nn.Module,
    train_dataset: Dataset,
    sampling_rate: int,
    *,
    max_duration_seconds: Optional[float] = None,
    waveform_augmentation: Optional[Any] = None,
) -> list[str]:
    """Why the model's feature-encoder outputs cannot be cached for training on `train_dataset` (clips at
    `sampling_rate`); empty when they can.

    They can when the model has a feature encoder, none of whose parameters trains, and the training clips reach it
    unchanged: no waveform augmentation, and no clip longer than `max_duration_seconds` (it would be cropped to a new
    random window every epoch). Transformer-side masking (`mask_time_prob`, ...) acts after it and does not matter.
    """
    encoder = feature_encoder(model)
    if encoder is None:
        return [f"{type(model).__name__} has no convolutional feature encoder"]
    blockers = []
    trainable = [name for name, parameter in encoder.named_parameters() if parameter.requires_grad]
    if trainable:
        blockers.append(
            f"its feature encoder trains ({len(trainable)} parameters, such as {trainable[0]}; "
            "freeze_feature_encoder: false)"
        )
    if waveform_augmentation is not None:
        blockers.append("waveform augmentation changes the training clips every epoch")
    if max_duration_seconds is not None and len(train_dataset):
        longest = max(waveform_lengths(train_dataset))
        if longest > int(max_duration_seconds * sampling_rate):  # as AudioClassificationCollator crops
            blockers.append(
                f"training clips up to {longest / sampling_rate:.2f} s are cropped to a random "
                f"{max_duration_seconds:g} s window every epoch (max_duration_seconds)"
            )
    return blockers


def waveform_lengths(dataset: Dataset) -> list[int]:
    """Each clip's length in samples, read from the Arrow offsets of the `waveform` column (no sample is read)."""
    # From the whole table, then the rows a split selects: selecting the column's rows first (as
    # `dataset[WAVEFORM_COLUMN]` does for a split) would copy every sample of the split into memory.
    lengths = pc.list_value_length(dataset.data.column(WAVEFORM_COLUMN))
    if dataset._indices is not None:
        lengths = lengths.take(dataset._indices.column(0))
    return lengths.to_pylist()


def encode_feature_encoder_outputs(
    model: nn.Module,
    feature_extractor: SequenceFeatureExtractor,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    load_from_cache: bool = True,
    keep_waveform: bool = False,
    precision: str = "float32",
) -> Dataset:
    """Add each clip's feature-encoder frames (`extract_features`) and `num_samples`, in place of its `waveform`.

    Each clip is normalised by `feature_extractor` and encoded on its own, unpadded, in batches of `batch_size` clips
    of similar length (a group-norm first layer runs clip by clip, see
    :func:`ser_hf.inputs.encoder_states.first_conv_layer_per_clip`), on the feature encoder's device. The frames go
    through `Dataset.map` into `feature-encoder-<key>.arrow` in `cache_dir`, the key hashing the dataset's fingerprint
    and :func:`feature_encoder_key`: the same clips and encoder read the file back, any change computes it again. The
    dataset's ser-hf record keeps the feature encoder's key (`feature_encoder`), against which a model can be checked
    before it reads the frames. A clip takes `frames x channels x 4` bytes (400 KB for 4 s through a base model), half
    that with `precision="float16"`.

    Args:
        model (`nn.Module`): an SSL classifier (or a peft model wrapping one) whose feature encoder is frozen.
        feature_extractor (`SequenceFeatureExtractor`): the model's feature extractor (normalises each clip).
        dataset (`Dataset`): prepared clips, with the `waveform` column of :func:`ser_hf.prepare_audio`.
        batch_size (`int`, *optional*, defaults to 8): clips per forward pass.
        cache_dir (`str` or `os.PathLike`, *optional*): where the cache file lives; defaults to
            `$HF_DATASETS_CACHE/ser_hf`.
        load_from_cache (`bool`, *optional*, defaults to `True`): reuse a cache file written for the same inputs.
        keep_waveform (`bool`, *optional*, defaults to `False`): keep the `waveform` column too (a corpus encoded
            before it is split, whose splits may still need the audio).
        precision (`str`, *optional*, defaults to `"float32"`): how the frames are stored, `"float32"` or `"float16"`
            (half the size; the collator gives the model float32 either way). Part of the cache key.

    Returns:
        `Dataset`: `dataset`'s other columns with `extract_features` and `num_samples`, in `dataset`'s format type.
    """
    encoder = _frozen_feature_encoder(model)
    if WAVEFORM_COLUMN not in dataset.column_names:
        raise ValueError(
            f"encode_feature_encoder_outputs reads the {WAVEFORM_COLUMN!r} column, which the dataset "
            f"lacks (columns: {', '.join(dataset.column_names)}); run ser_hf.prepare_audio first."
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    check_precision(precision)
    encoder_key = feature_encoder_key(model, feature_extractor)
    # float32 caches keep the key they had before the precision was an option; float16 ones hash its name.
    key = model_state_key((encoder_key, dataset._fingerprint) + (() if precision == "float32" else (precision,)), {})
    cache_dir = Path(cache_dir or ser_hf_cache_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / f"feature-encoder-{key}.arrow"
    frames = _run_feature_encoder(
        _unwrapped(model),
        encoder,
        feature_extractor,
        dataset,
        batch_size=batch_size,
        precision=precision,
        cache_file=cache_file,
        key=key,
        load_from_cache=load_from_cache,
    )
    others = dataset if keep_waveform else dataset.remove_columns(WAVEFORM_COLUMN)
    others = rows_in_place(others)  # concatenate_datasets needs rows without an indices mapping: no copy written
    result = concatenate_datasets([others, frames], axis=1)
    result = result.with_format(dataset.format["type"], **dataset.format["format_kwargs"])
    return set_ser_info(result, feature_encoder=encoder_key)


def _unwrapped(model: nn.Module) -> nn.Module:
    """The transformers classifier of `model`, through a peft wrapper."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _frozen_feature_encoder(model: nn.Module) -> nn.Module:
    """`model`'s feature encoder, refused when it has none or when it trains (its outputs would change every step)."""
    encoder = feature_encoder(model)
    if encoder is None:
        raise ValueError(f"{type(model).__name__} has no convolutional feature encoder to cache.")
    trainable = [name for name, parameter in encoder.named_parameters() if parameter.requires_grad]
    if trainable:
        raise ValueError(
            f"The feature encoder trains ({trainable[0]} requires grad), so its outputs change every "
            "step and cannot be cached: freeze it (freeze_feature_encoder) or train without the cache."
        )
    return encoder


def _run_feature_encoder(
    classifier: nn.Module,
    encoder: nn.Module,
    feature_extractor: SequenceFeatureExtractor,
    dataset: Dataset,
    *,
    batch_size: int,
    precision: str,
    cache_file: Path,
    key: str,
    load_from_cache: bool,
) -> Dataset:
    """The `extract_features` and `num_samples` of `dataset`'s clips, computed by `Dataset.map` into `cache_file` (or
    read back from it) with the encoder in eval mode meanwhile, and logged."""
    channels = encoder.conv_layers[-1].conv.out_channels
    encoded = {"clips": 0, "seconds": 0.0}
    was_training = encoder.training
    encoder.eval()
    try:
        # NumPy batches: the default format would make every sample of a batch a Python float.
        waveforms = dataset.select_columns([WAVEFORM_COLUMN]).with_format("numpy")
        frames = waveforms.map(
            _encode_batch,
            batched=True,
            batch_size=batch_size * FORWARD_BATCHES_PER_MAP_BATCH,
            fn_kwargs={
                "encoder": encoder,
                "output_lengths": classifier._get_feat_extract_output_lengths,
                "group_norm": getattr(classifier.config, "feat_extract_norm", None) == "group",
                "feature_extractor": feature_extractor,
                "forward_batch_size": batch_size,
                "encoded": encoded,
                "precision": precision,
            },
            remove_columns=[WAVEFORM_COLUMN],
            features=Features(
                {
                    FEATURES_COLUMN: Array2D(shape=(None, channels), dtype=precision),
                    NUM_SAMPLES_COLUMN: Value("int64"),
                }
            ),
            # Rows of frames are large (hundreds of KB each): the writer flushes every map batch instead of holding
            # datasets' default 1,000 rows in memory.
            writer_batch_size=batch_size * FORWARD_BATCHES_PER_MAP_BATCH,
            cache_file_name=str(cache_file),
            load_from_cache_file=load_from_cache,
            # The key covers what the frames depend on; without it datasets would hash the model by pickling it.
            new_fingerprint=key,
            desc="Running the frozen feature encoder once per clip",
        )
    finally:
        encoder.train(was_training)
    if encoded["clips"]:
        logger.info(
            "Ran the frozen feature encoder on %d clips in %.1f s (%s) into %s (%.0f MB)",
            encoded["clips"],
            encoded["seconds"],
            next(encoder.parameters()).device,
            cache_file,
            cache_file.stat().st_size / 1e6,
        )
    else:
        logger.info("Loaded the feature-encoder outputs of %d clips from %s", len(frames), cache_file)
    return frames


def feature_encoder_key(model: nn.Module, feature_extractor: SequenceFeatureExtractor) -> str:
    """A hash of what a clip's frames depend on besides the clip: the feature encoder's config and weights and the
    feature extractor's settings."""
    encoder = feature_encoder(model)
    if encoder is None:
        raise ValueError(f"{type(model).__name__} has no convolutional feature encoder.")
    config = _unwrapped(model).config.to_dict()
    return model_state_key(
        (
            FEATURE_CACHE_VERSION,
            feature_extractor.to_json_string(),
            json.dumps({name: config.get(name) for name in _FEATURE_ENCODER_CONFIG_KEYS}, sort_keys=True),
        ),
        encoder.state_dict(),
    )


@torch.no_grad()
def _encode_batch(
    batch: dict[str, list],
    encoder: nn.Module,
    output_lengths,
    group_norm: bool,
    feature_extractor: SequenceFeatureExtractor,
    forward_batch_size: int,
    encoded: dict[str, float],
    precision: str = "float32",
) -> dict[str, list]:
    start = time.perf_counter()
    parameter = next(encoder.parameters())
    # Normalised one clip at a time: an extractor without attention mask would otherwise include the padding.
    values = [
        feature_extractor(
            np.asarray(waveform, dtype=np.float32), sampling_rate=feature_extractor.sampling_rate, return_tensors="np"
        )["input_values"][0]
        for waveform in batch[WAVEFORM_COLUMN]
    ]
    num_samples = [len(value) for value in values]
    num_frames = output_lengths(torch.tensor(num_samples)).tolist()
    frames: list[Optional[np.ndarray]] = [None] * len(values)
    order = sorted(range(len(values)), key=lambda index: -num_samples[index])
    for offset in range(0, len(order), forward_batch_size):
        indices = order[offset : offset + forward_batch_size]
        lengths = [num_samples[index] for index in indices]
        # Padded to a multiple of PAD_TO_MULTIPLE_OF samples (few shapes for oneDNN to compile, see encoder_cache).
        input_values = torch.zeros(len(indices), padded_length(max(lengths)))
        for row, index in enumerate(indices):
            input_values[row, : lengths[row]] = torch.from_numpy(values[index])
        # The later convolutions are unpadded, so a clip's own frames read its own samples only; a group-norm first
        # layer normalises over the whole padded axis, so it runs clip by clip (a clip alone too: it is padded).
        context = first_conv_layer_per_clip(encoder, lengths) if group_norm else nullcontext()
        with context:
            output = encoder(input_values.to(device=parameter.device, dtype=parameter.dtype)).float().cpu()
        for row, index in enumerate(indices):
            frames[index] = cast_to_precision(output[row, :, : num_frames[index]].T.numpy(), precision)
    encoded["clips"] += len(values)
    encoded["seconds"] += time.perf_counter() - start
    return {FEATURES_COLUMN: frames, NUM_SAMPLES_COLUMN: num_samples}


def _forward_taking_outputs(self: nn.Module, input_values: torch.Tensor) -> torch.Tensor:
    """The feature encoder's own forward on waveforms `(batch, samples)`; its cached outputs `(batch, channels,
    frames)` are returned as they are."""
    if input_values.dim() != 3:
        return type(self).forward(self, input_values)
    channels = self.conv_layers[-1].conv.out_channels
    if input_values.shape[1] != channels:
        raise ValueError(
            f"Cached feature-encoder outputs must be (batch, {channels}, frames); got {tuple(input_values.shape)}."
        )
    return input_values


def accept_feature_encoder_outputs(model: nn.Module) -> None:
    """Let `model` take cached feature-encoder outputs `(batch, channels, frames)` as `input_values`.

    The feature encoder's `forward` is replaced on this instance only: it returns such inputs unchanged and runs as
    before on waveforms, so the model still takes raw audio, its weights and `state_dict` are untouched, and the
    model saves and loads as usual. With them, pass the attention mask over samples (`num_samples` ones per clip):
    the model derives each clip's frame count from it, as on raw audio.
    """
    encoder = feature_encoder(model)
    if encoder is None:
        raise ValueError(f"{type(model).__name__} has no convolutional feature encoder.")
    if "forward" not in vars(encoder):
        encoder.forward = types.MethodType(_forward_taking_outputs, encoder)


@dataclass
class FeatureEncoderOutputsCollator:
    """Batches rows of cached frames (see :func:`encode_feature_encoder_outputs`) for a model that
    :func:`accept_feature_encoder_outputs`: `input_values` `(batch, channels, longest clip's frames)` zero-padded,
    `attention_mask` `(batch, longest clip's samples)` with `num_samples` ones per clip, and `labels` when the rows
    have a `label`.

    Args:
        extra_columns (`Sequence[str]`, *optional*): columns passed through into the batch unchanged (as lists).
    """

    extra_columns: Sequence[str] = ()

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        frames = [torch.as_tensor(np.asarray(row[FEATURES_COLUMN], dtype=np.float32)) for row in rows]
        num_samples = [int(row[NUM_SAMPLES_COLUMN]) for row in rows]
        input_values = torch.zeros(len(rows), frames[0].shape[1], max(clip.shape[0] for clip in frames))
        attention_mask = torch.zeros(len(rows), max(num_samples), dtype=torch.int32)
        for row, (clip, length) in enumerate(zip(frames, num_samples)):
            input_values[row, :, : clip.shape[0]] = clip.T
            attention_mask[row, :length] = 1
        batch: dict[str, Any] = {"input_values": input_values, "attention_mask": attention_mask}
        if "label" in rows[0]:
            batch["labels"] = torch.tensor([int(row["label"]) for row in rows], dtype=torch.long)
        for column in self.extra_columns:
            batch[column] = [row[column] for row in rows]
        return batch


class FeatureEncoderCacheMode(InputMode):
    """An SSL model's frozen feature encoder run once per clip (``cache_feature_encoder``, on by default where it
    applies): over the whole corpus before it is split (:meth:`prepare_corpus`), so that every split of every fold
    (k-fold, leave-one-speaker-out, the leakage study's two runs) reads its clips' frames from one cache file instead
    of each fold writing its own copy of the corpus. Each split then decides (:meth:`fold_inputs`): its model reads
    the frames, or raw audio (:class:`~ser_hf.inputs.raw_audio.RawAudioMode`) where its training clips change from
    epoch to epoch."""

    name = "cached feature-encoder outputs"
    columns = (WAVEFORM_COLUMN, FEATURES_COLUMN, NUM_SAMPLES_COLUMN)
    preparation = "running the frozen feature encoder once per clip"

    def __init__(self, model_args, data_args, augmentation_args, build_model):
        super().__init__(model_args, data_args, augmentation_args, build_model)
        #: How a split whose frames cannot be cached is fed.
        self.raw_audio = RawAudioMode(model_args, data_args, augmentation_args, build_model)

    def _blockers(self, model: nn.Module, dataset: Dataset, sampling_rate: int) -> list[str]:
        return feature_cache_blockers(
            model,
            dataset,
            sampling_rate,
            max_duration_seconds=self.data_args.max_duration_seconds,
            waveform_augmentation=waveform_augmentation(self.augmentation_args, sampling_rate),
        )

    def _prepare_corpus(self, dataset: Dataset, training_args) -> Dataset:
        """The corpus with its frames, the audio kept (each split still decides). Clips shorter than the model's
        receptive field stop the run first, as in training (with ``skip_invalid`` they are left out)."""
        set_seed(training_args.seed)  # as train_and_evaluate builds each split's model: the same feature encoder
        model, feature_extractor = self.build_model(self.model_args, self.augmentation_args, dataset.features["label"])
        if self._blockers(model, dataset, feature_extractor.sampling_rate):
            return dataset  # each split's training clips are checked (and the reason logged) by fold_inputs
        dataset = drop_clips_shorter_than(
            dataset, receptive_field_seconds(model, feature_extractor), skip_invalid=self.data_args.skip_invalid
        )
        feature_encoder(model).to(training_args.device)
        return encode_feature_encoder_outputs(
            model,
            feature_extractor,
            dataset,
            batch_size=training_args.per_device_eval_batch_size,
            keep_waveform=True,
            precision=self.data_args.cache_precision,
        )

    def fold_inputs(self, model, feature_extractor, splits, training_args):
        """The frames in place of the audio: those of the whole corpus when :meth:`prepare_corpus` encoded it with
        this split's feature encoder, else the split's own (encoded here); the audio where the frames cannot be
        cached (an error when the recipe demands the cache with ``cache_feature_encoder: true``)."""
        inputs = super().fold_inputs(model, feature_extractor, splits, training_args)
        # Frames of the whole corpus, when prepare_corpus encoded it before the split.
        frame_columns = [name for name in self.columns[1:] if name in inputs["train"].column_names]
        blockers = self._blockers(model, inputs["train"], feature_extractor.sampling_rate)
        if blockers:
            if self.model_args.cache_feature_encoder:
                raise RecipeError(
                    f"cache_feature_encoder: true, but the feature encoder's outputs change from epoch to "
                    f"epoch: {'; '.join(blockers)}."
                )
            logger.info(
                "Running the feature encoder at every step (its outputs cannot be cached: %s).", "; ".join(blockers)
            )
            return inputs.remove_columns(frame_columns)
        if frame_columns:
            if get_ser_info(splits["train"]).get("feature_encoder") == feature_encoder_key(model, feature_extractor):
                logger.info("Reading the frozen feature encoder's outputs cached for the whole corpus.")
                return inputs.remove_columns(WAVEFORM_COLUMN)
            logger.warning(
                "The corpus' cached feature-encoder outputs come from another feature encoder than this "
                "split's model: encoding the split's clips again."
            )
            inputs = inputs.remove_columns(frame_columns)
        encoder = feature_encoder(model)
        device = next(encoder.parameters()).device
        encoder.to(training_args.device)  # where Trainer will put the model: the encoding runs there
        try:
            with training_args.main_process_first(desc="running the frozen feature encoder once per clip"):
                return DatasetDict(
                    {
                        name: encode_feature_encoder_outputs(
                            model,
                            feature_extractor,
                            split,
                            batch_size=training_args.per_device_eval_batch_size,
                            precision=self.data_args.cache_precision,
                        )
                        for name, split in inputs.items()
                    }
                )
        finally:
            encoder.to(device)

    @staticmethod
    def _reads_frames(inputs: DatasetDict) -> bool:
        return FEATURES_COLUMN in inputs["train"].column_names

    def fold_training_args(self, training_args, feature_extractor, inputs):
        if self._reads_frames(inputs):
            return training_args
        return self.raw_audio.fold_training_args(training_args, feature_extractor, inputs)

    def trained_model(self, model, feature_extractor, inputs) -> nn.Module:
        if self._reads_frames(inputs):
            accept_feature_encoder_outputs(model)
        return model

    def collators(self, feature_extractor, inputs, training_args, normalization=None, extra_columns=()):
        if not self._reads_frames(inputs):
            return self.raw_audio.collators(feature_extractor, inputs, training_args, normalization, extra_columns)
        return FeatureEncoderOutputsCollator(extra_columns=extra_columns), FeatureEncoderOutputsCollator()


__all__ = [
    "FEATURES_COLUMN",
    "FEATURE_CACHE_VERSION",
    "NUM_SAMPLES_COLUMN",
    "FeatureEncoderCacheMode",
    "FeatureEncoderOutputsCollator",
    "accept_feature_encoder_outputs",
    "encode_feature_encoder_outputs",
    "feature_cache_blockers",
    "feature_encoder",
    "feature_encoder_key",
    "waveform_lengths",
]
