"""`Trainer` for speech emotion recognition: a class-weighted, label-smoothed loss, a learning rate of its own for the
classification head, OneCycle scheduling, validation metrics (UA first) and the epoch hand-off that keeps random
crops and augmentation reproducible across an interrupted and resumed run."""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.utils.data import SequentialSampler
from transformers import EvalPrediction, Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from .metrics import classification_metrics, scalar_metrics

logger = logging.getLogger(__name__)

#: Names of the modules (or parameters) that make up a classification head, across ser-hf's models.
HEAD_PARAMETER_PREFIXES = ("projector", "pooler", "classifier", "layer_weights", "head")


def class_weights_tensor(option: Optional[str | Mapping[str, float]], labels: Sequence[int],
                         label_names: Sequence[str]) -> Optional[torch.Tensor]:
    """Loss weights per class id from the recipe's ``class_weights``: ``"balanced"`` gives scikit-learn's
    ``n_samples / (n_classes * count)`` over the training labels; a mapping gives each named class its weight (1 for
    classes it leaves out)."""
    if option is None:
        return None
    if option == "balanced":
        labels = np.asarray(labels)
        present = np.unique(labels)
        missing = [label_names[i] for i in range(len(label_names)) if i not in set(present.tolist())]
        if missing:
            raise ValueError(f"class_weights: balanced needs every class in the training split; {missing} have no "
                             "training clips.")
        weights = compute_class_weight("balanced", classes=np.arange(len(label_names)), y=labels)
        return torch.tensor(weights, dtype=torch.float32)
    unknown = sorted(set(option) - set(label_names))
    if unknown:
        raise ValueError(f"class_weights names {unknown}, which are not labels of this dataset ({list(label_names)}).")
    return torch.tensor([float(option.get(name, 1.0)) for name in label_names], dtype=torch.float32)


def metrics_function(label_names: Sequence[str]) -> Callable[[EvalPrediction], dict[str, float]]:
    """``compute_metrics`` for `Trainer`: the scalar SER metrics (UA, WA, macro/weighted F1, ECE)."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return scalar_metrics(classification_metrics(prediction.label_ids, logits, label_names))

    return compute_metrics


class EpochCallback(TrainerCallback):
    """Tells the collator which epoch is starting, so its per-clip random draws (crop, augmentation) depend on
    (seed, epoch, clip) only: a resumed run skips batches without drawing and still sees what an uninterrupted run
    would have seen."""

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is fractional (1.5 when resuming mid-epoch); the starting epoch is its integer part.
        self.collator.epoch = int(state.epoch + 1e-6) if state.epoch else 0


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """`LengthGroupedSampler` whose permutation is drawn from its own generator seeded by (seed, epoch).

    transformers' sampler draws from the global torch RNG, which a resumed run has not restored yet when it builds
    the epoch's order, and which data-parallel processes consume differently: the order of an epoch must depend on
    the seed and the epoch alone. `Trainer` (through accelerate) calls :meth:`set_epoch` before every epoch."""

    def __init__(self, batch_size: int, lengths, seed: int):
        super().__init__(batch_size, lengths=list(lengths))
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return super().__iter__()


class SERTrainer(Trainer):
    """`Trainer` with SER's loss and optimiser options.

    Args:
        eval_data_collator (*optional*): the collator of evaluation and prediction (whole clips, no augmentation);
            `data_collator` then serves training only.
        class_weights (`torch.Tensor`, *optional*): per-class weights of the cross-entropy loss.
        head_learning_rate (`float`, *optional*): learning rate of the head parameters (see
            :data:`HEAD_PARAMETER_PREFIXES`); the other parameters use ``args.learning_rate``.
        **kwargs: `Trainer`'s arguments.

    The loss is ``cross_entropy(logits, labels, weight=class_weights, label_smoothing=args.label_smoothing_factor)``,
    averaged over the batch (and divided by the accumulation steps by `Trainer`).
    """

    def __init__(self, *args, eval_data_collator: Optional[Callable] = None,
                 class_weights: Optional[torch.Tensor] = None, head_learning_rate: Optional[float] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        self.class_weights = class_weights
        self.head_learning_rate = head_learning_rate
        # The loss below is a per-batch mean: Trainer divides it by the gradient accumulation steps.
        self.loss_is_scaled_for_ga = False

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = self.train_dataset if train_dataset is None else train_dataset
        if (self.args.train_sampling_strategy == "group_by_length"
                and self.args.length_column_name in getattr(train_dataset, "column_names", ())):
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededLengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                                   train_dataset[self.args.length_column_name], seed)
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        # Evaluation keeps the dataset's order (transformers would group it by length too), so predictions line up
        # with the split's speaker and sex columns for the per-speaker and per-sex metrics.
        if self.args.world_size <= 1 and eval_dataset is not None:
            return SequentialSampler(eval_dataset)
        return None

    def _get_dataloader(self, dataset, description, batch_size, sampler_fn=None, is_training=False,
                        dataloader_key=None):
        # Trainer has one data_collator for every loader; evaluation and prediction must see whole, unaugmented clips.
        if is_training or self.eval_data_collator is None:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        training_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        finally:
            self.data_collator = training_collator

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch=None):
        labels = inputs.pop("labels", None)
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        if labels is None:
            raise ValueError("SERTrainer needs labels in every batch to compute the loss.")
        weight = None if self.class_weights is None else self.class_weights.to(logits.device, logits.dtype)
        loss = nn.functional.cross_entropy(logits.float(), labels, weight=None if weight is None else weight.float(),
                                           label_smoothing=self.args.label_smoothing_factor)
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model=None):
        if self.head_learning_rate is None or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        decay_names = set(self.get_decay_parameter_names(model))
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                groups.setdefault((is_head_parameter(name), name in decay_names), []).append(parameter)
        if not any(is_head for is_head, _ in groups):
            raise ValueError("head_learning_rate is set, but the model has no head parameters to train "
                             f"(expected names starting with {', '.join(HEAD_PARAMETER_PREFIXES)}).")
        parameter_groups = [
            {"params": params, "lr": self.head_learning_rate if is_head else self.args.learning_rate,
             "weight_decay": self.args.weight_decay if decays else 0.0}
            for (is_head, decays), params in sorted(groups.items())
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = optimizer_cls(parameter_groups, **optimizer_kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer = None):
        if not getattr(self.args, "one_cycle_lr", False) or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        optimizer = self.optimizer if optimizer is None else optimizer
        warmup = self.args.get_warmup_steps(num_training_steps)
        self.lr_scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=num_training_steps,
            # OneCycleLR needs a non-empty warm-up; 30 % is its own default.
            pct_start=min(max(warmup / num_training_steps, 1e-3), 0.999) if warmup else 0.3,
            anneal_strategy="cos",
        )
        self._created_lr_scheduler = True
        return self.lr_scheduler


def is_head_parameter(name: str) -> bool:
    """Whether a parameter (named as by ``named_parameters``, possibly under a peft wrapper) belongs to the head."""
    parts = name.split(".")
    # peft wraps the model (base_model.model.<name>) and saves head copies under modules_to_save.
    while parts and parts[0] in ("base_model", "model"):
        parts = parts[1:]
    return bool(parts) and parts[0] in HEAD_PARAMETER_PREFIXES


__all__ = ["EpochCallback", "HEAD_PARAMETER_PREFIXES", "SERTrainer", "class_weights_tensor", "is_head_parameter",
           "metrics_function"]
