"""Fine-tuning the top layers on cached lower layers with augmented copies (``finetune_top_layers: k`` with
``cached_augmented_copies: N``): waveform augmentation that still lets the frozen lower layers run once.

Each clip is encoded once as it is and once per augmented copy (the recipe's waveform augmentation, seeded per clip
and copy as :mod:`.augmented_copies` draws them), each up to the first fine-tuned layer: its pooled statistics of the
frozen layers and its own frames' input to that layer, cached like the clip's own
(:func:`~ser_hf.inputs.augmented_copies.add_augmented_copies`). Every training epoch then reads, for each clip, its
own cached frames or one copy's (drawn from a generator seeded by the seed, the epoch and the clip, so a resumed run
draws what an uninterrupted one would), and the top layers and the head train on them as in
:class:`~ser_hf.inputs.top_layers.TopLayersMode`. Validation, test and the statistics of ``normalization`` (global,
and corpus or speaker statistics refreshed every epoch) read the clips' own states only. Encoding costs ``N + 1``
times the top-layers mode's; an epoch costs what its epoch does (one version of each clip).
"""

from __future__ import annotations

from dataclasses import dataclass

from .augmented_copies import AugmentedCopiesCollator, WithAugmentedCopies
from .top_layers import LowerStatesCollator, TopLayersMode


@dataclass
class LowerStatesCopiesCollator(AugmentedCopiesCollator, LowerStatesCollator):
    """:class:`LowerStatesCollator` for training: each row's pooled states and cached frames are its own or one of its
    `copies` augmented copies', drawn as :class:`AugmentedCopiesCollator` draws them."""


class TopLayersCopiesMode(WithAugmentedCopies, TopLayersMode):
    """:class:`TopLayersMode` whose training clips are drawn among each clip's own cached frames and its augmented
    copies'."""

    name = "top encoder layers fine-tuned on cached lower layers, with augmented copies"
    preparation = "encoding the corpus and its augmented copies once up to the first fine-tuned layer"
    training_collator = LowerStatesCopiesCollator
    evaluation_collator = LowerStatesCollator


__all__ = ["LowerStatesCopiesCollator", "TopLayersCopiesMode"]
