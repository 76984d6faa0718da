"""Trainable and total parameter counts of a model, for every freezing or LoRA configuration."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParameterCount:
    """Parameters a model holds and how many of them an optimizer would update.

    Attributes:
        trainable (`int`): Parameters with `requires_grad=True`.
        total (`int`): All parameters the model holds. For a peft model this includes the adapters and the frozen
            originals of the modules it trains in full (`modules_to_save`), as `PeftModel.get_nb_trainable_parameters`
            counts them.
    """

    trainable: int
    total: int

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (
            f"trainable params: {self.trainable:,} || all params: {self.total:,} "
            f"|| trainable%: {100 * self.trainable_fraction:.4f}"
        )


def count_parameters(model: nn.Module) -> ParameterCount:
    """Count the trainable and total parameters of `model` (a transformers, peft or plain torch module).

    Parameters shared between modules (tied weights) are counted once.
    """
    trainable = total = 0
    for parameter in model.parameters():  # `parameters()` yields each shared parameter once
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return ParameterCount(trainable=trainable, total=total)


__all__ = ["ParameterCount", "count_parameters"]
