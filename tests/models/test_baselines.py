"""The baselines (CNN2D, CRNN, CNN1D, MFCC, parallel CNN + transformer, CNN + attention-LSTM): padding invariance,
training, configuration errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser_hf.models import (
    CNN1DConfig,
    CNN2DConfig,
    CNNAttentionLSTMConfig,
    LogMelFeatureExtractor,
    MFCCConfig,
    MFCCFeatureExtractor,
    ParallelCNNTransformerConfig,
    build_baseline,
    count_parameters,
)
from tests.conftest_models import BASELINE_KINDS, LABELS, build_tiny, featurize, load_clip


def test_read_only_audio_is_featurized_without_a_warning(recwarn):
    """Audio decoded by datasets or read from a buffer is often a read-only array: the extractor copies it, where
    torch.as_tensor warned "The given NumPy array is not writable" (issue 33)."""
    clip = load_clip(0, 1.0)
    read_only = clip.copy()
    read_only.flags.writeable = False
    batch = np.stack([read_only, read_only])
    batch.flags.writeable = False
    extractor = LogMelFeatureExtractor(n_mels=32)
    expected = extractor(clip, sampling_rate=16000, return_tensors="pt")["input_features"][0]
    for audio in (read_only, [read_only, read_only[:8000]], batch):
        features = extractor(audio, sampling_rate=16000, return_tensors="pt")["input_features"]
        torch.testing.assert_close(features[0], expected)
    assert [str(warning.message) for warning in recwarn] == []


@pytest.mark.parametrize("kind", (*BASELINE_KINDS, "cnn2d-flatten"))
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


@pytest.mark.parametrize("kind", (*BASELINE_KINDS, "cnn2d-flatten"))
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
    with pytest.raises(Exception, match="frequency_pooling"):
        CNN2DConfig(frequency_pooling="sum")
    with pytest.raises(Exception, match="head_type"):
        MFCCConfig(head_type="transformer")
    with pytest.raises(Exception, match="branch_kernel_sizes must be positive odd"):
        ParallelCNNTransformerConfig(branch_kernel_sizes=(3, 4))
    with pytest.raises(Exception, match="transformer_num_heads"):
        ParallelCNNTransformerConfig(transformer_hidden_size=30, transformer_num_heads=4)
    with pytest.raises(Exception, match="num_attention_heads"):
        CNNAttentionLSTMConfig(lstm_hidden_size=5, num_attention_heads=4)


def test_new_baselines_have_their_seeds_architecture():
    model, feature_extractor = build_baseline("parallel_cnn_transformer", LABELS)
    assert model.config.model_type == "ser_parallel_cnn_transformer" and model.config.num_mel_bins == 64
    kernels = [branch[0].conv.kernel_size for branch in model.cnn_branches]
    assert kernels == [(3, 3), (5, 5)]  # the seeds' 3x3 and 5x5 branches, beside a transformer encoder
    assert len(model.transformer.layers) == 2
    assert model.classifier.in_features == 2 * 64 + 64  # two CNN branch vectors and the transformer's, concatenated
    model, _ = build_baseline("cnn_attention_lstm", LABELS, lstm_hidden_size=32)
    assert model.config.model_type == "ser_cnn_attention_lstm" and model.lstm.bidirectional
    assert model.attention.embed_dim == 64 and model.encoder[0].conv.in_channels == 64
    assert isinstance(feature_extractor, LogMelFeatureExtractor)
