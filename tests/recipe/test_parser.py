"""The recipe parser: YAML values with command-line overrides, unknown keys and wrong values named with the file before
any work, and every shipped recipe parsing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from transformers import HfArgumentParser

from ser_hf.data.split_settings import split_options
from ser_hf.errors import RecipeError
from ser_hf.inputs.augment import check_model_augmentation, waveform_augmentation
from ser_hf.recipe.parser import RecipeParser, parse_recipe
from ser_hf.recipe.yaml_io import read_recipe_file
from ser_hf.training.ensemble import is_ensemble_recipe, member_recipes, member_values
from tests.conftest import REPO, SHARED_DATA


def write_recipe(path: Path, data_dir: Path, **values) -> Path:
    recipe = {
        "model_type": "cnn2d",
        "model_config": {"conv_channels": [4, 8]},
        "corpus": "ravdess",
        "data_dir": str(data_dir),
        "split_protocol": "speaker",
        "train_speakers": ["01", "02"],
        "validation_speakers": ["03"],
        "test_speakers": ["04"],
        "max_duration_seconds": 1.0,
        "output_dir": str(path.parent / "run"),
        "max_steps": 4,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 1.0e-2,
        "logging_steps": 1,
        "eval_strategy": "steps",
        "eval_steps": 2,
        "save_steps": 2,
        "save_strategy": "steps",
        "use_cpu": True,
        "seed": 7,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
    recipe.update(values)
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_yaml_sets_values_and_flags_override_them(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, learning_rate="3.0e-4", label_map={"calm": "neutral"})
    model_args, data_args, augmentation_args, training_args = parse_recipe(
        [
            str(recipe),
            "--learning_rate",
            "5e-4",
            "--max_steps",
            "9",
            "--test_speakers",
            "02",
            "04",
            "--class_weights",
            "{angry: 2.0}",
        ]
    )
    assert training_args.learning_rate == 5e-4 and training_args.max_steps == 9
    assert data_args.test_speakers == ["02", "04"] and data_args.label_map == {"calm": "neutral"}
    assert training_args.class_weights == {"angry": 2.0}
    assert model_args.model_type == "cnn2d" and model_args.model_config == {"conv_channels": [4, 8]}
    # ser-hf's defaults: keep the best model by validation UA, group batches by length, keep the waveform column.
    assert training_args.metric_for_best_model == "unweighted_accuracy" and training_args.load_best_model_at_end
    assert training_args.train_sampling_strategy == "group_by_length"
    assert training_args.length_column_name == "duration" and not training_args.remove_unused_columns
    assert augmentation_args.noise_prob == 0.0
    # A float written as 3.0e-4 in YAML reaches the dataclass as a float.
    _, _, _, from_yaml = parse_recipe([str(recipe)])
    assert from_yaml.learning_rate == pytest.approx(3e-4)


def test_unknown_recipe_key_names_the_key_and_the_file(tmp_path):
    recipe = write_recipe(tmp_path / "bad.yaml", tmp_path, lerning_rate=1.0e-3)
    with pytest.raises(RecipeError, match=r"'lerning_rate' \(did you mean 'learning_rate'\?\) in recipe .*bad\.yaml"):
        parse_recipe([str(recipe)])
    with pytest.raises(RecipeError, match="Unknown command-line argument.*--no_such_flag"):
        parse_recipe([str(write_recipe(tmp_path / "ok.yaml", tmp_path)), "--no_such_flag", "1"])


@pytest.mark.parametrize(
    "values, message",
    [
        ({"model_type": "resnet"}, "model_type 'resnet' is not one of"),
        (
            {"model_type": "whisper", "model_config": {}, "cache_encoder_outputs": True, "pooling_mode": "meen"},
            r"pooling_mode 'meen' \(did you mean 'mean'\?\) is not one of mean, max",
        ),
        ({"class_weights": "balance"}, r"class_weights 'balance' \(did you mean 'balanced'\?\) is not balanced, none"),
        ({"corpus": ["ravdess", "tess"]}, "one data_dir per corpus"),
        ({"model_type": "crnn", "use_lora": True}, "use_lora only apply to SSL encoders"),
        ({"model_type": "wav2vec2", "model_config": {}, "cache_encoder_outputs": True}, "needs freeze_base_model"),
        (
            {
                "model_type": "wav2vec2",
                "model_config": {},
                "freeze_base_model": True,
                "cache_encoder_outputs": True,
                "pooling_mode": "attentive_statistics",
            },
            "needs mean pooling",
        ),
        (
            {
                "model_type": "whisper",
                "model_config": {},
                "freeze_base_model": True,
                "cache_encoder_outputs": True,
                "feature_extractor_config": {"normalization": "utterance"},
            },
            "normalization: utterance centres each clip's frames .* needs pooling_mode: layer_statistics",
        ),
        (
            {"model_type": "whisper", "model_config": {}, "feature_extractor_config": {"trim_silence_db": -30}},
            "feature_extractor_config.trim_silence_db: -30 is not a number of dB above 0",
        ),
        (
            {"model_type": "whisper", "model_config": {}, "feature_extractor_config": {"trim_db": 30}},
            "feature_extractor_config: trim_db cannot be set for Whisper; it takes `normalization`, "
            "`trim_silence_db`, `speaker_statistics_check`, `dereverberation`, `dereverberation_taps` only",
        ),
        (
            {
                "model_type": "whisper",
                "model_config": {},
                "feature_extractor_config": {"normalization": "corpus", "speaker_statistics_check": True},
            },
            "speaker_statistics_check: True must be true or false, and true only with normalization: speaker "
            r"\(here 'corpus'\)",
        ),
        ({"model_config": {"conv_chanels": [4]}}, r"'conv_chanels' \(did you mean 'conv_channels'\?\) is not a field"),
        ({"feature_extractor_config": {"nmels": 40}}, "'nmels' .*is not a field of LogMelFeatureExtractor"),
        ({"gain_db": [6.0, -6.0]}, r"gain_db must be a range \[low, high\]"),
        ({"class_weights": {"angry": -1}}, "non-negative"),
        ({"model_config": "[1, 2]"}, "model_config must be a mapping"),
        # Wrong types, which argparse never sees in a recipe: named with the key, the value and the expected type.
        ({"num_train_epochs": "ten"}, "num_train_epochs: 'ten' is not a valid float"),
        ({"learning_rate": [1.0e-3, 1.0e-4]}, r"learning_rate: \[0.001, 0.0001\] is not a valid float"),
        ({"seed": 1.5}, "seed: 1.5 is not a valid int"),
        ({"use_lora": "maybe"}, "use_lora: 'maybe' is not a valid bool"),
        (
            {"validation_speakers": {"06": 1}},
            r"validation_speakers: \{'06': 1\} is not a valid Optional\[list\[str\]\]",
        ),
    ],
)
def test_bad_recipe_values_stop_before_any_work(tmp_path, values, message):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, **values)
    with pytest.raises(RecipeError, match=message) as error:
        parse_recipe([str(recipe)])
    assert str(recipe) in str(error.value)


def test_recipe_values_outside_the_choices_are_refused(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, train_sampling_strategy="group_by_lenght")
    with pytest.raises(RecipeError, match="train_sampling_strategy: 'group_by_lenght' is not one of"):
        parse_recipe([str(recipe)])


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_parses(recipe, tmp_path):
    values = read_recipe_file(recipe)
    if is_ensemble_recipe(values):  # each member parses with the ensemble's shared keys given to it
        for member in member_recipes(recipe, values):
            merged = member_values(member, values, Path("outputs") / recipe.stem)
            (tmp_path / member.name).write_text(yaml.safe_dump(merged))
            _, data_args, _, training_args = parse_recipe([str(tmp_path / member.name)])
            assert data_args.corpus == [values["corpus"]] and training_args.output_dir.endswith(member.stem)
        assert "# Data" in recipe.read_text()
        return
    model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe)])
    check_model_augmentation(augmentation_args, model_args)
    assert data_args.corpus and training_args.output_dir
    text = recipe.read_text()
    assert "# Model" in text and "# Data" in text and "# Training" in text


RAVDESS_SPEAKER_RECIPES = sorted(
    path
    for path in (REPO / "recipes").glob("ravdess_*.yaml")
    if read_recipe_file(path).get("split_protocol") == "speaker"
)


@pytest.mark.parametrize("recipe", RAVDESS_SPEAKER_RECIPES, ids=lambda p: p.name)
def test_ravdess_recipes_name_their_test_actors_and_how_to_run_on_actors_01_to_20(recipe, tmp_path):
    """A recipe for actors 01-24 run on a copy of 01-20 used to leave the test split silently empty. Each shipped
    RAVDESS recipe names its test actors, so that copy stops at the split naming the flag, and its header says what to
    pass there: with it, actors 01-20 give non-empty train, validation and test splits, every actor in one."""
    from datasets import Dataset

    from ser_hf.data.splits import SplitError, split_dataset

    values = read_recipe_file(recipe)
    # A merged recipe (RAVDESS + TESS, TESS trained on only) names RAVDESS actors by their merged ids, ravdess:21.
    merged = isinstance(values["corpus"], list) and len(values["corpus"]) > 1
    prefix = "ravdess:" if merged else ""
    assert values["test_speakers"] == [f"{prefix}{actor}" for actor in ("21", "22", "23", "24")]
    (hint,) = [line for line in recipe.read_text().splitlines() if line.startswith("#") and "--test_speakers" in line]
    flags = (hint.split("add ", 1)[1] if "add " in hint else hint.lstrip("# ")).split()
    assert flags == [
        "--validation_speakers",
        f"{prefix}17",
        f"{prefix}18",
        "--test_speakers",
        f"{prefix}19",
        f"{prefix}20",
    ]
    if is_ensemble_recipe(values):  # the command line's flags reach every member, after the ensemble's keys
        (member, *_) = member_recipes(recipe, values)
        path = tmp_path / member.name
        path.write_text(yaml.safe_dump(member_values(member, values, Path("outputs") / recipe.stem)))
    else:
        path = recipe
    columns = {
        "speaker_id": [f"{prefix}{actor:02d}" for actor in range(1, 21) for _ in range(3)],
        "label": [0, 1, 2] * 20,
        "corpus": ["ravdess"] * 60,
    }
    if merged:
        columns = {
            key: value + addition
            for (key, value), addition in zip(columns.items(), (["tess:OAF"] * 3, [0, 1, 2], ["tess"] * 3))
        }
    twenty_actors = Dataset.from_dict(columns)
    _, data_args, _, _ = parse_recipe([str(path)])
    with pytest.raises(
        SplitError,
        match=rf"test_speakers: speaker\(s\) \['{prefix}21', '{prefix}22', '{prefix}23', '{prefix}24'\] are not in",
    ) as error:
        split_dataset(twenty_actors, data_args.split_protocol, **split_options(data_args))
    assert "--test_speakers" in str(error.value)
    _, data_args, _, _ = parse_recipe([str(path), *flags])
    (splits,) = split_dataset(twenty_actors, data_args.split_protocol, **split_options(data_args))
    speakers = {name: sorted(set(split["speaker_id"])) for name, split in splits.items()}
    assert speakers == {
        "train": [f"{prefix}{actor:02d}" for actor in range(1, 17)] + (["tess:OAF"] if merged else []),
        "validation": [f"{prefix}17", f"{prefix}18"],
        "test": [f"{prefix}19", f"{prefix}20"],
    }


def test_accelerate_configs_are_valid_yaml():
    configs = sorted((REPO / "recipes" / "accelerate_configs").glob("*.yaml"))
    assert {p.stem for p in configs} >= {"cpu", "single_gpu", "multi_gpu"}
    for path in configs:
        config = yaml.safe_load(path.read_text())
        assert config["compute_environment"] == "LOCAL_MACHINE" and "distributed_type" in config


@dataclasses.dataclass
class _TextOrMapping:
    # The members in the order typing's union cache may hand back for `Optional[dict | str]` (a `|` union is not
    # cached, so this order holds whatever the process built before).
    weights: str | dict | None = dataclasses.field(default=None, metadata={"help": "a mapping or a name"})


def test_dict_or_text_keys_read_command_line_values_as_text_whatever_the_union_order():
    """HfArgumentParser keeps a union's second member as the argparse type; typing caches unions, so the recipe's
    `Optional[dict | str]` keys could come back as `Optional[str | dict]` and make `--class_weights balanced` fail
    with "invalid dict value", depending on what the process had imported before."""
    assert [a.type for a in HfArgumentParser(_TextOrMapping)._actions if a.dest == "weights"] == [dict]
    (parsed,) = RecipeParser(_TextOrMapping).parse_args_into_dataclasses(["--weights", "balanced"])
    assert parsed.weights == "balanced"
    model_args, _, _, training_args = parse_recipe(
        [str(REPO / "recipes" / "demo.yaml"), "--class_weights", "balanced", "--model_config", "{hidden_sizes: [8]}"]
    )
    assert training_args.class_weights == "balanced" and model_args.model_config == {"hidden_sizes": [8]}


def test_finetune_top_layers_names_every_conflicting_key_at_once(tmp_path):
    from tests.conftest_models import TINY_WHISPER

    recipe = write_recipe(
        tmp_path / "r.yaml",
        tmp_path,
        model_type="whisper",
        model_config=TINY_WHISPER,
        finetune_top_layers=1,
        cache_encoder_outputs=True,
        freeze_base_model=True,
        feature_extractor_config={"normalization": "utterance"},
    )
    with pytest.raises(RecipeError) as error:
        parse_recipe([str(recipe)])
    message = str(error.value)
    for conflict in (
        "use_weighted_layer_sum: False (needs True)",
        "pooling_mode: None (needs 'layer_statistics')",
        "model_config.trim_window: False (needs True)",
        "feature_extractor_config.normalization: 'utterance'",
    ):
        assert conflict in message
    assert "cache_encoder_outputs" not in message.split("A recipe that works")[0]
    assert "A recipe that works" in message


def test_lora_on_the_top_layers_names_a_target_module_the_layers_lack_before_anything_is_encoded(tmp_path):
    from tests.conftest_models import TINY_WHISPER

    values = dict(
        model_type="whisper",
        model_config={**TINY_WHISPER, "trim_window": True},
        finetune_top_layers=1,
        use_lora=True,
        cache_encoder_outputs=True,
        freeze_base_model=True,
        use_weighted_layer_sum=True,
        pooling_mode="layer_statistics",
    )
    # Whole-encoder LoRA's conflicts (layer sum, frozen encoder) are not LoRA on the top layers'.
    assert parse_recipe([str(write_recipe(tmp_path / "ok.yaml", tmp_path, **values))])[0].use_lora
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, lora_target_modules=["q_proj", "encoder_attn"], **values)
    with pytest.raises(RecipeError) as error:
        parse_recipe([str(recipe)])
    assert "lora_target_modules: encoder_attn (a Whisper encoder layer's linear modules are q_proj, k_proj" in str(
        error.value
    )


def test_spec_augment_on_cached_states_needs_finetune_top_layers(tmp_path):
    """FAST mode caches pooled statistics that no mask reaches: apply_spec_augment there would change nothing."""
    from tests.conftest_models import TINY_WHISPER

    recipe = write_recipe(
        tmp_path / "r.yaml",
        tmp_path,
        model_type="whisper",
        model_config={**TINY_WHISPER, "apply_spec_augment": True},
        cache_encoder_outputs=True,
        freeze_base_model=True,
    )
    with pytest.raises(RecipeError, match="model_config.apply_spec_augment: true needs finetune_top_layers"):
        parse_recipe([str(recipe)])
    # wav2vec 2.0 masks its own hidden states in training (transformers' SpecAugment): its recipes keep the key.
    from tests.conftest_models import TINY_SSL

    wav2vec2 = write_recipe(
        tmp_path / "w.yaml",
        tmp_path,
        model_type="wav2vec2",
        model_config={**TINY_SSL, "apply_spec_augment": True, "mask_time_prob": 0.05},
    )
    model_args, *_ = parse_recipe([str(wav2vec2)])
    assert model_args.model_config["apply_spec_augment"] is True


def test_cached_augmented_copies_need_fast_mode_and_an_augmentation(tmp_path):
    from ser_hf.recipe import Recipe
    from tests.conftest_models import TINY_WHISPER

    fast = dict(
        model_type="whisper",
        model_config=TINY_WHISPER,
        cache_encoder_outputs=True,
        freeze_base_model=True,
        use_weighted_layer_sum=True,
    )
    with pytest.raises(RecipeError, match="set cached_augmented_copies: N to encode N augmented copies"):
        Recipe.parse([str(write_recipe(tmp_path / "a.yaml", tmp_path, reverb_prob=0.5, **fast))])
    with pytest.raises(RecipeError, match="needs cache_encoder_outputs: true and a waveform augmentation"):
        Recipe.parse([str(write_recipe(tmp_path / "b.yaml", tmp_path, cached_augmented_copies=2, **fast))])
    with pytest.raises(RecipeError, match="cached_augmented_copies: -1 must be a whole number from 0 to 32"):
        Recipe.parse([str(write_recipe(tmp_path / "c.yaml", tmp_path, cached_augmented_copies=-1, **fast))])
    with pytest.raises(RecipeError, match="lowpass_hz"):
        Recipe.parse([str(write_recipe(tmp_path / "d.yaml", tmp_path, lowpass_prob=1.0, lowpass_hz=[3000, 9000]))])
    augmentation_args = Recipe.parse(
        [str(write_recipe(tmp_path / "e.yaml", tmp_path, cached_augmented_copies=2, lowpass_prob=0.5, **fast))]
    ).augmentation
    assert augmentation_args.cached_augmented_copies == 2 and waveform_augmentation(augmentation_args, 16000).enabled


def test_conflicting_training_regime_settings_are_reported_together(tmp_path):
    from tests.conftest_models import TINY_WHISPER

    recipe = write_recipe(
        tmp_path / "r.yaml",
        tmp_path,
        model_type="whisper",
        model_config=TINY_WHISPER,
        use_lora=True,
        use_weighted_layer_sum=True,
        freeze_base_model=True,
        feature_extractor_config={"normalization": "global"},
    )
    with pytest.raises(RecipeError) as error:
        parse_recipe([str(recipe)])
    message = str(error.value)
    assert message.startswith("3 settings of the recipe conflict: (1) feature_extractor_config.normalization")
    assert "(2) use_lora with use_weighted_layer_sum" in message
    assert "(3) use_lora already freezes the whole encoder" in message


SHARED_MODELS = SHARED_DATA.parent / "models"
#: The Hub checkpoints of the shipped recipes and their encoder-only copies in ../shared/models.
LOCAL_ENCODERS = {
    "openai/whisper-base": SHARED_MODELS / "whisper-base-encoder",
    "openai/whisper-tiny.en": SHARED_MODELS / "whisper-tiny.en-encoder",
}


def _recipes_on(checkpoints) -> list[Path]:
    return sorted(
        path
        for path in (REPO / "recipes").glob("*.yaml")
        if read_recipe_file(path).get("model_name_or_path") in checkpoints
    )


@pytest.mark.parametrize("recipe", _recipes_on(LOCAL_ENCODERS), ids=lambda p: p.name)
def test_every_shipped_whisper_recipe_passes_the_early_model_config_check_on_the_real_checkpoint(recipe):
    """The check run before the corpus is decoded applies the recipe's model_config to the real checkpoint's config
    as the model build does (a valid shipped recipe, layers chosen on an encoder saved without the layer sum, was
    once refused there). Reads config.json only; skipped where ../shared/models is absent."""
    from ser_hf.training.model_stage import check_model_config

    model_args, _, augmentation_args, _ = parse_recipe([str(recipe)])
    local = LOCAL_ENCODERS[model_args.model_name_or_path]
    if not local.is_dir():
        pytest.skip(f"{local} is not present (it exists on CI and the developers' machines)")
    model_args.model_name_or_path = str(local)
    check_model_config(model_args, augmentation_args)
