"""Cached augmented copies (cached_augmented_copies), in FAST mode and with the top layers fine-tuned: encoded once,
seeded, drawn per epoch in training only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, List, Value

from ser_hf.inputs.augment import WaveformAugmentation, check_model_augmentation
from ser_hf.inputs.augmented_copies import AugmentedCopiesCollator, copies_seed, copy_column
from ser_hf.inputs.collators import clip_seed
from ser_hf.inputs.encoder_states import encode_dataset
from ser_hf.inputs.top_layers import TopLayersMode
from ser_hf.inputs.top_layers_copies import LowerStatesCopiesCollator, TopLayersCopiesMode
from tests.conftest_models import LABELS, load_clip, tiny_whisper_fast


def _clips() -> Dataset:
    seconds = (0.5, 1.2, 0.8)
    return Dataset.from_dict(
        {
            "waveform": [load_clip(index, length) for index, length in enumerate(seconds)],
            "label": [0, 1, 2],
            "path": [f"clip{index}.wav" for index in range(3)],
        },
        features=Features({"waveform": List(Value("float32")), "label": LABELS, "path": Value("string")}),
    )


def test_augmented_copies_are_encoded_once_seeded_and_cached_apart(tmp_path):
    model, feature_extractor = tiny_whisper_fast()
    clips = _clips()
    # Noise as well: gain and band-limiting alone move a tiny random encoder's statistics by as little as 1e-5.
    augmentation = WaveformAugmentation(gain_prob=1.0, gain_db=(-12.0, -6.0), lowpass_prob=1.0, noise_prob=1.0)
    plain = np.asarray(encode_dataset(model, feature_extractor, clips, cache_dir=tmp_path)["encoder_states"])

    def copy(seed: int) -> np.ndarray:
        encoded = encode_dataset(
            model,
            feature_extractor,
            clips,
            cache_dir=tmp_path,
            augmentation=augmentation,
            augmentation_seed=seed,
            column=copy_column(1),
        )
        assert "encoder_states" not in encoded.column_names
        return np.asarray(encoded[copy_column(1)])

    first, again, other = copy(1), copy(1), copy(2)
    assert not np.allclose(first, plain, atol=1e-3)  # augmented, and not read from the plain clips' cache
    np.testing.assert_array_equal(first, again)  # the same draws: read back from its cache
    assert not np.allclose(first, other, atol=1e-4)  # another copy, other draws
    assert len(list(tmp_path.glob("encoder-*.arrow"))) == 3


def test_the_training_collator_draws_each_clip_or_a_copy_per_epoch_reproducibly():
    rows = [
        {"encoder_states": np.zeros((2, 4)), copy_column(1): np.ones((2, 4)), "label": 0, "path": f"c{index}"}
        for index in range(40)
    ]
    collator = AugmentedCopiesCollator(copies=1, seed=3)
    epoch0 = collator(rows)["encoder_states"][:, 0, 0]
    assert 0 < float(epoch0.sum()) < len(rows)  # some clips drew their copy, some themselves
    torch.testing.assert_close(collator(rows)["encoder_states"][:, 0, 0], epoch0)
    collator.epoch = 1
    assert not torch.equal(collator(rows)["encoder_states"][:, 0, 0], epoch0)


def test_a_merged_corpus_takes_each_clips_augmented_copy_from_the_cache_of_its_corpus(tmp_path, monkeypatch):
    """Issue 40's merged cache, for augmented copies too: a copy drawn for a clip (seeded by its folder and file
    name) is reused clip by clip in a merged dataset; the same samples under another name draw other augmentations,
    so they are encoded."""
    from datasets import concatenate_datasets

    from ser_hf.inputs import encoder_states

    model, feature_extractor = tiny_whisper_fast()
    augmentation = WaveformAugmentation(gain_prob=1.0, gain_db=(-12.0, -6.0), lowpass_prob=1.0, noise_prob=1.0)

    def copy(clips: Dataset, folder) -> np.ndarray:
        encoded = encode_dataset(
            model,
            feature_extractor,
            clips,
            cache_dir=folder,
            augmentation=augmentation,
            augmentation_seed=1,
            column=copy_column(1),
        )
        return np.asarray(encoded[copy_column(1)])

    clips = _clips()
    first, second = clips.select([0, 1]), clips.select([2])
    first_copies, second_copies = copy(first, tmp_path), copy(second, tmp_path)
    counts: list[int] = []
    encode_batch = encoder_states._encode_batch
    monkeypatch.setattr(
        encoder_states,
        "_encode_batch",
        lambda batch, **kw: counts.append(len(batch["waveform"])) or encode_batch(batch, **kw),
    )
    renamed = clips.select([1]).map(lambda row: {"path": "elsewhere.wav"})
    merged = concatenate_datasets([second, first.select([1, 0]), renamed])
    reused = copy(merged, tmp_path)
    assert sum(counts) == 1  # the renamed clip only: its draws differ
    np.testing.assert_array_equal(reused[:3], np.stack([second_copies[0], first_copies[1], first_copies[0]]))
    # Encoded anew, each clip batched with others: the same draws, to the batches' rounding.
    np.testing.assert_allclose(reused, copy(merged, tmp_path / "fresh"), atol=5e-3)
    assert not np.allclose(reused[3], reused[1], atol=1e-4)  # clip 1 under its own name and under another


def test_the_top_layers_collator_draws_a_clips_pooled_states_and_frames_from_the_same_copy():
    """finetune_top_layers with cached_augmented_copies: a row that draws its copy reads that copy's pooled states
    and its cached input to the first fine-tuned layer (its own length) together, never one without the other."""
    rows = [
        {
            "encoder_states": np.zeros((2, 4)),
            copy_column(1): np.ones((2, 4)),
            "lower_states": np.zeros((3, 4)),
            copy_column(1, "lower_states"): np.ones((5, 4)),
            "label": 0,
            "path": f"c{index}",
        }
        for index in range(40)
    ]
    batch = LowerStatesCopiesCollator(copies=1, seed=3)(rows)
    drew_copy = batch["encoder_states"][:, 0, 0] == 1
    assert 0 < int(drew_copy.sum()) < len(rows)
    assert torch.equal(batch["lower_states"][:, 0, 0] == 1, drew_copy)
    assert torch.equal(batch["frame_mask"].sum(dim=1), torch.where(drew_copy, 5, 3))
    # The same draws as FAST mode's collator: one definition of which clip reads which copy.
    fast = AugmentedCopiesCollator(copies=1, seed=3)(rows)
    torch.testing.assert_close(fast["encoder_states"], batch["encoder_states"])


def test_top_layers_copies_cache_each_copys_frames_and_leave_the_clips_own_as_they_were(tmp_path, tiny_ravdess):
    from transformers import set_seed

    from ser_hf.recipe.parser import parse_recipe
    from ser_hf.training.data_stage import load_dataset_from_args
    from ser_hf.training.model_stage import recipe_input_mode
    from tests.inputs.test_modes import TINY_WHISPER_FAST
    from tests.recipe.test_parser import write_recipe

    def prepared(name: str, **values) -> tuple[type, Dataset]:
        recipe = write_recipe(
            tmp_path / f"{name}.yaml", tiny_ravdess, output_dir=str(tmp_path / name), **TINY_WHISPER_FAST, **values
        )
        model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe)])
        mode = recipe_input_mode(model_args, data_args, augmentation_args)
        set_seed(training_args.seed)
        return type(mode), mode.prepare_corpus(load_dataset_from_args(data_args), training_args)

    plain_mode, plain = prepared("plain", finetune_top_layers=1)
    mode, copies = prepared("copies", finetune_top_layers=1, cached_augmented_copies=1, noise_prob=1.0)
    assert plain_mode is TopLayersMode and mode is TopLayersCopiesMode
    for column in ("encoder_states", "lower_states"):
        np.testing.assert_array_equal(np.asarray(copies[0][column]), np.asarray(plain[0][column]))
    own, copy = (np.asarray(copies[0][name]) for name in ("lower_states", copy_column(1, "lower_states")))
    assert own.shape == copy.shape and not np.allclose(own, copy, atol=1e-3)  # noise, not the clip again
    assert not np.allclose(copies[0]["encoder_states"], copies[0][copy_column(1)], atol=1e-4)


def test_the_copies_are_drawn_from_augmentation_seed_not_the_training_seed(tmp_path, tiny_ravdess):
    from ser_hf.recipe.parser import parse_recipe
    from ser_hf.training.data_stage import load_dataset_from_args
    from ser_hf.training.model_stage import recipe_input_mode
    from tests.inputs.test_modes import TINY_WHISPER_FAST
    from tests.recipe.test_parser import write_recipe

    def first_copy(name: str, **values) -> np.ndarray:
        recipe = write_recipe(
            tmp_path / f"{name}.yaml",
            tiny_ravdess,
            output_dir=str(tmp_path / name),
            **TINY_WHISPER_FAST,
            cached_augmented_copies=1,
            telephone_prob=0.5,
            noise_prob=0.5,
            **values,
        )
        model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe)])
        mode = recipe_input_mode(model_args, data_args, augmentation_args)
        encoded = mode.prepare_corpus(load_dataset_from_args(data_args), training_args)
        return np.stack([np.asarray(row) for row in encoded[copy_column(1)]])

    # (The tiny encoder is initialised from the training seed, so the training seed stays 1 here.)
    assert not np.allclose(first_copy("default", seed=1), first_copy("other", seed=1, augmentation_seed=5), atol=1e-4)
    training_args = SimpleNamespace(seed=7)
    assert copies_seed(SimpleNamespace(augmentation_seed=None), training_args) == 7
    assert copies_seed(SimpleNamespace(augmentation_seed=5), training_args) == 5


def test_a_copy_in_one_condition_is_standardised_with_its_speakers_statistics_over_the_copy(tmp_path, tiny_ravdess):
    """Issue 96: a copy in one recording condition (``augmented_copy_conditions``) applies that perturbation to every
    clip, and the training collator standardises a row drawn from it with its speaker's statistics over the copy, as
    ``ser-hf evaluate --conditions`` standardises a condition; the clip itself and a mixed copy keep the speaker's
    statistics of their own clips."""
    from datasets import DatasetDict

    from ser_hf.inputs.augmented_copies import DRAWN_COPY
    from ser_hf.inputs.speaker_normalization import fit_normalization, speaker_statistics
    from ser_hf.recipe.parser import parse_recipe
    from ser_hf.training.data_stage import load_dataset_from_args
    from ser_hf.training.model_stage import build_model, recipe_input_mode
    from tests.inputs.test_modes import TINY_WHISPER_FAST
    from tests.recipe.test_parser import write_recipe

    recipe = write_recipe(
        tmp_path / "rooms.yaml",
        tiny_ravdess,
        output_dir=str(tmp_path / "rooms"),
        **{**TINY_WHISPER_FAST, "feature_extractor_config": {"normalization": "speaker"}},
        cached_augmented_copies=2,
        augmented_copy_conditions=["mixed", "reverb"],
        noise_prob=0.5,
        reverb_rt60=[0.6, 0.6],
    )
    model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe)])
    assert augmentation_args.own_statistics_copies() == [2]
    room = augmentation_args.copy_augmentation(2, 16000)
    assert (room.reverb_prob, room.noise_prob) == (1.0, 0.0)  # every clip of the copy in a room, nothing else
    mode = recipe_input_mode(model_args, data_args, augmentation_args)
    train = mode.prepare_corpus(load_dataset_from_args(data_args), training_args)
    _, feature_extractor = build_model(model_args, augmentation_args, train.features["label"])
    plan = fit_normalization(feature_extractor, DatasetDict(train=train))
    training, _ = mode.collators(feature_extractor, DatasetDict(train=train), training_args, normalization=plan)

    speaker = train[0]["speaker_id"]
    in_room = train.select_columns([copy_column(2), "speaker_id"]).rename_column(copy_column(2), "encoder_states")
    expected = speaker_statistics(feature_extractor, in_room)[speaker].statistics(feature_extractor.variance_floor)
    rows = [dict(train[index]) for index in range(len(train)) if train[index]["speaker_id"] == speaker]
    drawn = {}
    for epoch in range(12):  # until the clip itself, the mixed copy and the room copy have each been drawn
        training.epoch = epoch
        batch = training(rows)
        for row, mean in zip(rows, batch["state_mean"]):
            choice = int(np.random.default_rng([training.seed, epoch, clip_seed(row["path"])]).integers(0, 3))
            drawn.setdefault(choice, mean.numpy())
    assert set(drawn) == {0, 1, 2}
    np.testing.assert_allclose(drawn[2], expected[0].reshape(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(drawn[0], plan.speaker_statistics[speaker][0].reshape(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(drawn[1], drawn[0])  # a mixed copy: the statistics of the speaker's own clips
    assert not np.allclose(drawn[2], drawn[0], atol=1e-4)
    assert DRAWN_COPY not in batch


def test_copy_conditions_are_checked_when_the_recipe_is_read():
    from ser_hf.errors import RecipeError
    from ser_hf.recipe.augmentation_arguments import AugmentationArguments

    with pytest.raises(RecipeError, match=r"augmented_copy_conditions: 'room' is not .* reverb"):
        AugmentationArguments(reverb_prob=0.3, cached_augmented_copies=1, augmented_copy_conditions=["room"])
    with pytest.raises(RecipeError, match=r"augmented_copy_conditions: 2 entries .* cached_augmented_copies: 1"):
        AugmentationArguments(
            reverb_prob=0.3, cached_augmented_copies=1, augmented_copy_conditions=["mixed", "reverb"]
        )
    top_layers = SimpleNamespace(
        is_baseline=False,
        model_type="whisper",
        cache_feature_encoder=False,
        cache_encoder_outputs=True,
        finetune_top_layers=2,
    )
    rooms = AugmentationArguments(cached_augmented_copies=1, augmented_copy_conditions=["reverb"])
    with pytest.raises(RecipeError, match="finetune_top_layers: 2 computes the statistics again"):
        check_model_augmentation(rooms, top_layers)
    # A room copy alone is enough.
    check_model_augmentation(rooms, SimpleNamespace(**{**vars(top_layers), "finetune_top_layers": 0}))
