"""Using a trained model: the deploy stage.

- :mod:`.pipelines`: the ``audio-classification`` pipelines (transformers' own, speaker-normalised, ONNX) and
  :func:`~.pipelines.load_classifier`, which builds the right one for a folder, Hub id or export;
- :mod:`.windows`: decoding a recording and cutting it into the windows a model classifies;
- :mod:`.speakers`: grouping recordings by speaker and each speaker's statistics (speaker normalisation);
- :mod:`.classify`: classifying files of any length, streamed, with :mod:`.results` their results and
  :mod:`.writers` the CSV/JSON writer; :mod:`.predict`: all of ``ser-hf predict`` in one call;
- :mod:`.timeline`: emotion over time by voice activity; :func:`~.timeline.timeline_files`: all of ``ser-hf predict
  --timeline`` in one call;
- :mod:`.app`: the web app (``ser-hf app``, and a Space through :mod:`ser_hf.space_app`);
- :mod:`.onnx_export`: ``ser-hf export --format onnx`` (running an export is the models stage's
  :mod:`ser_hf.models.runtime.onnx_runtime`);
- :mod:`.audio_inputs` and :mod:`.constants`: what the command line checks before any model loads (no torch).

The names below are imported when first used, so that ``import ser_hf.deploy.constants`` loads no torch.
"""

from ..lazy_exports import lazy_exports

#: Public name -> the module that defines it: the package's one list of its names, from which `__all__` and the
#: lazy imports derive.
_EXPORTS = {
    "FilePrediction": ".results",
    "WindowPrediction": ".results",
    "PredictionWriter": ".writers",
    "write_predictions": ".writers",
    "OnnxAudioClassificationPipeline": ".pipelines",
    "SpeakerNormalizedAudioClassificationPipeline": ".pipelines",
    "load_classifier": ".pipelines",
    "model_labels": ".pipelines",
    "onnx_audio_classification_pipeline": ".pipelines",
    "classify_files": ".classify",
    "PredictionSummary": ".predict",
    "predict_files": ".predict",
    "find_audio_inputs": ".audio_inputs",
    "SPEAKERS_CSV_COLUMNS": ".speakers",
    "normalises_per_corpus": ".speakers",
    "normalises_per_speaker": ".speakers",
    "read_speakers_csv": ".speakers",
    "speaker_statistics_of_files": ".speakers",
    "speakers_from_folders": ".speakers",
    "speakers_of": ".speakers",
    "recording_windows": ".windows",
    "shortest_clip": ".windows",
    "window_bounds": ".windows",
    "SPEAKER_SOURCES": ".constants",
    "Timeline": ".timeline",
    "TimelineSummary": ".timeline",
    "emotion_timeline": ".timeline",
    "timeline_files": ".timeline",
    "export_onnx": ".onnx_export",
    "build_app": ".app",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
