"""The training section of a recipe (:class:`SERTrainingArguments`): `TrainingArguments` with ser-hf's defaults and
what SER training adds, with the checks that stop a recipe whose training settings cannot work (or whose output folder
cannot be written) before any data is loaded."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

import torch
import yaml
from transformers import TrainingArguments

from ..errors import RecipeError, unknown_key_message
from .fields import AT_LEAST_ONE, OFF_OR_POSITIVE, POSITIVE_RATE, CardRow, NumberRule
from .value_forms import as_mapping, is_weight
from .values import check_numbers
from .yaml_io import DuplicateKeyError, load_yaml

if TYPE_CHECKING:
    from .data_arguments import DataArguments
    from .model_arguments import ModelArguments

logger = logging.getLogger(__name__)

#: The words ``class_weights`` takes besides a mapping of labels to weights.
CLASS_WEIGHT_WORDS = ("balanced", "none")


@dataclass
class SERTrainingArguments(TrainingArguments):
    """`TrainingArguments` with ser-hf's defaults (evaluate and save every epoch, keep the best model by validation
    UA, group batches by clip length) and what SER training adds: class weights, a separate head learning rate,
    OneCycle scheduling, early stopping and automatic mixed precision."""

    class_weights: Optional[dict | str] = field(
        default=None,
        metadata={
            "help": "Weight the loss per class: 'balanced' (inverse class frequency in the training split) or "
            "a mapping {label: weight}; unweighted when not set.",
            "card": CardRow(15),
            "outcome": True,
        },
    )
    head_learning_rate: Optional[float] = field(
        default=None,
        metadata={
            "help": "Learning rate of the classification head (projector, pooler, classifier, layer weights); "
            "learning_rate then applies to the encoder. Same as learning_rate when not set.",
            "range": POSITIVE_RATE,
            "card": CardRow(2),
            "outcome": True,
        },
    )
    one_cycle_lr: bool = field(
        default=False,
        metadata={
            "help": "Use torch's OneCycleLR (warm-up over warmup_steps, then cosine annealing, momentum "
            "cycled) instead of lr_scheduler_type.",
            "card": CardRow(9),
            "outcome": True,
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train again into an output_dir that holds a run (finished or not), deleting that run "
            "first. Without it a finished run is read back, not trained again, and an unfinished one "
            "resumes from its last checkpoint.",
            "outcome": False,
        },
    )
    early_stopping_patience: Optional[int] = field(
        default=None,
        metadata={
            "help": "Stop after this many evaluations without improvement of metric_for_best_model.",
            "range": AT_LEAST_ONE,
            "card": CardRow(16),
            "outcome": True,
        },
    )
    calibrate_temperature: bool = field(
        default=True,
        metadata={
            "help": "After training, fit temperature scaling on the validation split (one temperature T that the "
            "logits are divided by, minimising their negative log-likelihood) and save T in the model's config, "
            "so that its scores are calibrated; no prediction changes. Without a validation split T stays 1.",
            "outcome": True,
        },
    )
    calibration_min_clips: int = field(
        default=100,
        metadata={
            "help": "Fit the temperature only on a validation split of at least this many clips: on fewer, one "
            "temperature follows the noise of a few clips and can make the scores worse elsewhere (T stays 1, and "
            "the report says why).",
            "range": AT_LEAST_ONE,
            "outcome": True,
        },
    )
    self_training_rounds: int = field(
        default=0,
        metadata={
            "help": "Rounds of self-training on the test split's unlabelled clips (0: off): each round's model "
            "predicts them, and the next trains from scratch on the training split plus, for every predicted "
            "emotion, the self_training_share of its clips predicted with the highest probability, with the "
            "predicted emotions; the last round's model is saved. Transductive, like corpus and speaker "
            "statistics: the test clips' audio is read, their labels never (ser_hf.training.self_training).",
            "range": NumberRule("0 (off) or a positive whole number", at_least=0, whole=True),
            "outcome": True,
        },
    )
    self_training_share: float = field(
        default=0.3,
        metadata={
            "help": "Share of the test clips predicted as each emotion that a self-training round keeps.",
            "range": NumberRule("in (0, 1]", greater_than=0, at_most=1, why="the share of each emotion's clips kept"),
            "outcome": True,
        },
    )
    starting_point_weight: float = field(
        default=0.0,
        metadata={
            "help": "L2-SP regularisation (Li, Grandvalet and Davoine, 2018): adds this weight times the squared "
            "distance of the trained weights from those training started from to the loss, so that a few clips "
            "adapt a trained model (ser-hf adapt) without wrecking what it learnt; set weight_decay to 0 with it, "
            "which pulls towards zero instead. 0: off.",
            "range": OFF_OR_POSITIVE,
            "card": CardRow(12),
            "outcome": True,
        },
    )
    soup_size: int = field(
        default=1,
        metadata={
            "help": "Model soup (Wortsman et al., 2022): train this many models from the same starting weights, "
            "each with its own seed (seed, seed + 1, ...: data order and dropout), and keep the average of their "
            "trained weights, one ordinary model. Steadies what a few clips train (ser-hf adapt uses 5); meant "
            "for models trained on from one start, not heads trained from random starts. 1: off "
            "(ser_hf.training.soup).",
            "range": NumberRule("1 (off) or more", at_least=1, whole=True),
            "card": CardRow(21),
            "outcome": True,
        },
    )
    corpus_adversarial_weight: float = field(
        default=0.0,
        metadata={
            "help": "Domain-adversarial training across the training corpora (Ganin and Lempitsky, 2015): a "
            "classifier of each training clip's corpus learns from the head's projection behind a gradient "
            "reversal layer, whose reversed gradient, scaled by this weight (ramped up from 0 over training), "
            "teaches the projection to hide the corpus, so that the head reads what the corpora share. 0: off. "
            "Needs two training corpora or more and a cached encoder (cache_encoder_outputs); the adversary is "
            "never saved with the model (ser_hf.training.corpus_adversary).",
            "range": OFF_OR_POSITIVE,
            "outcome": True,
        },
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto",
        metadata={
            "help": "auto: bf16 on a GPU that supports it, full precision otherwise; or fp32/bf16/fp16. (Not "
            "named mixed_precision: TrainingArguments uses that attribute for accelerate's setting.)",
            "card": CardRow(18),
            "outcome": True,
        },
    )
    defer_loss_check: Optional[bool] = field(
        default=None,
        metadata={
            "help": "A NaN or infinite training loss stops the run, naming the step and the batch's clips. "
            "Checking makes the host wait for the device, so by default each loss is checked at once "
            "on CPU (free there) and, on accelerators, kept on the device and checked when Trainer "
            "waits anyway (logging, evaluation, saving, epoch end): true or false forces either way.",
            "outcome": False,
        },
    )
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={
            "help": "Trainer's filter that leaves NaN/inf losses out of the logged mean. Off: a non-finite "
            "loss stops the run instead (defer_loss_check), and the filter would wait for the device "
            "at every step.",
            "outcome": False,
        },
    )
    eval_strategy: str = field(
        default="epoch",
        metadata={"help": "When to evaluate on the validation split: no, steps or epoch.", "outcome": True},
    )
    save_strategy: str = field(
        default="epoch", metadata={"help": "When to save a checkpoint: no, steps or epoch.", "outcome": False}
    )
    save_total_limit: Optional[int] = field(
        default=2,
        metadata={
            "help": "Checkpoints kept (the best is kept too).",
            "range": NumberRule("at least 1 (or left out: keep every checkpoint)", at_least=1),
            "outcome": False,
        },
    )
    load_best_model_at_end: bool = field(
        default=True,
        metadata={"help": "End with the checkpoint that scored best on metric_for_best_model.", "outcome": True},
    )
    metric_for_best_model: Optional[str] = field(
        default="unweighted_accuracy",
        metadata={"help": "Validation metric that picks the best model (UA).", "card": CardRow(17), "outcome": True},
    )
    greater_is_better: Optional[bool] = field(
        default=True, metadata={"help": "Whether the metric is better higher.", "outcome": True}
    )
    logging_steps: float = field(
        default=10, metadata={"help": "Log the training loss every N steps.", "outcome": False}
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep the dataset columns: the collator needs the waveform and label.", "outcome": False},
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "group_by_length: batches of clips of similar length (less padding); or random, sequential.",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
            "outcome": True,
        },
    )
    length_column_name: str = field(
        default="duration", metadata={"help": "Column of clip lengths for grouping.", "outcome": False}
    )
    dataloader_num_workers: Optional[int] = field(
        default=None,
        metadata={
            "help": "DataLoader worker processes that collate batches beside the training loop. When not set: "
            "min(4, CPU cores per training process) when training on a GPU, so that collating never keeps the "
            "GPU waiting, and 0 on CPU, where workers would take cores from the training itself. A value in "
            "the recipe or on the command line always wins. Workers are started again every epoch "
            "(dataloader_persistent_workers stays off), so that each epoch's random crops and augmentation "
            "reach them; clips are decoded once into the Arrow cache before training, never in the workers.",
            "range": NumberRule("0 or more", at_least=0),
            "outcome": False,
        },
    )

    def __post_init__(self):
        self._check_training_length()
        if self.dataloader_num_workers is None:
            self.dataloader_num_workers = default_dataloader_workers(self.use_cpu)
        self.class_weights = _class_weights_option(self.class_weights)
        if self.precision == "auto":
            gpu_bf16 = not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            self.bf16 = self.bf16 or gpu_bf16
        elif self.precision == "bf16":
            self.bf16 = True
        elif self.precision == "fp16":
            self.fp16 = True
        elif self.precision == "fp32":
            if self.bf16 or self.fp16 or os.environ.get("ACCELERATE_MIXED_PRECISION", "no") != "no":
                logger.warning("precision: fp32 overrides bf16/fp16 and accelerate's mixed_precision setting.")
            self.bf16 = self.fp16 = False
            os.environ["ACCELERATE_MIXED_PRECISION"] = "no"
        if self.dataloader_pin_memory and (self.use_cpu or not torch.cuda.is_available()):
            self.dataloader_pin_memory = False  # pinned memory only speeds copies to a GPU (torch warns otherwise)
        # Batches in pinned memory are copied to the GPU without the host waiting for the copy (accelerate's
        # non_blocking), unless the recipe's accelerator_config says otherwise.
        non_blocking_set = self.accelerator_config is not None and (
            not isinstance(self.accelerator_config, dict) or "non_blocking" in self.accelerator_config
        )
        super().__post_init__()
        if self.dataloader_pin_memory and not non_blocking_set:
            self.accelerator_config.non_blocking = True
        check_output_dir_writable(self.output_dir)

    def check_model(self, model_args: ModelArguments, data_args: DataArguments) -> None:
        """Refuse a corpus adversary the recipe's model or corpora cannot train, naming every reason at once."""
        weight = self.corpus_adversarial_weight
        if not weight:
            return
        problems = []
        if not model_args.cache_encoder_outputs:
            problems.append(
                "it reads the head's projection of each clip, which the models of cached encoder states have "
                "(set cache_encoder_outputs: true, with finetune_top_layers to fine-tune the top layers)"
            )
        if len(data_args.corpus) < 2:
            problems.append(
                f"it needs two training corpora or more, and the recipe reads {', '.join(data_args.corpus) or 'none'}"
                " (corpus: [ravdess, tess, ...])"
            )
        if problems:
            raise RecipeError(f"corpus_adversarial_weight: {weight:g}: " + "; ".join(problems) + ".")

    def _check_training_length(self) -> None:
        """Refuse values that would train nothing (and save an untrained model as a finished run) or fail inside
        torch, naming the key."""
        if self.max_steps == 0 or self.max_steps < -1:
            raise RecipeError(
                f"max_steps must be a positive number of optimizer steps, got {self.max_steps} (leave "
                "it out, or set -1, to train for num_train_epochs)."
            )
        check_numbers(self)

    def __getstate__(self) -> dict[str, Any]:
        # Trainer pickles its arguments into every checkpoint (training_args.bin): never with the Hub token in them.
        state = self.__dict__.copy()
        if state.get("hub_token") is not None:
            state["hub_token"] = None
        return state


def default_dataloader_workers(use_cpu: bool) -> int:
    """DataLoader workers when the recipe sets none: ``min(4, cores per process)`` when training on a GPU (each
    process of a multi-GPU launch gets its share of the machine's cores, ``LOCAL_WORLD_SIZE`` of them), 0 on CPU."""
    if use_cpu or not torch.cuda.is_available():
        return 0
    processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(4, (os.cpu_count() or 1) // processes))


def check_output_dir_writable(output_dir: str | os.PathLike) -> None:
    """Stop before any work when ``output_dir`` cannot hold a run: it is a file, a folder above it is a file, a
    folder name is longer than the file system allows, or the folder (or the nearest existing one above it) cannot be
    written."""
    path = Path(output_dir).expanduser().absolute()
    existing = path
    # os.path's tests, not Path's: Path.exists() raises on a name too long for the file system.
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing == path and not os.path.isdir(path):
        raise RecipeError(f"output_dir {output_dir} is a file, not a folder: choose another output_dir.")
    if not os.path.isdir(existing):
        raise RecipeError(f"output_dir {output_dir} cannot be created: {existing} is a file, not a folder.")
    name_max = _path_limit(existing, "PC_NAME_MAX", 255)
    for name in path.relative_to(existing).parts:
        if len(os.fsencode(name)) > name_max:
            raise RecipeError(
                f"output_dir {output_dir} cannot be created: the folder name {name[:40]}... is "
                f"{len(os.fsencode(name))} bytes long, over the file system's limit of {name_max}."
            )
    path_max = _path_limit(existing, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(path))) >= path_max:
        raise RecipeError(
            f"output_dir {output_dir} is {len(os.fsencode(str(path)))} bytes long, over the file "
            f"system's limit of {path_max}: choose a shorter output_dir."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == path else f"cannot be created: {existing} is not writable"
        raise RecipeError(
            f"output_dir {output_dir} {what} (permissions, or a read-only file system): choose a "
            "folder you can write to."
        )


def _path_limit(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):  # not defined on this system (Windows has no pathconf)
        return default


def _yaml_or_none(text: str) -> Any:
    """`text` read as YAML, or `None` where it is not valid YAML (the caller's own parsing words that error)."""
    try:
        return load_yaml(text)
    except (yaml.YAMLError, DuplicateKeyError):
        return None


def _class_weights_option(value: Any) -> Optional[dict | str]:
    if value is None:
        return None
    if isinstance(value, str) and value.strip() in CLASS_WEIGHT_WORDS:
        return None if value.strip() == "none" else "balanced"
    if isinstance(value, str) and value.strip() and isinstance(_yaml_or_none(value), str):
        raise RecipeError(
            f"class_weights {unknown_key_message(value.strip(), CLASS_WEIGHT_WORDS)} is not balanced, none or a "
            "mapping of labels to weights such as {angry: 2, neutral: 1}."
        )
    weights = as_mapping(value, "class_weights")
    bad = {label: weight for label, weight in (weights or {}).items() if not is_weight(weight) or weight < 0}
    if bad:
        raise RecipeError(f"class_weights must map labels to non-negative finite numbers; bad entries: {bad}.")
    return {str(label): float(weight) for label, weight in weights.items()}


__all__ = ["CLASS_WEIGHT_WORDS", "SERTrainingArguments", "check_output_dir_writable", "default_dataloader_workers"]
