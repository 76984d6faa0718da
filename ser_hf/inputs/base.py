"""The interface every input mode implements: how a recipe's model gets its inputs from the decoded clips.

A mode is one of raw audio (:mod:`ser_hf.inputs.raw_audio`), the frozen feature encoder's outputs cached once per clip
(:mod:`ser_hf.inputs.feature_encoder_cache`), FAST mode's cached encoder states (:mod:`ser_hf.inputs.fast_mode`)
and the openSMILE functionals computed once (:mod:`ser_hf.inputs.functionals`); :func:`ser_hf.inputs.modes.input_mode`
picks it from the recipe. A run calls it at three points, the same in ``ser_hf.train`` and the leakage study:

1. :meth:`InputMode.prepare_corpus` once per corpus, before it is split (what can be cached for the whole corpus);
2. :meth:`InputMode.fold_inputs` once per split, with the split's model (the columns its batches are made from);
3. :meth:`InputMode.trained_model` and :meth:`InputMode.collators` when the split's `Trainer` is built.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, ClassVar, Optional

from datasets import Dataset, DatasetDict
from torch import nn
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..data.corpora.base import InvalidClipError
from ..data.dataset_info import column_values
from ..data.decode import WAVEFORM_COLUMN
from ..models.feature_extraction_whisper import SerWhisperFeatureExtractor
from ..models.runtime.ssl import minimum_input_samples

logger = logging.getLogger(__name__)

#: Columns every split keeps besides the model's inputs: the label, and what reports, the trainer's clip names and
#: speaker normalisation read (the ``audio`` column would decode every clip again).
SPLIT_COLUMNS = ("label", "path", "duration", "speaker_id", "sex", "corpus")

#: How a mode builds the recipe's model, for what it caches before the corpus is split:
#: ``build_model(model_args, augmentation_args, labels) -> (model, feature_extractor)``
#: (:func:`ser_hf.training.model_stage.build_model`).
ModelBuilder = Callable[[Any, Any, Any], "tuple[nn.Module, SequenceFeatureExtractor]"]


def model_inputs(dataset: Dataset, columns: tuple[str, ...]) -> Dataset:
    """The dataset's ``columns`` that it has, and :data:`SPLIT_COLUMNS`, as NumPy arrays (no Python lists of
    samples)."""
    kept = [name for name in (*columns, *SPLIT_COLUMNS) if name in dataset.column_names]
    return dataset.select_columns(kept).with_format("numpy")


def receptive_field_seconds(model: nn.Module, feature_extractor: SequenceFeatureExtractor) -> float:
    """The shortest clip the model can see, in seconds."""
    return minimum_input_samples(model.config) / feature_extractor.sampling_rate


#: What :func:`drop_clips_shorter_than` names as the shortest clip by default (``{ms}``: its length).
RECEPTIVE_FIELD = "the model's receptive field ({ms} ms)"


def minimum_clip_samples(model_config, feature_extractor) -> tuple[int, str]:
    """The fewest samples a clip needs for a model to classify it, and what sets that number (a ``what`` for
    :func:`drop_clips_shorter_than`, with ``{ms}``): the model's receptive field, or, for openSMILE functionals, the
    first frame of openSMILE (a shorter clip's functionals are all NaN, which the extractor turns into zeros, and the
    model would score that as speech). ``ser-hf predict`` gives such clips an error row; evaluation leaves them
    out, listing them."""
    samples, what = minimum_input_samples(model_config), RECEPTIVE_FIELD
    feature_set = getattr(feature_extractor, "feature_set", None)
    if isinstance(feature_set, str) and callable(getattr(feature_extractor, "functionals", None)):
        from ..models.feature_extraction_opensmile import functionals_minimum_samples, functionals_too_short

        functionals = functionals_minimum_samples(feature_set, feature_extractor.sampling_rate)
        if functionals > samples:
            samples, what = functionals, functionals_too_short(feature_set)
    return samples, what


def drop_clips_shorter_than(
    splits: DatasetDict | Dataset, min_seconds: float, skip_invalid: bool = False, what: str = RECEPTIVE_FIELD
) -> DatasetDict | Dataset:
    """Stop on clips too short for the model to see (shorter than its receptive field, or what else ``what`` names,
    with ``{ms}`` for the length), naming them (and their split); with `skip_invalid` drop them instead, with a
    warning that lists them. Takes the splits, or the whole corpus before it is split (FAST mode checks it before
    encoding any clip)."""
    return _drop_clips(
        splits,
        lambda duration: duration < min_seconds,
        f"shorter than {what.format(ms=f'{min_seconds * 1000:.1f}')}",
        skip_invalid,
    )


def drop_clips_longer_than(
    splits: DatasetDict | Dataset,
    max_seconds: Optional[float],
    skip_invalid: bool = False,
    feature_extractor: Optional[SequenceFeatureExtractor] = None,
) -> DatasetDict | Dataset:
    """Stop on clips longer than the encoder's window of a model that reads them whole (`max_seconds`; `None`: no
    bound, as FAST mode encodes a long clip in windows), naming each file, its duration to the millisecond and its
    split, before anything is encoded; with `skip_invalid` drop them instead, with a warning that lists them. A
    `feature_extractor` that trims each clip's silence (``trim_silence_db``) keeps a longer clip that fits its window
    once trimmed, as it reads it."""
    if max_seconds is None:
        return splits
    trims = getattr(feature_extractor, "trim_silence_db", None) is not None

    def fits_once_trimmed(split: Dataset, rows: list[int]) -> list[bool]:
        if not trims:
            return [False] * len(rows)
        clips = split.select(rows).select_columns([WAVEFORM_COLUMN]).with_format("numpy")
        return [feature_extractor.reads_whole(clip[WAVEFORM_COLUMN]) for clip in clips]

    return _drop_clips(
        splits,
        lambda duration: duration > max_seconds,
        f"longer than the encoder's {max_seconds:g}-s window"
        + (" once trimmed" if trims else "")
        + " (a frozen encoder in FAST mode takes them in windows)",
        skip_invalid,
        length=lambda duration: f"{duration:.3f} s",
        exempt=fits_once_trimmed,
    )


def _drop_clips(
    splits: DatasetDict | Dataset,
    is_bad: Callable[[float], bool],
    problem: str,
    skip_invalid: bool,
    length: Callable[[float], str] = lambda duration: f"{duration * 1000:.1f} ms",
    exempt: Optional[Callable[[Dataset, list[int]], list[bool]]] = None,
) -> DatasetDict | Dataset:
    """`splits` without the clips whose duration `is_bad` (unless `exempt(split, rows)` says a row is fine after
    all), or the error that names them."""
    if isinstance(splits, Dataset):
        return _drop_clips(DatasetDict({"": splits}), is_bad, problem, skip_invalid, length, exempt)[""]
    bad, spared = {}, set()
    for name, split in splits.items():
        durations = column_values(split, "duration")
        rows = [row for row, duration in enumerate(durations) if is_bad(duration)]
        if rows and exempt is not None:
            fine = exempt(split, rows)
            if any(fine):
                spared.add(name)
            rows = [row for row, ok in zip(rows, fine) if not ok]
        paths = column_values(split, "path")
        bad[name] = [(row, paths[row], durations[row]) for row in rows]
    clips = [(name, path, duration) for name, found in bad.items() for _, path, duration in found]
    if not clips:
        return splits
    listing = "; ".join(
        f"{path} ({length(duration)}{', ' + name if name else ''})" for name, path, duration in clips[:10]
    )
    more = f" and {len(clips) - 10} more" if len(clips) > 10 else ""
    text = f"{len(clips)} clip(s) are {problem}: {listing}{more}"
    if not skip_invalid:
        raise InvalidClipError(clips[0][1], f"{text}. Remove them, or set skip_invalid: true to skip them")
    # A noun phrase, not the error's sentence: "Skipping 1 clip shorter than ...", "Skipping 2 clips longer than ...".
    logger.warning("Skipping %d clip%s %s: %s%s", len(clips), "" if len(clips) == 1 else "s", problem, listing, more)
    return DatasetDict({name: _without(split, bad[name], is_bad, name in spared) for name, split in splits.items()})


def _without(split: Dataset, bad: list[tuple[int, str, float]], is_bad: Callable[[float], bool], spared: bool):
    """`split` without its `bad` rows: by their duration (`is_bad`) where no clip of that length was `spared`."""
    if not bad:
        return split
    if not spared:
        return split.filter(lambda duration: not is_bad(duration), input_columns="duration")
    dropped = {row for row, _, _ in bad}
    return split.select([row for row in range(len(split)) if row not in dropped])


class InputMode:
    """How the recipe's model gets its inputs: what is computed once per corpus, which columns each split keeps,
    what `Trainer` trains and how rows are batched.

    Args:
        model_args (`ModelArguments`), data_args (`DataArguments`), augmentation_args (`AugmentationArguments`):
            the recipe.
        build_model (`Callable`): builds the recipe's model and feature extractor from ``(model_args,
            augmentation_args, labels)``, for the modes that run (part of) it over the corpus once.
    """

    #: The mode's name, in the field's words.
    name: ClassVar[str]
    #: The columns of a split that its batches are made from (besides :data:`SPLIT_COLUMNS`).
    columns: ClassVar[tuple[str, ...]]
    #: What :meth:`prepare_corpus` computes, as the other processes' wait for the main one names it; `None` when
    #: the mode computes nothing before the split.
    preparation: ClassVar[Optional[str]] = None

    def __init__(self, model_args, data_args, augmentation_args, build_model: ModelBuilder):
        self.model_args = model_args
        self.data_args = data_args
        self.augmentation_args = augmentation_args
        self.build_model = build_model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_args.model_type}: {self.name})"

    def prepare_corpus(self, dataset: Dataset, training_args) -> Dataset:
        """The decoded corpus with what this mode computes once for all its splits (every fold, both runs of the
        leakage study). The main process computes it first; the others then read its cache."""
        if self.preparation is None:
            return dataset
        with training_args.main_process_first(desc=self.preparation):
            return self._prepare_corpus(dataset, training_args)

    def _prepare_corpus(self, dataset: Dataset, training_args) -> Dataset:
        return dataset

    def fold_inputs(
        self, model: nn.Module, feature_extractor: SequenceFeatureExtractor, splits: DatasetDict, training_args
    ) -> DatasetDict:
        """What the split's model trains and is evaluated on: each split's :attr:`columns` and
        :data:`SPLIT_COLUMNS`."""
        return DatasetDict({name: model_inputs(split, self.columns) for name, split in splits.items()})

    def longest_clip_seconds(self, feature_extractor: SequenceFeatureExtractor) -> Optional[float]:
        """The longest clip the model reads whole, in seconds: a Whisper extractor's window (its encoder takes no
        more); `None`: no bound (the baselines, wav2vec 2.0-style encoders, FAST mode's windows)."""
        if isinstance(feature_extractor, SerWhisperFeatureExtractor):
            return feature_extractor.n_samples / feature_extractor.sampling_rate
        return None

    def fold_training_args(self, training_args, feature_extractor: SequenceFeatureExtractor, inputs: DatasetDict):
        """The training arguments the split's batches need (the recipe's, unless the mode must change them)."""
        return training_args

    def trained_model(
        self, model: nn.Module, feature_extractor: SequenceFeatureExtractor, inputs: DatasetDict
    ) -> nn.Module:
        """What `Trainer` trains on the split's inputs: the model itself, unless the mode says otherwise."""
        return model

    def exported_model(self, model: nn.Module, trained_model: nn.Module) -> nn.Module:
        """The classifier to save once `trained_model` (:meth:`trained_model`'s) has trained: `model` itself, unless
        the mode must fold what it trained into it first."""
        return model

    def callbacks(
        self,
        trained_model: nn.Module,
        feature_extractor: SequenceFeatureExtractor,
        inputs: DatasetDict,
        training_args,
        normalization=None,
    ) -> list:
        """The callbacks (`TrainerCallback`) the mode needs while `trained_model` trains on the split's `inputs`
        (none, unless the mode says otherwise; :class:`~ser_hf.inputs.top_layers.TopLayersMode` recomputes speaker
        statistics)."""
        return []

    def collators(
        self,
        feature_extractor: SequenceFeatureExtractor,
        inputs: DatasetDict,
        training_args,
        normalization=None,
        extra_columns: tuple[str, ...] = (),
    ) -> tuple[Callable, Callable]:
        """``(training collator, evaluation collator)`` of the split; the training one passes ``extra_columns``
        through (the clip paths the trainer names a bad batch's clips with), and ``normalization`` (a
        `NormalizationPlan`) gives each speaker's statistics to the modes that standardise with them."""
        raise NotImplementedError(f"{type(self).__name__} must implement collators().")


__all__ = [
    "RECEPTIVE_FIELD",
    "SPLIT_COLUMNS",
    "InputMode",
    "ModelBuilder",
    "drop_clips_shorter_than",
    "minimum_clip_samples",
    "model_inputs",
    "receptive_field_seconds",
]
