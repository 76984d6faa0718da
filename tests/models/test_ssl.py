"""SSL encoders: padding invariance, freezing regimes, LoRA and merging, parameter accounting, checkpoint loading."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForAudioClassification, Wav2Vec2ForSequenceClassification

from ser_hf.models import (
    SerWav2Vec2ForSequenceClassification,
    build_ssl_classifier,
    build_ssl_feature_extractor,
    count_parameters,
    merge_lora,
    ssl_lora_config,
)
from tests.conftest_models import LABELS, SSL_KINDS, build_tiny, featurize, load_clip, tiny_ssl_config

# Parameter counts of the tiny wav2vec2 (hidden 16, 2 layers, intermediate 37, conv_dim 3 x 32, kernel 8, no conv
# bias, layer-norm feature encoder, projector 8, 7 labels), derived by hand from the architecture.
FEATURE_ENCODER = (1 * 32 * 8 + 2 * 32) + 2 * (32 * 32 * 8 + 2 * 32)  # convolutions + their layer norms
ENCODER_LAYER = 4 * (16 * 16 + 16) + 2 * 16 + (16 * 37 + 37) + (37 * 16 + 16) + 2 * 16  # attention, norms, FFN
MEAN_HEAD = (16 * 8 + 8) + (8 * 7 + 7)  # projector + classifier
LORA_ADAPTERS = 2 * 4 * 4 * (16 + 16)  # 2 layers x 4 attention projections x rank 4 x (in + out)


def _training_inputs(feature_extractor):
    inputs = featurize(feature_extractor, [load_clip(0, 0.5), load_clip(1, 0.4)])
    return {**inputs, "labels": torch.tensor([1, 3])}


def _train(model, inputs, steps=1):
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)  # all parameters: freezing must hold regardless
    for _ in range(steps):
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("kind", SSL_KINDS)
def test_padding_does_not_change_a_clips_logits(kind):
    torch.manual_seed(0)
    model, feature_extractor = build_tiny(kind)
    model.eval()
    clips = [load_clip(0, 0.9), load_clip(1, 0.5), load_clip(2, 0.3)]
    with torch.no_grad():
        batched = model(**featurize(feature_extractor, clips)).logits
        alone = torch.cat([model(**featurize(feature_extractor, [clip])).logits for clip in clips])
    # data2vec-audio's positional embedding stacks convolutions with layer norms between them and zeroes the padding
    # only before the first, so a little of the padding reaches the last frames of a clip (transformers' behaviour).
    atol = 5e-3 if kind.startswith("data2vec-audio") else 1e-5
    torch.testing.assert_close(batched, alone, atol=atol, rtol=1e-4)


@pytest.mark.parametrize(
    "regime, frozen_prefixes",
    [
        (dict(freeze_feature_encoder=False), ()),
        (dict(), ("wav2vec2.feature_extractor.",)),
        (
            dict(num_frozen_layers=1),
            (
                "wav2vec2.feature_extractor.",
                "wav2vec2.feature_projection.",
                "wav2vec2.masked_spec_embed",
                "wav2vec2.encoder.pos_conv_embed.",
                "wav2vec2.encoder.layer_norm.",
                "wav2vec2.encoder.layers.0.",
            ),
        ),
        (dict(freeze_base_model=True), ("wav2vec2.",)),
    ],
    ids=["full", "frozen-feature-encoder", "frozen-1-layer", "fast"],
)
def test_training_step_leaves_frozen_parameters_bit_identical(regime, frozen_prefixes):
    torch.manual_seed(0)
    # SpecAugment on, so the masked-frame embedding gets a gradient whenever it is trainable.
    model, feature_extractor = build_tiny(
        "wav2vec2-attentive_statistics",
        use_weighted_layer_sum=True,
        config_overrides=dict(mask_time_prob=0.5, mask_time_length=2),
        **regime,
    )
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    frozen = {name for name in before if name.startswith(frozen_prefixes)}
    assert frozen == {name for name, parameter in model.named_parameters() if not parameter.requires_grad}

    _train(model, _training_inputs(feature_extractor))

    # The attention scores' last bias adds one constant to every frame's score, which the softmax over time removes:
    # its gradient is zero up to float rounding, so whether a step moves it depends on rounding alone.
    shift_invariant = {"pooler.attention.2.bias"}
    for name, parameter in model.named_parameters():
        if name in frozen:
            assert torch.equal(parameter, before[name]), f"frozen {name} changed"
        elif name not in shift_invariant:
            assert not torch.equal(parameter, before[name]), f"trainable {name} did not change"
    # The head of a pooling model includes the attention pooling and the layer weights.
    assert {"layer_weights", "pooler.attention.0.weight", "projector.weight"} <= set(before) - frozen


@pytest.mark.parametrize(
    "regime, records_feature_encoder",
    [
        (dict(freeze_feature_encoder=False), True),
        (dict(), False),
        (dict(num_frozen_layers=1), False),
        (dict(freeze_base_model=True), False),
        (dict(lora_config=ssl_lora_config(r=4)), False),
    ],
    ids=["full", "frozen-feature-encoder", "frozen-1-layer", "fast", "lora"],
)
def test_frozen_feature_encoder_is_left_out_of_the_backward_pass(regime, records_feature_encoder):
    """transformers' feature encoder marks the waveform as requiring grad unless `freeze_feature_encoder()` ran: every
    regime that freezes it (LoRA and FAST included) must call it, or autograd records its convolutions for nothing."""
    torch.manual_seed(0)
    model, feature_extractor = build_tiny("wav2vec2-mean", **regime)
    outputs = []
    encoder = model.get_base_model().wav2vec2 if hasattr(model, "get_base_model") else model.wav2vec2
    hook = encoder.feature_extractor.register_forward_hook(lambda module, args, output: outputs.append(output))
    model.train()
    model(**_training_inputs(feature_extractor)).loss.backward()
    hook.remove()
    assert outputs[0].requires_grad is records_feature_encoder


def test_lora_trains_adapters_and_head_only_and_merges_exactly(tmp_path):
    torch.manual_seed(0)
    model, feature_extractor = build_tiny(
        "wav2vec2-attentive_statistics", lora_config=ssl_lora_config(r=4, lora_dropout=0.0)
    )
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    inputs = _training_inputs(feature_extractor)

    _train(model, inputs, steps=2)  # lora_B starts at zero, so lora_A only gets a gradient from the second step

    for name, parameter in model.named_parameters():
        trained = "lora_" in name or ".modules_to_save." in name
        assert torch.equal(parameter, before[name]) != trained, name
    assert any(".pooler.modules_to_save." in name for name in before)

    model.eval()
    with torch.no_grad():
        adapted = model(input_values=inputs["input_values"], attention_mask=inputs["attention_mask"]).logits
        merged = merge_lora(model)
        assert type(merged) is SerWav2Vec2ForSequenceClassification
        torch.testing.assert_close(
            merged(input_values=inputs["input_values"], attention_mask=inputs["attention_mask"]).logits,
            adapted,
            atol=1e-5,
            rtol=1e-4,
        )
        merged.save_pretrained(tmp_path)
        with safe_open(tmp_path / "model.safetensors", "pt") as weights:
            assert not [key for key in weights.keys() if "lora" in key or "modules_to_save" in key]
        reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
        torch.testing.assert_close(
            reloaded(input_values=inputs["input_values"], attention_mask=inputs["attention_mask"]).logits,
            adapted,
            atol=1e-5,
            rtol=1e-4,
        )


def test_lora_wrapping_gives_no_deprecation_warning(recwarn):
    """peft reads transformers' deprecated is_gradient_checkpointing when it wraps a model: ser-hf's classifiers
    answer it without the FutureWarning every LoRA run printed (issue 33), and with the same meaning."""
    from tests.models.test_whisper import tiny_whisper_config

    lora = {"lora_config": ssl_lora_config(r=2)}
    models = [
        build_tiny("wav2vec2-attentive_statistics", **lora)[0],
        build_ssl_classifier(tiny_whisper_config(), LABELS, **lora),
    ]
    assert [str(warning.message) for warning in recwarn if issubclass(warning.category, FutureWarning)] == []
    for model in models:
        base = model.get_base_model()
        assert base.is_gradient_checkpointing is False
        base.gradient_checkpointing_enable()
        assert base.is_gradient_checkpointing is True


def test_parameter_accounting_for_every_regime():
    def counts(**regime):
        return count_parameters(build_tiny("wav2vec2-mean", **regime)[0])

    full = counts(freeze_feature_encoder=False)
    assert full.trainable == full.total
    assert counts().trainable == full.total - FEATURE_ENCODER
    assert counts(num_frozen_layers=1).trainable == ENCODER_LAYER + MEAN_HEAD
    assert counts(freeze_base_model=True).trainable == MEAN_HEAD

    lora_model = build_tiny("wav2vec2-mean", lora_config=ssl_lora_config(r=4))[0]
    lora = count_parameters(lora_model)
    assert lora.trainable == LORA_ADAPTERS + MEAN_HEAD
    # peft keeps the frozen original of every module it trains in full next to the trained copy.
    assert lora.total == full.total + LORA_ADAPTERS + MEAN_HEAD
    assert (lora.trainable, lora.total) == lora_model.get_nb_trainable_parameters()


def test_incompatible_regimes_are_rejected():
    config = tiny_ssl_config("wav2vec2")
    with pytest.raises(ValueError, match="freeze_feature_encoder"):
        build_ssl_classifier(config, LABELS, num_frozen_layers=1, freeze_feature_encoder=False)
    with pytest.raises(ValueError, match="LoRA"):
        build_ssl_classifier(config, LABELS, freeze_base_model=True, lora_config=ssl_lora_config())
    with pytest.raises(ValueError, match="1..2"):
        build_ssl_classifier(config, LABELS, num_frozen_layers=3)
    with pytest.raises(ValueError, match="task_type"):
        ssl_lora_config(task_type="SEQ_CLS")
    with pytest.raises(ValueError, match="not a supported speech encoder"):
        build_ssl_classifier(tiny_ssl_config("wav2vec2").__class__.__base__(), LABELS)


def test_checkpoint_path_loads_encoder_weights_into_a_new_head(tmp_path):
    """The `from_pretrained("facebook/wav2vec2-base", ...)` path, offline: a local checkpoint folder."""
    torch.manual_seed(0)
    pretrained, feature_extractor = build_tiny("wav2vec2-mean")
    pretrained.save_pretrained(tmp_path)
    feature_extractor.save_pretrained(tmp_path)

    # The checkpoint's head was trained for LABELS: other labels need an explicit new head.
    with pytest.raises(ValueError, match=r"fine-tuned for the labels \[.*\], not this task's \['calm', 'angry'\]"):
        build_ssl_classifier(tmp_path, ["calm", "angry"], pooling_mode="attentive_statistics")
    model = build_ssl_classifier(
        tmp_path, ["calm", "angry"], pooling_mode="attentive_statistics", reinitialize_head=True
    )

    assert type(model) is SerWav2Vec2ForSequenceClassification
    assert model.config.id2label == {0: "calm", 1: "angry"} and model.classifier.out_features == 2
    assert model.classifier.in_features == 2 * model.config.classifier_proj_size
    for name, parameter in pretrained.wav2vec2.state_dict().items():
        assert torch.equal(model.wav2vec2.state_dict()[name], parameter), name
    assert build_ssl_feature_extractor(tmp_path).to_dict() == feature_extractor.to_dict()

    plain = build_ssl_classifier(tmp_path, LABELS)
    assert type(plain) is Wav2Vec2ForSequenceClassification
    # Fine-tuned for exactly these labels: the head is kept, to go on training it.
    assert torch.equal(plain.classifier.weight, pretrained.classifier.weight)


def test_a_head_of_the_same_shape_for_other_labels_is_refused_or_started_anew(tmp_path):
    torch.manual_seed(0)
    pretrained, _ = build_tiny("wav2vec2-mean")
    pretrained.save_pretrained(tmp_path)
    other = list(reversed(LABELS.names))  # same number of classes, so the head's shape alone would not tell
    with pytest.raises(ValueError, match="reinitialize_head"):
        build_ssl_classifier(tmp_path, other)
    model = build_ssl_classifier(tmp_path, other, reinitialize_head=True)
    assert model.config.id2label == dict(enumerate(other))
    assert not torch.equal(model.classifier.weight, pretrained.classifier.weight)
    assert torch.equal(
        model.wav2vec2.encoder.layers[0].attention.q_proj.weight,
        pretrained.wav2vec2.encoder.layers[0].attention.q_proj.weight,
    )


def test_pickled_weights_load_only_when_allowed(tmp_path):
    pretrained, _ = build_tiny("wav2vec2-mean")
    pretrained.config.save_pretrained(tmp_path)
    torch.save(pretrained.state_dict(), tmp_path / "pytorch_model.bin")  # a checkpoint from before safetensors
    with pytest.raises(OSError, match="model.safetensors"):
        build_ssl_classifier(tmp_path, LABELS, use_safetensors=True)
    model = build_ssl_classifier(tmp_path, LABELS, use_safetensors=None)
    assert torch.equal(model.classifier.weight, pretrained.classifier.weight)


def test_a_cut_short_encoder_weights_file_is_named_before_training_starts(tmp_path):
    """A pretrained encoder folder whose model.safetensors an interrupted copy cut short: named, with what to do, as
    predict names a trained model's (not safetensors' "incomplete metadata" traceback)."""
    from ser_hf.models.runtime.location import ModelWeightsError

    model, extractor = build_tiny("wav2vec2-mean", config_overrides={"num_hidden_layers": 1})
    folder = tmp_path / "encoder"
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    with pytest.raises(ModelWeightsError, match=f"{weights} is damaged and cannot be loaded .* Copy or save"):
        build_ssl_classifier(str(folder), LABELS, freeze_base_model=True)
