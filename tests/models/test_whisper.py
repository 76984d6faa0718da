"""Whisper's encoder as an emotion classifier: pooling over the clip's own frames, a shorter window, every training
regime, FAST mode with global and speaker statistics, and saved models through the Auto classes and the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, List, Value
from huggingface_hub.errors import StrictDataclassError
from peft import PeftModel
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2Config,
    WhisperConfig,
    pipeline,
)

from ser_hf.inputs.encoder_cache_keys import encoder_cache_key
from ser_hf.inputs.encoder_states import check_cacheable, encode_dataset
from ser_hf.inputs.fast_mode import CachedEncoderHead, EncoderStatesCollator
from ser_hf.models import (
    ClipLongerThanWindowError,
    SerWhisperFeatureExtractor,
    SerWhisperForAudioClassification,
    build_ssl_classifier,
    build_ssl_feature_extractor,
    check_feature_extractor,
    merge_lora,
    set_encoder_window,
    ssl_lora_config,
)
from ser_hf.models.feature_normalization import RunningStatistics
from tests.conftest_models import LABELS, TINY_WHISPER, load_clip

#: Seconds of the tiny encoder's window (150 positions, 50 a second).
WINDOW = 3


def tiny_whisper_config(**overrides) -> WhisperConfig:
    """A tiny Whisper geometry (transformers' WhisperModelTester scale) with a 3-s window and 16 mel bins."""
    return WhisperConfig(**{**TINY_WHISPER, "max_source_positions": WINDOW * 50, **overrides})


def tiny_top_layers_classifier(**config_overrides):
    """A tiny Whisper classifier as ``finetune_top_layers`` trains one (frozen encoder, every layer's statistics, each
    clip through its own length); `config_overrides` change its config."""
    return build_ssl_classifier(
        tiny_whisper_config(trim_window=True, **config_overrides),
        LABELS,
        freeze_base_model=True,
        use_weighted_layer_sum=True,
        pooling_mode="layer_statistics",
    )


def tiny_whisper(**options):
    """A tiny Whisper classifier (head at scale 1, so logits are large enough for tolerances to mean something) and
    its feature extractor."""
    torch.manual_seed(0)
    config = tiny_whisper_config()
    model = build_ssl_classifier(config, LABELS, **options)
    with torch.no_grad():
        for module in (model.projector, model.classifier):
            for parameter in module.parameters():
                parameter.normal_()
    return model.eval(), build_ssl_feature_extractor(model.config)


def logits(model, feature_extractor, clips, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(**feature_extractor(clips, sampling_rate=16000, return_tensors="pt", **kwargs)).logits


@pytest.mark.parametrize("pooling_mode", ["mean", "attentive_statistics", "layer_statistics"])
def test_a_clips_logits_do_not_depend_on_its_batch_or_on_the_padding_frames(pooling_mode):
    model, feature_extractor = tiny_whisper(pooling_mode=pooling_mode)
    assert isinstance(model, SerWhisperForAudioClassification) and model.config.model_type == "ser_whisper"
    short, long = load_clip(0, 0.6), load_clip(1, 2.5)

    alone = logits(model, feature_extractor, [short])
    batched = logits(model, feature_extractor, [short, long])
    torch.testing.assert_close(batched[:1], alone)

    # Whatever the encoder gives the padded frames, the pooled vector reads only the clip's own: 0.6 s = 30 frames.
    def scramble_padding(module, args, output):
        output.last_hidden_state[:, 30:] = 1e4 * torch.randn_like(output.last_hidden_state[:, 30:])
        return output

    handle = model.encoder.register_forward_hook(scramble_padding)
    try:
        scrambled = logits(model, feature_extractor, [short])
    finally:
        handle.remove()
    torch.testing.assert_close(scrambled, alone)
    # transformers' own class averages the padding too: its logits differ from the clip's own frames' pooling.
    assert feature_extractor(short, sampling_rate=16000)["attention_mask"][0][::2].sum() == 30


def test_mean_pooling_is_the_mean_of_the_clips_own_frames():
    model, feature_extractor = tiny_whisper(use_weighted_layer_sum=True)
    inputs = feature_extractor([load_clip(2, 1.0)], sampling_rate=16000, return_tensors="pt")
    states = model.pooled_encoder_states(inputs["input_features"], inputs["attention_mask"])
    with torch.no_grad():
        layers = model.encoder(inputs["input_features"], output_hidden_states=True).hidden_states
    assert states.shape == (1, 3, 16)
    torch.testing.assert_close(states[0, -1], layers[-1][0, :50].mean(dim=0))
    assert not torch.allclose(states[0, -1], layers[-1][0].mean(dim=0), atol=1e-3)


def test_layer_statistics_are_each_layers_mean_and_std_over_the_clips_own_frames():
    model, feature_extractor = tiny_whisper(pooling_mode="layer_statistics", use_weighted_layer_sum=True)
    assert not hasattr(model, "layer_weights") and model.projector.in_features == 3 * 2 * 16
    inputs = feature_extractor([load_clip(2, 1.0)], sampling_rate=16000, return_tensors="pt")
    states = model.pooled_encoder_states(inputs["input_features"], inputs["attention_mask"])
    with torch.no_grad():
        layers = model.encoder(inputs["input_features"], output_hidden_states=True).hidden_states
    assert states.shape == (1, 3, 32)
    for index, layer in enumerate(layers):  # 1.0 s: the first 50 frames
        torch.testing.assert_close(states[0, index, :16], layer[0, :50].mean(dim=0))
        variance = layer[0, :50].var(dim=0, unbiased=False)
        torch.testing.assert_close(states[0, index, 16:], (variance + 1e-5).sqrt())  # TemporalPooling's floor
    # The logits follow from these statistics alone: the head FAST mode trains.
    with torch.no_grad():
        full = model(**inputs).logits
        torch.testing.assert_close(model.classify_pooled_states(states.flatten(1)), full)


def test_shorter_window_keeps_the_first_positions_and_saves_with_the_model(tmp_path):
    torch.manual_seed(0)
    config = tiny_whisper_config(max_source_positions=300)  # a 6-s encoder
    full = build_ssl_classifier(config, LABELS)
    positions = full.encoder.embed_positions.weight.detach().clone()
    model = build_ssl_classifier(config, LABELS, encoder_window_seconds=2)
    model.encoder.load_state_dict({**full.encoder.state_dict(), "embed_positions.weight": positions[:100]})
    feature_extractor = build_ssl_feature_extractor(config, encoder_window_seconds=2)

    assert model.config.max_source_positions == 100 and model.config.window_seconds == 2
    torch.testing.assert_close(model.encoder.embed_positions.weight, positions[:100])
    assert not model.encoder.embed_positions.weight.requires_grad
    assert feature_extractor.chunk_length == 2 and feature_extractor.n_samples == 32000
    check_feature_extractor(model, feature_extractor)
    clip = load_clip(0, 1.5)
    expected = logits(model.eval(), feature_extractor, [clip])

    model.save_pretrained(tmp_path)
    feature_extractor.save_pretrained(tmp_path)
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    loaded_extractor = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(loaded, SerWhisperForAudioClassification)
    assert isinstance(loaded_extractor, SerWhisperFeatureExtractor) and loaded_extractor.chunk_length == 2
    torch.testing.assert_close(logits(loaded, loaded_extractor, [clip]), expected)
    classify = pipeline("audio-classification", model=str(tmp_path), top_k=None)
    scores = {row["label"]: row["score"] for row in classify({"raw": clip, "sampling_rate": 16000})}
    torch.testing.assert_close(
        torch.tensor([scores[label] for label in LABELS.names]), expected.softmax(-1)[0], atol=1e-5, rtol=1e-4
    )


def test_bad_windows_and_mismatched_extractors_name_both_values():
    model, feature_extractor = tiny_whisper()
    with pytest.raises(ValueError, match=r"needs 200 positional embeddings, but this encoder has 150 \(3 s\)"):
        set_encoder_window(model, 4)
    with pytest.raises(ValueError, match="16 mel bins but the encoder takes 80"):
        check_feature_extractor(build_ssl_classifier(tiny_whisper_config(num_mel_bins=80), LABELS), feature_extractor)
    with pytest.raises(ValueError, match=r"window is 2 s \(chunk_length\) but the encoder's is 3 s"):
        check_feature_extractor(model, SerWhisperFeatureExtractor(feature_size=16, chunk_length=2))
    with pytest.raises(
        ClipLongerThanWindowError,
        match=r"Clip 1 of the 2 in this call is 3\.27\d s long \(\d+ samples\), longer than the encoder's 3-s",
    ):
        feature_extractor([load_clip(0, 1.0), load_clip(1, 3.5)], sampling_rate=16000)
    with pytest.raises(ValueError, match="must be one of none, global, speaker, corpus, utterance, got 'bogus'"):
        build_ssl_feature_extractor(tiny_whisper_config(), normalization="bogus")
    with pytest.raises(ValueError, match="apply to Whisper encoders, not to Wav2Vec2FeatureExtractor"):
        build_ssl_feature_extractor(Wav2Vec2Config(), encoder_window_seconds=10)


def test_encoder_only_checkpoint_loads_without_a_decoder(tmp_path):
    """An encoder-only folder (as ../shared/models holds: the config of the whole model, encoder weights only)."""
    model, feature_extractor = tiny_whisper()
    from safetensors.torch import save_file

    config = tiny_whisper_config()
    config.save_pretrained(tmp_path)
    save_file(
        {f"encoder.{name}": tensor for name, tensor in model.encoder.state_dict().items()},
        tmp_path / "model.safetensors",
    )
    feature_extractor.save_pretrained(tmp_path)

    loaded = build_ssl_classifier(str(tmp_path), LABELS, freeze_base_model=True)

    for name, tensor in model.encoder.state_dict().items():
        torch.testing.assert_close(loaded.encoder.state_dict()[name], tensor)
    assert isinstance(build_ssl_feature_extractor(str(tmp_path)), SerWhisperFeatureExtractor)


def trainable(model) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


def train_step(model, feature_extractor):
    """One optimiser step on two clips; returns the parameters before it."""
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    model.train()
    batch = feature_extractor([load_clip(0, 1.0), load_clip(3, 1.5)], sampling_rate=16000, return_tensors="pt")
    loss = model(**batch, labels=torch.tensor([0, 3])).loss
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    return before


def changed(model, before) -> set[str]:
    return {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}


def test_regimes_train_what_they_say():
    model, feature_extractor = tiny_whisper(num_frozen_layers=1)
    before = train_step(model, feature_extractor)
    moved = changed(model, before)
    assert not any(name.startswith(("encoder.conv", "encoder.layers.0.")) for name in moved)
    assert any(name.startswith("encoder.layers.1.") for name in moved) and "classifier.weight" in moved

    model, feature_extractor = tiny_whisper(freeze_base_model=True, use_weighted_layer_sum=True)
    assert trainable(model) == {"layer_weights", "projector.weight", "projector.bias"} | {
        "classifier.weight",
        "classifier.bias",
    }

    model, feature_extractor = tiny_whisper(
        freeze_base_model=True, use_weighted_layer_sum=True, pooling_mode="layer_statistics"
    )
    assert trainable(model) == {"projector.weight", "projector.bias", "classifier.weight", "classifier.bias"}

    # LoRA under both heads (the layer-statistics head has no pooler and no layer weights to train in full).
    model, feature_extractor = tiny_whisper(
        lora_config=ssl_lora_config(r=2), use_weighted_layer_sum=True, pooling_mode="layer_statistics"
    )
    moved = changed(model, train_step(model, feature_extractor))
    assert any("lora_" in name for name in moved) and any("classifier.modules_to_save" in name for name in moved)
    assert all("lora_" in name or "modules_to_save" in name for name in moved), moved

    model, feature_extractor = tiny_whisper(lora_config=ssl_lora_config(r=2, target_modules=("q_proj", "v_proj")))
    assert isinstance(model, PeftModel)
    before = train_step(model, feature_extractor)
    moved = changed(model, before)
    assert moved and all("lora_" in name or "modules_to_save" in name for name in moved), moved
    model.eval()
    clip = [load_clip(4, 1.2)]
    adapted = logits(model, feature_extractor, clip)
    torch.testing.assert_close(
        logits(merge_lora(model).eval(), feature_extractor, clip), adapted, atol=1e-4, rtol=1e-4
    )


def test_a_lora_target_only_the_decoder_has_is_named_with_the_recipe_key_and_the_encoders_modules():
    with pytest.raises(ValueError) as error:
        tiny_whisper(lora_config=ssl_lora_config(r=2, target_modules=("q_proj", "encoder_attn", "no_such")))
    message = str(error.value)
    assert message.startswith("lora_target_modules: encoder_attn, no_such name no module of this ser_whisper encoder")
    assert "decoder modules cannot be adapted" in message
    assert "fc1, fc2, k_proj, out_proj, q_proj, v_proj" in message


def encoded_clips(model, feature_extractor, tmp_path) -> Dataset:
    seconds = (0.5, 1.2, 0.8, 2.0, 0.3, 1.0)
    dataset = Dataset.from_dict(
        {
            "waveform": [load_clip(index, length) for index, length in enumerate(seconds)],
            "label": [index % LABELS.num_classes for index in range(len(seconds))],
            "speaker_id": ["a", "a", "a", "b", "b", "b"],
        },
        features=Features({"waveform": List(Value("float32")), "label": LABELS, "speaker_id": Value("string")}),
    )
    return encode_dataset(model, feature_extractor, dataset, batch_size=4, cache_dir=tmp_path)


def cached_head_and_batch(model, feature_extractor, encoded: Dataset) -> tuple[CachedEncoderHead, dict]:
    """FAST mode's head of `model` and one batch of every encoded clip (no speaker statistics)."""
    rows = list(encoded.remove_columns("waveform"))
    return CachedEncoderHead(model), EncoderStatesCollator(feature_extractor, None)(rows)


@pytest.mark.parametrize(
    "normalization,pooling_mode",
    [
        ("none", "mean"),
        ("global", "mean"),
        ("speaker", "mean"),
        ("none", "layer_statistics"),
        ("speaker", "layer_statistics"),
        ("utterance", "layer_statistics"),
    ],
)
def test_fast_mode_head_gives_the_full_models_logits_on_raw_audio(normalization, pooling_mode, tmp_path):
    torch.manual_seed(0)
    config = tiny_whisper_config()
    model = build_ssl_classifier(
        config,
        LABELS,
        freeze_base_model=True,
        use_weighted_layer_sum=True,
        pooling_mode=pooling_mode,
        config_overrides={"center_frames": normalization == "utterance"},
    )
    with torch.no_grad():
        for parameter in [*model.projector.parameters(), *model.classifier.parameters()]:
            parameter.normal_()
        if pooling_mode == "mean":
            model.layer_weights.normal_()
    model.eval()
    check_cacheable(model)
    feature_extractor = build_ssl_feature_extractor(config, normalization=normalization)
    encoded = encoded_clips(model, feature_extractor, tmp_path)
    states = np.asarray(encoded.with_format("numpy")["encoder_states"])
    assert states.shape == ((6, 3, 16) if pooling_mode == "mean" else (6, 3, 32))

    plan = None
    if normalization != "none":
        from ser_hf.inputs.speaker_normalization import NormalizationPlan, speaker_statistics

        by_speaker = speaker_statistics(feature_extractor, encoded)
        overall = RunningStatistics()
        overall.add(states.reshape(6, -1))
        feature_extractor.set_global_statistics(*overall.statistics())
        plan = NormalizationPlan(normalization, {speaker: value.statistics() for speaker, value in by_speaker.items()})
    rows = list(encoded.remove_columns("waveform"))
    batch = EncoderStatesCollator(feature_extractor, plan)(rows)
    assert ("state_mean" in batch) == (normalization != "none")
    with torch.no_grad():
        cached = CachedEncoderHead(model)(**batch).logits

    waveforms = list(encoded["waveform"])
    speakers = list(encoded["speaker_id"])
    expected = []
    for waveform, speaker in zip(waveforms, speakers):
        kwargs = {"speaker_statistics": [plan.speaker_statistics[speaker]]} if normalization == "speaker" else {}
        expected.append(logits(model, feature_extractor, [np.asarray(waveform, np.float32)], **kwargs))
    expected = torch.cat(expected)
    assert expected.abs().mean() > 0.5
    torch.testing.assert_close(cached, expected, atol=1e-4, rtol=1e-4)
    if normalization == "speaker":  # speakers' own statistics are not the global ones
        assert not torch.allclose(
            cached, logits(model, feature_extractor, [np.asarray(w) for w in waveforms]), atol=1e-3
        )


def test_utterance_normalisation_reads_only_the_spread_of_each_clips_frames(tmp_path):
    """Per-utterance normalisation: the model centres each layer's frames on the clip's own mean, so a clip's layer
    means (what a recording set-up shifts) never reach the logits, in FAST mode as on raw audio; and an extractor and
    a model that disagree about it are refused."""
    torch.manual_seed(0)
    config = tiny_whisper_config()
    options = dict(freeze_base_model=True, use_weighted_layer_sum=True, pooling_mode="layer_statistics")
    model = build_ssl_classifier(config, LABELS, config_overrides={"center_frames": True}, **options).eval()
    feature_extractor = build_ssl_feature_extractor(config, normalization="utterance")
    check_feature_extractor(model, feature_extractor)
    encoded = encoded_clips(model, feature_extractor, tmp_path)
    states = np.asarray(encoded.with_format("numpy")["encoder_states"])
    feature_extractor.set_global_statistics(states.reshape(6, -1).mean(0), states.reshape(6, -1).std(0) + 0.1)
    head, batch = cached_head_and_batch(model, feature_extractor, encoded)
    with torch.no_grad():
        before = head(**batch).logits
        shifted = batch["encoder_states"].clone()
        shifted[:, :, :16] += torch.randn(6, 3, 16)  # every layer's means moved, the spread kept
        after = head(**{**batch, "encoder_states": shifted}).logits
        moved_spread = batch["encoder_states"].clone()
        moved_spread[:, :, 16:] *= 2.0
        spread = head(**{**batch, "encoder_states": moved_spread}).logits
    torch.testing.assert_close(before, after)
    assert not torch.allclose(before, spread, atol=1e-3)

    with pytest.raises(ValueError, match="center_frames"):
        check_feature_extractor(model, build_ssl_feature_extractor(config, normalization="global"))
    plain = build_ssl_classifier(config, LABELS, **options)
    with pytest.raises(ValueError, match="center_frames is False"):
        check_feature_extractor(plain, feature_extractor)
    with pytest.raises(StrictDataclassError, match="center_frames needs pooling_mode='layer_statistics'"):
        build_ssl_classifier(config, LABELS, pooling_mode="mean", config_overrides={"center_frames": True})


def test_pooled_layers_read_only_those_layers_statistics_from_the_same_cache(tmp_path):
    """`pooled_layers`: the head reads the listed layers' statistics only, in FAST mode as on raw audio and after a
    reload; the cache is the one of every layer (same key); a bad list is refused naming the valid layers."""
    torch.manual_seed(0)
    config = tiny_whisper_config()
    options = dict(freeze_base_model=True, use_weighted_layer_sum=True, pooling_mode="layer_statistics")
    every_layer = build_ssl_classifier(config, LABELS, **options)
    model = build_ssl_classifier(config, LABELS, config_overrides={"pooled_layers": [2, 1]}, **options).eval()
    assert model.projector.in_features == 2 * 2 * 16  # two layers' means and standard deviations
    feature_extractor = build_ssl_feature_extractor(config, normalization="none")
    encoded = encoded_clips(model, feature_extractor, tmp_path)
    every_layer.encoder.load_state_dict(model.encoder.state_dict())  # the same encoder, another head
    assert encoder_cache_key(model, feature_extractor, encoded) == encoder_cache_key(
        every_layer, feature_extractor, encoded
    )
    head, batch = cached_head_and_batch(model, feature_extractor, encoded)
    with torch.no_grad():
        cached = head(**batch).logits
        unread = batch["encoder_states"].clone()
        unread[:, 0] += torch.randn_like(unread[:, 0])  # the input embeddings' statistics: not read
        read = batch["encoder_states"].clone()
        read[:, 1] += torch.randn_like(read[:, 1])
        torch.testing.assert_close(head(**{**batch, "encoder_states": unread}).logits, cached)
        assert not torch.allclose(head(**{**batch, "encoder_states": read}).logits, cached, atol=1e-3)
    expected = torch.cat([logits(model, feature_extractor, [np.asarray(w, np.float32)]) for w in encoded["waveform"]])
    torch.testing.assert_close(cached, expected, atol=1e-4, rtol=1e-4)
    model.save_pretrained(tmp_path / "saved")
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "saved").eval()
    assert reloaded.config.pooled_layers == [2, 1]
    torch.testing.assert_close(logits(reloaded, feature_extractor, [np.asarray(encoded["waveform"][0])]), cached[:1])
    for bad in ([3], [1, 1], []):
        with pytest.raises(StrictDataclassError, match="pooled_layers must list distinct layers between 0"):
            build_ssl_classifier(config, LABELS, config_overrides={"pooled_layers": bad}, **options)
    with pytest.raises(StrictDataclassError, match="pooled_layers needs pooling_mode='layer_statistics'"):
        build_ssl_classifier(config, LABELS, freeze_base_model=True, config_overrides={"pooled_layers": [1]})


def test_fast_cache_key_ignores_the_statistics(tmp_path):
    """Global and speaker-normalised recipes of one encoder share its cached states."""

    model, _ = tiny_whisper(freeze_base_model=True)
    dataset = Dataset.from_dict({"waveform": [load_clip(0, 0.5)]})
    keys = set()
    for normalization in ("none", "global", "speaker"):
        feature_extractor = build_ssl_feature_extractor(model.config, normalization=normalization)
        if normalization != "none":
            feature_extractor.set_global_statistics(np.ones(16), np.ones(16))
        keys.add(encoder_cache_key(model, feature_extractor, dataset))
    # Checked speaker statistics only choose the statistics: the same states.
    checked = build_ssl_feature_extractor(model.config, normalization="speaker", speaker_statistics_check=True)
    checked.set_global_statistics(np.ones(16), np.ones(16))
    keys.add(encoder_cache_key(model, checked, dataset))
    assert len(keys) == 1
    other_window = build_ssl_feature_extractor(model.config, encoder_window_seconds=2)
    assert encoder_cache_key(model, other_window, dataset) not in keys
    # The head's dropout is the head's: the same states.
    model.config.head_dropout = 0.3
    assert encoder_cache_key(model, feature_extractor, dataset) in keys
    # So is per-utterance normalisation's centring of the pooled states.
    model.config.center_frames = True
    assert encoder_cache_key(model, feature_extractor, dataset) in keys
    model.config.center_frames = False
    # Where the weights were read from is not: the weights are hashed, so another spelling of the folder shares them.
    model.config._name_or_path = str(tmp_path / "elsewhere" / "whisper-tiny")
    assert encoder_cache_key(model, feature_extractor, dataset) in keys
    # The fields the head or the calibration reads, and any field added later, are never keyed (an allow-list): a
    # fitted temperature, other labels, another projection width.
    model.config.calibration_temperature = 4.66
    model.config.id2label, model.config.label2id = {0: "calm", 1: "bored"}, {"calm": 0, "bored": 1}
    model.config.classifier_proj_size = 7
    model.config.a_field_of_a_later_version = [1, 2]
    assert encoder_cache_key(model, feature_extractor, dataset) in keys
    # What the encoder computes with is keyed: its window trimming, its geometry.
    model.config.trim_window = True
    assert encoder_cache_key(model, feature_extractor, dataset) not in keys
    model.config.trim_window = False
    model.config.encoder_attention_heads = 1
    assert encoder_cache_key(model, feature_extractor, dataset) not in keys
    # Layer statistics cache other values than the means: their own key.
    statistics_model, _ = tiny_whisper(freeze_base_model=True, pooling_mode="layer_statistics")
    assert encoder_cache_key(statistics_model, feature_extractor, dataset) not in keys


def test_predict_classifies_a_recording_longer_than_the_window_in_windows(tmp_path):
    import soundfile

    from ser_hf.deploy.classify import classify_files
    from ser_hf.deploy.pipelines import load_classifier

    model, feature_extractor = tiny_whisper()
    model.save_pretrained(tmp_path / "model")
    feature_extractor.save_pretrained(tmp_path / "model")
    recording = tmp_path / "long.wav"
    soundfile.write(recording, np.concatenate([load_clip(0), load_clip(1)]), 16000)  # about 7 s, window 3 s

    classifier = load_classifier(str(tmp_path / "model"))
    (prediction,) = classify_files(classifier, [str(recording)], progress=False)

    assert prediction.error is None and len(prediction.windows) == 3
    assert all(window.end - window.start <= WINDOW + 1e-6 for window in prediction.windows)
    with pytest.raises(ValueError, match="window_seconds 5 is longer than the model's 3-s encoder window"):
        list(classify_files(classifier, [str(recording)], window_seconds=5, progress=False))


def test_speaker_statistics_without_the_cache_come_from_the_model_and_reach_predict(tmp_path):
    """A speaker-normalised Whisper model evaluated or classifying files outside FAST training: each speaker's
    statistics are computed through the model, equal to those of the cached states, and standardise predict's
    windows."""
    import soundfile

    from ser_hf.deploy.classify import classify_files
    from ser_hf.deploy.pipelines import load_classifier
    from ser_hf.inputs.speaker_normalization import evaluation_normalization, speaker_statistics

    model, _ = tiny_whisper(freeze_base_model=True, pooling_mode="layer_statistics", use_weighted_layer_sum=True)
    feature_extractor = build_ssl_feature_extractor(model.config, normalization="speaker")
    encoded = encoded_clips(model, feature_extractor, tmp_path)
    cached = speaker_statistics(feature_extractor, encoded)
    raw = encoded.remove_columns("encoder_states")
    with pytest.raises(ValueError, match="no 'encoder_states' column .* pass the model"):
        speaker_statistics(feature_extractor, raw)
    computed = speaker_statistics(feature_extractor, raw, model)
    for speaker in ("a", "b"):
        for expected, actual in zip(cached[speaker].statistics(1e-8), computed[speaker].statistics(1e-8)):
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    plan = evaluation_normalization(feature_extractor, raw, "test", model)
    assert set(plan.speaker_statistics) == {"a", "b"}

    feature_extractor.set_global_statistics(*cached["a"].statistics(feature_extractor.variance_floor))
    model.save_pretrained(tmp_path / "model")
    feature_extractor.save_pretrained(tmp_path / "model")
    files, waveforms = [], list(encoded["waveform"])[3:]  # speaker b's clips
    for index, waveform in enumerate(waveforms):
        files.append(str(tmp_path / f"b{index}.wav"))
        soundfile.write(files[-1], np.asarray(waveform, np.float32), 16000)
    classifier = load_classifier(str(tmp_path / "model"))
    predictions = list(classify_files(classifier, files, speakers=dict.fromkeys(files, "b"), progress=False))
    assert all(prediction.error is None for prediction in predictions)
    # Each file is standardised with speaker b's statistics over the three files, not with the global ones.
    statistics = computed["b"].statistics(feature_extractor.variance_floor)
    expected = logits(
        model, feature_extractor, [np.asarray(waveforms[0], np.float32)], speaker_statistics=[statistics]
    )
    scores = predictions[0].scores
    torch.testing.assert_close(
        torch.tensor([scores[label] for label in LABELS.names]), expected.softmax(-1)[0], atol=1e-4, rtol=1e-3
    )


def test_whisper_members_make_an_ensemble_that_reloads_and_fuses_their_probabilities(tmp_path):
    from ser_hf.models import build_ensemble

    clip = [load_clip(3, 1.4)]
    expected = []
    for index, pooling_mode in enumerate(("mean", "layer_statistics")):
        model, _ = tiny_whisper(pooling_mode=pooling_mode, use_weighted_layer_sum=True)
        feature_extractor = build_ssl_feature_extractor(model.config, normalization="global")
        width = 3 * 16 if pooling_mode == "mean" else 3 * 32  # per layer: the means (and standard deviations)
        feature_extractor.set_global_statistics(np.full(width, 0.1), np.full(width, 2.0))
        model.save_pretrained(tmp_path / f"m{index}")
        feature_extractor.save_pretrained(tmp_path / f"m{index}")
        expected.append(logits(model, feature_extractor, clip).log_softmax(-1))
    ensemble, ensemble_extractor = build_ensemble([tmp_path / "m0", tmp_path / "m1"])
    ensemble.save_pretrained(tmp_path / "ensemble")
    ensemble_extractor.save_pretrained(tmp_path / "ensemble")

    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "ensemble").eval()
    loaded_extractor = AutoFeatureExtractor.from_pretrained(tmp_path / "ensemble")
    fused = logits(loaded, loaded_extractor, clip)
    torch.testing.assert_close(fused, torch.logsumexp(torch.stack(expected) + np.log(0.5), dim=0))


def test_trimmed_window_gives_the_windows_first_embeddings_and_clip_states_independent_of_the_batch():
    model, feature_extractor = tiny_whisper(pooling_mode="layer_statistics", use_weighted_layer_sum=True)
    clips = [load_clip(0, 1.3), load_clip(1, 0.6)]
    inputs = feature_extractor(clips, sampling_rate=16000, return_tensors="pt")
    frame_mask = model.frame_mask(inputs["attention_mask"], model.config.max_source_positions)
    with torch.no_grad():
        whole = model.encoder(inputs["input_features"], output_hidden_states=True).hidden_states[0]
        trimmed, mask = model.trimmed_embeddings(inputs["input_features"], frame_mask)
    # The convolutions see the same mel frames: the kept frames' embeddings are the whole window's.
    assert trimmed.shape[1] == int(frame_mask.sum(dim=1).max()) < whole.shape[1]
    torch.testing.assert_close(trimmed, whole[:, : trimmed.shape[1]], atol=1e-5, rtol=1e-5)
    model.config.trim_window = True
    together = logits(model, feature_extractor, clips)
    alone = torch.cat([logits(model, feature_extractor, [clip]) for clip in clips])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    model.config.trim_window = False  # the whole window: the clip's frames attend to its padding too
    assert not torch.allclose(logits(model, feature_extractor, clips), together, atol=1e-4)


@pytest.mark.parametrize("lower_layer", [1, 0], ids=["top-layer", "every-layer"])
def test_top_layers_on_the_cached_lower_layer_give_the_full_models_logits(tmp_path, lower_layer):
    """The top layers trained on the cached input of `lower_layer` (0: the input embeddings, every layer fine-tuned)
    give the whole model's logits."""
    from ser_hf.inputs.top_layers import CachedLowerLayersModel, LowerStatesCollator

    torch.manual_seed(0)
    model = tiny_top_layers_classifier()
    config = model.config
    with torch.no_grad():
        for parameter in [*model.projector.parameters(), *model.classifier.parameters()]:
            parameter.normal_()
    model.eval()
    feature_extractor = build_ssl_feature_extractor(config, normalization="global")
    seconds = (0.5, 1.2, 0.8, 2.0)
    dataset = Dataset.from_dict(
        {"waveform": [load_clip(index, length) for index, length in enumerate(seconds)], "label": [0, 1, 2, 0]},
        features=Features({"waveform": List(Value("float32")), "label": LABELS}),
    )
    encoded = encode_dataset(
        model, feature_extractor, dataset, batch_size=2, cache_dir=tmp_path, lower_layer=lower_layer
    )
    lower = encoded.with_format("numpy")["lower_states"]
    assert [len(value) for value in lower] == [int(np.ceil(s * 16000 / 320)) for s in seconds]
    states = np.asarray(encoded.with_format("numpy")["encoder_states"])
    overall = RunningStatistics()
    overall.add(states.reshape(len(seconds), -1))
    feature_extractor.set_global_statistics(*overall.statistics())

    batch = LowerStatesCollator(feature_extractor)(list(encoded.remove_columns("waveform")))
    wrapper = CachedLowerLayersModel(model, lower_layer=lower_layer)
    assert len(wrapper.layers) == model.config.num_hidden_layers - lower_layer
    assert {name.split(".")[0] for name, p in wrapper.named_parameters() if p.requires_grad} == {
        "layers",
        "layer_norm",
        "projector",
        "classifier",
    }
    with torch.no_grad():
        cached = wrapper(**batch).logits
    expected = torch.cat([logits(model, feature_extractor, [np.asarray(w, np.float32)]) for w in dataset["waveform"]])
    assert expected.abs().mean() > 0.5
    torch.testing.assert_close(cached, expected, atol=1e-4, rtol=1e-4)
    # The key knows the cached layer: another depth is encoded again, never read from this cache.
    assert encoder_cache_key(model, feature_extractor, dataset, lower_layer=1) != encoder_cache_key(
        model, feature_extractor, dataset, lower_layer=2
    )
    model.freeze_base_model()  # the wrapper turned the top layer's gradients on
    model.config.trim_window = False
    with pytest.raises(ValueError, match="trim_window=True"):
        encode_dataset(model, feature_extractor, dataset, cache_dir=tmp_path, lower_layer=1)


def test_lora_on_the_top_layers_trains_adapters_only_and_merges_into_the_same_logits():
    """use_lora with finetune_top_layers: adapters on the fine-tuned layers' projections train (not those layers'
    weights, nor any layer below); merged, the plain classifier gives the adapted model's logits."""
    from peft import LoraConfig

    from ser_hf.inputs.top_layers import CachedLowerLayersModel
    from ser_hf.models.runtime.ssl import TOP_LAYERS_LORA_TARGET_MODULES

    torch.manual_seed(0)
    model = tiny_top_layers_classifier()
    config = LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=list(TOP_LAYERS_LORA_TARGET_MODULES))
    wrapper = CachedLowerLayersModel(model, lower_layer=1, lora_config=config)
    trainable = {name for name, parameter in wrapper.named_parameters() if parameter.requires_grad}
    layer_parameters = {name for name in trainable if name.startswith("layers.")}
    assert layer_parameters and all(".lora_" in name for name in layer_parameters)
    assert {name.split(".")[2] for name in layer_parameters} == {"self_attn", "fc1", "fc2"}
    assert {name.split(".")[0] for name in trainable} == {"layers", "layer_norm", "projector", "classifier"}
    assert not any(p.requires_grad for p in model.encoder.layers[0].parameters())
    with torch.no_grad():  # adapters that have trained (peft starts them at zero)
        for name, parameter in wrapper.named_parameters():
            if ".lora_" in name:
                parameter.normal_(std=0.2)
    wrapper.eval()
    hidden = torch.randn(2, 12, model.config.d_model)
    frame_mask = torch.ones(2, 12, dtype=torch.bool)
    frame_mask[1, 7:] = False
    encoder_states = torch.randn(2, model.config.num_hidden_layers + 1, 2 * model.config.d_model)
    with torch.no_grad():
        adapted = wrapper(encoder_states, hidden, frame_mask).logits
        wrapper.merge_adapters()
        merged = wrapper(encoder_states, hidden, frame_mask).logits
    assert not any("lora" in name for name in model.state_dict())
    assert isinstance(model.encoder.layers[1].self_attn.q_proj, torch.nn.Linear)
    torch.testing.assert_close(merged, adapted, atol=1e-5, rtol=1e-5)

    with pytest.raises(
        ValueError, match=r"lora_target_modules: encoder_attn name no module .* linear modules are fc1"
    ):
        CachedLowerLayersModel(model, lower_layer=1, lora_config=LoraConfig(r=2, target_modules=["encoder_attn"]))


def test_spec_augment_masks_spans_of_the_cached_states_while_training_only():
    """apply_spec_augment with finetune_top_layers: spans of each clip's own frames and of channels of the first
    fine-tuned layer's cached input are zeroed in training steps (other spans each step), never in evaluation."""
    from ser_hf.inputs.top_layers import CachedLowerLayersModel

    model = tiny_top_layers_classifier(
        apply_spec_augment=True,
        mask_time_prob=0.3,
        mask_time_length=4,
        mask_time_min_masks=1,
        mask_feature_prob=0.25,
        mask_feature_length=2,
        mask_feature_min_masks=1,
    )
    config = model.config
    wrapper = CachedLowerLayersModel(model, lower_layer=1)
    torch.manual_seed(0)
    hidden = torch.randn(3, 40, config.d_model) + 5.0  # no state is zero before masking
    frame_mask = torch.ones(3, 40, dtype=torch.bool)
    frame_mask[1, 25:] = False  # a shorter clip: its padding is never where a time span is drawn

    wrapper.eval()
    assert torch.equal(wrapper.mask_states(hidden, frame_mask), hidden)
    wrapper.train()
    np.random.seed(0)  # _compute_mask_indices draws with numpy
    first, second = wrapper.mask_states(hidden, frame_mask), wrapper.mask_states(hidden, frame_mask)
    zero = first == 0
    masked_frames, masked_channels = zero.all(dim=2), zero.all(dim=1)
    assert masked_frames.any(dim=1).all() and masked_channels.any(dim=1).all()  # every clip: frames and channels
    assert not masked_frames[1, 25:].any()
    assert masked_frames.sum(dim=1).max() <= 0.3 * 40 + 4  # spans of mask_time_length, about mask_time_prob
    # Every state not in a masked frame or channel is the cached one.
    kept = ~(masked_frames[:, :, None] | masked_channels[:, None, :])
    assert torch.equal(first[kept], hidden[kept]) and not zero[kept].any()
    assert not torch.equal(first, second)  # each step draws its own spans
    model.config.apply_spec_augment = False
    assert torch.equal(wrapper.mask_states(hidden, frame_mask), hidden)


def test_a_clip_longer_than_the_window_is_encoded_in_windows_pooled_over_the_whole_clip(tmp_path):
    """FAST mode took a corpus with one clip longer than the window as an error for every clip (issue 44, item 1)."""
    model, feature_extractor = tiny_whisper(
        pooling_mode="layer_statistics", use_weighted_layer_sum=True, freeze_base_model=True
    )
    long_clip = np.concatenate([load_clip(3), load_clip(4), load_clip(5)])[: int(2.5 * WINDOW * 16000)]  # 3 windows
    dataset = Dataset.from_dict(
        {"waveform": [load_clip(0, 1.0), long_clip], "label": [0, 1]},
        features=Features({"waveform": List(Value("float32")), "label": LABELS}),
    )
    states = np.asarray(encode_dataset(model, feature_extractor, dataset, cache_dir=tmp_path)["encoder_states"])
    assert len(long_clip) == int(2.5 * WINDOW * 16000)
    pieces = np.array_split(long_clip, 3)
    inputs = feature_extractor(pieces, sampling_rate=16000, return_tensors="pt")
    _, layers = model.encoder_layers(inputs["input_features"], inputs["attention_mask"])
    mask = model.frame_mask(inputs["attention_mask"], layers[0].shape[1])
    # The three windows' frames pooled together: each layer's mean and standard deviation over all of them.
    frames = [torch.cat([layer[row][mask[row]] for row in range(3)]) for layer in layers]
    expected = torch.stack([torch.cat([f.mean(0), torch.sqrt(f.var(0, unbiased=False) + 1e-5)]) for f in frames])
    np.testing.assert_allclose(states[1], expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert np.isfinite(states).all() and not np.allclose(states[0], states[1])


def test_the_frame_mask_follows_the_encoder_to_its_device():
    """The feature extractor returns the attention mask on the CPU; FAST encoding and the lower-layer cache pool a
    GPU encoder's states with the frame mask made from it, so it must come back on the encoder's device (here the
    meta device stands in for a GPU, which the tests do not have)."""
    model, feature_extractor = tiny_whisper(pooling_mode="layer_statistics", use_weighted_layer_sum=True)
    inputs = feature_extractor([load_clip(0, 1.3)], sampling_rate=16000, return_tensors="pt")
    on_cpu = model.frame_mask(inputs["attention_mask"], model.config.max_source_positions)
    assert on_cpu.device.type == "cpu" and on_cpu.dtype == torch.bool and on_cpu.sum() > 0
    moved = model.to("meta").frame_mask(inputs["attention_mask"], model.config.max_source_positions)
    assert moved.device.type == "meta" and moved.shape == on_cpu.shape


def padded_with_silence(clip: np.ndarray, before: float, after: float) -> np.ndarray:
    """`clip` with `before` and `after` seconds of near-silence (noise 80 dB below its peak) around it."""
    rng = np.random.default_rng(0)
    floor = 1e-4 * np.abs(clip).max()
    quiet = [floor * rng.standard_normal(int(seconds * 16000)).astype(np.float32) for seconds in (before, after)]
    return np.concatenate([quiet[0], clip, quiet[1]])


def test_trimming_silence_gives_the_speech_alone_its_features_in_training_and_in_the_saved_model(tmp_path):
    speech = load_clip(0, 1.5)
    speech = speech[np.flatnonzero(np.abs(speech) > 0.1 * np.abs(speech).max())[0] :]  # the clip's own lead cut
    padded = padded_with_silence(speech, 0.6, 0.4)
    model, plain = tiny_whisper(freeze_base_model=True, use_weighted_layer_sum=True, pooling_mode="layer_statistics")
    trimming = build_ssl_feature_extractor(model.config, trim_silence_db=30)
    assert trimming.trim_silence_db == 30 and plain.trim_silence_db is None

    trimmed = trimming.trim_silence(padded)
    assert len(speech) - 400 <= len(trimmed) <= len(speech) + 400  # within a frame of the speech's own edges
    features = trimming(padded, sampling_rate=16000)
    assert features["attention_mask"].sum() == plain(trimmed, sampling_rate=16000)["attention_mask"].sum()
    assert features["attention_mask"].sum() < plain(padded, sampling_rate=16000)["attention_mask"].sum()
    np.testing.assert_allclose(features["input_features"], plain(trimmed, sampling_rate=16000)["input_features"])
    # A batch trims each clip by itself; silence alone (nothing to keep) and a clip without silence stay as they are.
    silence = padded_with_silence(speech, 0.5, 0)[:8000] * 0
    batch = trimming([padded, silence, speech], sampling_rate=16000)
    assert batch["attention_mask"].sum(-1).tolist() == [
        plain(clip, sampling_rate=16000)["attention_mask"].sum() for clip in (trimmed, silence, speech)
    ]
    # The saved extractor trims as the training one did: the FAST cache and the model on raw audio agree.
    encoded = encode_dataset(model, trimming, Dataset.from_dict({"waveform": [padded]}), cache_dir=tmp_path / "cache")
    cached = CachedEncoderHead(model)(**EncoderStatesCollator(trimming)(list(encoded.remove_columns("waveform"))))
    model.save_pretrained(tmp_path / "saved")
    trimming.save_pretrained(tmp_path / "saved")
    reloaded = AutoFeatureExtractor.from_pretrained(tmp_path / "saved")
    assert reloaded.trim_silence_db == 30
    torch.testing.assert_close(cached.logits, logits(model, reloaded, [padded]), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(cached.logits, logits(model, plain, [padded]), atol=1e-3)
    # A clip longer than the 3-s window by its silence alone is read whole, in the cache as through the model.
    long_silence = padded_with_silence(speech, 2.5, 0.5)
    assert len(long_silence) > trimming.n_samples
    encoded = encode_dataset(
        model, trimming, Dataset.from_dict({"waveform": [long_silence]}), cache_dir=tmp_path / "cache"
    )
    cached = CachedEncoderHead(model)(**EncoderStatesCollator(trimming)(list(encoded.remove_columns("waveform"))))
    torch.testing.assert_close(cached.logits, logits(model, reloaded, [long_silence]), atol=1e-4, rtol=1e-4)


def assert_unset_field_keeps_the_cache_key(model, dataset, field: str) -> None:
    """An extractor with `field` unset keeps the cache key it had before the field existed: the key leaves it out."""
    before_the_setting = build_ssl_feature_extractor(model.config)
    delattr(before_the_setting, field)
    assert field not in before_the_setting.to_dict()
    plain = build_ssl_feature_extractor(model.config)
    assert encoder_cache_key(model, plain, dataset) == encoder_cache_key(model, before_the_setting, dataset)


def test_trimming_is_part_of_the_cache_key_and_a_bad_setting_is_named():
    model, _ = tiny_whisper(freeze_base_model=True)
    dataset = Dataset.from_dict({"waveform": [load_clip(0, 0.5)]})
    assert_unset_field_keeps_the_cache_key(model, dataset, "trim_silence_db")  # untrimmed caches keep their keys
    keys = {
        encoder_cache_key(model, build_ssl_feature_extractor(model.config, trim_silence_db=db), dataset)
        for db in (None, 30, 40)
    }
    assert len(keys) == 3
    for bad in (0, -10, "30", True):
        with pytest.raises(ValueError, match=f"trim_silence_db must be a number of dB above 0.*{bad!r}"):
            SerWhisperFeatureExtractor(feature_size=16, trim_silence_db=bad)
    with pytest.raises(ValueError, match="trim_silence_db and dereverberation .*apply to Whisper encoders"):
        build_ssl_feature_extractor(Wav2Vec2Config(), trim_silence_db=30)
