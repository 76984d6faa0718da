"""The openSMILE baseline's inputs: every clip's functionals computed once for the whole corpus, before it is split
(:func:`~ser_hf.inputs.speaker_normalization.compute_functionals_once`), then standardised batch by batch by the
model's feature extractor (:class:`~ser_hf.inputs.collators.FunctionalsCollator`)."""

from __future__ import annotations

from datasets import Dataset, DatasetDict

from ..models.runtime.baselines import default_feature_extractor
from .base import InputMode
from .collators import FunctionalsCollator
from .speaker_normalization import (
    FUNCTIONALS_COLUMN,
    compute_functionals_once,
    drop_clips_too_short_for_functionals,
)

#: The model type whose inputs are openSMILE functionals.
FUNCTIONALS_MODEL_TYPE = "opensmile"


class FunctionalsMode(InputMode):
    """One vector of openSMILE functionals per clip, in the ``functionals`` column."""

    name = "openSMILE functionals"
    columns = (FUNCTIONALS_COLUMN,)
    preparation = "computing the openSMILE functionals once per clip"

    def _prepare_corpus(self, dataset: Dataset, training_args) -> Dataset:
        extractor_class = type(default_feature_extractor(self.model_args.model_type))
        feature_extractor = extractor_class(**self.model_args.feature_extractor_config)
        return self._functionals(dataset, feature_extractor)

    def fold_inputs(self, model, feature_extractor, splits: DatasetDict, training_args) -> DatasetDict:
        # A corpus not prepared (prepare_corpus) gets its splits' functionals here: the same values, cached per split.
        splits = DatasetDict({name: self._functionals(split, feature_extractor) for name, split in splits.items()})
        return super().fold_inputs(model, feature_extractor, splits, training_args)

    def _functionals(self, dataset: Dataset, feature_extractor) -> Dataset:
        """The clips' functionals; clips too short for any (all NaN) stop the run, naming them, or are dropped with
        ``skip_invalid``."""
        if FUNCTIONALS_COLUMN not in dataset.column_names:
            dataset = drop_clips_too_short_for_functionals(
                dataset,
                feature_extractor.feature_set,
                feature_extractor.sampling_rate,
                skip_invalid=self.data_args.skip_invalid,
            )
        return compute_functionals_once(dataset, feature_extractor, num_proc=self.data_args.preprocessing_num_workers)

    def collators(self, feature_extractor, inputs, training_args, normalization=None, extra_columns=()):
        return (
            FunctionalsCollator(feature_extractor, normalization=normalization, extra_columns=extra_columns),
            FunctionalsCollator(feature_extractor, normalization=normalization),
        )


__all__ = ["FUNCTIONALS_MODEL_TYPE", "FunctionalsMode"]
