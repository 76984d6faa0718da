"""The stages of a training run, in the order :mod:`ser_hf.train` calls them: load and decode the corpus, split it
by speaker and audit the split, build the model, train and evaluate one split, export the model and its report."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from datasets import Dataset, DatasetDict
from transformers import AutoConfig, EarlyStoppingCallback, PreTrainedModel, set_seed
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..atomic_files import atomic_directory, write_text_atomic
from ..data.audit import LeakageReport, audit_leakage
from ..data.corpora import load_corpus, merge_corpora
from ..data.corpora.base import InvalidClipError
from ..data.dataset_info import column_values, get_ser_info
from ..data.decode import WAVEFORM_COLUMN, prepare_audio
from ..data.splits import SplitError, split_dataset
from ..evaluation.report import evaluate_split, read_report, write_report
from ..hub.card import push_to_hub, write_model_card
from ..inputs.collators import AudioClassificationCollator, FunctionalsCollator
from ..inputs.feature_encoder_cache import (
    FEATURES_COLUMN,
    NUM_SAMPLES_COLUMN,
    FeatureEncoderOutputsCollator,
    accept_feature_encoder_outputs,
    encode_feature_encoder_outputs,
    feature_cache_blockers,
    feature_encoder,
    feature_encoder_key,
)
from ..inputs.speaker_normalization import (
    FUNCTIONALS_COLUMN,
    NormalizationPlan,
    compute_functionals_once,
    fit_normalization,
)
from ..models import build_baseline, build_ssl_classifier, build_ssl_feature_extractor, count_parameters, merge_lora
from ..models.baselines import default_feature_extractor
from ..models.ssl import minimum_input_samples, ssl_lora_config
from ..recipe.arguments import AugmentationArguments, DataArguments, ModelArguments, SERTrainingArguments
from ..recipe.errors import RecipeError
from ..recipe.yaml_io import write_recipe
from .run_dir import RUN_CONFIG_FILE, is_run_folder, last_complete_checkpoint, remove_run_outputs
from .trainer import CLIP_PATHS_KEY, EpochCallback, SERTrainer, class_weights_tensor, metrics_function

logger = logging.getLogger(__name__)

#: Columns a split keeps for training and evaluation (the ``audio`` column would decode every clip again).
MODEL_INPUT_COLUMNS = (
    WAVEFORM_COLUMN,
    "encoder_states",
    FEATURES_COLUMN,
    NUM_SAMPLES_COLUMN,
    FUNCTIONALS_COLUMN,
    "label",
    "path",
    "duration",
    "speaker_id",
    "sex",
)


# --- Data ---------------------------------------------------------------------------------------------------------


def _corpus_options(data_args: DataArguments, corpus: str) -> dict[str, Any]:
    options = data_args.corpus_options
    if options and all(key in data_args.corpus and isinstance(value, dict) for key, value in options.items()):
        return dict(options.get(corpus, {}))
    if len(data_args.corpus) > 1 and options:
        raise RecipeError(
            f"corpus_options with several corpora must map corpus names ({', '.join(data_args.corpus)})"
            f" to their options, got keys {sorted(options)}."
        )
    return dict(options)


def load_dataset_from_args(data_args: DataArguments) -> Dataset:
    """Load the recipe's corpora on the shared vocabulary, merge them, and decode every clip once (cached)."""
    corpora = [
        load_corpus(
            name,
            data_dir,
            sampling_rate=data_args.sampling_rate,
            label_map=data_args.label_map,
            labels=data_args.labels,
            skip_invalid=data_args.skip_invalid,
            **_corpus_options(data_args, name),
        )
        for name, data_dir in zip(data_args.corpus, data_args.data_dir)
    ]
    dataset = corpora[0] if len(corpora) == 1 else merge_corpora(corpora, labels=data_args.labels)
    return prepare_audio(dataset, num_proc=data_args.preprocessing_num_workers, skip_invalid=data_args.skip_invalid)


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


def drop_clips_shorter_than(
    splits: DatasetDict | Dataset, min_seconds: float, skip_invalid: bool = False
) -> DatasetDict | Dataset:
    """Stop on clips too short for the model to see (shorter than its receptive field), naming them (and their
    split); with `skip_invalid` drop them instead, with a warning that lists them. Takes the splits, or the whole
    corpus before it is split (FAST mode checks it before encoding any clip)."""
    if isinstance(splits, Dataset):
        return drop_clips_shorter_than(DatasetDict({"": splits}), min_seconds, skip_invalid)[""]
    short = {}
    for name, split in splits.items():
        lengths = zip(column_values(split, "path"), column_values(split, "duration"))
        short[name] = [(path, duration) for path, duration in lengths if duration < min_seconds]
    clips = [(name, path, duration) for name, found in short.items() for path, duration in found]
    if not clips:
        return splits
    listing = "; ".join(
        f"{path} ({duration * 1000:.1f} ms{', ' + name if name else ''})" for name, path, duration in clips[:10]
    )
    more = f" and {len(clips) - 10} more" if len(clips) > 10 else ""
    problem = (
        f"{len(clips)} clip(s) are shorter than the model's receptive field ({min_seconds * 1000:.1f} ms): "
        f"{listing}{more}"
    )
    if not skip_invalid:
        raise InvalidClipError(clips[0][1], f"{problem}. Remove them, or set skip_invalid: true to skip them")
    logger.warning("Skipping %s", problem)
    return DatasetDict(
        {
            name: split.filter(lambda duration: duration >= min_seconds, input_columns="duration")
            if short[name]
            else split
            for name, split in splits.items()
        }
    )


def audit_split(splits: DatasetDict, fold: Optional[int] = None) -> LeakageReport:
    """Audit the split before training: a leaking speaker-independent split stops the run (LeakageError), and so
    does a class with no training clip (the model could never predict it; SplitError naming the class)."""
    label_names = splits["train"].features["label"].names
    present = set(column_values(splits["train"], "label"))
    absent = [name for index, name in enumerate(label_names) if index not in present]
    if absent:
        where = f" of fold {fold}" if fold is not None else ""
        raise SplitError(
            f"The training split{where} has no clip of class(es) {absent} (its speakers: "
            f"{sorted(set(column_values(splits['train'], 'speaker_id')))}). Give those speakers' splits "
            "more speakers, or leave the classes out with the labels option."
        )
    report = audit_leakage(splits)
    logger.info("%s", report.describe_failures())
    return report


def model_inputs(dataset: Dataset) -> Dataset:
    """The columns training and evaluation read, as NumPy arrays (no Python lists of samples)."""
    columns = [name for name in MODEL_INPUT_COLUMNS if name in dataset.column_names]
    return dataset.select_columns(columns).with_format("numpy")


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
    if model_args.use_lora:
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
    if model_args.model_name_or_path is None:
        logger.warning(
            "No model_name_or_path: building a randomly initialised %s from model_config (for tests and "
            "smoke runs; real runs start from a pre-trained checkpoint).",
            model_args.model_type,
        )
        config = AutoConfig.for_model(model_args.model_type, **model_args.model_config)
        model = build_ssl_classifier(config, labels, config_overrides=augmentation_args.ssl_masking(), **regime)
        return model, build_ssl_feature_extractor(config)
    # The feature extractor first: a checkpoint without one is named before its weights are read.
    feature_extractor = build_ssl_feature_extractor(model_args.model_name_or_path, revision=model_args.model_revision)
    overrides = {**model_args.model_config, **augmentation_args.ssl_masking()}
    model = build_ssl_classifier(
        model_args.model_name_or_path,
        labels,
        config_overrides=overrides,
        revision=model_args.model_revision,
        reinitialize_head=model_args.reinitialize_head,
        use_safetensors=None if model_args.allow_pickled_weights else True,
        **regime,
    )
    return model, feature_extractor


def encode_for_fast_mode(
    dataset: Dataset,
    model_args: ModelArguments,
    augmentation_args: AugmentationArguments,
    training_args: SERTrainingArguments,
    skip_invalid: bool = False,
) -> tuple[Dataset, str]:
    """FAST mode: the frozen encoder's pooled outputs of every clip, computed once and cached as a column.

    Clips shorter than the encoder's receptive field stop the run before any clip is encoded, as in normal training
    (with ``skip_invalid`` they are left out, with a warning that lists them). Returns the dataset with the
    ``encoder_states`` column and the cache key that identifies the encoder, which each fold's model is checked
    against."""
    from ..inputs.encoder_cache import encode_dataset, encoder_cache_key

    set_seed(training_args.seed)
    model, feature_extractor = build_model(model_args, augmentation_args, dataset.features["label"])
    min_seconds = minimum_input_samples(model.config) / feature_extractor.sampling_rate
    long_enough = drop_clips_shorter_than(dataset, min_seconds, skip_invalid=skip_invalid)
    model.to(training_args.device)
    encoded = encode_dataset(
        model, feature_extractor, long_enough, batch_size=training_args.per_device_eval_batch_size
    )
    # The key of the corpus as loaded: each split's trainer checks its encoder against it (build_trainer).
    return encoded, encoder_cache_key(model, feature_extractor, dataset)


def encode_feature_encoder_once(
    dataset: Dataset,
    model_args: ModelArguments,
    data_args: DataArguments,
    augmentation_args: AugmentationArguments,
    training_args: SERTrainingArguments,
) -> Dataset:
    """Run an SSL model's frozen feature encoder over the whole corpus once, before it is split, where its outputs
    can be cached for the corpus as a whole (see :func:`split_inputs`): every split of every fold (k-fold,
    leave-one-speaker-out, the leakage study's two runs) then reads its clips' frames from one cache file, instead of
    each fold writing its own copy of the corpus. The audio is kept, and :func:`split_inputs` still decides for each
    split. Clips shorter than the model's receptive field stop the run first, as in training (with ``skip_invalid``
    they are left out)."""
    if model_args.is_baseline or model_args.cache_encoder_outputs or model_args.cache_feature_encoder is False:
        return dataset
    set_seed(training_args.seed)  # as train_and_evaluate builds each split's model: the same feature encoder
    model, feature_extractor = build_model(model_args, augmentation_args, dataset.features["label"])
    rate = feature_extractor.sampling_rate
    if feature_cache_blockers(
        model,
        dataset,
        rate,
        max_duration_seconds=data_args.max_duration_seconds,
        waveform_augmentation=augmentation_args.waveform_augmentation(rate),
    ):
        return dataset  # each split's training clips are checked (and the reason logged) by split_inputs
    dataset = drop_clips_shorter_than(
        dataset, minimum_input_samples(model.config) / rate, skip_invalid=data_args.skip_invalid
    )
    feature_encoder(model).to(training_args.device)
    return encode_feature_encoder_outputs(
        model, feature_extractor, dataset, batch_size=training_args.per_device_eval_batch_size, keep_waveform=True
    )


def add_functionals_once(dataset: Dataset, model_args: ModelArguments, data_args: DataArguments) -> Dataset:
    """The openSMILE baseline: every clip's functionals computed once for the whole corpus, before it is split
    (see :func:`~ser_hf.inputs.speaker_normalization.compute_functionals_once`); other models get the dataset
    unchanged."""
    if model_args.model_type != "opensmile":
        return dataset
    extractor_class = type(default_feature_extractor(model_args.model_type))
    feature_extractor = extractor_class(**model_args.feature_extractor_config)
    return compute_functionals_once(dataset, feature_extractor, num_proc=data_args.preprocessing_num_workers)


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


def check_same_recipe(output_dir: Path, run_config: Mapping[str, Any]) -> None:
    """Refuse to resume (or read back) a run in ``output_dir`` that another model, data or augmentation wrote."""
    config_file = output_dir / RUN_CONFIG_FILE
    if not config_file.is_file():
        return
    if not (output_dir / "metrics.json").is_file() and not any(output_dir.glob("checkpoint-*")):
        return  # that run stopped before its first checkpoint (on bad input, say): nothing to mix with
    previous = json.loads(config_file.read_text())

    def comparable(config, section):
        # Which folds run and how many processes decode do not change what a fold trains on.
        values = json.loads(json.dumps(config.get(section), default=str)) or {}
        return {key: value for key, value in values.items() if key not in ("folds", "preprocessing_num_workers")}

    changed = sorted(
        key for key in ("model", "data", "augmentation") if comparable(previous, key) != comparable(run_config, key)
    )
    if changed:
        raise RecipeError(
            f"{output_dir} holds a run with other {' and '.join(changed)} settings; resuming it would "
            "mix two runs. Choose another output_dir, or delete the old run."
        )


def remove_previous_run(output_dir: Path, training_args: SERTrainingArguments) -> None:
    """Remove the run in ``output_dir`` (``overwrite_output_dir``): only the files a ser-hf run writes
    (:func:`~ser_hf.training.run_dir.remove_run_outputs`), in a folder that a ser-hf run wrote (it holds
    ``run_config.json``); anything else there is kept and named. The main process removes them while the others
    wait."""
    with training_args.main_process_first(desc="removing the previous run"):
        if training_args.should_save and is_run_folder(output_dir):
            logger.warning("overwrite_output_dir: removing the previous run's outputs in %s", output_dir)
            kept = remove_run_outputs(output_dir)
            if kept:
                logger.warning("Kept in %s (not written by ser-hf): %s", output_dir, ", ".join(kept))


def train_and_evaluate(
    model_args: ModelArguments,
    data_args: DataArguments,
    augmentation_args: AugmentationArguments,
    training_args: SERTrainingArguments,
    splits: DatasetDict,
    *,
    fold: Optional[int] = None,
    leakage_report: Optional[LeakageReport] = None,
    encoder_key: Optional[str] = None,
    unencoded_dataset: Optional[Dataset] = None,
) -> dict[str, Any]:
    """Train on ``splits["train"]`` (choosing the best epoch on ``validation``), evaluate on validation and test,
    save the model (with its feature extractor) and write ``metrics.json`` and the plots; returns the report.

    A split whose ``metrics.json`` exists has finished and is read back; one with checkpoints resumes from the last.
    """
    output_dir = Path(training_args.output_dir) / (f"fold-{fold}" if fold is not None else "")
    run_config = {
        "model": dataclasses.asdict(model_args),
        "data": dataclasses.asdict(data_args),
        "augmentation": dataclasses.asdict(augmentation_args),
        "training": training_args.to_dict(),
    }
    if training_args.overwrite_output_dir:
        remove_previous_run(output_dir, training_args)
    check_same_recipe(output_dir, run_config)
    finished = read_report(output_dir)
    if finished is not None:
        logger.warning(
            "%s holds a finished run (%s): reading its report instead of training again. Set "
            "overwrite_output_dir to train it anew.",
            output_dir,
            output_dir / "metrics.json",
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
        checkpoint = last_complete_checkpoint(output_dir)
    args = fold_training_args(training_args, str(output_dir), "validation" in splits)
    if args.should_save:
        output_dir.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: another process may be reading the previous one in check_same_recipe.
        write_text_atomic(output_dir / RUN_CONFIG_FILE, json.dumps(run_config, indent=2, default=str) + "\n")

    set_seed(args.seed)
    model, feature_extractor = build_model(model_args, augmentation_args, splits["train"].features["label"])
    splits = drop_clips_shorter_than(
        splits,
        minimum_input_samples(model.config) / feature_extractor.sampling_rate,
        skip_invalid=data_args.skip_invalid,
    )
    # Global (training speakers') statistics into the extractor, and each speaker's own for speaker normalisation.
    normalization = fit_normalization(feature_extractor, splits)
    inputs = split_inputs(model, feature_extractor, splits, model_args, data_args, augmentation_args, args)
    if (
        not model_args.is_baseline
        and not getattr(feature_extractor, "return_attention_mask", True)
        and WAVEFORM_COLUMN in inputs["train"].column_names
    ):
        # Group-norm encoders (wav2vec2-base, hubert-base) see no attention mask on raw audio, so padding changes
        # their output: evaluate clip by clip, as pipeline() will run the exported model.
        logger.info("%s takes no attention mask: evaluating one clip per batch.", model_args.model_type)
        args = dataclasses.replace(args, per_device_eval_batch_size=1)
    trainer = build_trainer(
        model,
        feature_extractor,
        inputs,
        model_args,
        data_args,
        augmentation_args,
        args,
        label_names,
        encoder_key=encoder_key,
        unencoded_dataset=unencoded_dataset,
        normalization=normalization,
    )

    if checkpoint:
        logger.info("Resuming from %s", checkpoint)
    started = time.perf_counter()
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - started

    evaluation = {
        name: evaluate_split(trainer, inputs[name], label_names, name)
        for name in ("validation", "test")
        if name in inputs
    }
    report = {
        "protocol": data_args.split_protocol,
        "fold": fold,
        "split": {
            "clips": {name: len(split) for name, split in splits.items()},
            "speakers": {name: sorted(set(column_values(split, "speaker_id"))) for name, split in splits.items()},
            **{
                key: value
                for key, value in get_ser_info(splits["train"]).items()
                if key in ("split_protocol", "seed", "speaker_lists", "n_splits", "test_speaker")
            },
        },
        "leakage_audit": leakage_report.to_dict() if leakage_report is not None else None,
        "normalization": normalization.to_dict() if normalization is not None else None,
        "labels": label_names,
        "evaluation": evaluation,
        "training": {
            **train_result.metrics,
            "wall_seconds": round(train_seconds, 1),
            "global_step": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_metric": trainer.state.best_metric,
            "resumed_from": checkpoint,
            "parameters": dataclasses.asdict(count_parameters(model)),
        },
    }
    if trainer.is_world_process_zero():
        export_model(model, feature_extractor, output_dir)
        write_report(output_dir, report, trainer.state.log_history)
        write_model_card(output_dir)
    trainer.accelerator.wait_for_everyone()
    return report


def split_inputs(
    model,
    feature_extractor: SequenceFeatureExtractor,
    splits: DatasetDict,
    model_args: ModelArguments,
    data_args: DataArguments,
    augmentation_args: AugmentationArguments,
    args: SERTrainingArguments,
) -> DatasetDict:
    """What the model trains and is evaluated on, per split: the columns of :func:`model_inputs`; in FAST mode without
    the audio (the head reads the cached encoder states); for an SSL model whose frozen feature encoder can be cached
    (`cache_feature_encoder`, see :mod:`ser_hf.inputs.feature_encoder_cache`), its outputs in place of the audio."""
    inputs = DatasetDict({name: model_inputs(split) for name, split in splits.items()})
    if model_args.cache_encoder_outputs:
        return inputs.remove_columns(WAVEFORM_COLUMN)
    # Frames of the whole corpus, when encode_feature_encoder_once ran before the split.
    frame_columns = [name for name in (FEATURES_COLUMN, NUM_SAMPLES_COLUMN) if name in inputs["train"].column_names]
    if FUNCTIONALS_COLUMN in inputs["train"].column_names:  # openSMILE: the functionals are the model's input
        return inputs.remove_columns([*frame_columns, WAVEFORM_COLUMN])
    if model_args.is_baseline or model_args.cache_feature_encoder is False:
        return inputs.remove_columns(frame_columns)
    blockers = feature_cache_blockers(
        model,
        inputs["train"],
        feature_extractor.sampling_rate,
        max_duration_seconds=data_args.max_duration_seconds,
        waveform_augmentation=augmentation_args.waveform_augmentation(feature_extractor.sampling_rate),
    )
    if blockers:
        if model_args.cache_feature_encoder:
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
    encoder.to(args.device)  # where Trainer will put the model: the encoding runs there
    try:
        with args.main_process_first(desc="running the frozen feature encoder once per clip"):
            return DatasetDict(
                {
                    name: encode_feature_encoder_outputs(
                        model, feature_extractor, split, batch_size=args.per_device_eval_batch_size
                    )
                    for name, split in inputs.items()
                }
            )
    finally:
        encoder.to(device)


def build_trainer(
    model,
    feature_extractor,
    inputs: DatasetDict,
    model_args: ModelArguments,
    data_args: DataArguments,
    augmentation_args: AugmentationArguments,
    args: SERTrainingArguments,
    label_names,
    encoder_key: Optional[str] = None,
    unencoded_dataset: Optional[Dataset] = None,
    normalization: Optional[NormalizationPlan] = None,
) -> SERTrainer:
    """The `SERTrainer` of one split: collators (random crops and augmentation for training only, each speaker's
    statistics for speaker normalisation), metrics, class weights, the head's learning rate and early stopping."""
    if model_args.cache_encoder_outputs:
        from ..inputs.encoder_cache import CachedEncoderHead, EncoderStatesCollator, encoder_cache_key

        if encoder_key is not None and encoder_cache_key(model, feature_extractor, unencoded_dataset) != encoder_key:
            raise RuntimeError("The encoder built for this split differs from the one whose outputs were cached.")
        trained_model = CachedEncoderHead(model)
        train_collator = eval_collator = EncoderStatesCollator()
    elif FEATURES_COLUMN in inputs["train"].column_names:  # frozen feature encoder's outputs cached (split_inputs)
        accept_feature_encoder_outputs(model)
        trained_model = model
        train_collator = FeatureEncoderOutputsCollator(extra_columns=(CLIP_PATHS_KEY,))
        eval_collator = FeatureEncoderOutputsCollator()
    elif FUNCTIONALS_COLUMN in inputs["train"].column_names:  # openSMILE functionals computed once per corpus
        trained_model = model
        train_collator = FunctionalsCollator(
            feature_extractor, normalization=normalization, extra_columns=(CLIP_PATHS_KEY,)
        )
        eval_collator = FunctionalsCollator(feature_extractor, normalization=normalization)
    else:
        trained_model = model
        train_collator = AudioClassificationCollator(
            feature_extractor,
            max_duration_seconds=data_args.max_duration_seconds,
            seed=args.seed,
            augmentation=augmentation_args.waveform_augmentation(feature_extractor.sampling_rate),
            spec_augment=augmentation_args.spec_augment(),
            extra_columns=(CLIP_PATHS_KEY,),
            normalization=normalization,
        )
        eval_collator = AudioClassificationCollator(feature_extractor, normalization=normalization)
    random_collator = isinstance(train_collator, AudioClassificationCollator) and train_collator.is_random
    if random_collator and args.dataloader_persistent_workers:
        raise RecipeError(
            "dataloader_persistent_workers keeps each worker's collator from the first epoch, so every "
            "epoch would get the same crops and augmentation: turn it off."
        )
    callbacks = [EpochCallback(train_collator)] if isinstance(train_collator, AudioClassificationCollator) else []
    if args.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
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
    )


def export_model(model, feature_extractor: SequenceFeatureExtractor, output_dir: str | os.PathLike) -> None:
    """Save the trained classifier (LoRA adapters merged in, so it loads without peft) and its feature extractor in
    safetensors, ready for ``pipeline("audio-classification", model=output_dir)``."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = merge_lora(model)
    # Staged and renamed file by file: a run killed mid-export leaves no half-written weights behind.
    with atomic_directory(output_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        feature_extractor.save_pretrained(staging)


# --- Card and push ------------------------------------------------------------------------------------------------


def finish_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    augmentation_args: AugmentationArguments,
    training_args: SERTrainingArguments,
    reports: list[dict[str, Any]],
    recipe_args: Optional[list[str]] = None,
):
    """The end of a run, on the main process only: write ``recipe.yaml`` and the model cards (a k-fold run's folds
    with their mean ± std, and its own card at the top), then push the run when ``push_to_hub`` is set.

    The token comes from ``hub_token`` or ``huggingface_hub``'s usual sources; ``run_config.json`` holds it masked.
    Returns the push's `CommitInfo`, or `None`.
    """
    if not training_args.should_save:
        return None
    output_dir = Path(training_args.output_dir)
    sections = {
        "Model": dataclasses.asdict(model_args),
        "Data": dataclasses.asdict(data_args),
        "Augmentation": dataclasses.asdict(augmentation_args),
        "Training": training_args.to_dict(),
    }
    folds = [report["fold"] for report in reports if report.get("fold") is not None]
    model_dirs = [output_dir / f"fold-{fold}" for fold in folds] or [output_dir]
    for model_dir in model_dirs:
        write_recipe(model_dir, sections, recipe_args)
        write_model_card(model_dir)
    if len(folds) > 1:  # the k-fold summary was written: a card for the whole run at the top
        write_recipe(output_dir, sections, recipe_args)
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
    "MODEL_INPUT_COLUMNS",
    "add_functionals_once",
    "audit_split",
    "build_model",
    "build_trainer",
    "encode_feature_encoder_once",
    "encode_for_fast_mode",
    "export_model",
    "finish_run",
    "load_dataset_from_args",
    "make_folds",
    "model_inputs",
    "split_inputs",
    "train_and_evaluate",
]
