"""Recipe values as the experiment commands handle them: overrides from the command line as typed values, dotted keys
into mapping values, a recipe's experiment sections taken apart, every key checked with the file named."""

from __future__ import annotations

import pytest
import yaml

from ser_hf.errors import RecipeError
from ser_hf.recipe.overrides import (
    apply_overrides,
    command_line_values,
    read_recipe_values,
    set_value,
)


def test_command_line_overrides_become_typed_recipe_values():
    values = command_line_values(
        ["--learning_rate", "1e-3", "--labels", "neutral", "sad", "--use_lora", "--no_freeze_base_model"]
        + ["--model_config={conv_channels: [4]}"]
    )
    assert values == {
        "learning_rate": 1e-3,
        "labels": ["neutral", "sad"],
        "use_lora": True,
        "freeze_base_model": False,
        "model_config": {"conv_channels": [4]},
    }
    with pytest.raises(RecipeError, match=r"--lerning_rate: 'lerning_rate' \(did you mean 'learning_rate'\?\)"):
        command_line_values(["--lerning_rate", "1e-3"])
    with pytest.raises(RecipeError, match="Unexpected argument 'recipe.yaml'"):
        command_line_values(["recipe.yaml"])


def test_a_dotted_key_sets_one_entry_of_a_mapping_value():
    values = {"model_config": {"conv_channels": [4], "lstm_hidden_size": 8}}
    changed = set_value(values, "model_config.lstm_hidden_size", 16)
    assert changed == {"model_config": {"conv_channels": [4], "lstm_hidden_size": 16}}
    assert values["model_config"]["lstm_hidden_size"] == 8  # the recipe's own values are left as they were
    assert set_value({"model_config": "{conv_channels: [4]}"}, "model_config.dropout", 0.1) == {
        "model_config": {"conv_channels": [4], "dropout": 0.1}
    }
    with pytest.raises(RecipeError, match="model_config.dropout: model_config is 3, not a mapping"):
        set_value({"model_config": 3}, "model_config.dropout", 0.1)


def test_an_experiment_section_is_taken_apart_and_other_keys_are_checked(tmp_path):
    recipe = tmp_path / "sweep.yaml"
    recipe.write_text(yaml.safe_dump({"model_type": "cnn2d", "sweep": {"grid": {"learning_rate": [1.0e-3]}}}))
    values, sections = read_recipe_values(recipe, sections=("sweep",))
    assert values == {"model_type": "cnn2d"} and sections == {"sweep": {"grid": {"learning_rate": [1.0e-3]}}}
    with pytest.raises(
        RecipeError, match=r"Unknown key\(s\) 'sweep' \(did you mean 'seed'\?\) in recipe .*sweep\.yaml"
    ):
        read_recipe_values(recipe)


def test_a_dotted_command_line_key_overrides_one_entry_and_is_checked():
    overrides = command_line_values(["--feature_extractor_config.normalization", "corpus", "--seed", "3"])
    assert overrides == {"feature_extractor_config.normalization": "corpus", "seed": 3}
    recipe = {"feature_extractor_config": {"normalization": "global", "layers": [5]}, "seed": 42}
    assert apply_overrides(recipe, overrides) == {
        "feature_extractor_config": {"normalization": "corpus", "layers": [5]},
        "seed": 3,
    }
    with pytest.raises(RecipeError, match="--model_confg.dropout: unknown recipe key 'model_confg'"):
        command_line_values(["--model_confg.dropout", "0.1"])
