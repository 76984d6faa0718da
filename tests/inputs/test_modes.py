"""The input modes behind one interface: each recipe gets its mode (raw audio, cached feature-encoder outputs, FAST
mode, openSMILE functionals), and the columns and collators the mode makes give batches the tiny model trains on;
`ser-hf train` and the leakage study prepare the corpus through the same call."""

from __future__ import annotations

import contextlib

import pytest
import torch
from transformers import TrainingArguments, set_seed

from ser_hf.errors import RecipeError
from ser_hf.experiments.leakage import run_leakage_study
from ser_hf.inputs.augmented_copies import AugmentedCopiesMode
from ser_hf.inputs.base import SPLIT_COLUMNS
from ser_hf.inputs.fast_mode import CachedEncoderHead, FastMode
from ser_hf.inputs.feature_encoder_cache import FeatureEncoderCacheMode
from ser_hf.inputs.functionals import FunctionalsMode
from ser_hf.inputs.modes import INPUT_MODES
from ser_hf.inputs.raw_audio import RawAudioMode
from ser_hf.inputs.speaker_normalization import fit_normalization
from ser_hf.inputs.top_layers import CachedLowerLayersModel, TopLayersMode
from ser_hf.inputs.top_layers_copies import TopLayersCopiesMode
from ser_hf.recipe.parser import parse_recipe
from ser_hf.train import main
from ser_hf.training.data_stage import load_dataset_from_args, make_folds
from ser_hf.training.model_stage import build_model, recipe_input_mode
from tests.conftest_models import TINY_SSL, TINY_WHISPER
from tests.recipe.test_parser import write_recipe

TINY_CNN2D = dict(model_type="cnn2d", model_config={"conv_channels": [4, 8]})
TINY_WAV2VEC2 = dict(model_type="wav2vec2", model_config=TINY_SSL, max_duration_seconds=None)
TINY_WHISPER_FAST = dict(
    model_type="whisper",
    model_config={**TINY_WHISPER, "trim_window": True},
    freeze_base_model=True,
    cache_encoder_outputs=True,
    use_weighted_layer_sum=True,
    pooling_mode="layer_statistics",
    feature_extractor_config={"normalization": "global"},
    max_duration_seconds=None,
)
TINY_OPENSMILE = dict(
    model_type="opensmile",
    model_config={"hidden_sizes": [16]},
    feature_extractor_config={"feature_set": "eGeMAPSv02"},
    max_duration_seconds=None,
)

# recipe values -> the mode they get, and the columns its batches are made from
RECIPES = {
    "baseline": (TINY_CNN2D, RawAudioMode, ("waveform",)),
    "ssl without the feature-encoder cache": (
        {**TINY_WAV2VEC2, "cache_feature_encoder": False},
        RawAudioMode,
        ("waveform",),
    ),
    "ssl": (TINY_WAV2VEC2, FeatureEncoderCacheMode, ("extract_features",)),
    "ssl, FAST": (
        {**TINY_WAV2VEC2, "freeze_base_model": True, "cache_encoder_outputs": True},
        FastMode,
        ("encoder_states",),
    ),
    "whisper, FAST with augmented copies": (
        {**TINY_WHISPER_FAST, "cached_augmented_copies": 1, "gain_prob": 1.0},
        AugmentedCopiesMode,
        ("encoder_states", "encoder_states_copy1"),
    ),
    "whisper, top layer fine-tuned": (
        {**TINY_WHISPER_FAST, "finetune_top_layers": 1},
        TopLayersMode,
        ("encoder_states", "lower_states"),
    ),
    "whisper, top layer fine-tuned with augmented copies": (
        {**TINY_WHISPER_FAST, "finetune_top_layers": 1, "cached_augmented_copies": 1, "gain_prob": 1.0},
        TopLayersCopiesMode,
        ("encoder_states", "lower_states", "encoder_states_copy1", "lower_states_copy1"),
    ),
    "opensmile": (TINY_OPENSMILE, FunctionalsMode, ("functionals",)),
}


def test_every_mode_is_chosen_by_some_recipe():
    assert {mode for _, mode, _ in RECIPES.values()} == set(INPUT_MODES)


@pytest.mark.parametrize(
    ("cache_feature_encoder", "device", "mode_class"),
    [
        (None, "cpu", FeatureEncoderCacheMode),  # auto: cached on CPU
        (None, "cuda", RawAudioMode),  # auto: recomputed on a GPU until measured there
        (True, "cuda", FeatureEncoderCacheMode),  # the recipe wins on any device
        (False, "cpu", RawAudioMode),
    ],
)
def test_the_feature_encoder_cache_follows_the_device_unless_the_recipe_says(
    tmp_path, cache_feature_encoder, device, mode_class
):
    values = {**TINY_WAV2VEC2, "cache_feature_encoder": cache_feature_encoder}
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, output_dir=str(tmp_path / "run"), **values)
    model_args, data_args, augmentation_args, _ = parse_recipe([str(recipe)])
    assert type(recipe_input_mode(model_args, data_args, augmentation_args, device=device)) is mode_class


def test_the_feature_encoder_cache_defaults_to_the_device_torch_sees(tmp_path, monkeypatch):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, output_dir=str(tmp_path / "run"), **TINY_WAV2VEC2)
    model_args, data_args, augmentation_args, _ = parse_recipe([str(recipe)])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert type(recipe_input_mode(model_args, data_args, augmentation_args)) is RawAudioMode


@pytest.mark.parametrize("recipe_name", list(RECIPES))
def test_each_recipe_gets_its_mode_whose_batches_the_model_trains_on(tmp_path, tiny_ravdess, recipe_name):
    values, mode_class, input_columns = RECIPES[recipe_name]
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "run"), **values)
    model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe)])
    mode = recipe_input_mode(model_args, data_args, augmentation_args)
    assert type(mode) is mode_class

    # Once per corpus, then per split, as ser_hf.train and the leakage study call it.
    dataset = mode.prepare_corpus(load_dataset_from_args(data_args), training_args)
    ((_, splits),) = make_folds(dataset, data_args)
    set_seed(training_args.seed)  # as train_and_evaluate builds each split's model: FAST mode checks its encoder
    model, feature_extractor = build_model(model_args, augmentation_args, splits["train"].features["label"])
    normalization = fit_normalization(feature_extractor, splits)
    inputs = mode.fold_inputs(model, feature_extractor, splits, training_args)
    for name, split in inputs.items():  # the mode's own input, and the columns every split keeps; no audio to decode
        # Augmented copies are read in training only.
        columns = [column for column in input_columns if name == "train" or "_copy" not in column]
        assert set(split.column_names) - set(SPLIT_COLUMNS) <= {*columns, "num_samples"}
        assert set(columns) <= set(split.column_names) and "audio" not in split.column_names

    trained = mode.trained_model(model, feature_extractor, inputs)
    assert isinstance(trained, CachedEncoderHead) == (mode_class in (FastMode, AugmentedCopiesMode))
    assert isinstance(trained, CachedLowerLayersModel) == issubclass(mode_class, TopLayersMode)
    train_collator, eval_collator = mode.collators(
        feature_extractor, inputs, training_args, normalization=normalization, extra_columns=("path",)
    )
    rows = [inputs["train"][index] for index in range(3)]
    batch = train_collator(rows)
    if not issubclass(mode_class, FastMode):  # the clip paths the trainer names a bad batch's clips with
        assert batch.pop("path") == [str(row["path"]) for row in rows]
    trained.train()
    output = trained(**batch)
    assert output.logits.shape == (3, len(splits["train"].features["label"].names))
    output.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.parameters() if p.requires_grad)

    with torch.no_grad():
        evaluated = trained.eval()(**eval_collator([inputs["test"][index] for index in range(2)]))
    assert evaluated.logits.shape[0] == 2 and torch.isfinite(evaluated.logits).all()


@pytest.mark.parametrize("run", ["train", "leakage study"])
def test_train_and_the_leakage_study_encode_the_corpus_once_for_fast_mode_main_process_first(
    tmp_path, tiny_ravdess, monkeypatch, run
):
    waited_for = []
    original = TrainingArguments.main_process_first

    @contextlib.contextmanager
    def recording(self, local=True, desc="work"):
        waited_for.append(desc)
        with original(self, local=local, desc=desc):
            yield

    monkeypatch.setattr(TrainingArguments, "main_process_first", recording)
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        **RECIPES["ssl, FAST"][0],
    )
    if run == "train":
        main([str(recipe)])
    else:
        run_leakage_study([str(recipe)])
    assert waited_for[:2] == ["decoding the corpus", "encoding the corpus once (FAST mode)"]
    assert waited_for.count("encoding the corpus once (FAST mode)") == 1


def test_fast_mode_refuses_a_split_model_whose_encoder_is_not_the_one_cached(tmp_path, tiny_ravdess):
    values = RECIPES["ssl, FAST"][0]
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "run"), **values)
    model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe)])
    mode = recipe_input_mode(model_args, data_args, augmentation_args)
    dataset = mode.prepare_corpus(load_dataset_from_args(data_args), training_args)
    ((_, splits),) = make_folds(dataset, data_args)
    set_seed(training_args.seed + 1)
    model, feature_extractor = build_model(model_args, augmentation_args, splits["train"].features["label"])
    inputs = mode.fold_inputs(model, feature_extractor, splits, training_args)
    with pytest.raises(RuntimeError, match="differs from the one whose outputs were cached"):
        mode.trained_model(model, feature_extractor, inputs)


def test_top_layers_beyond_the_encoders_depth_are_refused_naming_the_key(tmp_path, tiny_ravdess):
    """finetune_top_layers may name every layer (the cache then holds the input embeddings), never more."""
    layers = TINY_WHISPER["encoder_layers"]
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        output_dir=str(tmp_path / "run"),
        **{**TINY_WHISPER_FAST, "finetune_top_layers": layers + 1},
    )
    model_args, data_args, augmentation_args, _ = parse_recipe([str(recipe)])
    mode = recipe_input_mode(model_args, data_args, augmentation_args)
    labels = load_dataset_from_args(data_args).features["label"]
    model, _ = build_model(model_args, augmentation_args, labels)
    with pytest.raises(RecipeError, match=f"finetune_top_layers: {layers + 1} is more than the {layers} layers"):
        mode.lower_layer(model)
    model_args.finetune_top_layers = layers
    assert mode.lower_layer(model) == 0
