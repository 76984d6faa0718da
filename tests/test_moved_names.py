"""Names that moved in issue 32's restructuring still import from where they were: the modules the deploy stage
replaced (ser_hf.predict, ser_hf.timeline, ser_hf.app, ser_hf.audio_inputs, ser_hf.predict_constants,
ser_hf.export.onnx, ser_hf.export.onnx_runtime), evaluate_model's reports (now eval_report and cross_corpus) and FAST
mode's encoding (now encoder_states) give the same object, with a DeprecationWarning naming where it lives now."""

from __future__ import annotations

import importlib

import pytest

MOVED = [
    ("ser_hf.predict", "classify_files", "ser_hf.deploy.classify"),
    ("ser_hf.predict", "load_classifier", "ser_hf.deploy.pipelines"),
    ("ser_hf.predict", "SpeakerNormalizedAudioClassificationPipeline", "ser_hf.deploy.pipelines"),
    ("ser_hf.predict", "FilePrediction", "ser_hf.deploy.results"),
    ("ser_hf.predict", "read_speakers_csv", "ser_hf.deploy.speakers"),
    ("ser_hf.predict", "window_bounds", "ser_hf.deploy.windows"),
    ("ser_hf.predict", "write_predictions", "ser_hf.deploy.writers"),
    ("ser_hf.predict", "find_audio_inputs", "ser_hf.deploy.audio_inputs"),
    ("ser_hf.predict", "SPEAKER_SOURCES", "ser_hf.deploy.constants"),
    ("ser_hf.predict_constants", "DEFAULT_SMOOTHING", "ser_hf.deploy.constants"),
    ("ser_hf.audio_inputs", "find_audio_inputs", "ser_hf.deploy.audio_inputs"),
    ("ser_hf.timeline", "emotion_timeline", "ser_hf.deploy.timeline"),
    ("ser_hf.timeline", "read_rttm", "ser_hf.deploy.diarization"),
    ("ser_hf.timeline", "VADOptions", "ser_hf.deploy.voice_activity"),
    ("ser_hf.app", "build_app", "ser_hf.deploy.app"),
    ("ser_hf.app", "model_from_environment", "ser_hf.space_app"),
    ("ser_hf.export.onnx", "export_onnx", "ser_hf.deploy.onnx_export"),
    ("ser_hf.export.onnx_runtime", "OnnxModelForAudioClassification", "ser_hf.models.onnx_runtime"),
    ("ser_hf.export.onnx_runtime", "onnx_audio_classification_pipeline", "ser_hf.deploy.pipelines"),
    ("ser_hf.evaluation.evaluate_model", "corpora_names", "ser_hf.evaluation.eval_report"),
    ("ser_hf.evaluation.evaluate_model", "cross_corpus_matrix", "ser_hf.evaluation.cross_corpus"),
    ("ser_hf.inputs.fast_mode", "first_conv_layer_per_clip", "ser_hf.inputs.encoder_states"),
    ("ser_hf.inputs.fast_mode", "ENCODER_CACHE_VERSION", "ser_hf.inputs.encoder_states"),
    ("ser_hf.train", "where_the_run_is", "ser_hf.training.run_recipe"),
    ("ser_hf.train", "setup_logging", "ser_hf.training.run_recipe"),
]


@pytest.mark.parametrize("old, name, new", MOVED)
def test_an_old_import_path_still_works_with_a_deprecation_warning(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(
        DeprecationWarning, match=rf"{old} is deprecated and will be removed: import {name} from {new}\."
    ):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)


def test_a_name_the_old_module_never_had_is_still_an_attribute_error():
    import ser_hf.predict

    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        ser_hf.predict.no_such_name  # noqa: B018
