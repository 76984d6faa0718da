"""The data stage of a training run: the recipe's corpora loaded on the shared vocabulary and decoded once, prepared
for the recipe's input mode (:func:`prepare_recipe_data`), split by its protocol, and each split audited before its
model is built."""

from __future__ import annotations

import logging
import os
from typing import Optional

from datasets import Dataset, DatasetDict
from transformers import AutoConfig

from ..data.audit import LeakageReport, audit_leakage
from ..data.corpora import load_corpus, merge_corpora
from ..data.corpus_settings import options_of_each_corpus
from ..data.dataset_info import column_values
from ..data.decode import ShortestClip, prepare_audio, waveform_precision
from ..data.split_settings import split_options
from ..data.splits import SplitError, split_dataset
from ..errors import RecipeError
from ..inputs.base import InputMode, minimum_clip_samples
from ..models.runtime.baselines import default_feature_extractor
from ..recipe.data_arguments import DataArguments
from ..recipe.model_arguments import ModelArguments
from ..recipe.recipe import Recipe
from .corpus_adversary import adversary_corpora
from .model_stage import check_model_config, recipe_input_mode

logger = logging.getLogger(__name__)


def load_dataset_from_args(data_args: DataArguments, shortest_clip: Optional[ShortestClip] = None) -> Dataset:
    """Load the recipe's corpora on the shared vocabulary, merge them, and decode every clip once (cached).

    Every unusable clip (one that does not decode, holds NaN or infinite samples or silence, or is shorter than
    ``shortest_clip``, the model's: :func:`recipe_shortest_clip`) is named in one error, or, with ``skip_invalid``,
    left out with one warning (:func:`~ser_hf.data.decode.prepare_audio`)."""
    corpora = [
        load_corpus(
            name,
            data_dir,
            sampling_rate=data_args.sampling_rate,
            label_map=data_args.label_map,
            labels=data_args.labels,
            skip_invalid=data_args.skip_invalid,
            **options,
        )
        for name, data_dir, options in zip(
            data_args.corpus, data_args.data_dir, options_of_each_corpus(data_args.corpus, data_args.corpus_options)
        )
    ]
    dataset = corpora[0] if len(corpora) == 1 else merge_corpora(corpora, labels=data_args.labels)
    return prepare_audio(
        dataset,
        num_proc=data_args.preprocessing_num_workers,
        skip_invalid=data_args.skip_invalid,
        precision=waveform_precision(data_args.cache_precision),
        shortest_clip=shortest_clip,
    )


def recipe_shortest_clip(model_args: ModelArguments, sampling_rate: int) -> Optional[ShortestClip]:
    """The shortest clip the recipe's model can use, read before any weights: an SSL encoder's receptive field (from
    its config), or one openSMILE frame for the functionals baseline
    (:func:`~ser_hf.inputs.base.minimum_clip_samples`); `None` where any length does (the spectrogram baselines pad a
    short clip) or the config cannot be read here (the model's own check names it later)."""
    if model_args.is_baseline:
        config, feature_extractor = None, default_feature_extractor(model_args.model_type)
        if model_args.feature_extractor_config:  # as build_model makes it
            feature_extractor = type(feature_extractor)(**model_args.feature_extractor_config)
        sampling_rate = feature_extractor.sampling_rate
    else:
        feature_extractor = None
        try:
            if model_args.model_name_or_path is None:
                config = AutoConfig.for_model(model_args.model_type, **model_args.model_config)
            else:
                config = AutoConfig.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision)
        except Exception:  # noqa: BLE001 - only a courtesy: build_model reports a config it cannot read
            return None
    samples, what = minimum_clip_samples(config, feature_extractor)
    return ShortestClip(samples / sampling_rate, what) if samples > 1 else None


def make_folds(dataset: Dataset, data_args: DataArguments) -> list[tuple[Optional[int], DatasetDict]]:
    """The recipe's split as ``(fold, splits)`` pairs: one pair with fold `None` for the speaker and random
    protocols, one per selected fold for kfold and loso."""
    folds = split_dataset(dataset, data_args.split_protocol, **split_options(data_args))
    if data_args.split_protocol in ("speaker", "random"):
        if data_args.folds is not None:
            raise RecipeError(f"folds selects folds of kfold or loso, not of the {data_args.split_protocol} protocol.")
        return [(None, folds[0])]
    selected = data_args.folds if data_args.folds is not None else list(range(len(folds)))
    bad = [fold for fold in selected if not 0 <= fold < len(folds)]
    if bad:
        raise RecipeError(
            f"folds {bad} do not exist: the {data_args.split_protocol} protocol makes folds 0..{len(folds) - 1}."
        )
    return [(fold, folds[fold]) for fold in selected]


def audit_split(
    splits: DatasetDict, fold: Optional[int] = None, recipe: Optional[str | os.PathLike] = None
) -> LeakageReport:
    """Audit the split before the model is built: a training split whose clips all carry one emotion stops the run
    (a one-label model scores 100 % UA and has learnt nothing; SplitError naming the label), as does a class with no
    training clip (the model could never predict it; SplitError naming the class) and a leaking speaker-independent
    split (LeakageError). A validation or test split missing some of the training labels is a warning: its UA
    averages over the labels it holds.

    Args:
        recipe (`str` or `os.PathLike`, *optional*): the recipe file, named in the errors.
    """
    label_names = splits["train"].features["label"].names
    train_labels = column_values(splits["train"], "label")
    present = set(train_labels)
    where = f" of fold {fold}" if fold is not None else ""
    source = f" (recipe {recipe})" if recipe is not None else ""
    if len(present) == 1:
        (only,) = present
        raise SplitError(
            f"The training split{where} holds clips of one emotion only ({label_names[only]!r}, all "
            f"{len(train_labels)} of them): a classifier of one label learns nothing and scores 100 % UA. Point "
            f"data_dir at a corpus with at least two emotions, or widen labels/label_map{source}."
        )
    absent = [name for index, name in enumerate(label_names) if index not in present]
    if absent:
        raise SplitError(
            f"The training split{where} has no clip of class(es) {absent} (its speakers: "
            f"{sorted(set(column_values(splits['train'], 'speaker_id')))}). Give those speakers' splits "
            f"more speakers, or leave the classes out with the labels option{source}."
        )
    for name in ("validation", "test"):
        if name in splits and len(splits[name]) > 0:
            missing = sorted(present - set(column_values(splits[name], "label")))
            if missing:
                logger.warning(
                    "The %s split%s holds %d of the training split's %d labels (none of %s): its UA and macro-F1 "
                    "average over the labels it holds.",
                    name,
                    where,
                    len(present) - len(missing),
                    len(present),
                    [label_names[index] for index in missing],
                )
    report = audit_leakage(splits)
    logger.info("%s", report.describe_failures())
    return report


def prepare_recipe_data(recipe: Recipe) -> tuple[InputMode, Dataset]:
    """How every run of a recipe starts (``ser_hf.train``, the leakage study, the benchmarks): the corpora decoded
    (every process needs them; the first decodes and caches, the others read the cache) and the recipe's input mode,
    chosen for the device it trains on, with what it computes once for the whole corpus before it is split (the
    frozen encoder's outputs, the openSMILE functionals) for every split to read."""
    check_model_config(recipe.model, recipe.augmentation)
    with recipe.training.main_process_first(desc="decoding the corpus"):
        dataset = load_dataset_from_args(
            recipe.data, shortest_clip=recipe_shortest_clip(recipe.model, recipe.data.sampling_rate)
        )
    # The split is made once on the loaded corpus first, so that a speaker list naming speakers the corpus lacks (or a
    # protocol it cannot follow) stops the run before minutes of encoding, not after.
    folds = make_folds(dataset, recipe.data)
    if recipe.training.corpus_adversarial_weight:
        for _, splits in folds:
            adversary_corpora(splits["train"], recipe.training.corpus_adversarial_weight)
    input_mode = recipe_input_mode(recipe, device=recipe.training.device.type)
    return input_mode, input_mode.prepare_corpus(dataset, recipe.training)


__all__ = [
    "audit_split",
    "load_dataset_from_args",
    "make_folds",
    "prepare_recipe_data",
    "recipe_shortest_clip",
]
