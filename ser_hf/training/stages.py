"""The stages of a training run, in the order :mod:`ser_hf.train` calls them: load and decode the corpus, split it
by speaker and audit the split, build the model, train and evaluate one split, export the model and its report."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import numpy as np
from datasets import Dataset, DatasetDict
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, EarlyStoppingCallback, PreTrainedModel, set_seed
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..atomic_files import atomic_directory, write_text_atomic
from ..data.audit import LeakageReport, audit_leakage
from ..data.constants import canonical_corpus_name
from ..data.corpora import load_corpus, merge_corpora
from ..data.dataset_info import column_values, get_ser_info
from ..data.decode import ShortestClip, prepare_audio
from ..data.splits import SplitError, clip_changes, clip_fingerprint, split_dataset
from ..errors import RecipeError
from ..evaluation.calibration import apply_temperature, fit_temperature_scaling, reset_temperature
from ..evaluation.report import evaluate_split, predict_split, write_report
from ..hub.card import write_model_card
from ..hub.push import push_to_hub
from ..inputs.base import (
    InputMode,
    drop_clips_longer_than,
    drop_clips_shorter_than,
    minimum_clip_samples,
    receptive_field_seconds,
)
from ..inputs.collators import AudioClassificationCollator
from ..inputs.modes import input_mode as recipe_mode
from ..inputs.speaker_normalization import NormalizationPlan, fit_normalization
from ..models import (
    build_baseline,
    build_ssl_classifier,
    build_ssl_feature_extractor,
    check_feature_extractor,
    count_parameters,
    merge_lora,
)
from ..models.feature_extraction_whisper import UTTERANCE_NORMALIZATION
from ..models.runtime.baselines import default_feature_extractor
from ..models.runtime.ssl import check_config_overrides, ssl_lora_config
from ..recipe.arguments import AugmentationArguments, DataArguments, ModelArguments, SERTrainingArguments
from ..recipe.fields import OUTCOME, field_facts, outcome_fields
from ..recipe.recipe import Recipe
from ..recipe.values import options_of_each_corpus
from ..run_folder import (
    CLIP_FINGERPRINT_FILE,
    METRICS_FILE,
    RUN_CONFIG_FILE,
    RunDir,
    checkpoint_step,
    fold_folder,
    remove_run_outputs,
)
from ..run_record import (
    CalibrationRecord,
    RunConfig,
    RunReport,
    SplitMetrics,
    SplitRecord,
    TrainingRecord,
    ValidationChoices,
)
from .corpus_adversary import CorpusLabelsCollator, adversary_corpora, attach_corpus_adversary
from .self_training import pick_pseudo_labels, read_picks, round_folder, with_pseudo_labels, write_picks
from .soup import finish_soup, train_members
from .trainer import (
    CLIP_PATHS_KEY,
    EpochCallback,
    SERTrainer,
    class_weights_tensor,
    corpus_sampling_weights,
    metrics_function,
)

logger = logging.getLogger(__name__)


# --- Data ---------------------------------------------------------------------------------------------------------


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
        precision=data_args.cache_precision,
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
    folds = split_dataset(dataset, data_args.split_protocol, **data_args.split_options())
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


# --- Model --------------------------------------------------------------------------------------------------------


def build_model(
    model_args: ModelArguments, augmentation_args: AugmentationArguments, labels
) -> tuple[PreTrainedModel, SequenceFeatureExtractor]:
    """The recipe's model with the task's labels, and the feature extractor that feeds it."""
    if model_args.is_baseline:
        extractor_class = type(default_feature_extractor(model_args.model_type))
        feature_extractor = (
            extractor_class(**model_args.feature_extractor_config) if model_args.feature_extractor_config else None
        )
        return build_baseline(
            model_args.model_type, labels, feature_extractor=feature_extractor, **model_args.model_config
        )
    lora_config = None
    # LoRA on the top layers only is the input mode's (TopLayersMode), on the modules it trains.
    if model_args.use_lora and not model_args.finetune_top_layers:
        lora_options = (
            {} if model_args.lora_target_modules is None else {"target_modules": model_args.lora_target_modules}
        )
        lora_config = ssl_lora_config(
            r=model_args.lora_r, lora_alpha=model_args.lora_alpha, lora_dropout=model_args.lora_dropout, **lora_options
        )
    regime = dict(
        pooling_mode=model_args.pooling_mode,
        use_weighted_layer_sum=model_args.use_weighted_layer_sum,
        freeze_feature_encoder=model_args.freeze_feature_encoder,
        num_frozen_layers=model_args.num_frozen_layers,
        freeze_base_model=model_args.freeze_base_model,
        lora_config=lora_config,
    )
    extractor_options = {}
    if model_args.encoder_window_seconds is not None:
        regime["encoder_window_seconds"] = extractor_options["encoder_window_seconds"] = (
            model_args.encoder_window_seconds
        )
    if model_args.feature_extractor_config:
        extractor_options.update(model_args.feature_extractor_config)
    center_frames = utterance_settings(model_args)
    if model_args.model_name_or_path is None:
        logger.warning(
            "No model_name_or_path: building a randomly initialised %s from model_config (for tests and "
            "smoke runs; real runs start from a pre-trained checkpoint).",
            model_args.model_type,
        )
        # The head's regime goes into the config it is validated with: model_config may name fields that need it
        # (pooled_layers needs layer_statistics pooling over every layer).
        head = model_args.head_config_fields()
        config = AutoConfig.for_model(model_args.model_type, **{**head, **model_args.model_config, **center_frames})
        model = build_ssl_classifier(config, labels, config_overrides=augmentation_args.ssl_masking(), **regime)
        feature_extractor = build_ssl_feature_extractor(model.config, **extractor_options)
        check_feature_extractor(model, feature_extractor)
        return model, feature_extractor
    # The feature extractor first: a checkpoint without one is named before its weights are read.
    feature_extractor = build_ssl_feature_extractor(
        model_args.model_name_or_path, revision=model_args.model_revision, **extractor_options
    )
    overrides = config_overrides(model_args, augmentation_args)
    try:
        model = build_ssl_classifier(
            model_args.model_name_or_path,
            labels,
            config_overrides=overrides,
            revision=model_args.model_revision,
            reinitialize_head=model_args.reinitialize_head,
            match_head_labels=model_args.match_head_labels,
            use_safetensors=None if model_args.allow_pickled_weights else True,
            **regime,
        )
    except StrictDataclassError as error:
        raise model_config_error(model_args, error) from None
    check_feature_extractor(model, feature_extractor)
    return model, feature_extractor


def utterance_settings(model_args: ModelArguments) -> dict[str, bool]:
    """The model's part of per-utterance normalisation (``normalization: utterance``): each clip's frames centred on
    their own mean before pooling (``center_frames``); nothing for the other normalisations."""
    normalization = (model_args.feature_extractor_config or {}).get("normalization")
    return {"center_frames": True} if normalization == UTTERANCE_NORMALIZATION else {}


def config_overrides(model_args: ModelArguments, augmentation_args: AugmentationArguments) -> dict[str, Any]:
    """What :func:`build_model` sets on a pre-trained checkpoint's config besides its regime keys: the recipe's
    ``model_config``, the per-utterance centring and the SSL masking."""
    return {**model_args.model_config, **utterance_settings(model_args), **augmentation_args.ssl_masking()}


def model_config_error(model_args: ModelArguments, error: StrictDataclassError) -> RecipeError:
    """The checkpoint's config with the recipe's values failed its own checks (a layer it does not have, ...): one
    line naming both, as the recipe's other errors, not a traceback."""
    return RecipeError(f"model_config on {model_args.model_name_or_path}: {error.__cause__ or error}")


def check_model_config(model_args: ModelArguments, augmentation_args: AugmentationArguments) -> None:
    """The recipe's ``model_config`` (and SSL masking) applied to its checkpoint's config before the corpus is
    decoded, so that a value the checkpoint cannot take stops the run before any slow work (:func:`build_model`
    applies them again when it builds the model)."""
    if model_args.is_baseline or model_args.model_name_or_path is None:
        return
    overrides = config_overrides(model_args, augmentation_args)
    if not overrides:
        return
    try:
        check_config_overrides(
            model_args.model_name_or_path,
            overrides,
            pooling_mode=model_args.pooling_mode,
            use_weighted_layer_sum=model_args.use_weighted_layer_sum,
            revision=model_args.model_revision,
        )
    except StrictDataclassError as error:
        raise model_config_error(model_args, error) from None


def recipe_input_mode(
    model_args: ModelArguments | Recipe,
    data_args: Optional[DataArguments] = None,
    augmentation_args: Optional[AugmentationArguments] = None,
    device: Optional[str] = None,
) -> InputMode:
    """How the recipe's model gets its inputs (raw audio, cached feature-encoder outputs, FAST mode or openSMILE
    functionals; see :func:`ser_hf.inputs.modes.input_mode`; ``device``: the type of device it trains on), building
    models with :func:`build_model`. Takes a :class:`~ser_hf.recipe.Recipe`, or its model, data and augmentation
    sections."""
    if isinstance(model_args, Recipe):
        model_args, data_args, augmentation_args, _ = model_args
    return recipe_mode(model_args, data_args, augmentation_args, build_model, device=device)


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


def train_folds(
    recipe: Recipe,
    input_mode: InputMode,
    dataset: Dataset,
    /,
    *,
    recipe_file: Optional[str | os.PathLike] = None,
    reduce_test: Optional[Callable[[DatasetDict, Optional[int]], DatasetDict]] = None,
) -> Iterator[tuple[Optional[int], DatasetDict, RunReport]]:
    """``train_folds(recipe, input_mode, dataset)``: split the prepared corpus (:func:`prepare_recipe_data`) by the
    recipe's protocol, audit each split (leakage, labels) before its model is built, then train and evaluate it;
    yields ``(fold, splits, report)`` as each finishes. ``reduce_test(splits, fold)`` changes a split before it is
    audited (the benchmark's fewer emotions per test speaker); ``recipe_file`` (the recipe's file by default) is
    named in the audit's errors."""
    recipe_file = recipe_file if recipe_file is not None else recipe.path
    for fold, splits in make_folds(dataset, recipe.data):
        if reduce_test is not None:
            splits = reduce_test(splits, fold)
        leakage_report = audit_split(splits, fold, recipe=recipe_file)
        yield (
            fold,
            splits,
            train_and_evaluate(recipe, splits, fold=fold, leakage_report=leakage_report, input_mode=input_mode),
        )


# --- Training -----------------------------------------------------------------------------------------------------


def fold_training_args(training_args: SERTrainingArguments, output_dir: str, has_validation: bool):
    """The training arguments of one split: its own output folder; without a validation split no evaluation
    during training, no best-model selection and no early stopping (the test split is never used for them)."""
    # ser-hf pushes the finished run itself (finish_run: weights, card, reports, recipe), never Trainer's checkpoints.
    changes: dict[str, Any] = {"output_dir": output_dir, "push_to_hub": False}
    if not has_validation and training_args.eval_strategy != "no":
        logger.warning(
            "No validation split: training runs its epochs without evaluation, best-model selection or "
            "early stopping (the test split is never used to choose a model)."
        )
        changes.update(eval_strategy="no", load_best_model_at_end=False, early_stopping_patience=None)
    return dataclasses.replace(training_args, **changes)


def _outcome_training_fields() -> set[str]:
    """The training settings that change what a run trains (its optimiser, schedule, batches, seed, precision, and
    which epoch it keeps): a finished or interrupted run with other values is not this recipe's run. Each field's
    ``outcome`` fact says it (:func:`ser_hf.recipe.fields.outcome_fields`), not its logging, saving or output."""
    return set(outcome_fields(SERTrainingArguments))


def check_same_recipe(output_dir: Path, run_config: RunConfig | Mapping[str, Any]) -> None:
    """Refuse to resume (or read back) a run in ``output_dir`` that another model, data, augmentation or training
    setting wrote (``run_config``: the resolved recipe, :meth:`~ser_hf.recipe.Recipe.to_run_config`; of the training
    settings, those that change what is trained, :func:`_outcome_training_fields`: not its logging, saving or
    output)."""
    run = RunDir(output_dir)
    if not run.has(RUN_CONFIG_FILE):
        return
    if not run.holds_progress():
        return  # that run stopped before its first checkpoint (on bad input, say): nothing to mix with
    previous, current = run.read_config(), RunConfig.from_dict(run_config)
    training_fields = _outcome_training_fields()

    def comparable(config: RunConfig, section: str, arguments) -> dict:
        # Of the training settings, those that change what is trained; of the others, all but those whose facts say
        # they do not (which folds run, how many processes decode).
        values = json.loads(json.dumps(getattr(config, section), default=str)) or {}
        if section == "training":
            return {key: value for key, value in values.items() if key in training_fields}
        neutral = {name for name, facts in field_facts(arguments).items() if facts.get(OUTCOME) is False}
        return {key: value for key, value in values.items() if key not in neutral}

    changed = {}
    for section, arguments in (
        ("model", ModelArguments),
        ("data", DataArguments),
        ("augmentation", AugmentationArguments),
        ("training", SERTrainingArguments),
    ):
        before, now = comparable(previous, section, arguments), comparable(current, section, arguments)
        defaults = _field_defaults(arguments)
        keys = sorted(
            key
            for key in set(before) | set(now)
            # A key the earlier ser-hf did not record, at its default now: a setting added since, not a change.
            if before.get(key) != now.get(key) and not (key not in before and now.get(key) == defaults.get(key))
        )
        if keys:
            changed[section] = keys
    if changed:
        raise RecipeError(
            f"{output_dir} holds a run with other {' and '.join(changed)} settings ("
            + "; ".join(f"{section}: {', '.join(keys)}" for section, keys in changed.items())
            + "): reading its results back, or resuming it, would pass that run off as this recipe's. Choose "
            "another output_dir, or set overwrite_output_dir to train anew in this one."
        )


def check_same_clips(output_dir: Path, fingerprint: Mapping[str, Any]) -> None:
    """Refuse to resume (or read back) a run in ``output_dir`` that trained or was evaluated on other clips than
    ``splits`` now hold (:func:`~ser_hf.data.splits.clip_fingerprint`: clips deleted, added or relabelled since),
    naming each split that changed and by how much; a run that recorded no fingerprint (an earlier ser-hf) passes."""
    run = RunDir(output_dir)
    if not run.holds_progress():
        return
    before = run.read_json(CLIP_FINGERPRINT_FILE)
    if before is None:
        return
    changes = clip_changes(before, fingerprint)
    if changes:
        raise RecipeError(
            f"{output_dir} holds a run on other clips than the corpus holds now ({'; '.join(changes)}; recorded "
            f"in {output_dir / CLIP_FINGERPRINT_FILE}): reading its results back, or resuming it, would report "
            "clips that are gone or leave out new ones. Set overwrite_output_dir to train anew on the corpus as it "
            "is, or choose another output_dir."
        )


def _field_defaults(arguments: type) -> dict[str, Any]:
    """Each field's default as a run's record holds it (JSON values)."""
    defaults = {}
    for field in dataclasses.fields(arguments):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return json.loads(json.dumps(defaults, default=str))


def remove_previous_run(output_dir: Path, training_args: SERTrainingArguments) -> None:
    """Remove the run in ``output_dir`` (``overwrite_output_dir``): only the files a ser-hf run writes
    (:func:`~ser_hf.run_folder.remove_run_outputs`), in a folder that a ser-hf run wrote (it holds
    ``run_config.json``); anything else there is kept and named. The main process removes them while the others
    wait."""
    with training_args.main_process_first(desc="removing the previous run"):
        if training_args.should_save and RunDir(output_dir).is_run_folder():
            logger.warning("overwrite_output_dir: removing the previous run's outputs in %s", output_dir)
            kept = remove_run_outputs(output_dir)
            if kept:
                logger.warning("Kept in %s (not written by ser-hf): %s", output_dir, ", ".join(kept))


def train_and_evaluate(
    recipe: Recipe,
    splits: DatasetDict,
    /,
    *,
    fold: Optional[int] = None,
    leakage_report: Optional[LeakageReport] = None,
    input_mode: Optional[InputMode] = None,
) -> RunReport:
    """``train_and_evaluate(recipe, splits)``: train on ``splits["train"]`` (choosing the best epoch on
    ``validation``), fit temperature scaling on ``validation`` (``calibrate_temperature``), evaluate validation and
    test with it, save the model (with its feature extractor and temperature) and write ``metrics.json``
    (:class:`~ser_hf.run_record.RunReport`) and the plots; returns the report.
    ``input_mode`` is the recipe's (:func:`recipe_input_mode`) that prepared the corpus the splits come from.

    A split whose ``metrics.json`` exists has finished and is read back; one with checkpoints resumes from the last.
    """
    model_args, data_args, augmentation_args, training_args = recipe
    output_dir = Path(training_args.output_dir) / (fold_folder(fold) if fold is not None else "")
    run_config = recipe.to_run_config()
    if training_args.overwrite_output_dir:
        remove_previous_run(output_dir, training_args)
    check_same_recipe(output_dir, run_config)
    fingerprint = clip_fingerprint(splits)
    check_same_clips(output_dir, fingerprint)
    finished = RunDir(output_dir).read_report()
    if finished is not None:
        logger.warning(
            "%s holds a finished run (%s): reading its report instead of training again. Set "
            "overwrite_output_dir to train it anew.",
            output_dir,
            output_dir / METRICS_FILE,
        )
        return finished

    label_names = splits["train"].features["label"].names
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is not None and fold is not None:
        raise RecipeError(
            "resume_from_checkpoint names one checkpoint, but this recipe trains several folds; each "
            "fold resumes from the last checkpoint in its own folder without it."
        )
    if checkpoint is None and output_dir.is_dir():
        checkpoint = RunDir(output_dir).last_complete_checkpoint(max_steps=training_args.max_steps)
    elif checkpoint is not None and training_args.max_steps > 0:
        step = checkpoint_step(checkpoint)
        if step is not None and step > training_args.max_steps:
            raise RecipeError(
                f"resume_from_checkpoint {checkpoint} is at step {step}, past this run's max_steps "
                f"{training_args.max_steps}: resumed, it would end at once, trained further than asked. Raise "
                "max_steps, or resume from an earlier checkpoint."
            )
    args = fold_training_args(training_args, str(output_dir), "validation" in splits)
    if args.self_training_rounds and not len(splits.get("test", [])):
        raise RecipeError(
            f"self_training_rounds: {args.self_training_rounds} picks clips of the test split, but this split has "
            f"none (splits: {', '.join(f'{name} {len(split)}' for name, split in splits.items())}): give the recipe "
            "test speakers (test_speakers, or a k-fold or leave-one-speaker-out protocol), or leave it at 0."
        )
    if args.should_save:
        output_dir.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: another process may be reading the previous one in check_same_recipe.
        write_text_atomic(output_dir / RUN_CONFIG_FILE, json.dumps(run_config.to_dict(), indent=2, default=str) + "\n")
        write_text_atomic(output_dir / CLIP_FINGERPRINT_FILE, json.dumps(fingerprint, indent=2) + "\n")

    set_seed(args.seed)
    model, feature_extractor = build_model(model_args, augmentation_args, splits["train"].features["label"])
    reset_temperature(model)
    mode = input_mode or recipe_input_mode(model_args, data_args, augmentation_args)
    splits = drop_clips_shorter_than(
        splits, receptive_field_seconds(model, feature_extractor), skip_invalid=data_args.skip_invalid
    )
    splits = drop_clips_longer_than(
        splits, mode.longest_clip_seconds(feature_extractor), data_args.skip_invalid, feature_extractor
    )
    # Global (training speakers') statistics into the extractor, and each speaker's own for speaker normalisation.
    normalization = fit_normalization(feature_extractor, splits)
    inputs = mode.fold_inputs(model, feature_extractor, splits, args)
    args = mode.fold_training_args(args, feature_extractor, inputs)

    started = time.perf_counter()
    # Self-training: each round's model picks test clips by its predictions, which the next one trains on as well.
    training_inputs, picked = inputs, []
    for round_index in range(args.self_training_rounds):
        folder = round_folder(output_dir, round_index)
        picks = read_picks(folder, len(inputs["test"]))
        if picks is None:
            round_trainer = build_trainer(
                model,
                feature_extractor,
                training_inputs,
                mode,
                fold_training_args(args, str(folder), "validation" in inputs),
                label_names,
                normalization=normalization,
            )
            round_checkpoint = (
                RunDir(folder).last_complete_checkpoint(max_steps=args.max_steps) if folder.is_dir() else None
            )
            round_trainer.train(resume_from_checkpoint=round_checkpoint)
            picks = pick_pseudo_labels(
                predict_split(round_trainer, inputs["test"], "test")[1], args.self_training_share
            )
            if round_trainer.is_world_process_zero():
                write_picks(folder, *picks, label_names, len(inputs["test"]))
            round_trainer.accelerator.wait_for_everyone()
        picked.append(len(picks[0]))
        training_inputs = DatasetDict({**inputs, "train": with_pseudo_labels(inputs["train"], inputs["test"], *picks)})
        set_seed(args.seed)  # the next round from scratch, as the first began
        model, _ = build_model(model_args, augmentation_args, splits["train"].features["label"])
        reset_temperature(model)

    # A model soup's other members (soup_size): trained from the weights the run starts from, each in its folder.
    def train_member(index: int, folder: Path) -> bool:
        member_args = dataclasses.replace(
            fold_training_args(args, str(folder), "validation" in inputs), seed=args.seed + index
        )
        member = build_trainer(
            model, feature_extractor, training_inputs, mode, member_args, label_names, normalization=normalization
        )
        resume = RunDir(folder).last_complete_checkpoint(max_steps=args.max_steps) if folder.is_dir() else None
        member.train(resume_from_checkpoint=resume)
        return member.is_world_process_zero()

    soup = train_members(model, args.soup_size, output_dir, train_member)
    trainer = build_trainer(
        model, feature_extractor, training_inputs, mode, args, label_names, normalization=normalization
    )
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    finish_soup(model, soup)
    train_seconds = time.perf_counter() - started

    # Temperature scaling is fitted on the validation split's logits, and every split is then reported calibrated.
    predictions = {
        name: predict_split(trainer, inputs[name], name) for name in ("validation", "test") if name in inputs
    }
    validation_labels, validation_logits = predictions.get("validation", (None, None))
    calibration = fit_temperature_scaling(
        validation_logits, validation_labels, enabled=args.calibrate_temperature, min_clips=args.calibration_min_clips
    )
    temperature = calibration.temperature if calibration.fitted else None
    evaluation = {
        name: evaluate_split(trainer, inputs[name], label_names, name, predictions=split, temperature=temperature)
        for name, split in predictions.items()
    }
    split_info = get_ser_info(splits["train"])
    report = RunReport(
        protocol=data_args.split_protocol,
        fold=fold,
        split=SplitRecord.from_dict(
            {
                "clips": {name: len(split) for name, split in splits.items()},
                "speakers": {name: sorted(set(column_values(split, "speaker_id"))) for name, split in splits.items()},
                # The split's own settings, where the split recorded them.
                **{
                    key: value
                    for key, value in split_info.items()
                    if key in ("split_protocol", "seed", "speaker_lists", "n_splits", "test_speaker")
                },
            }
        ),
        leakage_audit=leakage_report.to_dict() if leakage_report is not None else None,
        normalization=normalization.to_dict() if normalization is not None else None,
        # Every figure of this report is in-corpus: on held-out speakers of the corpora the model trained on.
        training_corpora=split_info.get("corpora") or list(data_args.corpus),
        labels=label_names,
        evaluation={name: SplitMetrics.from_dict(metrics) for name, metrics in evaluation.items()},
        calibration=CalibrationRecord.from_dict(calibration.to_dict()),
        # What the validation speakers chose (reports and cards say so, and only what they did): Trainer keeps the
        # best checkpoint only with load_best_model_at_end and a checkpoint evaluated on them.
        validation_choices=(
            ValidationChoices(
                best_epoch=bool(args.load_best_model_at_end and trainer.state.best_model_checkpoint),
                early_stopping=args.early_stopping_patience is not None,
                temperature=calibration.fitted_on == "validation",
            )
            if "validation" in evaluation
            else None
        ),
        # Trainer's own train_* metrics (whichever its version reports), then ser-hf's.
        training=TrainingRecord.from_dict(
            {
                **train_result.metrics,
                "wall_seconds": round(train_seconds, 1),
                "global_step": trainer.state.global_step,
                "epochs": trainer.state.epoch,
                "best_checkpoint": trainer.state.best_model_checkpoint,
                "best_metric": trainer.state.best_metric,
                "resumed_from": checkpoint,
                "parameters": dataclasses.asdict(count_parameters(model)),
                "self_training_clips": picked or None,
            }
        ),
    )
    if trainer.is_world_process_zero():
        export_model(
            mode.exported_model(model, trainer.model),
            feature_extractor,
            output_dir,
            temperature=calibration.temperature,
        )
        write_report(output_dir, report, trainer.state.log_history)
        write_model_card(output_dir)
    trainer.accelerator.wait_for_everyone()
    return report


def build_trainer(
    model,
    feature_extractor,
    inputs: DatasetDict,
    input_mode: InputMode,
    args: SERTrainingArguments,
    label_names,
    normalization: Optional[NormalizationPlan] = None,
) -> SERTrainer:
    """The `SERTrainer` of one split, on the `inputs` its `input_mode` made: what the mode trains, its collators
    (random crops and augmentation for training only, each speaker's statistics for speaker normalisation), metrics,
    class weights, the head's learning rate and early stopping."""
    trained_model = input_mode.trained_model(model, feature_extractor, inputs)
    train_collator, eval_collator = input_mode.collators(
        feature_extractor, inputs, args, normalization=normalization, extra_columns=(CLIP_PATHS_KEY,)
    )
    random_collator = isinstance(train_collator, AudioClassificationCollator) and train_collator.is_random
    if random_collator and args.dataloader_persistent_workers:
        raise RecipeError(
            "dataloader_persistent_workers keeps each worker's collator from the first epoch, so every "
            "epoch would get the same crops and augmentation: turn it off."
        )
    # Collators whose per-clip draws depend on the epoch (crops, augmentation, cached augmented copies) follow it.
    callbacks = [EpochCallback(train_collator)] if hasattr(train_collator, "epoch") else []
    if args.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    callbacks += input_mode.callbacks(trained_model, feature_extractor, inputs, args, normalization=normalization)
    if args.corpus_adversarial_weight:
        corpora = adversary_corpora(inputs["train"], args.corpus_adversarial_weight)
        attach_corpus_adversary(trained_model, corpora)
        train_collator = CorpusLabelsCollator(train_collator, corpora)
    train_labels = column_values(inputs["train"], "label")
    return SERTrainer(
        model=trained_model,
        args=args,
        train_dataset=inputs["train"],
        eval_dataset=inputs.get("validation"),
        data_collator=train_collator,
        eval_data_collator=eval_collator,
        processing_class=feature_extractor,
        compute_metrics=metrics_function(label_names),
        callbacks=callbacks,
        class_weights=class_weights_tensor(args.class_weights, train_labels, label_names),
        head_learning_rate=args.head_learning_rate,
        mixup_alpha=input_mode.augmentation_args.mixup_alpha,
        sample_weights=training_sample_weights(inputs["train"], input_mode.data_args),
        corpus_adversarial_weight=args.corpus_adversarial_weight,
        starting_point_weight=args.starting_point_weight,
    )


def training_sample_weights(train, data_args) -> Optional[np.ndarray]:
    """Each training clip's sampling weight under the recipe's `corpus_weights` (`None` without them), logging
    each corpus' clips and share of the draws, and warning of a weight that has no effect (its corpus has no
    training clip: all its speakers are validation or test speakers)."""
    if not data_args.corpus_weights:
        return None
    corpora = column_values(train, "corpus")
    keys = corpus_weight_keys(sorted(set(corpora)), data_args.corpus_weights)
    unused = [name for name in data_args.corpus_weights if name not in keys.values()]
    if unused:
        logger.warning(
            "corpus_weights gives %s a weight, but the training split holds no clip of %s: the weight has no effect.",
            ", ".join(map(repr, unused)),
            "it" if len(unused) == 1 else "them",
        )
    weights = corpus_sampling_weights(corpora, {corpus: data_args.corpus_weights[key] for corpus, key in keys.items()})
    shares = {}
    for corpus, weight in zip(corpora, weights):
        shares[corpus] = shares.get(corpus, 0.0) + weight
    logger.info(
        "Corpus sampling: %s of the training clips drawn each epoch.",
        ", ".join(f"{corpus} {100 * share:.0f} % ({corpora.count(corpus)} clips)" for corpus, share in shares.items()),
    )
    return weights


def corpus_weight_keys(corpora: list[str], corpus_weights: Mapping[str, float]) -> dict[str, str]:
    """The ``corpus_weights`` key of each corpus of a ``corpus`` column: its own name, or its name as the loader reads
    it (case, aliases); a folder corpus (named by its ``corpus_name``) takes the weight of ``folder`` when it is the
    only corpus left without one. A corpus that matches no key is a `RecipeError` naming it and the keys."""
    keys, unmatched = {}, []
    for corpus in corpora:
        key = corpus if corpus in corpus_weights else canonical_corpus_name(corpus)
        if key in corpus_weights:
            keys[corpus] = key
        else:
            unmatched.append(corpus)
    if len(unmatched) == 1 and "folder" in corpus_weights and "folder" not in keys.values():
        keys[unmatched.pop()] = "folder"
    if unmatched:
        raise RecipeError(
            f"corpus_weights gives no weight to corpus {', '.join(map(repr, unmatched))} of the training split (its "
            f"keys: {', '.join(corpus_weights)}): name each corpus as its corpus column does."
        )
    return keys


def export_model(
    model, feature_extractor: SequenceFeatureExtractor, output_dir: str | os.PathLike, temperature: float = 1.0
) -> None:
    """Save the trained classifier (LoRA adapters merged in, so it loads without peft) and its feature extractor in
    safetensors, ready for ``pipeline("audio-classification", model=output_dir)``, its logits divided by the
    calibration ``temperature`` (see :func:`~ser_hf.evaluation.calibration.apply_temperature`)."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = merge_lora(model)
    if temperature != 1.0:
        apply_temperature(model, temperature)
    # Staged and renamed file by file: a run killed mid-export leaves no half-written weights behind.
    with atomic_directory(output_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        feature_extractor.save_pretrained(staging)


# --- Card and push ------------------------------------------------------------------------------------------------


def finish_run(recipe: Recipe, reports: list[RunReport], /, *, recipe_args: Optional[list[str]] = None):
    """``finish_run(recipe, reports)``: the end of a run, on the main process only: write ``recipe.yaml``
    (:meth:`~ser_hf.recipe.Recipe.write_yaml`, listing the keys ``recipe_args`` set, by default those of the command
    line the recipe was parsed from) and the model cards (a k-fold run's folds with their mean ± std, and its own card
    at the top), then push the run when ``push_to_hub`` is set.

    The token comes from ``hub_token`` or ``huggingface_hub``'s usual sources; ``run_config.json`` holds it masked.
    Returns the push's `CommitInfo`, or `None`.
    """
    if recipe_args is not None:
        recipe = recipe.replace(args=recipe_args)
    training_args = recipe.training
    if not training_args.should_save:
        return None
    output_dir = Path(training_args.output_dir)
    folds = [report.fold for report in reports if report.fold is not None]
    model_dirs = [output_dir / fold_folder(fold) for fold in folds] or [output_dir]
    for model_dir in model_dirs:
        recipe.write_yaml(model_dir)
        write_model_card(model_dir)
    if len(folds) > 1:  # the k-fold summary was written: a card for the whole run at the top
        recipe.write_yaml(output_dir)
        write_model_card(output_dir)
    if not training_args.push_to_hub or training_args.process_index != 0:
        return None
    push_dir = output_dir if len(folds) != 1 else model_dirs[0]
    repo_id = training_args.hub_model_id or output_dir.resolve().name
    return push_to_hub(
        push_dir,
        repo_id,
        private=training_args.hub_private_repo,
        token=training_args.hub_token,
        revision=training_args.hub_revision,
    )


__all__ = [
    "audit_split",
    "build_model",
    "build_trainer",
    "export_model",
    "finish_run",
    "load_dataset_from_args",
    "make_folds",
    "recipe_input_mode",
    "train_and_evaluate",
]
