"""One Recipe object: the four sections parsed from RECIPE.yaml and the command line, one resolved form that both of
a run's saved copies come from (run_config.json, recipe.yaml), and the old four-argument calls still working with a
DeprecationWarning."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from ser_hf.errors import RecipeError
from ser_hf.recipe import Recipe
from ser_hf.run_folder import RECIPE_FILE, RUN_CONFIG_FILE, RunDir
from ser_hf.train import main
from tests.conftest import write_cnn_recipe


def test_a_recipe_parses_yaml_then_overrides_into_its_four_sections(tmp_path, tiny_ravdess):
    path = write_cnn_recipe(tmp_path / "r.yaml", data_dir=[str(tiny_ravdess)])
    recipe = Recipe.parse([str(path), "--learning_rate", "3.0e-2", "--num_time_masks", "2"])
    # The keys the file and the command line gave, recorded as they were read.
    assert recipe.path == str(path) and recipe.given == {*yaml.safe_load(path.read_text()), "num_time_masks"}
    model_args, data_args, augmentation_args, training_args = recipe
    assert (model_args.model_type, data_args.corpus, augmentation_args.num_time_masks) == ("cnn2d", ["ravdess"], 2)
    assert training_args.learning_rate == 3.0e-2 and recipe.training is training_args
    # The saved form is each section's resolved values.
    config = recipe.to_run_config()
    assert config.model == dataclasses.asdict(model_args) and config.training["learning_rate"] == 3.0e-2
    # A key of a section, or a whole section, replaced in a copy.
    moved = recipe.replace(output_dir=str(tmp_path / "elsewhere"), push_to_hub=False)
    assert (
        moved.training.output_dir == str(tmp_path / "elsewhere")
        and recipe.training.output_dir != moved.training.output_dir
    )
    assert moved.model is recipe.model
    with pytest.raises(TypeError, match="no_such_key"):
        recipe.replace(no_such_key=1)
    with pytest.raises(RecipeError, match="lerning_rate"):
        Recipe.parse([str(path), "--lerning_rate", "1.0e-3"])


def test_a_runs_recipe_yaml_and_run_config_json_hold_one_recipe(cnn_run):
    # recipe.yaml runs again (python -m ser_hf.train recipe.yaml) with the resolved values run_config.json recorded.
    again = Recipe.parse([str(cnn_run / RECIPE_FILE)])
    recorded = RunDir(cnn_run).read_config()
    resolved = json.loads(json.dumps(again.to_run_config().to_dict(), default=str))
    for section in ("model", "data", "augmentation"):
        assert resolved[section] == getattr(recorded, section)
    assert resolved["training"]["learning_rate"] == recorded.training["learning_rate"] == 2.0e-2
    assert "hub_token" not in (cnn_run / RECIPE_FILE).read_text()
    # Run again from its recipe.yaml, the finished run is recognised as the same recipe and read back, not retrained.
    weights = (cnn_run / "model.safetensors").stat().st_mtime_ns
    (report,) = main([str(cnn_run / RECIPE_FILE)])
    assert report.to_dict() == json.loads((cnn_run / "metrics.json").read_text())
    assert (cnn_run / "model.safetensors").stat().st_mtime_ns == weights
    assert json.loads((cnn_run / RUN_CONFIG_FILE).read_text())["model"] == recorded.model
