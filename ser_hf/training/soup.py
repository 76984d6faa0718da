"""Model soups (Wortsman et al., 2022, "Model soups: averaging weights of multiple fine-tuned models improves
accuracy without increasing inference time"): a run with ``soup_size`` N trains N models from the same starting
weights, each with its own seed (data order, dropout), and keeps the uniform average of their trained weights. It is
one ordinary model (no ensemble to run at inference), and it is steadier than any one member where a few clips make
each training run's result depend on its seed: ``ser-hf adapt`` uses it (docs/results/adapt/ measures it).

Members share their starting weights (the model built once, with the run's seed): averaging is meant for models
fine-tuned from one start, not for models trained from different random starts. The first member trains as the run's
ordinary trainer (its checkpoints, resumed as any run's); the others train before it, each in ``soup-<i>`` under the
run's folder, and their trained weights are kept there (``soup_member.safetensors``), so that an interrupted run
trains none of them again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic_files import atomic_path
from ..errors import RecipeError
from ..run_folder import SOUP_MEMBER_FOLDER, remove_run_outputs

SOUP_MEMBER_FILE = "soup_member.safetensors"


def member_folder(output_dir: str | os.PathLike, index: int) -> Path:
    """The folder of the soup's member `index` (1 onwards: member 0 is the run itself) under a run's `output_dir`."""
    return Path(output_dir) / SOUP_MEMBER_FOLDER.format(index)


def trained_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of `model`'s trainable weights on the CPU (those a soup averages: a frozen encoder is the same in every
    member), whatever device the model trains on, as the members read back from their files are."""
    return {
        name: value.detach().to("cpu", copy=True) for name, value in model.named_parameters() if value.requires_grad
    }


def load_weights(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    """Copy `weights` (named as :func:`trained_weights` names them) into `model`'s parameters, in place."""
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            parameters[name].copy_(value)


def average_weights(members: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform soup: each weight's mean over `members` (computed in float32, kept in the members' dtype)."""
    if not members:
        raise ValueError("A soup needs one member at least.")
    return {
        name: torch.stack([member[name].float() for member in members]).mean(dim=0).to(value.dtype)
        for name, value in members[0].items()
    }


def read_member(folder: Path) -> Optional[dict[str, torch.Tensor]]:
    """A finished member's trained weights, or None where it has not finished."""
    path = folder / SOUP_MEMBER_FILE
    return load_file(str(path)) if path.is_file() else None


def write_member(folder: Path, weights: Mapping[str, torch.Tensor]) -> None:
    """Keep a finished member's trained weights (written aside and renamed: a half-written file is never read), and
    remove its checkpoints."""
    with atomic_path(folder / SOUP_MEMBER_FILE) as partial:
        save_file({name: value.contiguous() for name, value in weights.items()}, str(partial))
    remove_run_outputs(folder)  # the member's checkpoints and logs, by ser-hf's own names; links never followed


def train_members(
    model: nn.Module,
    size: int,
    output_dir: str | os.PathLike,
    train_member: Callable[[int, Path], bool],
) -> list[dict[str, torch.Tensor]]:
    """Train members 1 to ``size - 1`` of a soup from `model`'s present weights, and return their trained weights;
    `model` is back at its starting weights afterwards, for member 0 (the run's own trainer) to train.

    ``train_member(index, folder)`` trains `model` in place with the member's seed, writing its checkpoints to
    `folder`, and says whether this process keeps the result (the main process of a distributed run). A member
    whose weights `output_dir` already holds is read back, not trained.
    """
    if size <= 1:
        return []
    start = trained_weights(model)
    members = []
    for index in range(1, size):
        folder = member_folder(output_dir, index)
        weights = read_member(folder)
        if weights is not None and set(weights) != set(start):
            raise RecipeError(
                f"{folder / SOUP_MEMBER_FILE} holds weights of another model ({sorted(set(weights) ^ set(start))[:3]} "
                "differ): remove the folder to train the member again."
            )
        if weights is None:
            keep = train_member(index, folder)
            weights = trained_weights(model)
            if keep:
                write_member(folder, weights)
        members.append(weights)
        load_weights(model, start)
    return members


def finish_soup(model: nn.Module, members: Sequence[Mapping[str, torch.Tensor]]) -> None:
    """Replace `model`'s trained weights (member 0, just trained) by the soup of it and `members`; nothing to do
    without members."""
    if members:
        load_weights(model, average_weights([trained_weights(model), *members]))


__all__ = [
    "SOUP_MEMBER_FILE",
    "average_weights",
    "finish_soup",
    "load_weights",
    "member_folder",
    "read_member",
    "train_members",
    "trained_weights",
    "write_member",
]
