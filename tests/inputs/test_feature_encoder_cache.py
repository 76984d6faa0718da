"""The frozen feature encoder run once per clip: cached frames give the model's own logits, losses and gradients."""

from __future__ import annotations

import json
import logging
import re
from unittest import mock

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, List, Value
from safetensors.torch import load_file
from transformers import AutoModelForAudioClassification

from ser_hf.errors import RecipeError
from ser_hf.inputs import feature_encoder_cache as feature_cache
from ser_hf.inputs.augment import WaveformAugmentation
from ser_hf.inputs.feature_encoder_cache import (
    FEATURES_COLUMN,
    NUM_SAMPLES_COLUMN,
    FeatureEncoderOutputsCollator,
    accept_feature_encoder_outputs,
    encode_feature_encoder_outputs,
    feature_cache_blockers,
    feature_encoder,
)
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor, ssl_lora_config
from ser_hf.train import main
from tests.conftest_models import LABELS, TINY_SSL, build_tiny, load_clip, tiny_ssl_config
from tests.recipe.test_parser import write_recipe

CLIP_SECONDS = (0.5, 0.2, 0.35, 0.15, 0.4, 0.25)


def clips_dataset(seconds=CLIP_SECONDS) -> Dataset:
    """Real RAVDESS clips of different lengths, as `prepare_audio` leaves them (read as NumPy arrays, as training
    reads them)."""
    return Dataset.from_dict(
        {
            "waveform": [load_clip(index, length) for index, length in enumerate(seconds)],
            "label": [index % LABELS.num_classes for index in range(len(seconds))],
            "path": [f"clip-{index}.wav" for index in range(len(seconds))],
        },
        features=Features({"waveform": List(Value("float32")), "label": LABELS, "path": Value("string")}),
    ).with_format("numpy")


def ssl_model(family: str, feat_extract_norm: str = "layer", **options):
    """A tiny classifier (feature encoder frozen, the default) whose head is initialised at scale 1, so that errors
    show above the tolerance; and its feature extractor."""
    config = tiny_ssl_config(family)
    if family != "data2vec-audio":  # which has no group-norm variant
        config.feat_extract_norm = feat_extract_norm
    torch.manual_seed(0)
    model = build_ssl_classifier(config, LABELS, **options)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.removeprefix("base_model.model.").startswith(("projector", "classifier")):  # peft's prefix
                parameter.normal_()
    return model, build_ssl_feature_extractor(config)


def cached_batch(model, feature_extractor, dataset, tmp_path, batch_size=4):
    encoded = encode_feature_encoder_outputs(
        model, feature_extractor, dataset, batch_size=batch_size, cache_dir=tmp_path
    )
    accept_feature_encoder_outputs(model)
    return FeatureEncoderOutputsCollator()(list(encoded))


def logits_of_each_clip_alone(model, feature_extractor, dataset) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(
            [
                model(**feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")).logits
                for waveform in dataset["waveform"]
            ]
        )


@pytest.mark.parametrize(
    "family, feat_extract_norm, pooling_mode",
    [
        ("wav2vec2", "group", None),  # wav2vec2-base's feature encoder
        ("wav2vec2", "layer", "attentive_statistics"),
        ("hubert", "group", None),
        ("wavlm", "layer", "statistics"),
    ],
)
def test_a_cached_batch_gives_every_clip_its_own_logits(family, feat_extract_norm, pooling_mode, tmp_path):
    model, feature_extractor = ssl_model(family, feat_extract_norm, pooling_mode=pooling_mode)
    model.eval()
    dataset = clips_dataset()

    batch = cached_batch(model, feature_extractor, dataset, tmp_path)

    assert batch["input_values"].shape[:2] == (len(CLIP_SECONDS), model.config.conv_dim[-1])
    assert batch["attention_mask"].sum(dim=1).tolist() == [len(w) for w in dataset["waveform"]]
    with torch.no_grad():
        cached = model(**batch).logits
    alone = logits_of_each_clip_alone(model, feature_extractor, dataset)
    torch.testing.assert_close(cached, alone, atol=1e-5, rtol=1e-5)
    if feat_extract_norm == "group":
        # A raw-audio batch without an attention mask changes every clip with the padding; the cache does not.
        raw = feature_extractor(list(dataset["waveform"]), sampling_rate=16000, padding=True, return_tensors="pt")
        assert "attention_mask" not in raw
        with torch.no_grad():
            assert not torch.allclose(model(**raw).logits, alone, atol=1e-4)


def test_data2vec_audio_gets_what_a_raw_audio_batch_gives(tmp_path):
    # Its stacked positional convolutions read padded frames, so a batch is not exact for it, cached or not: the
    # cache must change nothing of that.
    model, feature_extractor = ssl_model("data2vec-audio")
    model.eval()
    dataset = clips_dataset()
    batch = cached_batch(model, feature_extractor, dataset, tmp_path)
    raw = feature_extractor(list(dataset["waveform"]), sampling_rate=16000, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, model(**raw).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("regime", ["full", "lora"])
def test_a_training_step_on_cached_frames_gets_the_gradients_of_raw_audio(regime, tmp_path):
    options = {"lora_config": ssl_lora_config(r=2, lora_dropout=0.0)} if regime == "lora" else {}
    model, feature_extractor = ssl_model("wav2vec2", "layer", **options)
    model.train()  # dropout is off in the tiny config, so train mode is deterministic
    dataset = clips_dataset()
    labels = torch.tensor(dataset["label"])
    raw = feature_extractor(list(dataset["waveform"]), sampling_rate=16000, padding=True, return_tensors="pt")

    def loss_and_gradients(inputs):
        model.zero_grad()
        loss = model(**{**inputs, "labels": labels}).loss
        loss.backward()
        return loss.detach(), {
            name: parameter.grad.clone() for name, parameter in model.named_parameters() if parameter.requires_grad
        }

    raw_loss, raw_gradients = loss_and_gradients(dict(raw))
    batch = cached_batch(model, feature_extractor, dataset, tmp_path)
    cached_loss, cached_gradients = loss_and_gradients(batch)

    torch.testing.assert_close(cached_loss, raw_loss, atol=1e-5, rtol=1e-5)
    assert raw_gradients.keys() == cached_gradients.keys() and raw_gradients
    if regime == "lora":
        assert any("lora_" in name for name in cached_gradients)
    for name, gradient in raw_gradients.items():
        torch.testing.assert_close(
            cached_gradients[name], gradient, atol=1e-5, rtol=1e-4, msg=lambda error, name=name: f"{name}: {error}"
        )


def test_the_model_still_takes_audio_and_saves_unchanged(tmp_path):
    model, feature_extractor = ssl_model("wav2vec2", "group")
    model.eval()
    dataset = clips_dataset(CLIP_SECONDS[:2])
    before = logits_of_each_clip_alone(model, feature_extractor, dataset)
    keys = list(model.state_dict())

    accept_feature_encoder_outputs(model)
    accept_feature_encoder_outputs(model)  # a second call changes nothing

    torch.testing.assert_close(logits_of_each_clip_alone(model, feature_extractor, dataset), before, atol=0, rtol=0)
    assert list(model.state_dict()) == keys
    with pytest.raises(ValueError, match=r"must be \(batch, 32, frames\); got \(1, 16, 7\)"):
        model(input_values=torch.zeros(1, 16, 7))
    model.save_pretrained(tmp_path / "model")
    feature_extractor.save_pretrained(tmp_path / "model")
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "model").eval()
    assert "forward" not in vars(reloaded.wav2vec2.feature_extractor)
    # The same weights; a reloaded model may pick another attention kernel, so float rounding may differ.
    torch.testing.assert_close(logits_of_each_clip_alone(reloaded, feature_extractor, dataset), before)


class ConvCounter:
    """Counts the clips the feature encoder's last convolution computes."""

    def __init__(self, model):
        self.clips = 0
        feature_encoder(model).conv_layers[-1].register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.clips += output.shape[0]


def test_the_cache_is_read_back_and_recomputed_after_any_change(tmp_path):
    model, feature_extractor = ssl_model("wav2vec2", "group")
    dataset = clips_dataset(CLIP_SECONDS[:3])
    counter = ConvCounter(model)

    def encode(**options):
        clips = counter.clips
        encoded = encode_feature_encoder_outputs(model, feature_extractor, dataset, cache_dir=tmp_path, **options)
        (cache_file,) = {file["filename"] for file in encoded.cache_files if "feature-encoder-" in file["filename"]}
        return encoded, cache_file, counter.clips - clips

    first, first_file, computed = encode()
    assert computed == 3 and first.column_names == ["label", "path", FEATURES_COLUMN, NUM_SAMPLES_COLUMN]
    assert first.format["type"] == "numpy"
    assert list(first["path"]) == list(dataset["path"])
    assert list(first[NUM_SAMPLES_COLUMN]) == [8000, 3200, 5600]
    again, again_file, computed = encode()
    assert (again_file, computed) == (first_file, 0)
    for row, other in zip(first, again):
        np.testing.assert_array_equal(row[FEATURES_COLUMN], other[FEATURES_COLUMN])
    assert encode(load_from_cache=False)[1:] == (first_file, 3)

    # Only the feature encoder is in the key: training the transformer and the head reuses the frames.
    with torch.no_grad():
        model.wav2vec2.encoder.layers[0].feed_forward.output_dense.weight.add_(1.0)
        model.classifier.weight.add_(1.0)
    assert encode()[1:] == (first_file, 0)

    with torch.no_grad():
        model.wav2vec2.feature_extractor.conv_layers[1].conv.weight[0, 0, 0] += 1.0
    changed, changed_file, computed = encode()
    assert changed_file != first_file and computed == 3
    assert not np.allclose(changed[0][FEATURES_COLUMN], first[0][FEATURES_COLUMN])
    feature_extractor.do_normalize = False
    assert encode()[1:] != (changed_file, 0)

    # How the clips were batched does not change their frames (the first layer's group norm runs clip by clip).
    one_by_one = encode(batch_size=1, load_from_cache=False)[0]
    batched = encode(batch_size=3, load_from_cache=False)[0]
    for row, other in zip(one_by_one, batched):
        np.testing.assert_allclose(row[FEATURES_COLUMN], other[FEATURES_COLUMN], atol=1e-5, rtol=1e-5)


def test_what_prevents_caching_is_named(tmp_path):
    dataset = clips_dataset()  # longest clip 0.5 s
    model, _ = ssl_model("wav2vec2")
    assert feature_cache_blockers(model, dataset, 16000) == []
    assert feature_cache_blockers(model, dataset, 16000, max_duration_seconds=0.5) == []  # no clip is cropped
    assert feature_cache_blockers(model, dataset, 16000, max_duration_seconds=0.4) == [
        "training clips up to 0.50 s are cropped to a random 0.4 s window every epoch (max_duration_seconds)"
    ]
    augmentation = WaveformAugmentation(sampling_rate=16000, gain_prob=0.5)
    assert feature_cache_blockers(model, dataset, 16000, waveform_augmentation=augmentation) == [
        "waveform augmentation changes the training clips every epoch"
    ]
    trained, feature_extractor = ssl_model("wav2vec2", freeze_feature_encoder=False)
    (reason,) = feature_cache_blockers(trained, dataset, 16000)
    assert "its feature encoder trains" in reason and "freeze_feature_encoder: false" in reason
    with pytest.raises(ValueError, match="feature encoder trains"):
        encode_feature_encoder_outputs(trained, feature_extractor, dataset, cache_dir=tmp_path)
    baseline = build_tiny("cnn2d")[0]
    assert feature_cache_blockers(baseline, dataset, 16000) == [
        "CNN2DForAudioClassification has no convolutional feature encoder"
    ]
    with pytest.raises(ValueError, match="prepare_audio"):
        encode_feature_encoder_outputs(model, feature_extractor, dataset.remove_columns("waveform"))


# --- Training runs ------------------------------------------------------------------------------------------------

# Logged for the whole corpus (4 speakers x 8 clips), encoded before it is split: computed, or read back from an
# earlier test's cache of the same clips.
ENCODED_THE_CORPUS = re.compile(r"(Ran the frozen feature encoder on|Loaded the feature-encoder outputs of) 32 clips")
READ_THE_CORPUS_CACHE = "Reading the frozen feature encoder's outputs cached for the whole corpus."
WHOLE_CLIPS = dict(
    model_type="wav2vec2",
    model_config=TINY_SSL,
    max_duration_seconds=None,
    learning_rate=1.0e-3,
    load_best_model_at_end=False,
)


@pytest.mark.slow
def test_training_on_cached_frames_ends_with_the_weights_of_training_on_audio(tmp_path, tiny_ravdess, caplog):
    caplog.set_level(logging.INFO, logger="ser_hf")
    runs = {}
    for cache in (True, False):
        recipe = write_recipe(
            tmp_path / f"{cache}.yaml",
            tiny_ravdess,
            output_dir=str(tmp_path / str(cache)),
            cache_feature_encoder=cache,
            **WHOLE_CLIPS,
        )
        (runs[cache],) = main([str(recipe)])
    assert ENCODED_THE_CORPUS.search(caplog.text) and caplog.text.count(READ_THE_CORPUS_CACHE) == 1
    cached, recomputed = (load_file(tmp_path / str(cache) / "model.safetensors") for cache in (True, False))
    assert cached.keys() == recomputed.keys()
    for name in cached:
        torch.testing.assert_close(cached[name], recomputed[name], atol=1e-5, rtol=1e-4, msg=name)
    for split in ("validation", "test"):
        assert runs[True].evaluation[split].confusion_matrix == runs[False].evaluation[split].confusion_matrix
    config = json.loads((tmp_path / "True" / "config.json").read_text())
    assert config["architectures"] == ["Wav2Vec2ForSequenceClassification"]


@pytest.mark.slow  # two trainings of an SSL model: about 10 s
def test_the_default_caches_whenever_it_is_exact_and_says_why_not(tmp_path, tiny_ravdess, caplog):
    caplog.set_level(logging.INFO, logger="ser_hf")
    recipe = write_recipe(
        tmp_path / "crop.yaml",
        tiny_ravdess,
        output_dir=str(tmp_path / "crop"),
        max_steps=1,
        **{**WHOLE_CLIPS, "max_duration_seconds": 1.0},
    )
    main([str(recipe)])
    assert "Running the feature encoder at every step" in caplog.text
    assert "cropped to a random 1 s window every epoch (max_duration_seconds)" in caplog.text
    assert not ENCODED_THE_CORPUS.search(caplog.text) and READ_THE_CORPUS_CACHE not in caplog.text

    caplog.clear()
    recipe = write_recipe(
        tmp_path / "whole.yaml", tiny_ravdess, output_dir=str(tmp_path / "whole"), max_steps=1, **WHOLE_CLIPS
    )
    main([str(recipe)])
    assert ENCODED_THE_CORPUS.search(caplog.text) and READ_THE_CORPUS_CACHE in caplog.text


@pytest.mark.slow
def test_every_fold_reads_the_corpus_once_encoded(tmp_path, tiny_ravdess, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="ser_hf")
    encoded = []
    original = feature_cache.encode_feature_encoder_outputs

    def recording(model, feature_extractor, dataset, **options):
        encoded.append(len(dataset))
        return original(model, feature_extractor, dataset, **options)

    monkeypatch.setattr(feature_cache, "encode_feature_encoder_outputs", recording)
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        split_protocol="kfold",
        num_folds=2,
        validation_size=0.0,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        **WHOLE_CLIPS,
    )
    reports = main([str(recipe)])
    assert [report.fold for report in reports] == [0, 1]
    assert encoded == [32]  # the corpus, once: no fold encodes its own copy
    assert caplog.text.count(READ_THE_CORPUS_CACHE) == 2

    # A fold whose model has another feature encoder than the one the corpus was encoded with encodes its own clips.
    caplog.clear()
    with mock.patch.object(feature_cache, "get_ser_info", return_value={"feature_encoder": "another encoder"}):
        main(
            [
                str(
                    write_recipe(
                        tmp_path / "r.yaml",
                        tiny_ravdess,
                        split_protocol="kfold",
                        num_folds=2,
                        validation_size=0.0,
                        train_speakers=None,
                        validation_speakers=None,
                        test_speakers=None,
                        max_steps=1,
                        eval_strategy="no",
                        save_strategy="no",
                        output_dir=str(tmp_path / "other"),
                        **WHOLE_CLIPS,
                    )
                )
            ]
        )
    assert "come from another feature encoder than this split's model" in caplog.text
    assert encoded[1:] == [32, 16, 16, 16, 16]  # the corpus, then each fold's training and test clips


def test_demanding_the_cache_where_it_cannot_apply_stops_before_training(tmp_path, tiny_ravdess):
    recipe = write_recipe(
        tmp_path / "r.yaml", tiny_ravdess, cache_feature_encoder=True, **{**WHOLE_CLIPS, "max_duration_seconds": 1.0}
    )
    with pytest.raises(RecipeError, match=r"cache_feature_encoder: true.*cropped to a random 1 s window"):
        main([str(recipe)])
    assert not any((tmp_path / "run").glob("checkpoint-*"))
    for values, message in (
        ({"gain_prob": 0.5}, "waveform augmentation cannot apply"),
        ({"freeze_feature_encoder": False}, "needs freeze_feature_encoder: true"),
        ({"freeze_base_model": True, "cache_encoder_outputs": True}, "FAST mode already caches"),
        ({"model_type": "cnn2d", "model_config": {"conv_channels": [4, 8]}}, "only apply to SSL encoders"),
    ):
        recipe = write_recipe(
            tmp_path / "r.yaml", tiny_ravdess, **{**WHOLE_CLIPS, **values}, cache_feature_encoder=True
        )
        with pytest.raises(RecipeError, match=message):
            main([str(recipe)])


def test_waveform_lengths_of_a_split_are_those_of_its_rows():
    dataset = clips_dataset()
    split = dataset.select([4, 1, 3])  # an indices mapping, as a speaker split leaves
    assert feature_cache.waveform_lengths(split) == [len(dataset[index]["waveform"]) for index in (4, 1, 3)]
