from pathlib import Path

import numpy as np
import torch
from transformers import Wav2Vec2FeatureExtractor

from ser_hf import load_corpus, prepare_audio
from ser_hf.inputs.collators import (
    PAD_TO_MULTIPLE_OF,
    AudioClassificationCollator,
    clip_seed,
    padding_multiple,
    random_crop,
)
from tests.conftest import RAVDESS_SAMPLE


def _extractor():
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )


def test_dynamic_padding_pads_to_the_longest_clip_of_the_batch_only():
    rows = [{"waveform": np.ones(n, dtype=np.float32) * (i + 1), "label": i} for i, n in enumerate([800, 1600, 400])]
    batch = AudioClassificationCollator(_extractor())(rows)
    assert batch["input_values"].shape == (3, 1600)
    assert batch["attention_mask"].sum(dim=1).tolist() == [800, 1600, 400]
    assert torch.equal(batch["labels"], torch.tensor([0, 1, 2]))
    assert torch.all(batch["input_values"][2, 400:] == 0)


def test_training_crops_are_random_windows_of_the_clip_and_reproducible():
    waveform = np.arange(32000, dtype=np.float32)
    rng = np.random.default_rng(0)
    crops = [random_crop(waveform, 8000, rng) for _ in range(20)]
    assert all(len(c) == 8000 and np.all(np.diff(c) == 1) for c in crops)
    assert len({int(c[0]) for c in crops}) > 10
    assert len(random_crop(waveform[:100], 8000, rng)) == 100
    rows = [{"waveform": waveform, "label": 0}, {"waveform": waveform[:4000], "label": 1}]
    first = AudioClassificationCollator(_extractor(), max_duration_seconds=0.5, seed=3)(rows)
    again = AudioClassificationCollator(_extractor(), max_duration_seconds=0.5, seed=3)(rows)
    assert first["input_values"].shape == (2, 8000)
    assert torch.equal(first["input_values"], again["input_values"])


def test_a_clips_draws_do_not_depend_on_where_the_corpus_lies():
    """Crops and augmentation are seeded by the clip's folder and file name, not its whole path: the same corpus copied
    to another folder (another machine, a test's temporary folder) trains on the same draws; another clip does not."""
    waveform = np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    here, there = "/data/ravdess/Actor_01/03-01-05-01-01-01-01.flac", "/tmp/x/Actor_01/03-01-05-01-01-01-01.flac"
    assert clip_seed(here) == clip_seed(Path(there)) != clip_seed("/data/ravdess/Actor_02/03-01-05-01-01-01-01.flac")

    def crops(paths):
        collator = AudioClassificationCollator(_extractor(), max_duration_seconds=0.25, seed=3)
        return collator([{"waveform": waveform, "label": 0, "path": path} for path in paths])["input_values"]

    assert torch.equal(crops([here, here]), crops([there, there]))
    assert not torch.equal(crops([here]), crops(["/data/ravdess/Actor_02/03-01-05-01-01-01-01.flac"]))


def test_collates_prepared_real_clips(tmp_path):
    dataset = prepare_audio(load_corpus("ravdess", RAVDESS_SAMPLE / "Actor_01"), num_proc=1, cache_dir=tmp_path)
    rows = [dataset[i] for i in range(4)]
    batch = AudioClassificationCollator(_extractor(), extra_columns=["speaker_id"])(rows)
    lengths = [len(r["waveform"]) for r in rows]
    assert batch["input_values"].shape == (4, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    assert batch["speaker_id"] == ["01"] * 4


def test_masked_batches_are_padded_to_a_multiple_of_samples_without_changing_a_clips_logits():
    from tests.conftest_models import build_tiny

    model, feature_extractor = build_tiny("crnn")
    model.eval()
    rng = np.random.default_rng(0)
    rows = [{"waveform": rng.standard_normal(n).astype(np.float32)} for n in (16000, 24100)]
    assert padding_multiple(feature_extractor) == PAD_TO_MULTIPLE_OF
    longest = AudioClassificationCollator(feature_extractor)(rows)
    collator = AudioClassificationCollator(feature_extractor, pad_to_multiple_of=padding_multiple(feature_extractor))
    multiple = collator(rows)
    # 24,100 samples padded to 24,576 (6 x 4,096): more padded frames, the same real ones.
    assert multiple["input_features"].shape[1] > longest["input_features"].shape[1]
    assert torch.equal(multiple["attention_mask"].sum(1), longest["attention_mask"].sum(1))
    with torch.no_grad():
        torch.testing.assert_close(model(**multiple).logits, model(**longest).logits)
    # An extractor without an attention mask (a group-norm encoder's): padding would change the outputs, none added.
    assert padding_multiple(Wav2Vec2FeatureExtractor(return_attention_mask=False)) is None
