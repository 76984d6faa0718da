"""FAST mode: a frozen encoder's mean states cached once, the head trained on them gives the full model's logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, List, Value
from safetensors import safe_open
from transformers import AutoModelForAudioClassification, Trainer, TrainingArguments, Wav2Vec2Config

import ser_hf
from ser_hf.data.dataset_info import get_ser_info
from ser_hf.inputs.encoder_states import check_cacheable, encode_dataset
from ser_hf.inputs.fast_mode import ENCODER_STATES_COLUMN, CachedEncoderHead, EncoderStatesCollator
from ser_hf.models import (
    SerWav2Vec2Config,
    SerWav2Vec2ForSequenceClassification,
    build_ssl_classifier,
    build_ssl_feature_extractor,
    ssl_lora_config,
)
from tests.conftest import RAVDESS_SAMPLE
from tests.conftest_models import LABELS, SSL_FAMILIES, build_tiny, load_clip, tiny_ssl_config

CLIP_SECONDS = (0.5, 0.2, 0.35, 0.15, 0.4, 0.25)


def wav2vec2_config(feat_extract_norm: str, **overrides) -> Wav2Vec2Config:
    """transformers' Wav2Vec2ModelTester geometry; `"group"` is wav2vec2-base's encoder, `"layer"` the large ones'."""
    return Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(32, 32, 32),
        conv_kernel=(8, 8, 8),
        conv_stride=(4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=8,
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=feat_extract_norm == "layer",
        **overrides,
    )


def fast_model(config, **options):
    """A frozen-encoder classifier whose head is initialised at scale 1 (transformers' 0.02 gives logits so small
    that any error passes an absolute tolerance), with uneven layer weights."""
    torch.manual_seed(0)
    model = build_ssl_classifier(config, LABELS, freeze_base_model=True, **options)
    with torch.no_grad():
        for parameter in [*model.projector.parameters(), *model.classifier.parameters()]:
            parameter.normal_()
        if model.config.use_weighted_layer_sum:
            model.layer_weights.normal_()
    return model


def clips_dataset(seconds=CLIP_SECONDS) -> Dataset:
    """Real RAVDESS clips of different lengths, as `prepare_audio` leaves them."""
    return Dataset.from_dict(
        {
            "waveform": [load_clip(index, length) for index, length in enumerate(seconds)],
            "label": [index % LABELS.num_classes for index in range(len(seconds))],
        },
        features=Features({"waveform": List(Value("float32")), "label": LABELS}),
    )


def full_model_logits(model, feature_extractor, waveforms) -> torch.Tensor:
    """The full model on each raw clip alone, in eval mode."""
    model.eval()
    with torch.no_grad():
        return torch.cat(
            [
                model(**feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")).logits
                for waveform in waveforms
            ]
        )


def cached_states(dataset: Dataset) -> torch.Tensor:
    return EncoderStatesCollator()(list(dataset))[ENCODER_STATES_COLUMN]


class ForwardCounter:
    """Counts the encoder's forward passes."""

    def __init__(self, model):
        self.calls = 0
        model.base_model.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.calls += 1


@pytest.mark.parametrize("use_weighted_layer_sum", [False, True], ids=["last-layer", "weighted-layer-sum"])
@pytest.mark.parametrize(
    "feat_extract_norm, forward_passes",
    # Group norm (wav2vec2-base) on CPU: one clip per forward. Layer norm: 6 clips in batches of 4.
    [("group", len(CLIP_SECONDS)), ("layer", 2)],
)
def test_cached_head_gives_the_full_models_logits_and_loss(
    feat_extract_norm, forward_passes, use_weighted_layer_sum, tmp_path
):
    config = wav2vec2_config(feat_extract_norm)
    model = fast_model(config, use_weighted_layer_sum=use_weighted_layer_sum)
    feature_extractor = build_ssl_feature_extractor(config)
    assert feature_extractor.return_attention_mask == (feat_extract_norm == "layer")
    dataset = clips_dataset()
    counter = ForwardCounter(model)

    encoded = encode_dataset(model, feature_extractor, dataset, batch_size=4, cache_dir=tmp_path)

    assert counter.calls == forward_passes
    assert encoded.column_names == ["waveform", "label", ENCODER_STATES_COLUMN]
    assert encoded["label"] == dataset["label"]
    states = cached_states(encoded)
    layers = config.num_hidden_layers + 1
    assert states.shape == ((len(dataset), layers, 16) if use_weighted_layer_sum else (len(dataset), 16))
    head = CachedEncoderHead(model).eval()
    labels = torch.tensor(dataset["label"])
    with torch.no_grad():
        output = head(states, labels=labels)
    expected = full_model_logits(model, feature_extractor, dataset["waveform"])
    assert expected.abs().mean() > 0.5  # logits large enough for the tolerance to mean something
    # float32 through a different order of operations (the cached states are stored, then pooled): 1.3e-5 apart seen
    torch.testing.assert_close(output.logits, expected, atol=5e-5, rtol=1e-4)
    torch.testing.assert_close(output.loss, torch.nn.functional.cross_entropy(expected, labels), atol=5e-5, rtol=1e-4)


def test_encoding_restores_train_mode_and_batches_by_length_without_changing_states(tmp_path):
    config = wav2vec2_config("layer")
    model = fast_model(config, use_weighted_layer_sum=True).train()
    feature_extractor = build_ssl_feature_extractor(config)
    dataset = clips_dataset()

    one_batch = cached_states(encode_dataset(model, feature_extractor, dataset, batch_size=8, cache_dir=tmp_path))
    assert model.training
    one_by_one = torch.stack(
        [
            # Each in a cache folder of its own: a cache holding the clip would give its states (clip_index).
            cached_states(
                encode_dataset(model, feature_extractor, dataset.select([index]), cache_dir=tmp_path / str(index))
            )[0]
            for index in range(len(dataset))
        ]
    )
    torch.testing.assert_close(one_batch, one_by_one, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("family", SSL_FAMILIES)
def test_every_encoder_family_and_a_ser_mean_head(family, tmp_path):
    config = tiny_ssl_config(family)
    model = fast_model(config, use_weighted_layer_sum=True)
    feature_extractor = build_ssl_feature_extractor(config)
    dataset = clips_dataset(CLIP_SECONDS[:3])

    states = cached_states(encode_dataset(model, feature_extractor, dataset, batch_size=2, cache_dir=tmp_path))

    expected = full_model_logits(model, feature_extractor, dataset["waveform"])
    # data2vec-audio leaks padding through its positional convolutions, so it is encoded one clip at a time: exact.
    torch.testing.assert_close(CachedEncoderHead(model)(states).logits, expected, atol=1e-5, rtol=1e-5)
    if family == "wav2vec2":
        # Never built by build_ssl_classifier (mean pooling gives transformers' class), but a valid config.
        fields = {key: value for key, value in model.config.to_dict().items() if key not in ("model_type", "dtype")}
        ser_model = SerWav2Vec2ForSequenceClassification(SerWav2Vec2Config(**fields, pooling_mode="mean"))
        ser_model.load_state_dict(model.state_dict())
        ser_model.freeze_base_model()
        torch.testing.assert_close(
            CachedEncoderHead(ser_model)(states).logits,
            full_model_logits(ser_model, feature_extractor, dataset["waveform"]),
            atol=1e-5,
            rtol=1e-5,
        )


@pytest.mark.parametrize("family", ["wav2vec2", "hubert", "wavlm"])
def test_group_norm_encoders_are_batched_and_give_each_clip_its_states_alone(family, tmp_path):
    """wav2vec2-base, hubert-base and wavlm-base normalise their first convolution over time: batched with that layer
    run clip by clip (as on a GPU), every clip gets the states it gets alone."""
    config = tiny_ssl_config(family)
    config.feat_extract_norm, config.do_stable_layer_norm = "group", False
    model = fast_model(config, use_weighted_layer_sum=True)
    feature_extractor = build_ssl_feature_extractor(config)
    assert not feature_extractor.return_attention_mask
    dataset = clips_dataset()
    counter = ForwardCounter(model)
    batched = cached_states(
        encode_dataset(model, feature_extractor, dataset, batch_size=6, cache_dir=tmp_path, batch_group_norm=True)
    )
    assert counter.calls == 1
    alone = torch.stack(
        [
            # Each in a cache folder of its own: a cache holding the clip would give its states (clip_index).
            cached_states(
                encode_dataset(model, feature_extractor, dataset.select([index]), cache_dir=tmp_path / str(index))
            )[0]
            for index in range(len(dataset))
        ]
    )
    assert counter.calls == 1 + len(dataset)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    assert isinstance(model.base_model.feature_extractor.conv_layers[0].layer_norm, torch.nn.GroupNorm)


def test_training_the_head_trains_the_models_head_and_nothing_else(tmp_path):
    config = wav2vec2_config("layer")
    model = fast_model(config, use_weighted_layer_sum=True)
    feature_extractor = build_ssl_feature_extractor(config)
    dataset = encode_dataset(model, feature_extractor, clips_dataset(), cache_dir=tmp_path)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    head = CachedEncoderHead(model).train()

    assert set(head.state_dict()) == {
        "layer_weights",
        "projector.weight",
        "projector.bias",
        "classifier.weight",
        "classifier.bias",
    }
    batch = EncoderStatesCollator()(list(dataset))
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2)
    for _ in range(3):
        loss = head(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for name, parameter in model.named_parameters():
        in_head = not name.startswith("wav2vec2.")
        assert torch.equal(parameter, before[name]) != in_head, name
    # The trained model still agrees with the head on raw audio.
    torch.testing.assert_close(
        head.eval()(batch[ENCODER_STATES_COLUMN]).logits,
        full_model_logits(model, feature_extractor, dataset["waveform"]),
        atol=1e-5,
        rtol=1e-5,
    )


def test_second_call_reads_the_cache_and_any_change_recomputes(tmp_path):
    config = wav2vec2_config("group", use_weighted_layer_sum=True)
    model = fast_model(config)
    feature_extractor = build_ssl_feature_extractor(config)
    dataset = clips_dataset(CLIP_SECONDS[:3])
    counter = ForwardCounter(model)

    def encode(**options):
        calls = counter.calls
        encoded = encode_dataset(model, feature_extractor, dataset, cache_dir=tmp_path, **options)
        cache_file = get_ser_info(encoded)["encoder_cache"]
        assert [file["filename"] for file in encoded.cache_files] == [cache_file]
        return encoded, cache_file, counter.calls - calls

    first, first_file, passes = encode()
    assert passes == 3
    again, again_file, passes = encode()
    assert (again_file, passes) == (first_file, 0)
    torch.testing.assert_close(cached_states(again), cached_states(first), atol=0, rtol=0)
    assert encode(load_from_cache=False)[1:] == (first_file, 3)

    # The head is not part of the key: training it, or another head on the same encoder, reuses the states.
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    assert encode()[1:] == (first_file, 0)
    other_head = build_ssl_classifier(config, ["calm", "angry"], classifier_proj_size=4, freeze_base_model=True)
    other_head.wav2vec2.load_state_dict(model.wav2vec2.state_dict())
    assert encode_dataset(other_head, feature_extractor, dataset, cache_dir=tmp_path).cache_files == first.cache_files

    with torch.no_grad():
        model.wav2vec2.encoder.layers[0].feed_forward.output_dense.weight[0, 0] += 1.0
    changed, changed_file, passes = encode()
    assert changed_file != first_file and passes == 3
    assert not torch.allclose(cached_states(changed), cached_states(first))

    feature_extractor.do_normalize = False
    assert encode()[1:] != (changed_file, 0)


def test_check_cacheable_rejects_what_cached_states_cannot_reproduce():
    config = wav2vec2_config("group")
    check_cacheable(build_ssl_classifier(config, LABELS, freeze_base_model=True))

    with pytest.raises(ValueError, match=r"whole encoder frozen.*freeze_base_model=True"):
        check_cacheable(build_ssl_classifier(config, LABELS))
    with pytest.raises(ValueError, match=r"pooling_mode='attentive_statistics'.*pooling_mode in 'mean'"):
        check_cacheable(
            build_ssl_classifier(config, LABELS, pooling_mode="attentive_statistics", freeze_base_model=True)
        )
    with pytest.raises(ValueError, match=r"LoRA \(peft\).*adapters train"):
        check_cacheable(build_ssl_classifier(config, LABELS, lora_config=ssl_lora_config(r=2)))
    with pytest.raises(ValueError, match="CNN2DForAudioClassification"):
        check_cacheable(build_tiny("cnn2d")[0])
    with pytest.raises(ValueError, match="whole encoder frozen"):
        CachedEncoderHead(build_ssl_classifier(config, LABELS))


def test_encode_dataset_needs_prepared_waveforms(tmp_path):
    config = wav2vec2_config("group")
    model = fast_model(config)
    with pytest.raises(ValueError, match="prepare_audio"):
        encode_dataset(model, build_ssl_feature_extractor(config), Dataset.from_dict({"label": [0]}))


def test_real_corpus_split_keeps_its_columns_and_record(tmp_path):
    corpus = ser_hf.load_corpus("ravdess", RAVDESS_SAMPLE).select(range(3))
    prepared = ser_hf.prepare_audio(corpus, cache_dir=tmp_path / "waveforms")
    split = prepared.select([2, 0])  # an indices mapping, as a speaker split leaves
    config = wav2vec2_config("layer")
    model = fast_model(config)
    feature_extractor = build_ssl_feature_extractor(config)

    encoded = encode_dataset(model, feature_extractor, split, cache_dir=tmp_path / "encoder")

    assert encoded.column_names == [*split.column_names, ENCODER_STATES_COLUMN]
    assert encoded["path"] == split["path"] and encoded["label"] == split["label"]
    record = get_ser_info(encoded)
    assert record.pop("encoder_cache").startswith(str(tmp_path / "encoder" / "encoder-"))
    assert record == get_ser_info(split) and record["corpora"] == ["ravdess"]
    torch.testing.assert_close(
        CachedEncoderHead(model)(cached_states(encoded)).logits,
        full_model_logits(model, feature_extractor, [np.asarray(w) for w in split["waveform"]]),
        atol=1e-5,
        rtol=1e-5,
    )


def test_loss_follows_trainers_num_items_in_batch_and_ignores_minus_100():
    model = fast_model(wav2vec2_config("group"))
    head = CachedEncoderHead(model)
    states, labels = torch.randn(4, 16), torch.tensor([0, 3, -100, 6])
    logits = head(states).logits

    mean = torch.nn.functional.cross_entropy(logits[[0, 1, 3]], labels[[0, 1, 3]])
    torch.testing.assert_close(head(states, labels=labels).loss, mean)
    # Under gradient accumulation Trainer passes the labelled clips of all micro-batches and does not rescale.
    torch.testing.assert_close(head(states, labels=labels, num_items_in_batch=torch.tensor(6)).loss, mean * 3 / 6)
    with pytest.raises(ValueError, match=r"\(batch, hidden_size\)"):
        head(torch.randn(4, 3, 16))


def test_collator_batches_states_and_labels():
    rows = [
        {ENCODER_STATES_COLUMN: [[1.0, 2.0]] * 3, "label": 2, "path": "a.wav"},
        {ENCODER_STATES_COLUMN: [[3.0, 4.0]] * 3, "label": 0, "path": "b.wav"},
    ]
    batch = EncoderStatesCollator()(rows)
    assert set(batch) == {ENCODER_STATES_COLUMN, "labels"}
    assert batch[ENCODER_STATES_COLUMN].dtype == torch.float32 and batch[ENCODER_STATES_COLUMN].shape == (2, 3, 2)
    assert batch["labels"].tolist() == [2, 0] and batch["labels"].dtype == torch.long
    unlabelled = EncoderStatesCollator()([{ENCODER_STATES_COLUMN: [1.0, 2.0]}])
    assert set(unlabelled) == {ENCODER_STATES_COLUMN}


@pytest.mark.parametrize("remove_unused_columns", [False, True])
def test_trainer_trains_the_head_and_checkpoints_without_the_encoder(remove_unused_columns, tmp_path):
    config = wav2vec2_config("layer")
    model = fast_model(config, use_weighted_layer_sum=True)
    feature_extractor = build_ssl_feature_extractor(config)
    dataset = encode_dataset(model, feature_extractor, clips_dataset(), cache_dir=tmp_path / "cache")
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=3,
        learning_rate=0.05,
        save_steps=3,
        report_to="none",
        use_cpu=True,
        remove_unused_columns=remove_unused_columns,
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=CachedEncoderHead(model),
        args=args,
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=EncoderStatesCollator(),
    )

    trainer.train()
    metrics = trainer.evaluate()

    assert np.isfinite(metrics["eval_loss"])
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, before[name]) == name.startswith("wav2vec2."), name
    with safe_open(tmp_path / "run" / "checkpoint-3" / "model.safetensors", "pt") as checkpoint:
        assert set(checkpoint.keys()) == {
            "layer_weights",
            "projector.weight",
            "projector.bias",
            "classifier.weight",
            "classifier.bias",
        }
    # The full model saves as usual and, on raw audio, gives what the trained head gives on cached states.
    model.save_pretrained(tmp_path / "model")
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "model")
    torch.testing.assert_close(
        full_model_logits(reloaded, feature_extractor, dataset["waveform"]),
        torch.as_tensor(trainer.predict(dataset).predictions),
        atol=1e-5,
        rtol=1e-5,
    )
