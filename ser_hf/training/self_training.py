"""Self-training on the test split's unlabelled clips (``self_training_rounds``): a transductive adaptation to the
recordings a model is evaluated on, as corpus and speaker statistics are, which reads their audio but never their
labels.

Each round trains a model from scratch on the training split, predicts the test split, and keeps, for every emotion
the model predicts, the ``self_training_share`` of the clips it predicts it for with the highest probability. The
next round trains from scratch again on the training split and those clips with their *predicted* emotions (the
previous round's clips are not kept: each round picks anew). The last round is the run's model; the rounds before it
leave only their picks, ``self-training-round-N/pseudo_labels.json``, so an interrupted run resumes at the round it
stopped in (within a round, from its last checkpoint). The split's statistics (global, corpus, speaker) are fitted
once on the splits as they are, never on the duplicated clips.

Cross-corpus, it is the classic unsupervised adaptation to a new recording set-up: the training corpora's model
labels the target corpus' clips it is surest of, and learns the target's own version of each emotion from them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import numpy as np
from datasets import Dataset, concatenate_datasets
from scipy.special import softmax

from ..atomic_files import write_text_atomic
from ..errors import RecipeError
from ..run_folder import SELF_TRAINING_ROUND_FOLDER, remove_run_outputs

logger = logging.getLogger("ser_hf")

#: A finished intermediate round's picks, in its folder.
PSEUDO_LABELS_FILE = "pseudo_labels.json"


def round_folder(output_dir: str | Path, round_index: int) -> Path:
    """The folder of intermediate round `round_index` (0-based) of a run (or fold) in `output_dir`."""
    return Path(output_dir) / SELF_TRAINING_ROUND_FOLDER.format(round_index)


def pick_pseudo_labels(logits: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, labels)``: for every class the model predicts, the `share` of the clips it predicts it for (at least
    one) with the highest probability, and those predictions; rows in ascending order."""
    probabilities = softmax(np.asarray(logits, dtype=np.float64), axis=1)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    rows = []
    for label in np.unique(predicted):
        members = np.flatnonzero(predicted == label)
        count = max(1, int(round(share * len(members))))
        rows.extend(members[np.argsort(-confidence[members], kind="stable")[:count]])
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    return rows, predicted[rows]


def with_pseudo_labels(train: Dataset, test: Dataset, rows: np.ndarray, labels: np.ndarray) -> Dataset:
    """The training split and the test split's `rows` with `labels` in place of their own, formatted as `train`."""
    # Unformatted while rows are copied: a numpy-formatted column of 2-D states would not write back as a list.
    picked = test.with_format(None).select(rows.tolist()).remove_columns("label")
    picked = picked.add_column("label", [int(label) for label in labels], feature=train.features["label"])
    merged = concatenate_datasets([train.with_format(None), picked.select_columns(train.column_names)])
    return merged.with_format(
        train.format["type"],
        columns=train.format["columns"],
        output_all_columns=train.format["output_all_columns"],
        **train.format["format_kwargs"],
    )


def read_picks(folder: Path, clips: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """A finished round's ``(rows, labels)``, or `None` when the round has not finished; picks made on another test
    split (another number of clips) are an error."""
    path = folder / PSEUDO_LABELS_FILE
    if not path.is_file():
        return None
    picks = json.loads(path.read_text())
    if picks["test_clips"] != clips:
        raise RecipeError(
            f"{path} holds picks among {picks['test_clips']} test clips, but this split's test split has {clips}: "
            "it comes from another split. Delete the folder (or set overwrite_output_dir) to train the round again."
        )
    logger.info("Self-training: %s finished, reading its %d picks.", folder.name, len(picks["rows"]))
    return np.asarray(picks["rows"], dtype=np.int64), np.asarray(picks["labels"], dtype=np.int64)


def write_picks(folder: Path, rows: np.ndarray, labels: np.ndarray, label_names, test_clips: int) -> None:
    """Record a finished round's picks; the round's checkpoints, no longer needed, are removed (what else is in the
    folder stays)."""
    counts = {label_names[label]: int((labels == label).sum()) for label in np.unique(labels)}
    write_text_atomic(
        folder / PSEUDO_LABELS_FILE,
        json.dumps(
            {"test_clips": test_clips, "rows": rows.tolist(), "labels": labels.tolist(), "per_label": counts}, indent=1
        )
        + "\n",
    )
    remove_run_outputs(folder)  # the round's checkpoints and logs, by ser-hf's own names; links never followed
    logger.info(
        "Self-training: %s picked %d of %d test clips (%s).",
        folder.name,
        len(rows),
        test_clips,
        ", ".join(f"{name} {count}" for name, count in counts.items()),
    )


__all__ = [
    "PSEUDO_LABELS_FILE",
    "pick_pseudo_labels",
    "read_picks",
    "round_folder",
    "with_pseudo_labels",
    "write_picks",
]
