"""Whether a model's outputs for a clip depend on the padding a batch adds: the one rule training's caches,
``ser-hf evaluate``, ``ser-hf predict``, the timeline and ``ser-hf embed`` batch by."""

from __future__ import annotations

from transformers import Data2VecAudioConfig, PreTrainedModel
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..modeling_ensemble import EnsembleForAudioClassification
from ..modeling_whisper import SerWhisperForAudioClassification


def is_padding_invariant(model: PreTrainedModel, feature_extractor: SequenceFeatureExtractor) -> bool:
    """Whether a clip's outputs are the same in a padded batch as alone (within float tolerance): the baselines, and
    SSL encoders with a layer-norm feature encoder and an attention mask, except data2vec-audio; an ensemble when
    every member is."""
    if isinstance(model, EnsembleForAudioClassification):
        return all(map(is_padding_invariant, model.members, feature_extractor.extractors))
    if isinstance(model, SerWhisperForAudioClassification):
        return True  # every clip is padded to the encoder's whole window, whatever its batch
    # Group norm in the feature encoder normalises over the padded time axis; such encoders get no mask either.
    layer_norm = getattr(model.config, "feat_extract_norm", "layer") == "layer"
    # data2vec-audio zeroes the padding before its first positional convolution only, so later ones read padding.
    # Told by the config, which an ONNX export (another class, see ser_hf.models.runtime.onnx_runtime) shares.
    data2vec = isinstance(model.config, Data2VecAudioConfig)
    return bool(feature_extractor.return_attention_mask) and layer_norm and not data2vec


__all__ = ["is_padding_invariant"]
