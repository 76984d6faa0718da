"""Fine-tuned top layers with speaker statistics, end to end on a few real RAVDESS clips with tiny Whisper models
(statistics recomputed as the layers train, their resume), and a recipe value the checkpoint's config refuses. Apart
from tests/training/test_train.py so that the test suite's workers share the training runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser_hf.data.decode import decode_waveform
from ser_hf.errors import RecipeError
from ser_hf.train import main
from tests.conftest_models import TINY_WHISPER
from tests.recipe.test_parser import write_recipe
from tests.training.test_train import TINY_MODELS, _train_uninterrupted_and_interrupted


def test_a_model_config_value_the_checkpoint_cannot_take_stops_the_run_in_one_line(
    tmp_path, tiny_ravdess, monkeypatch
):
    """A recipe value the checkpoint's own config refuses (a layer a 2-layer encoder lacks) is a RecipeError naming
    the checkpoint and the value, found from the checkpoint's config before the corpus is decoded, not a traceback;
    a value it takes once the recipe's own keys are applied (``pooled_layers`` with the recipe's
    ``use_weighted_layer_sum: true`` on an encoder saved without it) is not refused."""
    from ser_hf.training import data_stage
    from tests.conftest_models import tiny_whisper_fast

    class Decoding(Exception):
        pass

    def decoding(*args, **kwargs):
        raise Decoding

    monkeypatch.setattr(data_stage, "load_dataset_from_args", decoding)

    model, feature_extractor = tiny_whisper_fast()
    model.config.use_weighted_layer_sum = False  # a plain encoder's config: the recipe asks for the layer sum
    model.save_pretrained(tmp_path / "checkpoint")
    feature_extractor.save_pretrained(tmp_path / "checkpoint")
    values = dict(
        TINY_MODELS["whisper-fast-speaker"], model_name_or_path=str(tmp_path / "checkpoint"), reinitialize_head=True
    )
    values.update(pooling_mode="layer_statistics", model_config={"pooled_layers": [1, 5]})
    with pytest.raises(RecipeError, match=r"checkpoint: pooled_layers must list distinct layers between 0 .* and 2 "):
        main([str(write_recipe(tmp_path / "r.yaml", tiny_ravdess, **values))])
    values["model_config"] = {"pooled_layers": [1, 2]}
    with pytest.raises(Decoding):
        main([str(write_recipe(tmp_path / "r.yaml", tiny_ravdess, **values))])


def test_speaker_statistics_of_fine_tuned_top_layers_are_the_saved_models_own(tmp_path, tiny_ravdess, monkeypatch):
    """Speaker normalisation with the top layer fine-tuned: every speaker's statistics (test speaker included) and
    the saved global ones are, when training ends, those the saved model computes from the audio (as `ser-hf
    evaluate` does), not the pretrained layer's cached ones."""
    from datasets import Dataset

    from ser_hf.data.decode import WAVEFORM_COLUMN
    from ser_hf.evaluation.evaluate_model import load_trained_model
    from ser_hf.inputs.speaker_normalization import speaker_statistics
    from ser_hf.training import train_stage

    plans = []
    fit_normalization = train_stage.fit_normalization

    def recording_fit(feature_extractor, splits):
        plan = fit_normalization(feature_extractor, splits)
        plans.append((plan, {group: value[0].copy() for group, value in plan.speaker_statistics.items()}))
        return plan

    monkeypatch.setattr(train_stage, "fit_normalization", recording_fit)
    values = dict(
        TINY_MODELS["whisper-top-layer"],
        feature_extractor_config={"normalization": "speaker"},
        cache_precision="float32",
        max_duration_seconds=None,
    )
    (report,) = main([str(write_recipe(tmp_path / "r.yaml", tiny_ravdess, **values))])
    assert report.normalization["mode"] == "speaker"
    ((plan, pretrained_means),) = plans
    assert sorted(plan.speaker_statistics) == ["01", "02", "03", "04"]

    trained = load_trained_model(str(tmp_path / "run"))
    paths = {actor: sorted((tiny_ravdess / f"Actor_{actor}").glob("*.flac")) for actor in plan.speaker_statistics}
    clips = Dataset.from_dict(
        {
            WAVEFORM_COLUMN: [decode_waveform(str(path), 16000) for actor in paths for path in paths[actor]],
            "speaker_id": [actor for actor in paths for _ in paths[actor]],
        }
    )
    saved = {
        speaker: statistics.statistics(trained.feature_extractor.variance_floor)
        for speaker, statistics in speaker_statistics(trained.feature_extractor, clips, trained.model).items()
    }
    hidden = TINY_WHISPER["d_model"]
    top_layer = slice(2 * 2 * hidden, 3 * 2 * hidden)  # the statistics of the last of the 2 layers (after embeddings)
    for speaker, (mean, std) in plan.speaker_statistics.items():
        np.testing.assert_allclose(mean, saved[speaker][0], atol=2e-4)
        np.testing.assert_allclose(std, saved[speaker][1], atol=2e-4)
        # The fine-tuned layer's statistics moved away from the pretrained ones the run began with.
        assert np.abs(pretrained_means[speaker][top_layer] - mean[top_layer]).max() > 1e-2
    # The saved extractor's global statistics (a single clip's fallback): the training speakers' clips together.
    training = clips.filter(lambda row: row["speaker_id"] in ("01", "02")).map(lambda _: {"speaker_id": "train"})
    (together,) = speaker_statistics(trained.feature_extractor, training, trained.model).values()
    np.testing.assert_allclose(trained.feature_extractor.global_statistics()[0], together.statistics()[0], atol=2e-4)


@pytest.mark.slow
def test_speaker_statistics_of_fine_tuned_top_layers_resume_at_an_epoch_end_to_the_same_weights(
    tmp_path, tiny_ravdess, monkeypatch
):
    """The speaker statistics are recomputed at each epoch's start: a run interrupted in its second epoch resumes
    from the first epoch's checkpoint (4 steps of 4 clips), recomputes them with the same weights the uninterrupted
    run had there, and ends with its weights."""
    values = dict(
        TINY_MODELS["whisper-top-layer"],
        feature_extractor_config={"normalization": "speaker"},
        max_steps=8,
        save_steps=4,
        eval_steps=4,
        save_total_limit=None,
        load_best_model_at_end=False,
    )
    report = _train_uninterrupted_and_interrupted(tmp_path, tiny_ravdess, monkeypatch, values, at=6)
    assert report.training.resumed_from.endswith("checkpoint-4")
    saved = [json.loads((tmp_path / run / "preprocessor_config.json").read_text()) for run in ("a", "b")]
    np.testing.assert_allclose(saved[0]["feature_mean"], saved[1]["feature_mean"], atol=1e-6)
