"""Recipe YAML in and out: YAML 1.2 scalars, a safe loader, keys set twice refused, and ``recipe.yaml`` written by a
run reading back as the same recipe."""

from __future__ import annotations

import re

import pytest

from ser_hf.errors import RecipeError
from ser_hf.recipe import Recipe, yaml_io
from ser_hf.recipe.parser import parse_recipe
from tests.recipe.test_parser import write_recipe


def test_recipe_yaml_reads_floats_and_no_as_users_mean_them(tmp_path):
    recipe = tmp_path / "r.yaml"
    write_recipe(recipe, tmp_path)
    recipe.write_text(
        recipe.read_text()
        .replace("learning_rate: 0.01", "learning_rate: 1e-5")
        .replace("eval_strategy: steps", "eval_strategy: no")
        .replace("save_strategy: steps", "")
        + "save_strategy: no\nlr_scheduler_kwargs: {min_lr: 1e-6}\n"
    )
    _, _, _, training_args = parse_recipe([str(recipe)])
    assert training_args.learning_rate == 1e-5 and training_args.save_strategy == "no"
    assert training_args.lr_scheduler_kwargs == {"min_lr": 1e-6}


def test_recipes_are_read_with_a_safe_loader(tmp_path):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(f"model_type: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        parse_recipe([str(recipe)])
    assert not marker.exists()


def test_a_yaml_key_set_twice_is_refused_naming_the_key_both_lines_and_the_file(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path)
    recipe.write_text(recipe.read_text() + "learning_rate: 5.0e-2\n")
    first = next(
        number for number, line in enumerate(recipe.read_text().splitlines(), 1) if line.startswith("learning_rate:")
    )
    last = len(recipe.read_text().splitlines())
    with pytest.raises(
        RecipeError,
        match=re.escape(f"Recipe {recipe} sets 'learning_rate' twice (lines {first} and {last}): keep one of them."),
    ):
        parse_recipe([str(recipe)])
    nested = tmp_path / "nested.yaml"
    nested.write_text("model_type: cnn2d\nmodel_config:\n  conv_channels: [4]\n  conv_channels: [8]\n")
    with pytest.raises(RecipeError, match=r"sets 'conv_channels' twice \(lines 3 and 4\)"):
        parse_recipe([str(nested)])
    with pytest.raises(RecipeError, match="model_config sets 'conv_channels' twice"):
        parse_recipe(
            [
                str(write_recipe(tmp_path / "ok.yaml", tmp_path)),
                "--model_config",
                "{conv_channels: [4], conv_channels: [8]}",
            ]
        )


def test_the_recipe_a_run_writes_parses_back_to_the_same_arguments(tmp_path):
    """``recipe.yaml`` holds the keys the recipe and the command line set (never a token), in the recipe's sections
    with lists of scalars on one line, and parses back to the arguments the run used."""
    recipe = write_recipe(
        tmp_path / "r.yaml", tmp_path, label_map={"calm": "neutral"}, gain_prob=0.5, hub_token="hf_not_written"
    )
    recipe_args = [
        str(recipe),
        "--learning_rate",
        "5e-4",
        "--test_speakers",
        "04",
        "05",
        "--class_weights",
        "balanced",
    ]
    parsed = Recipe.parse(recipe_args)
    model_args, data_args, augmentation_args, training_args = parsed
    (tmp_path / "run").mkdir()
    path = parsed.write_yaml(tmp_path / "run")

    text = path.read_text()
    assert path.name == yaml_io.RECIPE_FILE
    assert [line for line in text.splitlines() if line.startswith("# ") and " " not in line[2:]] == [
        "# Model",
        "# Data",
        "# Augmentation",
        "# Training",
    ]
    assert "test_speakers: ['04', '05']" in text and "learning_rate: 0.0005" in text
    assert "num_train_epochs" not in text and "hf_not_written" not in text
    again = parse_recipe([str(path)])
    assert again[:3] == (model_args, data_args, augmentation_args)
    assert again[3].to_dict() == training_args.to_dict()


def test_generated_recipes_keep_their_values_and_types(tmp_path):
    values = {"learning_rate": 1.0e-5, "model_config": {"conv_channels": [4, 8]}, "labels": ["neutral", "sad"]}
    path = yaml_io.write_recipe_file(tmp_path / "point" / "recipe.yaml", values, header="learning_rate=1e-05")
    text = path.read_text()
    assert text.startswith("# learning_rate=1e-05\n") and "learning_rate: 1.0e-05" in text
    assert yaml_io.load_yaml(text) == values
