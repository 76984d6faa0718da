"""Length-grouped batching of training clips: every clip once per epoch, little padding on real RAVDESS durations,
batches in random order, reproducible from (seed, epoch)."""

from __future__ import annotations

import numpy as np
import soundfile
import torch
from transformers import TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from ser_hf.training.trainer import EpochSeededLengthGroupedSampler, SERTrainer
from tests.conftest import RAVDESS_SAMPLE


def _sample_durations() -> list[float]:
    return [soundfile.info(path).duration for path in sorted(RAVDESS_SAMPLE.glob("Actor_0[1-6]/*.flac"))]


def _padded_fraction(order: list[int], lengths: list[float], batch_size: int) -> float:
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    real = sum(lengths[i] for batch in batches for i in batch)
    fed = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1 - real / fed


def test_every_clip_once_full_batches_first_and_the_longest_clip_in_the_first_batch():
    lengths = list(np.random.default_rng(0).uniform(1.0, 5.0, 103))
    sampler = EpochSeededLengthGroupedSampler(8, lengths, seed=3, batches_per_bucket=4)
    order = list(sampler)
    assert sorted(order) == list(range(103)) and len(sampler) == 103
    batches = sampler.batches()
    assert [len(b) for b in batches] == [8] * 12 + [7]
    assert int(np.argmax(lengths)) in batches[0]
    # The DataLoader cuts the stream into consecutive batches: they are the sampler's batches.
    assert [order[i : i + 8] for i in range(0, 103, 8)] == batches


def test_grouping_pads_real_ravdess_clips_far_less_than_transformers_sampler_or_random_batches():
    lengths = _sample_durations()  # 180 real clips, 3.1-5.0 s
    batch_size = 16
    ours = _padded_fraction(list(EpochSeededLengthGroupedSampler(batch_size, lengths, seed=0)), lengths, batch_size)
    theirs = _padded_fraction(
        list(LengthGroupedSampler(batch_size, lengths=lengths, generator=torch.Generator().manual_seed(0))),
        lengths,
        batch_size,
    )
    shuffled = _padded_fraction(np.random.default_rng(0).permutation(len(lengths)).tolist(), lengths, batch_size)
    assert ours < 0.03
    assert theirs > 3 * ours and shuffled > 3 * ours


def test_order_depends_on_seed_and_epoch_only_and_batch_lengths_do_not_drift():
    lengths = list(np.random.default_rng(1).uniform(1.0, 5.0, 400))
    sampler = EpochSeededLengthGroupedSampler(10, lengths, seed=7)
    torch.manual_seed(123)  # the global RNG plays no part
    first = list(sampler)
    torch.manual_seed(456)
    assert list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == sorted(first)
    # Batches come in random length order, not longest to shortest through the epoch.
    longest = [max(lengths[i] for i in batch) for batch in sampler.batches()[1:]]
    assert not all(a >= b for a, b in zip(longest, longest[1:]))
    assert abs(np.corrcoef(np.arange(len(longest)), longest)[0, 1]) < 0.5


def test_ser_trainer_groups_by_the_length_column(tmp_path):
    from datasets import Dataset

    dataset = Dataset.from_dict({"duration": [1.0, 3.0, 2.0, 4.0] * 5, "label": [0, 1] * 10})
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        train_sampling_strategy="group_by_length",
        length_column_name="duration",
        report_to="none",
        use_cpu=True,
        seed=5,
    )
    sampler = SERTrainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=dataset)._get_train_sampler()
    assert isinstance(sampler, EpochSeededLengthGroupedSampler)
    assert sampler.batch_size == 4 and sampler.seed == 5 and sampler.lengths == dataset["duration"]
