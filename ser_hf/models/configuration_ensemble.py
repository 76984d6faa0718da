"""Configuration of an ensemble: several trained classifiers of the same labels whose probabilities are averaged."""

from __future__ import annotations

import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class EnsembleConfig(PreTrainedConfig):
    r"""Configuration of [`EnsembleForAudioClassification`].

    Args:
        members (`list[dict]`):
            The config of every member model, as its `config.json` holds it (`model_type` included); each member's
            `id2label` must equal the ensemble's.
        member_names (`list[str]`, *optional*):
            A name per member (the run folder it came from), for reports; `member_0`, `member_1`, ... by default.
        member_weights (`list[float]`, *optional*):
            The weight of each member's probabilities in the average; equal weights by default.
    """

    model_type = "ser_ensemble"

    members: list[dict] | tuple[dict, ...] = ()
    member_names: list[str] | tuple[str, ...] | None = None
    member_weights: list[float] | tuple[float, ...] | None = None

    def __post_init__(self, **kwargs):
        self.members = [
            member.to_dict() if isinstance(member, PreTrainedConfig) else dict(member) for member in self.members
        ]
        if self.member_names is None:
            self.member_names = [f"member_{index}" for index in range(len(self.members))]
        if self.member_weights is None and self.members:
            self.member_weights = [1.0 / len(self.members)] * len(self.members)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Part of `@strict`-powered validation."""
        if not self.members:
            return  # the empty config transformers builds to read defaults
        if any("model_type" not in member for member in self.members):
            raise ValueError("Every ensemble member's config must hold its model_type.")
        if len(self.member_names) != len(self.members) or len(self.member_weights) != len(self.members):
            raise ValueError(
                f"An ensemble of {len(self.members)} members needs as many member_names and member_weights; got "
                f"{len(self.member_names)} and {len(self.member_weights)}."
            )
        if any(not math.isfinite(weight) or weight <= 0 for weight in self.member_weights):
            raise ValueError(f"member_weights must be positive; got {list(self.member_weights)}.")


__all__ = ["EnsembleConfig"]
