"""The feature extractor of an ensemble: every member's own extractor, its outputs prefixed with the member's index.

This file is copied next to saved ensembles (``register_for_auto_class``) with the extractor files it imports: it
imports nothing from ser-hf but its siblings.
"""

from __future__ import annotations

from typing import Optional, Sequence

from transformers import Wav2Vec2FeatureExtractor
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

from .feature_extraction_log_mel import LogMelFeatureExtractor
from .feature_extraction_mfcc import MFCCFeatureExtractor
from .feature_extraction_opensmile import OpenSmileFeatureExtractor
from .feature_extraction_whisper import SerWhisperFeatureExtractor

#: The feature extractors an ensemble member can have, by the `feature_extractor_type` its config saves.
MEMBER_FEATURE_EXTRACTORS: dict[str, type[SequenceFeatureExtractor]] = {
    extractor.__name__: extractor
    for extractor in (
        LogMelFeatureExtractor,
        MFCCFeatureExtractor,
        OpenSmileFeatureExtractor,
        SerWhisperFeatureExtractor,
        Wav2Vec2FeatureExtractor,
    )
}


def member_feature_extractor(values: dict) -> SequenceFeatureExtractor:
    """A member's feature extractor from its `preprocessor_config.json` values."""
    values = dict(values)
    name = values.pop("feature_extractor_type", None)
    if name not in MEMBER_FEATURE_EXTRACTORS:
        raise ValueError(
            f"Unknown feature_extractor_type {name!r} of an ensemble member; expected one of "
            f"{', '.join(MEMBER_FEATURE_EXTRACTORS)}."
        )
    return MEMBER_FEATURE_EXTRACTORS[name].from_dict(values)


class EnsembleFeatureExtractor(FeatureExtractionMixin):
    r"""Turns audio into the inputs of every member of an [`EnsembleForAudioClassification`]: each member's own
    extractor runs on the same audio, and its outputs are named with the member's prefix (`member0_input_features`,
    `member1_input_values`, `member1_attention_mask`, ...).

    Args:
        members (`list[dict]`):
            Each member's feature extractor, as its `preprocessor_config.json` holds it (`feature_extractor_type`
            included). They must all take the same sampling rate.
    """

    model_input_names = []

    def __init__(self, members: Sequence[dict] = (), **kwargs):
        super().__init__(**kwargs)
        self.members = [
            member.to_dict() if isinstance(member, FeatureExtractionMixin) else dict(member) for member in members
        ]
        self._extractors = [member_feature_extractor(values) for values in self.members]
        rates = sorted({extractor.sampling_rate for extractor in self._extractors})
        if len(rates) > 1:
            raise ValueError(f"The members' feature extractors take different sampling rates ({rates} Hz).")
        self.sampling_rate = rates[0] if rates else 16000
        self.model_input_names = [
            f"member{index}_{name}"
            for index, extractor in enumerate(self._extractors)
            for name in extractor.model_input_names
        ]

    @property
    def extractors(self) -> list[SequenceFeatureExtractor]:
        """The members' feature extractors, in the ensemble's order."""
        return list(self._extractors)

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_extractors", None)
        output.pop("sampling_rate", None)  # the members'
        output.pop("model_input_names", None)
        output["members"] = [extractor.to_dict() for extractor in self._extractors]
        return output

    def __call__(
        self, raw_speech, sampling_rate: Optional[int] = None, return_tensors: Optional[str] = None, **kwargs
    ) -> BatchFeature:
        """Every member's inputs for `raw_speech` (one clip or a batch), `kwargs` passed to each member's extractor
        (`padding`, `return_attention_mask`, ...)."""
        if kwargs.get("speaker_statistics") is not None:
            raise ValueError(
                "An ensemble's feature extractor takes no speaker_statistics: each member standardises its own "
                "features, and per-speaker statistics are fitted per member (see ser_hf.models.build_ensemble)."
            )
        kwargs.pop("speaker_statistics", None)
        inputs = {}
        for index, extractor in enumerate(self._extractors):
            features = extractor(raw_speech, sampling_rate=sampling_rate, return_tensors=return_tensors, **kwargs)
            inputs.update({f"member{index}_{key}": value for key, value in features.items()})
        return BatchFeature(inputs, tensor_type=return_tensors)


__all__ = ["EnsembleFeatureExtractor", "MEMBER_FEATURE_EXTRACTORS"]
