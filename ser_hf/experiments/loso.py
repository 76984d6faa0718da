"""Leave-one-speaker-out accuracy of a recipe: one fold per speaker, that speaker tested by a model trained on all the
others (:func:`~ser_hf.data.splits.leave_one_speaker_out`).

It is :class:`~ser_hf.experiments.kfold.KFold` with a fold per speaker: the recipe's own split dropped,
``split_protocol: loso``, the fold seed as ``split_seed`` (which draws each fold's validation speakers, where the
recipe chooses on them) and as the training ``seed``, every fold trained by one run of the recipe's training sequence,
the folds' test speakers pooled with a speaker-bootstrap interval in the result file. A recipe with
``split_protocol: loso`` runs the same folds under ``ser-hf train``; this protocol adds the result file, its
fingerprint and its refusals (:func:`~ser_hf.experiments.protocol.run_protocol`)::

    run_protocol(LeaveOneSpeakerOut(fold_seed=42), "recipes/ravdess_cnn2d.yaml", "loso.json")
"""

from __future__ import annotations

from typing import Any, Optional

from .kfold import KFold
from .protocol import load_corpora

EXPERIMENT = "loso"


class LeaveOneSpeakerOut(KFold):
    """Leave-one-speaker-out (module docstring).

    Args:
        fold_seed (`int`): the seed of each fold's validation speakers, and the training seed.
        fold_corpus (`str`, *optional*): in a recipe merging corpora, the corpus whose speakers are left out (the
            others train in every fold).
    """

    experiment = EXPERIMENT
    title = "the leave-one-speaker-out protocol"
    sets_how = "one fold per speaker, the fold seed as split and training seed, into the runs' folder"

    def __init__(self, fold_seed: int = 42, fold_corpus: Optional[str] = None):
        super().__init__(folds=0, fold_seed=fold_seed, fold_corpus=fold_corpus)
        self.folds = None
        self.run_suffix = f"-loso-seed{fold_seed}"

    def check(self) -> None:
        """Nothing to check: a corpus of fewer than two speakers is refused by the split itself."""

    def split_values(self) -> dict[str, Any]:
        return {"split_protocol": "loso"}

    def settings(self) -> dict[str, Any]:
        return {"fold_seed": self.fold_seed, "output_dir": str(self.run_dir)}

    def cells(self) -> dict[str, Any]:
        """A fold per speaker of the corpus the folds split."""
        from ..data.dataset_info import column_values

        values = self.values if self.members is None else next(iter(self.members.values()))
        dataset = self.dataset if self.dataset is not None else load_corpora(values)
        trained_only = set(values.get("train_only_corpora") or ())
        corpora = column_values(dataset, "corpus")
        speakers = {s for s, c in zip(column_values(dataset, "speaker_id"), corpora) if c not in trained_only}
        return {f"fold/{fold}": fold for fold in range(len(speakers))}


__all__ = ["LeaveOneSpeakerOut"]
