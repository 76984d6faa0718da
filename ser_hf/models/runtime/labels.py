"""The `id2label` / `label2id` maps a classifier is built with, from a `datasets.ClassLabel` or label names."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

from datasets import ClassLabel

Labels = Union[ClassLabel, Sequence[str]]


def label_maps(
    labels: Optional[Labels] = None,
    id2label: Optional[Mapping[int, str]] = None,
    label2id: Optional[Mapping[str, int]] = None,
) -> tuple[dict[int, str], dict[str, int]]:
    """Return consistent `(id2label, label2id)` maps.

    Args:
        labels (`datasets.ClassLabel` or `Sequence[str]`, *optional*):
            The label feature of the training set (`dataset.features["label"]`) or the label names in id order.
        id2label (`Mapping[int, str]`, *optional*):
            Explicit id to name map, instead of `labels`.
        label2id (`Mapping[str, int]`, *optional*):
            Explicit name to id map; derived from `id2label` when omitted.

    Raises:
        `ValueError`: when no labels are given, names repeat, ids are not `0..n-1`, or the maps disagree.
    """
    if labels is not None:
        if id2label is not None or label2id is not None:
            raise ValueError("Pass either labels (a ClassLabel or names) or id2label/label2id, not both.")
        if isinstance(labels, str):
            raise ValueError("labels must be a sequence of label names, not a single string.")
        names = list(labels.names) if isinstance(labels, ClassLabel) else list(labels)
        id2label = dict(enumerate(names))
    elif id2label is None and label2id is not None:
        id2label = {int(index): name for name, index in label2id.items()}
    if not id2label:
        raise ValueError("A classifier needs labels: pass a ClassLabel, a list of label names, or id2label.")

    id2label = {int(index): str(name) for index, name in id2label.items()}
    if sorted(id2label) != list(range(len(id2label))):
        raise ValueError(f"Label ids must be 0..{len(id2label) - 1}, got {sorted(id2label)}.")
    if len(set(id2label.values())) != len(id2label):
        raise ValueError(f"Label names must be unique, got {list(id2label.values())}.")
    derived = {name: index for index, name in id2label.items()}
    if label2id is not None and {str(k): int(v) for k, v in label2id.items()} != derived:
        raise ValueError(f"label2id {dict(label2id)} does not invert id2label {id2label}.")
    return id2label, derived


__all__ = ["label_maps"]
