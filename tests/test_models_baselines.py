"""The baselines (CNN2D, CRNN, CNN1D, MFCC): padding invariance, training, configuration errors."""

from __future__ import annotations

import pytest
import torch

from ser_hf.models import (
    CNN1DConfig,
    CNN2DConfig,
    LogMelFeatureExtractor,
    MFCCConfig,
    MFCCFeatureExtractor,
    build_baseline,
    count_parameters,
)

from .conftest_models import BASELINE_KINDS, LABELS, build_tiny, featurize, load_clip


@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_padding_does_not_change_a_clips_logits(kind):
    torch.manual_seed(0)
    model, feature_extractor = build_tiny(kind)
    model.eval()
    clips = [load_clip(0, 1.2), load_clip(1, 0.7), load_clip(2, 0.45)]
    with torch.no_grad():
        batched = model(**featurize(feature_extractor, clips)).logits
        alone = torch.cat([model(**featurize(feature_extractor, [clip])).logits for clip in clips])
    assert batched.shape == (3, LABELS.num_classes)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_training_updates_every_parameter_and_fits_a_small_batch(kind):
    torch.manual_seed(0)
    model, feature_extractor = build_tiny(kind, classifier_dropout=0.0)
    model.train()
    inputs = featurize(feature_extractor, [load_clip(index, 0.8 + 0.1 * index) for index in range(4)])
    labels = torch.tensor([0, 1, 2, 3])
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2)

    losses = []
    for _ in range(30):
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    unchanged = [name for name, parameter in model.named_parameters() if torch.equal(parameter, before[name])]
    assert unchanged == []
    assert losses[-1] < 0.5 * losses[0], losses
    assert count_parameters(model).trainable == count_parameters(model).total


def test_model_reads_the_frame_mask_not_a_sample_mask():
    model, feature_extractor = build_tiny("cnn2d")
    inputs = featurize(feature_extractor, [load_clip(0, 0.5)])
    with pytest.raises(ValueError, match="frame-level|mask"):
        model(input_features=inputs["input_features"], attention_mask=torch.ones(1, 8000, dtype=torch.long))


def test_builder_keeps_model_and_feature_extractor_in_agreement():
    model, feature_extractor = build_baseline("cnn2d", LABELS, feature_extractor=LogMelFeatureExtractor(n_mels=48))
    assert model.config.num_mel_bins == feature_extractor.n_mels == 48
    model, _ = build_baseline("mfcc", ["calm", "angry"], feature_extractor=MFCCFeatureExtractor(n_mfcc=13))
    assert model.config.num_features == 13 + 5 and model.config.id2label == {0: "calm", 1: "angry"}
    with pytest.raises(ValueError, match="does not match"):
        build_baseline("crnn", LABELS, feature_extractor=LogMelFeatureExtractor(n_mels=40), num_mel_bins=64)
    with pytest.raises(TypeError, match="LogMelFeatureExtractor"):
        build_baseline("cnn2d", LABELS, feature_extractor=MFCCFeatureExtractor())
    with pytest.raises(ValueError, match="Unknown baseline"):
        build_baseline("resnet", LABELS)


def test_configs_reject_inconsistent_architectures():
    with pytest.raises(Exception, match="one entry per block"):
        CNN1DConfig(conv_channels=(8, 8), conv_kernel_sizes=(3,))
    with pytest.raises(Exception, match="pooling_mode"):
        CNN2DConfig(pooling_mode="median")
    with pytest.raises(Exception, match="head_type"):
        MFCCConfig(head_type="transformer")
