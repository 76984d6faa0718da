"""Building blocks of the models: masked pooling and batch norm, feature extractors, label maps."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from ser_hf.models import (
    FRAME_FEATURE_NAMES,
    POOLING_MODES,
    LogMelFeatureExtractor,
    MFCCFeatureExtractor,
    TemporalPooling,
    label_maps,
)
from ser_hf.models.masked_conv import MaskedBatchNorm
from ser_hf.models.pooling import masked_mean_and_std
from tests.conftest_models import LABELS, load_clip


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_pooling_ignores_whatever_fills_the_padding(mode):
    torch.manual_seed(0)
    pooling = TemporalPooling(6, mode, attention_hidden_size=5)
    clips = [torch.randn(9, 6), torch.randn(4, 6)]
    batch = torch.full((2, 9, 6), 1e4)  # padding that would dominate any statistic it leaked into
    batch[0], batch[1, :4] = clips[0], clips[1]
    mask = torch.tensor([[True] * 9, [True] * 4 + [False] * 5])

    pooled = pooling(batch, mask)

    assert pooled.shape == (2, pooling.output_size)
    for row, clip in enumerate(clips):
        torch.testing.assert_close(pooled[row], pooling(clip[None])[0])


def test_masked_statistics_match_torch_on_the_real_frames():
    torch.manual_seed(0)
    frames = torch.randn(2, 7, 3)
    mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
    mean, std = masked_mean_and_std(frames, mask)
    torch.testing.assert_close(mean[1], frames[1, :3].mean(0))
    torch.testing.assert_close(std[1], frames[1, :3].std(0, unbiased=False), atol=1e-4, rtol=1e-4)


def test_masked_batch_norm_takes_statistics_from_real_frames_only():
    torch.manual_seed(0)
    norm, reference = MaskedBatchNorm(3), torch.nn.BatchNorm1d(3)
    batch = torch.randn(2, 3, 8)
    batch[1, :, 5:] = 1e3  # padding
    mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    real_frames = torch.cat([batch[0], batch[1, :, :5]], dim=-1)[None]  # (1, channels, real frames)

    output = norm(batch, mask)

    torch.testing.assert_close(output[1, :, :5], reference(real_frames)[0, :, 8:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    torch.testing.assert_close(norm.running_var, reference.running_var)
    norm.eval(), reference.eval()
    torch.testing.assert_close(norm(batch, mask), reference(batch))


def test_masked_batch_norm_in_bfloat16_keeps_its_buffers_in_their_dtype():
    """A model cast to bf16 (or run under autocast with float32 buffers) trains: statistics are taken in float32 and
    stored in the buffers' own dtype, and the output has the input's."""
    batch, mask = torch.randn(2, 3, 8), torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    for module_dtype in (torch.float32, torch.bfloat16):
        norm = MaskedBatchNorm(3).to(module_dtype)
        output = norm(batch.to(torch.bfloat16), mask)
        assert output.dtype == torch.bfloat16 and norm.running_mean.dtype == module_dtype
        assert norm.num_batches_tracked == 1 and not torch.equal(norm.running_mean, torch.zeros(3, dtype=module_dtype))


@pytest.mark.parametrize("extractor", [LogMelFeatureExtractor(n_mels=40), MFCCFeatureExtractor()], ids=type)
def test_features_of_a_clip_do_not_depend_on_its_batch(extractor):
    long_clip, short_clip = load_clip(0, 1.3), load_clip(1, 0.6)
    batch = extractor([long_clip, short_clip], sampling_rate=16000, return_tensors="pt")
    alone = extractor(short_clip, sampling_rate=16000, return_tensors="pt")

    frames = int(alone["attention_mask"].sum())
    assert frames == 1 + (len(short_clip) - extractor.n_fft) // extractor.hop_length
    assert batch["attention_mask"][1].sum() == frames
    torch.testing.assert_close(batch["input_features"][1, :frames], alone["input_features"][0])
    assert torch.all(batch["input_features"][1, frames:] == extractor.padding_value)


def test_unpadded_features_padded_by_the_collator_equal_padded_extraction():
    extractor = LogMelFeatureExtractor(n_mels=32)
    clips = [load_clip(2, 0.9), load_clip(3, 0.5)]
    per_clip = extractor(clips, sampling_rate=16000, padding=False)
    collated = extractor.pad(
        [{"input_features": features} for features in per_clip["input_features"]], return_tensors="pt"
    )
    direct = extractor(clips, sampling_rate=16000, return_tensors="pt")
    torch.testing.assert_close(collated["input_features"], direct["input_features"])
    torch.testing.assert_close(collated["attention_mask"].long(), direct["attention_mask"].long())


def test_log_mel_matches_librosa():
    clip = load_clip(4, 1.0)
    extractor = LogMelFeatureExtractor(n_mels=40, normalization="none")
    ours = extractor(clip, sampling_rate=16000, return_tensors="np")["input_features"][0]
    power = librosa.feature.melspectrogram(
        y=clip, sr=16000, n_fft=400, hop_length=160, n_mels=40, center=False, power=2.0
    )
    reference = librosa.power_to_db(power, top_db=80.0).T
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-4)


def test_mfcc_and_frame_features_match_librosa():
    clip = load_clip(5, 1.0)
    extractor = MFCCFeatureExtractor(n_mfcc=40, n_mels=64)
    features = extractor(clip, sampling_rate=16000, return_tensors="np")["input_features"][0]
    assert features.shape[1] == 40 + len(FRAME_FEATURE_NAMES) == len(extractor.feature_names)
    frame = dict(n_fft=400, hop_length=160, center=False)
    references = {
        "mfcc": librosa.feature.mfcc(y=clip, sr=16000, n_mfcc=40, n_mels=64, **frame),
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(clip, frame_length=400, hop_length=160, center=False),
        "rms": librosa.feature.rms(y=clip, frame_length=400, hop_length=160, center=False),
        "spectral_centroid": librosa.feature.spectral_centroid(y=clip, sr=16000, **frame),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=clip, sr=16000, **frame),
        "spectral_rolloff": librosa.feature.spectral_rolloff(y=clip, sr=16000, roll_percent=0.85, **frame),
    }
    np.testing.assert_allclose(features[:, :40], references.pop("mfcc").T, atol=5e-3, rtol=1e-3)
    for column, name in enumerate(FRAME_FEATURE_NAMES, start=40):
        np.testing.assert_allclose(features[:, column], references[name][0], rtol=1e-3, atol=1e-3, err_msg=name)


def test_utterance_normalisation_standardises_each_feature_over_real_frames():
    extractor = LogMelFeatureExtractor(n_mels=16)
    batch = extractor([load_clip(0, 1.0), load_clip(1, 0.4)], sampling_rate=16000, return_tensors="pt")
    frames = int(batch["attention_mask"][1].sum())
    real = batch["input_features"][1, :frames]
    torch.testing.assert_close(real.mean(0), torch.zeros(16), atol=1e-4, rtol=0)
    torch.testing.assert_close(real.std(0, unbiased=False), torch.ones(16), atol=1e-3, rtol=0)


def test_feature_extractor_rejects_wrong_rate_and_reloads_its_settings(tmp_path):
    extractor = MFCCFeatureExtractor(n_mfcc=13, n_mels=26, hop_length=320, top_db=60.0)
    with pytest.raises(ValueError, match="16000 Hz"):
        extractor(load_clip(0, 0.5), sampling_rate=44100)
    with pytest.raises(ValueError, match="truncation"):
        extractor(load_clip(0, 0.5), sampling_rate=16000, padding="max_length", max_length=1000)
    truncated = extractor(load_clip(0, 0.5), sampling_rate=16000, truncation=True, max_length=1000)
    assert truncated["attention_mask"][0].sum() == 1 + (1000 - 400) // 320

    extractor.save_pretrained(tmp_path)
    reloaded = MFCCFeatureExtractor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == extractor.to_dict()
    assert reloaded.feature_size == 13 + len(FRAME_FEATURE_NAMES)


def test_label_maps_from_class_label_names_and_explicit_maps():
    id2label, label2id = label_maps(LABELS)
    assert id2label[3] == "angry" and label2id["surprised"] == 6
    assert label_maps(["a", "b"]) == ({0: "a", 1: "b"}, {"a": 0, "b": 1})
    assert label_maps(id2label={"1": "b", "0": "a"}) == ({0: "a", 1: "b"}, {"a": 0, "b": 1})
    with pytest.raises(ValueError, match="unique"):
        label_maps(["a", "a"])
    with pytest.raises(ValueError, match="0..1"):
        label_maps(id2label={0: "a", 2: "b"})
    with pytest.raises(ValueError, match="does not invert"):
        label_maps(id2label={0: "a", 1: "b"}, label2id={"a": 1, "b": 0})
    with pytest.raises(ValueError, match="needs labels"):
        label_maps()
