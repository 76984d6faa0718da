"""Domain-adversarial training across the training corpora (``corpus_adversarial_weight``).

A model trained on several corpora can tell them apart by their recording set-up (room, microphone, language, the
actors' style) as well as by emotion, and what tells one corpus from another does not carry over to recordings from
none of them. Domain-adversarial training (Ganin and Lempitsky, "Unsupervised Domain Adaptation by Backpropagation",
ICML 2015; for speech emotion, Abdelwahab and Busso, IEEE/ACM TASLP 2018) adds a second classifier, which guesses
each training clip's corpus from the head's projection of it, behind a *gradient reversal layer*: the adversary
learns to tell the corpora apart, and the reversed gradient trains the projection to make that impossible, so the
emotion classifier reads what the corpora share. Only the training corpora are read (domain generalisation, no
clip of the corpus the model is later used on), so a model for single clips can use it too.

The adversary (a two-layer perceptron on the projection) exists during training only: it is part of what `Trainer`
checkpoints (so an interrupted run resumes with it), never of the saved model. Its loss is the cross entropy of the
corpus labels, each corpus weighted by the inverse of its share of the batch's clips, and it enters the training
loss at full weight while the reversed gradient is scaled by ``corpus_adversarial_weight`` times Ganin and
Lempitsky's schedule, ``2 / (1 + exp(-10 p)) - 1`` for the share ``p`` of training done: 0 at the start, when the
projection means nothing yet, rising to the weight.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from ..data.dataset_info import column_values
from ..errors import RecipeError

#: The batch key of each training clip's corpus index (the position of its corpus in the sorted training corpora).
CORPUS_LABELS_KEY = "corpus_labels"

#: The trained model's attribute that holds the adversary: a head parameter (``head_learning_rate``), checkpointed
#: with the model that `Trainer` trains, absent from the saved classifier.
ADVERSARY_ATTRIBUTE = "corpus_adversary"


class GradientReversal(torch.autograd.Function):
    """The identity forward; backward, the gradient multiplied by ``-scale``."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.scale * grad_output, None


def reversal_scale(weight: float, progress: float) -> float:
    """The reversed gradient's scale after the share `progress` (0 to 1) of training: `weight` times Ganin and
    Lempitsky's ramp ``2 / (1 + exp(-10 p)) - 1``."""
    progress = min(max(progress, 0.0), 1.0)
    return weight * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


class CorpusAdversary(nn.Module):
    """A classifier of the training corpus from the head's projection of each clip, behind a gradient reversal
    layer.

    Args:
        input_size (`int`): the width of the projection (the model's ``classifier_proj_size``).
        num_corpora (`int`): the training corpora, two or more.
    """

    def __init__(self, input_size: int, num_corpora: int):
        super().__init__()
        if num_corpora < 2:
            raise ValueError(f"A corpus adversary needs two training corpora or more, got {num_corpora}.")
        self.layers = nn.Sequential(nn.Linear(input_size, input_size), nn.ReLU(), nn.Linear(input_size, num_corpora))

    def forward(self, projected: torch.Tensor, corpus_labels: torch.Tensor, scale: float) -> torch.Tensor:
        """The adversary's loss on `projected` `(batch, input_size)` for the clips' `corpus_labels` `(batch,)`, each
        corpus weighted by the inverse of its share of the batch; the gradient reaching `projected` is reversed and
        multiplied by `scale`."""
        logits = self.layers(GradientReversal.apply(projected, scale)).float()
        counts = torch.bincount(corpus_labels, minlength=logits.shape[-1]).to(logits.dtype)
        weights = len(corpus_labels) / (logits.shape[-1] * counts.clamp(min=1))
        return nn.functional.cross_entropy(logits, corpus_labels, weight=weights)


def adversary_corpora(train, weight: float) -> list[str]:
    """The corpora of a training split (its ``corpus`` column), sorted: the classes of the adversary that
    ``corpus_adversarial_weight: weight`` trains. Fewer than two stop the run, naming them."""
    corpora = sorted(set(column_values(train, "corpus"))) if "corpus" in train.column_names else []
    if len(corpora) < 2:
        raise RecipeError(
            f"corpus_adversarial_weight: {weight:g} trains the model to hide which training corpus each clip comes "
            f"from, but the training split holds {len(corpora)} corpus ({', '.join(corpora) or 'no corpus column'}):"
            " train on two corpora or more (corpus: [ravdess, tess, ...]), or leave it at 0."
        )
    return corpora


class CorpusLabelsCollator:
    """A training collator whose batches also hold each clip's corpus index (:data:`CORPUS_LABELS_KEY`), from the
    rows' ``corpus`` column.

    Args:
        collator (`Callable`): the mode's training collator.
        corpora (`Sequence[str]`): the training corpora, in the adversary's order.
    """

    def __init__(self, collator: Callable[[list[dict[str, Any]]], dict[str, Any]], corpora: Sequence[str]):
        self.collator = collator
        self.index = {name: position for position, name in enumerate(corpora)}

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(rows)
        try:
            labels = [self.index[str(row["corpus"])] for row in rows]
        except KeyError as error:
            raise ValueError(
                f"corpus_adversarial_weight: a training clip's corpus {error.args[0]!r} is none of the training "
                f"corpora {sorted(self.index)}."
            ) from None
        batch[CORPUS_LABELS_KEY] = torch.tensor(labels, dtype=torch.long)
        return batch


def attach_corpus_adversary(trained_model: nn.Module, corpora: Sequence[str]) -> CorpusAdversary:
    """Give the model `Trainer` trains (FAST mode's head, the top layers' model) a :class:`CorpusAdversary` on its
    projector's output, as the attribute :data:`ADVERSARY_ATTRIBUTE`."""
    projector: Optional[nn.Module] = getattr(trained_model, "projector", None)
    if not isinstance(projector, nn.Linear):
        raise ValueError(
            f"corpus_adversarial_weight reads the head's projection of each clip; {type(trained_model).__name__} "
            "has no linear projector (FAST mode's head and the top layers' model have one)."
        )
    adversary = CorpusAdversary(projector.out_features, len(corpora)).to(projector.weight.device)
    setattr(trained_model, ADVERSARY_ATTRIBUTE, adversary)
    return adversary


__all__ = [
    "ADVERSARY_ATTRIBUTE",
    "CORPUS_LABELS_KEY",
    "CorpusAdversary",
    "CorpusLabelsCollator",
    "GradientReversal",
    "attach_corpus_adversary",
    "adversary_corpora",
    "reversal_scale",
]
