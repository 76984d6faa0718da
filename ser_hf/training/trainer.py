"""`Trainer` for speech emotion recognition: a class-weighted, label-smoothed loss, a learning rate of its own for the
classification head, OneCycle scheduling, validation metrics (UA first) and the epoch hand-off that keeps random
crops and augmentation reproducible across an interrupted and resumed run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.utils.data import Sampler, SequentialSampler
from transformers import EvalPrediction, Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..atomic_files import give_plain_mode
from ..evaluation.metrics import classification_metrics, scalar_metrics
from .corpus_adversary import ADVERSARY_ATTRIBUTE, CORPUS_LABELS_KEY, reversal_scale
from .errors import NonFiniteLossError

logger = logging.getLogger(__name__)

#: Batch key of the training clips' paths: named in the error when a batch's loss is not finite.
CLIP_PATHS_KEY = "path"


#: Batch key of the fixed-size model inputs that mixup mixes (the openSMILE functionals).
MIXUP_INPUT_KEY = "input_features"

#: Names of the modules (or parameters) that make up a classification head, across ser-hf's models.
HEAD_PARAMETER_PREFIXES = ("projector", "pooler", "classifier", "layer_weights", "head", ADVERSARY_ATTRIBUTE)


def class_weights_tensor(
    option: Optional[str | Mapping[str, float]], labels: Sequence[int], label_names: Sequence[str]
) -> Optional[torch.Tensor]:
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
            raise ValueError(
                f"class_weights: balanced needs every class in the training split; {missing} have no training clips."
            )
        weights = compute_class_weight("balanced", classes=np.arange(len(label_names)), y=labels)
        return torch.tensor(weights, dtype=torch.float32)
    unknown = sorted(set(option) - set(label_names))
    if unknown:
        raise ValueError(f"class_weights names {unknown}, which are not labels of this dataset ({list(label_names)}).")
    return torch.tensor([float(option.get(name, 1.0)) for name in label_names], dtype=torch.float32)


def corpus_sampling_weights(corpora: Sequence[str], corpus_weights: Mapping[str, float]) -> np.ndarray:
    """A sampling weight per clip such that each corpus' share of the clips drawn is proportional to its weight in
    `corpus_weights`, however many clips it has: ``corpus_weights[c] / clips of c``, normalised to sum to one."""
    corpora = np.asarray([str(corpus) for corpus in corpora], dtype=object)
    names, counts = np.unique(corpora, return_counts=True)
    missing = [name for name in names if name not in corpus_weights]
    if missing:
        raise ValueError(f"corpus_weights gives no weight to corpus {missing[0]!r} of the training split.")
    # Scaled by the largest weight first: 1e308 / clips, summed, would overflow to inf and every share to 0.
    largest = max(float(corpus_weights[name]) for name in names)
    per_clip = dict(zip(names, (corpus_weights[name] / largest / count for name, count in zip(names, counts))))
    weights = np.array([per_clip[corpus] for corpus in corpora], dtype=np.float64)
    return weights / weights.sum()


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


class EpochSeededLengthGroupedSampler(Sampler):
    """Batches of clips of similar length in random order, drawn from a generator seeded by (seed, epoch) alone.

    Every epoch the clips are shuffled and cut into buckets of ``batches_per_bucket`` batches; each bucket is sorted
    by length and cut into batches; the batches of the whole epoch are shuffled, the one holding the longest clip
    first (an out-of-memory error shows at the first step, not the last) and the one short batch, if any, last (the
    `DataLoader` cuts the stream of indices into consecutive batches). A split no larger than one bucket thus keeps
    the same batches from epoch to epoch, in a new order each time, as ESPnet's sorted batch samplers do; a larger
    one is regrouped every epoch.

    transformers' `LengthGroupedSampler` pads more and orders worse for SER corpora: it makes at least four buckets
    ("megabatches"), so a split of a few hundred clips gets buckets of one or two batches and almost no grouping; and
    it walks each bucket from its longest batch to its shortest, so clip length drifts through the epoch. It also
    draws from the global torch RNG, which a resumed run has not restored yet when it builds the epoch's order, and
    which data-parallel processes consume differently: the order here depends on the seed and the epoch only.
    `Trainer` (through accelerate) calls :meth:`set_epoch` before every epoch.

    Args:
        batch_size (`int`): clips per batch (per optimizer step, with gradient accumulation).
        lengths (`Sequence[float]`): each clip's length (seconds or samples).
        seed (`int`): seed of the shuffles.
        batches_per_bucket (`int`, *optional*, defaults to 50): batches sorted together.
    """

    def __init__(self, batch_size: int, lengths, seed: int, batches_per_bucket: int = 50):
        if batch_size < 1 or batches_per_bucket < 1:
            raise ValueError(
                f"batch_size and batches_per_bucket must be positive, got {batch_size} and {batches_per_bucket}."
            )
        self.batch_size = batch_size
        self.lengths = [float(length) for length in lengths]
        self.seed = seed
        self.batches_per_bucket = batches_per_bucket
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The epoch's batches of clip indices, in the order they are trained on."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        bucket_size = self.batch_size * self.batches_per_bucket
        batches = []
        for start in range(0, len(order), bucket_size):
            bucket = sorted(order[start : start + bucket_size], key=self.lengths.__getitem__, reverse=True)
            batches += [bucket[i : i + self.batch_size] for i in range(0, len(bucket), self.batch_size)]
        short = batches.pop() if batches and len(batches[-1]) < self.batch_size else None
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        if batches:
            longest = max(range(len(batches)), key=lambda b: self.lengths[batches[b][0]])
            batches[0], batches[longest] = batches[longest], batches[0]
        return batches + ([short] if short else [])

    def __iter__(self):
        return iter([index for batch in self.batches() for index in batch])


class EpochSeededWeightedSampler(Sampler):
    """As many draws an epoch as there are clips, each clip drawn in proportion to its weight, and as evenly as that
    allows: ``floor(n * w)`` or ``ceil(n * w)`` times for a clip of weight ``w`` among ``n`` (systematic sampling over
    a shuffled order of the clips), in random order, from a generator seeded by (seed, epoch) alone.

    `torch.utils.data.WeightedRandomSampler` draws with replacement: each clip's count in an epoch is random, so an
    epoch of corpus weights that leave a clip's expected count at 1 still leaves about a third of the clips out and
    shows others twice or more. Here a clip whose corpus is drawn at its own size is seen exactly once, a larger
    corpus drawn at half its size shows a different half of its clips each epoch, and a smaller one drawn at twice its
    size shows each clip twice. Each corpus' share of the epoch is the same as with replacement. The order depends on
    the seed and the epoch only, as :class:`EpochSeededLengthGroupedSampler`'s (a resumed run sees the same epochs).

    Args:
        weights (`Sequence[float]`): a non-negative weight per clip, not all 0 (normalised here).
        seed (`int`): seed of the draws.
    """

    def __init__(self, weights, seed: int):
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1 or not len(weights) or (weights < 0).any() or not np.isfinite(weights).all():
            raise ValueError("sample weights must be one finite, non-negative weight per clip.")
        if weights.sum() <= 0:
            raise ValueError("sample weights are all 0: no clip could be drawn.")
        self.weights = weights / weights.sum()
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.weights)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> list[int]:
        """The epoch's clip indices, in the order they are trained on."""
        generator = np.random.default_rng([self.seed % 2**32, self.epoch])  # numpy seeds are non-negative
        count = len(self.weights)
        order = generator.permutation(count)
        # One random offset, then a draw every 1/count of the shuffled clips' cumulative weight.
        edges = np.cumsum(self.weights[order])
        points = (generator.random() + np.arange(count)) / count
        drawn = order[np.minimum(np.searchsorted(edges, points, side="right"), count - 1)]
        return drawn[generator.permutation(count)].tolist()

    def __iter__(self):
        return iter(self.indices())


@dataclass
class _TrainingLoss:
    """One training batch's loss, kept on its device until the next check."""

    step: int
    epoch: float
    paths: Optional[Sequence[str]]
    loss: torch.Tensor
    # Per input tensor, which rows hold NaN or inf (computed on the device when the check is deferred).
    bad_rows: dict[str, torch.Tensor]


def _non_finite_rows(inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Per floating-point input tensor, which rows (clips) hold NaN or infinite values, computed where they are."""
    return {
        name: (~torch.isfinite(value.reshape(value.shape[0], -1))).any(dim=1)
        for name, value in inputs.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() > 0
    }


#: The figures of a log that the training bar shows beside it (the full dict goes to the debug log).
BAR_FIGURES = {"loss": "loss", "eval_loss": "eval_loss", "eval_unweighted_accuracy": "eval_UA", "epoch": "epoch"}


def _shown_logs(logs: Mapping[str, Any]) -> dict[str, Any]:
    return {key: f"{value:.4g}" if isinstance(value, float) else value for key, value in logs.items()}


class LogsAtDebugCallback(PrinterCallback):
    """transformers' `PrinterCallback` (the one ``disable_tqdm`` runs) without its ``print``: each log dict (losses,
    every evaluation's metrics, the final runtime) goes to ser-hf's logger at DEBUG, not one printed dict per
    ``logging_steps`` and per epoch; the run's results are ser-hf's own INFO lines (evaluation.report)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_local_process_zero and logs:
            logger.debug("%s", _shown_logs({key: value for key, value in logs.items() if key != "total_flos"}))


class MetricsInBarCallback(ProgressCallback):
    """transformers' `ProgressCallback` that puts the latest loss, validation loss and UA in the training bar's
    postfix instead of writing a dict line under it at every log; the full dict goes to the debug log."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not (state.is_world_process_zero and logs):
            return
        logger.debug("%s", _shown_logs({key: value for key, value in logs.items() if key != "total_flos"}))
        if self.training_bar is not None:
            # The latest of each figure: an evaluation's log holds no training loss, and the other way round.
            self.figures = {
                **getattr(self, "figures", {}),
                **{shown: logs[key] for key, shown in BAR_FIGURES.items() if key in logs},
            }
            self.training_bar.set_postfix(_shown_logs(self.figures), refresh=False)


def quiet_log_callbacks(trainer: Trainer) -> None:
    """Swap the trainer's printing callbacks for :class:`LogsAtDebugCallback` and :class:`MetricsInBarCallback`."""
    for printing, quiet in ((PrinterCallback, LogsAtDebugCallback), (ProgressCallback, MetricsInBarCallback)):
        for callback in list(trainer.callback_handler.callbacks):
            if type(callback) is printing:
                trainer.remove_callback(callback)
                trainer.add_callback(quiet)


class NonFiniteLossCallback(TrainerCallback):
    """Checks the training losses kept by :class:`SERTrainer` whenever `Trainer` is about to log, evaluate, save or
    stop, and at the end of each epoch: a step never waits for the device, and no checkpoint, evaluation or log comes
    from weights that a non-finite loss has already spoiled."""

    def __init__(self, trainer: "SERTrainer"):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_log or control.should_evaluate or control.should_save or control.should_training_stop:
            self.trainer.check_training_losses()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer.check_training_losses()

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer.check_training_losses()


class SERTrainer(Trainer):
    """`Trainer` with SER's loss and optimiser options.

    Args:
        eval_data_collator (*optional*): the collator of evaluation and prediction (whole clips, no augmentation);
            `data_collator` then serves training only.
        class_weights (`torch.Tensor`, *optional*): per-class weights of the cross-entropy loss.
        head_learning_rate (`float`, *optional*): learning rate of the head parameters (see
            :data:`HEAD_PARAMETER_PREFIXES`); the other parameters use ``args.learning_rate``.
        mixup_alpha (`float`, *optional*, defaults to 0): mixup of the training batches (see :meth:`mixup`); 0: off.
        sample_weights (`Sequence[float]`, *optional*): a weight per training clip: each epoch then draws as many
            clips as the training split holds, each in proportion to its weight and as evenly as that allows (see
            :func:`corpus_sampling_weights` and :class:`EpochSeededWeightedSampler`), instead of every clip once.
        corpus_adversarial_weight (`float`, *optional*, defaults to 0): domain-adversarial training across the
            training corpora (:mod:`ser_hf.training.corpus_adversary`): the model carries a `corpus_adversary` and
            the training batches their `corpus_labels`; 0: off.
        starting_point_weight (`float`, *optional*, defaults to 0): L2-SP (Li et al., 2018), the pull of every
            trainable weight towards its value when the trainer was built (see :meth:`starting_point_penalty`);
            0: off.
        **kwargs: `Trainer`'s arguments.

    The loss is ``cross_entropy(logits, labels, weight=class_weights, label_smoothing=args.label_smoothing_factor)``,
    averaged over the batch (and divided by the accumulation steps by `Trainer`). Under mixup a training batch's loss
    is ``lam * loss(labels) + (1 - lam) * loss(labels[order])``, the same loss on the labels of the clips mixed in.
    With a corpus adversary a training batch's loss adds the adversary's loss on the head's projection (see
    :mod:`ser_hf.training.corpus_adversary`), and each training log gives the two parts apart (:meth:`log`). With
    ``starting_point_weight`` a training batch's loss adds ``starting_point_weight * sum((w - w0) ** 2)`` over the
    trainable weights ``w``, ``w0`` their values at the start.
    """

    def __init__(
        self,
        *args,
        eval_data_collator: Optional[Callable] = None,
        class_weights: Optional[torch.Tensor] = None,
        head_learning_rate: Optional[float] = None,
        mixup_alpha: float = 0.0,
        sample_weights: Optional[Sequence[float]] = None,
        corpus_adversarial_weight: float = 0.0,
        starting_point_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.corpus_adversarial_weight = corpus_adversarial_weight
        self.starting_point_weight = starting_point_weight
        # The trainable weights as training starts (a model adapted from a trained one: its weights), for L2-SP.
        self.starting_point = (
            {
                name: parameter.detach().clone()
                for name, parameter in self.model.named_parameters()
                if parameter.requires_grad
            }
            if starting_point_weight
            else {}
        )
        self._projections: list[torch.Tensor] = []
        # The emotion and adversary losses summed over the training batches since the last log, and their count.
        self._loss_parts: Optional[torch.Tensor] = None
        self._loss_parts_batches = 0
        if corpus_adversarial_weight:
            if not hasattr(self.model, ADVERSARY_ATTRIBUTE):
                raise ValueError(
                    "corpus_adversarial_weight is set, but the model has no corpus adversary "
                    "(ser_hf.training.corpus_adversary.attach_corpus_adversary)."
                )
            # The head's projection of each training clip, as the adversary reads it, kept at every forward pass.
            self.model.projector.register_forward_hook(self._keep_projection)
        self.sample_weights = sample_weights
        self.eval_data_collator = eval_data_collator
        self.class_weights = class_weights
        self._device_class_weights: Optional[torch.Tensor] = None
        self.head_learning_rate = head_learning_rate
        self.mixup_alpha = mixup_alpha
        # The loss below is a per-batch mean: Trainer divides it by the gradient accumulation steps.
        self.loss_is_scaled_for_ga = False
        self._training_losses: list[_TrainingLoss] = []
        self.add_callback(NonFiniteLossCallback(self))
        quiet_log_callbacks(self)

    def _save(self, output_dir: Optional[str] = None, state_dict: Optional[dict] = None) -> None:
        super()._save(output_dir, state_dict)
        # safetensors writes the checkpoint's weights readable by their owner only; the rest of it is 0644.
        for path in Path(output_dir if output_dir is not None else self.args.output_dir).glob("*.safetensors"):
            give_plain_mode(path)

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.sample_weights is not None:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            if len(self.sample_weights) != len(train_dataset):
                raise ValueError(
                    f"{len(self.sample_weights)} sample weights for a training split of {len(train_dataset)} clips."
                )
            return EpochSeededWeightedSampler(self.sample_weights, seed)
        if self.args.train_sampling_strategy == "group_by_length" and self.args.length_column_name in getattr(
            train_dataset, "column_names", ()
        ):
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededLengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                train_dataset[self.args.length_column_name],
                seed,
            )
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        # Evaluation keeps the dataset's order (transformers would group it by length too), so predictions line up
        # with the split's speaker and sex columns for the per-speaker and per-sex metrics.
        if self.args.world_size <= 1 and eval_dataset is not None:
            return SequentialSampler(eval_dataset)
        return None

    def _get_dataloader(
        self, dataset, description, batch_size, sampler_fn=None, is_training=False, dataloader_key=None
    ):
        # Trainer has one data_collator for every loader; evaluation and prediction must see whole, unaugmented clips.
        if is_training or self.eval_data_collator is None:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        training_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        finally:
            self.data_collator = training_collator

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch=None
    ):
        labels = inputs.pop("labels", None)
        paths = inputs.pop(CLIP_PATHS_KEY, None)
        corpus_labels = inputs.pop(CORPUS_LABELS_KEY, None)
        if labels is None:
            raise ValueError("SERTrainer needs labels in every batch to compute the loss.")
        mixed = self.mixup(inputs) if model.training and self.mixup_alpha > 0 else None
        self._projections.clear()  # the adversary reads this forward pass's projection only
        # A non-finite loss names the clips whose own inputs hold NaN or inf, not those it was mixed into.
        outputs = model(**(mixed[0] if mixed is not None else inputs))
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        loss = self._cross_entropy(logits, labels)
        if mixed is not None:
            _, order, lam = mixed
            loss = lam * loss + (1 - lam) * self._cross_entropy(logits, labels[order])
        projections, self._projections = self._projections, []
        if model.training and self.corpus_adversarial_weight and corpus_labels is not None:
            adversary_loss = self.adversarial_loss(model, projections, corpus_labels)
            self._keep_loss_parts(loss, adversary_loss)
            loss = loss + adversary_loss
        if model.training and self.starting_point_weight:
            loss = loss + self.starting_point_weight * self.starting_point_penalty(model)
        if model.training:
            self._keep_training_loss(loss, inputs, paths)
        return (loss, outputs) if return_outputs else loss

    def starting_point_penalty(self, model: nn.Module) -> torch.Tensor:
        """L2-SP's penalty: the squared distance of the trainable weights from their values when the trainer was
        built, summed (weights the model gained since, such as a corpus adversary, are left out)."""
        unwrapped = self.accelerator.unwrap_model(model)
        terms = [
            (parameter.float() - self.starting_point[name].to(parameter.device).float()).pow(2).sum()
            for name, parameter in unwrapped.named_parameters()
            if parameter.requires_grad and name in self.starting_point
        ]
        if not terms:
            raise ValueError("starting_point_weight is set, but the model has no trainable weights to hold.")
        return torch.stack(terms).sum()

    def _keep_loss_parts(self, emotion_loss: torch.Tensor, adversary_loss: torch.Tensor) -> None:
        parts = torch.stack([emotion_loss.detach().float(), adversary_loss.detach().float()])
        self._loss_parts = parts if self._loss_parts is None else self._loss_parts + parts
        self._loss_parts_batches += 1

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        """`Trainer.log`; a training log of a run with a corpus adversary also gives the two parts of its ``loss``,
        each a mean over the batches since the last log (of every process): ``emotion_loss``, the classifier's, and
        ``corpus_adversary_loss``, the adversary's (near ``ln`` of the number of corpora when it cannot tell them
        apart)."""
        if "loss" in logs and self._loss_parts is not None:
            parts = self.accelerator.gather(self._loss_parts[None]).mean(dim=0) / self._loss_parts_batches
            logs = {
                **logs,
                "emotion_loss": round(parts[0].item(), 4),
                "corpus_adversary_loss": round(parts[1].item(), 4),
            }
            self._loss_parts, self._loss_parts_batches = None, 0
        super().log(logs, start_time)

    def _keep_projection(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        if module.training:
            self._projections.append(output)

    def adversarial_loss(
        self, model: nn.Module, projections: Sequence[torch.Tensor], corpus_labels: torch.Tensor
    ) -> torch.Tensor:
        """The corpus adversary's loss on the batch's projections (the forward pass's one), its reversed gradient
        scaled by ``corpus_adversarial_weight`` on Ganin and Lempitsky's schedule."""
        if len(projections) != 1 or projections[0].dim() != 2:
            shapes = ", ".join(str(tuple(value.shape)) for value in projections) or "none"
            raise ValueError(
                "corpus_adversarial_weight reads one projection of each clip per training step, (batch, width); "
                f"the projector gave {shapes}."
            )
        progress = self.state.global_step / self.state.max_steps if self.state.max_steps else 0.0
        adversary = getattr(self.accelerator.unwrap_model(model), ADVERSARY_ATTRIBUTE)
        return adversary(
            projections[0],
            corpus_labels.to(projections[0].device),
            reversal_scale(self.corpus_adversarial_weight, progress),
        )

    def _cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(
            logits.float(),
            labels,
            weight=self._class_weights_on(logits.device),
            label_smoothing=self.args.label_smoothing_factor,
        )

    def mixup_lambda(self) -> float:
        """The weight of a batch's own clips in its mix, drawn from ``Beta(mixup_alpha, mixup_alpha)`` with torch's
        global generator (seeded by `Trainer` through ``set_seed``)."""
        alpha = torch.tensor(float(self.mixup_alpha))
        return float(torch.distributions.Beta(alpha, alpha).sample())

    def mixup(self, inputs: dict[str, Any]) -> tuple[dict[str, Any], torch.Tensor, float]:
        """Mixup (Zhang et al., 2018) of a training batch: its ``input_features`` become ``lam * features + (1 - lam)
        * features[order]`` for a random ``order`` of the batch and ``lam`` from :meth:`mixup_lambda`. Returns the
        mixed inputs, the order and ``lam``; the recipe allows it only for fixed-size inputs, where no padding or
        attention mask is mixed."""
        if MIXUP_INPUT_KEY not in inputs:
            raise ValueError(
                f"mixup_alpha is set, but the batch has no {MIXUP_INPUT_KEY} to mix (keys: {', '.join(inputs)})."
            )
        features = inputs[MIXUP_INPUT_KEY]
        lam = self.mixup_lambda()
        order = torch.randperm(features.shape[0]).to(features.device)
        mixed = {**inputs, MIXUP_INPUT_KEY: lam * features + (1 - lam) * features[order]}
        return mixed, order, lam

    def _keep_training_loss(
        self, loss: torch.Tensor, inputs: Mapping[str, Any], paths: Optional[Sequence[str]]
    ) -> None:
        """A non-finite loss stops the run, naming the step and the batch's clips, instead of being left out of the
        logs while the weights turn to NaN. Testing a device tensor makes the host wait for the device, so on an
        accelerator the losses (and which input rows are not finite) stay there until `NonFiniteLossCallback` checks
        them all at once, when Trainer waits anyway (logging, evaluation, saving); on CPU each is checked at once."""
        defer = getattr(self.args, "defer_loss_check", None)  # plain TrainingArguments have no such field
        if defer is None:
            defer = loss.device.type != "cpu"
        if not defer and bool(torch.isfinite(loss)):
            return
        self._training_losses.append(
            _TrainingLoss(
                self.state.global_step + 1, self.state.epoch or 0.0, paths, loss.detach(), _non_finite_rows(inputs)
            )
        )
        if not defer:
            self.check_training_losses()

    def check_training_losses(self) -> None:
        """Raise `NonFiniteLossError` for the first kept training loss that is NaN or infinite (one host-device
        sync for all of them), and forget them."""
        if not self._training_losses:
            return
        kept, self._training_losses = self._training_losses, []
        finite = torch.isfinite(torch.stack([record.loss.float() for record in kept])).cpu()
        if bool(finite.all()):
            return
        raise NonFiniteLossError(self._describe_non_finite_loss(kept[int((~finite).nonzero()[0, 0])]))

    @staticmethod
    def _describe_non_finite_loss(record: _TrainingLoss) -> str:
        clips = list(record.paths) if record.paths is not None else []
        where = (
            f"The training loss is {record.loss.item()} at step {record.step} (epoch {record.epoch:.2f}), in a "
            f"batch of {len(clips) or 'unnamed'} clips{': ' if clips else ''}{', '.join(clips)}."
        )
        for name, bad_rows in record.bad_rows.items():
            rows = bad_rows.nonzero()[:, 0].tolist()
            if rows:
                culprits = [clips[i] if i < len(clips) else f"row {i}" for i in rows]
                return f"{where} Its {name} hold NaN or infinite values for: {', '.join(culprits)}."
        return (
            f"{where} Its inputs are finite, so training diverged: lower learning_rate, set max_grad_norm, or "
            "use bf16 rather than fp16."
        )

    def _class_weights_on(self, device: torch.device) -> Optional[torch.Tensor]:
        """The float32 class weights on ``device``, copied there once rather than at every step (on a GPU each copy
        from host memory would wait for the queued kernels)."""
        if self.class_weights is None:
            return None
        if self._device_class_weights is None or self._device_class_weights.device != device:
            self._device_class_weights = self.class_weights.to(device=device, dtype=torch.float32)
        return self._device_class_weights

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
            raise ValueError(
                "head_learning_rate is set, but the model has no head parameters to train "
                f"(expected names starting with {', '.join(HEAD_PARAMETER_PREFIXES)})."
            )
        parameter_groups = [
            {
                "params": params,
                "lr": self.head_learning_rate if is_head else self.args.learning_rate,
                "weight_decay": self.args.weight_decay if decays else 0.0,
            }
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
            pct_start=one_cycle_warmup_share(warmup, num_training_steps),
            anneal_strategy="cos",
        )
        self._created_lr_scheduler = True
        return self.lr_scheduler


def one_cycle_warmup_share(warmup_steps: int, total_steps: int) -> float:
    """OneCycleLR's ``pct_start`` for ``warmup_steps`` of warm-up (none: 30 %, torch's default). Its learning rate
    peaks at step ``pct_start * total_steps - 1`` and torch divides by the length of both phases, so neither may be
    empty: a one-step warm-up (peak at step 0) divides by zero, and ends half a step later instead."""
    if not warmup_steps:
        return 0.3
    peak = max(warmup_steps - 1, 0.5)
    return min((peak + 1) / total_steps, 0.999)


def is_head_parameter(name: str) -> bool:
    """Whether a parameter (named as by ``named_parameters``, possibly under a peft wrapper) belongs to the head."""
    parts = name.split(".")
    # peft wraps the model (base_model.model.<name>) and saves head copies under modules_to_save.
    while parts and parts[0] in ("base_model", "model"):
        parts = parts[1:]
    return bool(parts) and parts[0] in HEAD_PARAMETER_PREFIXES


__all__ = [
    "CLIP_PATHS_KEY",
    "EpochCallback",
    "HEAD_PARAMETER_PREFIXES",
    "LogsAtDebugCallback",
    "MetricsInBarCallback",
    "NonFiniteLossCallback",
    "NonFiniteLossError",
    "SERTrainer",
    "class_weights_tensor",
    "is_head_parameter",
    "metrics_function",
    "quiet_log_callbacks",
]
