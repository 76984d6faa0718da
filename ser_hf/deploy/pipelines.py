"""The ``audio-classification`` pipelines ser-hf classifies with: transformers' own, one whose inputs may carry their
speaker's statistics (a model standardised per speaker or per corpus), and one that runs an ONNX export in
onnxruntime; :func:`load_classifier` builds the right one for a model folder, Hub id or export."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch
from transformers import AudioClassificationPipeline

from .speakers import normalises_per_corpus, normalises_per_speaker


class SpeakerNormalizedAudioClassificationPipeline(AudioClassificationPipeline):
    """``pipeline("audio-classification")`` whose inputs may carry their speaker's statistics,
    ``{"raw": waveform, "sampling_rate": rate, "speaker_statistics": (mean, std)}``, for a feature extractor that
    standardises per speaker. The stock pipeline hands its feature extractor the audio alone, which then standardises
    it with the training speakers' global statistics. Inputs without statistics are handled as the stock pipeline
    does. Build it with ``pipeline("audio-classification", model=..., pipeline_class=...)``."""

    def preprocess(self, inputs):
        statistics = inputs.get("speaker_statistics") if isinstance(inputs, dict) else None
        if statistics is None:
            return super().preprocess(inputs)
        waveform = inputs["raw"] if "raw" in inputs else inputs.get("array")
        if waveform is None or inputs.get("sampling_rate") != self.feature_extractor.sampling_rate:
            raise ValueError(
                f"An input with speaker_statistics needs its audio under 'raw' at the model's rate "
                f"({self.feature_extractor.sampling_rate} Hz), got a sampling_rate of "
                f"{inputs.get('sampling_rate')}."
            )
        if isinstance(waveform, torch.Tensor):
            waveform = waveform.cpu().numpy()
        processed = self.feature_extractor(
            np.asarray(waveform, np.float32),
            sampling_rate=self.feature_extractor.sampling_rate,
            return_tensors="pt",
            speaker_statistics=[statistics],
        )
        return processed if self.dtype is None else processed.to(dtype=self.dtype)


class OnnxAudioClassificationPipeline(SpeakerNormalizedAudioClassificationPipeline):
    """The audio-classification pipeline on an
    :class:`~ser_hf.models.runtime.onnx_runtime.OnnxModelForAudioClassification` (it also takes the per-speaker
    statistics of a speaker-normalising extractor)."""

    def check_model_type(self, supported_models):
        """The ONNX model stands for the torch model it was exported from, whose class transformers' list of audio
        classifiers names; its own class is not on that list."""


def load_classifier(
    model,
    feature_extractor=None,
    *,
    revision: Optional[str] = None,
    token=None,
    trust_remote_code: bool = False,
    **kwargs,
) -> AudioClassificationPipeline:
    """``pipeline("audio-classification")`` for ``model`` (a loaded model with its ``feature_extractor``, or a folder,
    Hub id, ONNX export or folder of LoRA adapters, loaded by :func:`~ser_hf.models.runtime.loading.load_model`,
    whose errors name what is missing): how ``ser-hf predict``, ``predict --timeline`` and ``ser-hf app`` load a
    model. One that passes each window's speaker statistics on when its feature extractor standardises per speaker or
    per corpus (see :class:`SpeakerNormalizedAudioClassificationPipeline`), and one that runs the graph in onnxruntime
    for an export (:class:`OnnxAudioClassificationPipeline`). Other keyword arguments (``device``, ``batch_size``
    ...) go to ``pipeline``."""
    from transformers import pipeline

    from ..models.runtime.loading import load_model
    from ..models.runtime.onnx_runtime import OnnxModelForAudioClassification

    if isinstance(model, (str, os.PathLike)):
        model, feature_extractor = load_model(
            model,
            revision=revision,
            token=token,
            trust_remote_code=trust_remote_code,
            feature_extractor=feature_extractor,
        )
    if isinstance(model, OnnxModelForAudioClassification):
        return OnnxAudioClassificationPipeline(model=model, feature_extractor=feature_extractor, device="cpu")
    if normalises_per_speaker(feature_extractor) or normalises_per_corpus(feature_extractor):
        kwargs["pipeline_class"] = SpeakerNormalizedAudioClassificationPipeline
    return pipeline("audio-classification", model=model, feature_extractor=feature_extractor, **kwargs)


def onnx_audio_classification_pipeline(folder: str | os.PathLike, feature_extractor, **model_kwargs):
    """``pipeline("audio-classification")`` on an exported folder: the saved feature extractor in Python, the graph
    in onnxruntime (``model_kwargs``: the ``providers``, ``intra_op_num_threads`` and ``trust_remote_code`` of
    :class:`~ser_hf.models.runtime.onnx_runtime.OnnxModelForAudioClassification`)."""
    from ..models.runtime.onnx_runtime import OnnxModelForAudioClassification

    model = OnnxModelForAudioClassification(folder, **model_kwargs)
    return OnnxAudioClassificationPipeline(model=model, feature_extractor=feature_extractor, device="cpu")


def model_labels(classifier) -> list[str]:
    """The pipeline's model's labels, in class-id order."""
    id2label = classifier.model.config.id2label
    return [id2label[i] for i in range(len(id2label))]


__all__ = [
    "OnnxAudioClassificationPipeline",
    "SpeakerNormalizedAudioClassificationPipeline",
    "load_classifier",
    "model_labels",
    "onnx_audio_classification_pipeline",
]
