"""What ser-hf records about a dataset (corpus, label policy, skipped clips, split protocol) in its ``DatasetInfo``.

The record is a JSON document in ``DatasetInfo.description``, so it travels with ``select``, ``filter``, ``map``,
``save_to_disk`` and ``load_from_disk`` without any side file.
"""

from __future__ import annotations

import json
from typing import Any

from datasets import Dataset

_KEY = "ser_hf"


def get_ser_info(dataset: Dataset) -> dict[str, Any]:
    """Return the ser-hf record of a dataset (empty when the dataset was not built by ser-hf)."""
    description = dataset.info.description or ""
    try:
        document = json.loads(description)
    except ValueError:
        return {}
    return document.get(_KEY, {}) if isinstance(document, dict) else {}


def set_ser_info(dataset: Dataset, **updates: Any) -> Dataset:
    """Merge ``updates`` into the ser-hf record of ``dataset`` (in place; returns the dataset for chaining)."""
    record = get_ser_info(dataset)
    record.update(updates)
    dataset.info.description = json.dumps({_KEY: record}, indent=1, sort_keys=True)
    return dataset


def column_values(dataset: Dataset, name: str) -> list:
    """A column as a Python list, read through Arrow (``dataset[name]`` formats row by row, far slower)."""
    return dataset.with_format("arrow")[name].to_pylist()
