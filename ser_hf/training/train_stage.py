"""The training stage of a run: each split of the recipe's protocol audited, then trained and evaluated
(:func:`train_and_evaluate`: its model and `SERTrainer`, self-training rounds and model soups, temperature scaling,
the report). The stages in the order a run calls them: :mod:`.data_stage`, :mod:`.model_stage`, this one,
:mod:`.export_stage`; :mod:`.previous_run` checks what an output folder already holds."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
from datasets import Dataset, DatasetDict
from transformers import EarlyStoppingCallback, set_seed

from ..atomic_files import write_text_atomic
from ..data.audit import LeakageReport
from ..data.constants import canonical_corpus_name
from ..data.dataset_info import column_values, get_ser_info
from ..data.splits import clip_fingerprint
from ..errors import RecipeError
from ..evaluation.calibration import fit_temperature_scaling, reset_temperature
from ..evaluation.report import evaluate_split, predict_split, write_report
from ..evaluation.speaker_check import check_split_speakers, checks_speakers
from ..hub.card import write_model_card
from ..inputs.base import InputMode, drop_clips_longer_than, drop_clips_shorter_than, receptive_field_seconds
from ..inputs.collators import AudioClassificationCollator
from ..inputs.speaker_normalization import NormalizationPlan, fit_normalization
from ..models import count_parameters
from ..recipe.recipe import Recipe
from ..recipe.training_arguments import SERTrainingArguments
from ..run_folder import CLIP_FINGERPRINT_FILE, METRICS_FILE, RUN_CONFIG_FILE, RunDir, checkpoint_step, fold_folder
from ..run_record import CalibrationRecord, RunReport, SplitMetrics, SplitRecord, TrainingRecord, ValidationChoices
from .corpus_adversary import CorpusLabelsCollator, adversary_corpora, attach_corpus_adversary
from .data_stage import audit_split, make_folds
from .export_stage import export_model
from .model_stage import build_model, recipe_input_mode
from .previous_run import check_same_clips, check_same_recipe, remove_previous_run
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


def train_folds(recipe: Recipe, input_mode: InputMode, dataset: Dataset, /) -> list[RunReport]:
    """``train_folds(recipe, input_mode, dataset)``: split the prepared corpus
    (:func:`~ser_hf.training.data_stage.prepare_recipe_data`) by the recipe's protocol, audit each split (leakage,
    labels) before its model is built, then train and evaluate it; returns the report of each split, in fold order."""
    reports = []
    for fold, splits in make_folds(dataset, recipe.data):
        leakage_report = audit_split(splits, fold, recipe=recipe.path)
        reports.append(
            train_and_evaluate(recipe, splits, fold=fold, leakage_report=leakage_report, input_mode=input_mode)
        )
    return reports


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
    ``input_mode`` is the recipe's (:func:`~ser_hf.training.model_stage.recipe_input_mode`) that prepared the corpus
    the splits come from.

    A split whose ``metrics.json`` exists has finished and is read back; one with checkpoints resumes from the last.
    The steps, in order: :func:`finished_report` and :func:`resume_checkpoint` (resume), :func:`start_split` (the
    model and its inputs), :func:`self_train`, :func:`train_with_soup` (train, soup), :func:`calibrate_and_evaluate`
    (calibrate), :func:`split_report` and :func:`save_split` (report).
    """
    output_dir = Path(recipe.training.output_dir) / (fold_folder(fold) if fold is not None else "")
    finished = finished_report(recipe, splits, output_dir)
    if finished is not None:
        return finished
    checkpoint = resume_checkpoint(recipe.training, output_dir, fold)
    run = start_split(recipe, splits, output_dir, fold, input_mode)
    started = time.perf_counter()
    training_inputs, picked = self_train(run)
    trainer, train_result = train_with_soup(run, training_inputs, checkpoint)
    training_record = {
        **train_result.metrics,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "resumed_from": checkpoint,
        "self_training_clips": picked or None,
    }
    calibration, evaluation = calibrate_and_evaluate(run, trainer)
    report = split_report(run, trainer, calibration, evaluation, leakage_report, training_record)
    save_split(run, trainer, report, calibration)
    return report


# --- Resume ----------------------------------------------------------------------------------------------------------


def finished_report(recipe: Recipe, splits: DatasetDict, output_dir: Path) -> Optional[RunReport]:
    """The report of the split when ``output_dir`` holds it finished (read back, not trained again), else `None`;
    refuses a folder trained from another recipe or on other clips, and clears it first with
    ``overwrite_output_dir``."""
    if recipe.training.overwrite_output_dir:
        remove_previous_run(output_dir, recipe.training)
    check_same_recipe(output_dir, recipe.to_run_config())
    check_same_clips(output_dir, clip_fingerprint(splits))
    finished = RunDir(output_dir).read_report()
    if finished is not None:
        logger.warning(
            "%s holds a finished run (%s): reading its report instead of training again. Set "
            "overwrite_output_dir to train it anew.",
            output_dir,
            output_dir / METRICS_FILE,
        )
    return finished


def resume_checkpoint(training_args: SERTrainingArguments, output_dir: Path, fold: Optional[int]) -> Optional[str]:
    """The checkpoint the split resumes from: the recipe's ``resume_from_checkpoint`` (one split only, not past
    ``max_steps``), else the last complete one in ``output_dir``, else `None`."""
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is not None and fold is not None:
        raise RecipeError(
            "resume_from_checkpoint names one checkpoint, but this recipe trains several folds; each "
            "fold resumes from the last checkpoint in its own folder without it."
        )
    if checkpoint is None and output_dir.is_dir():
        return RunDir(output_dir).last_complete_checkpoint(max_steps=training_args.max_steps)
    if checkpoint is not None and training_args.max_steps > 0:
        step = checkpoint_step(checkpoint)
        if step is not None and step > training_args.max_steps:
            raise RecipeError(
                f"resume_from_checkpoint {checkpoint} is at step {step}, past this run's max_steps "
                f"{training_args.max_steps}: resumed, it would end at once, trained further than asked. Raise "
                "max_steps, or resume from an earlier checkpoint."
            )
    return checkpoint


# --- The split's model and inputs ------------------------------------------------------------------------------------


@dataclasses.dataclass
class SplitRun:
    """What the steps of one split's training share: its recipe and folder, its training arguments, the splits
    (clips the model cannot take dropped) and the model inputs its input mode made from them, the model and feature
    extractor, and the speaker normalisation fitted on them."""

    recipe: Recipe
    fold: Optional[int]
    output_dir: Path
    args: SERTrainingArguments
    splits: DatasetDict
    inputs: DatasetDict
    mode: InputMode
    model: Any
    feature_extractor: Any
    normalization: Optional[NormalizationPlan]

    @property
    def label_names(self) -> list[str]:
        return self.splits["train"].features["label"].names

    def trainer(self, inputs: DatasetDict, args: SERTrainingArguments) -> SERTrainer:
        """The `SERTrainer` of the current model on `inputs` with `args` (:func:`build_trainer`)."""
        return build_trainer(
            self.model, self.feature_extractor, inputs, self.mode, args, self.label_names, self.normalization
        )

    def member_args(self, folder: Path, **changes) -> SERTrainingArguments:
        """The training arguments of a self-training round or a soup member trained in `folder`."""
        return dataclasses.replace(fold_training_args(self.args, str(folder), "validation" in self.inputs), **changes)

    def new_model(self) -> None:
        """A new model, seeded as the split's first (a self-training round starts from scratch)."""
        set_seed(self.args.seed)
        model_args, _, augmentation_args, _ = self.recipe
        self.model, _ = build_model(model_args, augmentation_args, self.splits["train"].features["label"])
        reset_temperature(self.model)


def start_split(
    recipe: Recipe, splits: DatasetDict, output_dir: Path, fold: Optional[int], input_mode: Optional[InputMode]
) -> SplitRun:
    """Check the split's training options, record its recipe and clips in ``output_dir``, then build its model and
    the model inputs: clips too short or too long for the model dropped, the speaker normalisation fitted."""
    model_args, data_args, augmentation_args, training_args = recipe
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
        run_config = recipe.to_run_config().to_dict()
        write_text_atomic(output_dir / RUN_CONFIG_FILE, json.dumps(run_config, indent=2, default=str) + "\n")
        write_text_atomic(output_dir / CLIP_FINGERPRINT_FILE, json.dumps(clip_fingerprint(splits), indent=2) + "\n")
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
    return SplitRun(recipe, fold, output_dir, args, splits, inputs, mode, model, feature_extractor, normalization)


# --- Train -----------------------------------------------------------------------------------------------------------


def self_train(run: SplitRun) -> tuple[DatasetDict, list[int]]:
    """Self-training (``self_training_rounds``): each round's model picks test clips by its predictions, which the
    next one trains on as well; returns the inputs the final model trains on and how many clips each round picked.
    A round that finished is read back (its picks), one with checkpoints resumes."""
    inputs, training_inputs, picked = run.inputs, run.inputs, []
    for round_index in range(run.args.self_training_rounds):
        folder = round_folder(run.output_dir, round_index)
        picks = read_picks(folder, len(inputs["test"]))
        if picks is None:
            round_trainer = run.trainer(training_inputs, run.member_args(folder))
            resume = RunDir(folder).last_complete_checkpoint(max_steps=run.args.max_steps) if folder.is_dir() else None
            round_trainer.train(resume_from_checkpoint=resume)
            picks = pick_pseudo_labels(
                predict_split(round_trainer, inputs["test"], "test")[1], run.args.self_training_share
            )
            if round_trainer.is_world_process_zero():
                write_picks(folder, *picks, run.label_names, len(inputs["test"]))
            round_trainer.accelerator.wait_for_everyone()
        picked.append(len(picks[0]))
        training_inputs = DatasetDict({**inputs, "train": with_pseudo_labels(inputs["train"], inputs["test"], *picks)})
        run.new_model()  # the next round from scratch, as the first began
    return training_inputs, picked


def train_with_soup(run: SplitRun, training_inputs: DatasetDict, checkpoint: Optional[str]):
    """Train the split's model on `training_inputs` (resuming from `checkpoint`); with ``soup_size``, the soup's
    other members first, each from the weights the run starts from in its own folder, then averaged into the model.
    Returns the trainer and its ``train`` result."""

    def train_member(index: int, folder: Path) -> bool:
        member = run.trainer(training_inputs, run.member_args(folder, seed=run.args.seed + index))
        resume = RunDir(folder).last_complete_checkpoint(max_steps=run.args.max_steps) if folder.is_dir() else None
        member.train(resume_from_checkpoint=resume)
        return member.is_world_process_zero()

    soup = train_members(run.model, run.args.soup_size, run.output_dir, train_member)
    trainer = run.trainer(training_inputs, run.args)
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    finish_soup(run.model, soup)
    return trainer, train_result


# --- Calibrate and report --------------------------------------------------------------------------------------------


def calibrate_and_evaluate(run: SplitRun, trainer: SERTrainer):
    """Temperature scaling fitted on the validation split's logits, then every held-out split evaluated with it;
    returns the calibration and ``{split: metrics}``. With speaker normalisation, the evaluated speakers' statistics
    are checked with the trained model first, as ``ser-hf evaluate`` and ``predict`` check them."""
    if run.normalization is not None and checks_speakers(run.feature_extractor):
        check_split_speakers(run.model, run.feature_extractor, run.inputs, run.normalization)
    predictions = {
        name: predict_split(trainer, run.inputs[name], name) for name in ("validation", "test") if name in run.inputs
    }
    validation_labels, validation_logits = predictions.get("validation", (None, None))
    calibration = fit_temperature_scaling(
        validation_logits,
        validation_labels,
        enabled=run.args.calibrate_temperature,
        min_clips=run.args.calibration_min_clips,
    )
    temperature = calibration.temperature if calibration.fitted else None
    evaluation = {
        name: evaluate_split(
            trainer, run.inputs[name], run.label_names, name, predictions=split, temperature=temperature
        )
        for name, split in predictions.items()
    }
    return calibration, evaluation


def split_record(splits: DatasetDict) -> SplitRecord:
    """The clips and speakers of each split, with the split's own settings where the split recorded them."""
    split_info = get_ser_info(splits["train"])
    return SplitRecord.from_dict(
        {
            "clips": {name: len(split) for name, split in splits.items()},
            "speakers": {name: sorted(set(column_values(split, "speaker_id"))) for name, split in splits.items()},
            **{
                key: value
                for key, value in split_info.items()
                if key in ("split_protocol", "seed", "speaker_lists", "n_splits", "test_speaker")
            },
        }
    )


def split_report(
    run: SplitRun,
    trainer: SERTrainer,
    calibration,
    evaluation: Mapping[str, Mapping[str, Any]],
    leakage_report: Optional[LeakageReport],
    training_record: Mapping[str, Any],
) -> RunReport:
    """The split's :class:`~ser_hf.run_record.RunReport`: its splits, audit, normalisation, scores, calibration,
    what the validation speakers chose, and the training (`training_record`: Trainer's train_* metrics, the wall
    time, the checkpoint resumed from, the self-training picks; the trainer's state added here)."""
    args, state = run.args, trainer.state
    return RunReport(
        protocol=run.recipe.data.split_protocol,
        fold=run.fold,
        split=split_record(run.splits),
        leakage_audit=leakage_report.to_dict() if leakage_report is not None else None,
        normalization=run.normalization.to_dict() if run.normalization is not None else None,
        # Every figure of this report is in-corpus: on held-out speakers of the corpora the model trained on.
        training_corpora=get_ser_info(run.splits["train"]).get("corpora") or list(run.recipe.data.corpus),
        labels=run.label_names,
        evaluation={name: SplitMetrics.from_dict(metrics) for name, metrics in evaluation.items()},
        calibration=CalibrationRecord.from_dict(calibration.to_dict()),
        # What the validation speakers chose (reports and cards say so, and only what they did): Trainer keeps the
        # best checkpoint only with load_best_model_at_end and a checkpoint evaluated on them.
        validation_choices=(
            ValidationChoices(
                best_epoch=bool(args.load_best_model_at_end and state.best_model_checkpoint),
                early_stopping=args.early_stopping_patience is not None,
                temperature=calibration.fitted_on == "validation",
            )
            if "validation" in evaluation
            else None
        ),
        # Trainer's own train_* metrics (whichever its version reports), then ser-hf's.
        training=TrainingRecord.from_dict(
            {
                **training_record,
                "global_step": state.global_step,
                "epochs": state.epoch,
                "best_checkpoint": state.best_model_checkpoint,
                "best_metric": state.best_metric,
                "parameters": dataclasses.asdict(count_parameters(run.model)),
            }
        ),
    )


def save_split(run: SplitRun, trainer: SERTrainer, report: RunReport, calibration) -> None:
    """On the main process: the trained model (with its feature extractor and temperature), ``metrics.json`` and the
    plots, and the split's model card."""
    if trainer.is_world_process_zero():
        export_model(
            run.mode.exported_model(run.model, trainer.model),
            run.feature_extractor,
            run.output_dir,
            temperature=calibration.temperature,
        )
        write_report(run.output_dir, report, trainer.state.log_history)
        write_model_card(run.output_dir)
    trainer.accelerator.wait_for_everyone()


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


__all__ = [
    "SplitRun",
    "build_trainer",
    "calibrate_and_evaluate",
    "corpus_weight_keys",
    "finished_report",
    "fold_training_args",
    "resume_checkpoint",
    "save_split",
    "self_train",
    "split_record",
    "split_report",
    "start_split",
    "train_and_evaluate",
    "train_folds",
    "train_with_soup",
    "training_sample_weights",
]
