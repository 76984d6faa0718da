"""The recipe's dataclasses: checks across sections, and the training arguments' device-dependent defaults."""

from __future__ import annotations

import pytest
import torch
from accelerate import PartialState

from ser_hf.errors import RecipeError
from ser_hf.inputs.augment import check_model_augmentation
from ser_hf.recipe.parser import parse_recipe
from tests.recipe.test_parser import write_recipe


def test_augmentation_the_model_cannot_use_is_refused(tmp_path):
    model_args, _, augmentation_args, _ = parse_recipe(
        [
            str(
                write_recipe(
                    tmp_path / "r.yaml",
                    tmp_path,
                    model_type="cnn1d",
                    num_time_masks=2,
                    model_config={"conv_channels": [4, 4, 8, 8]},
                )
            )
        ]
    )
    with pytest.raises(RecipeError, match="num_time_masks/num_freq_masks mask spectrograms"):
        check_model_augmentation(augmentation_args, model_args)


def test_gpu_runs_copy_pinned_batches_without_waiting(tmp_path, monkeypatch):
    cpu = parse_recipe([str(write_recipe(tmp_path / "cpu.yaml", tmp_path, use_cpu=False))])[3]
    assert not cpu.dataloader_pin_memory and not cpu.accelerator_config.non_blocking
    _pretend_gpu(monkeypatch)
    gpu = parse_recipe([str(write_recipe(tmp_path / "gpu.yaml", tmp_path, use_cpu=False))])[3]
    assert gpu.dataloader_pin_memory and gpu.accelerator_config.non_blocking and gpu.bf16
    told = write_recipe(tmp_path / "told.yaml", tmp_path, use_cpu=False, accelerator_config={"non_blocking": False})
    assert not parse_recipe([str(told)])[3].accelerator_config.non_blocking
    unpinned = write_recipe(tmp_path / "unpinned.yaml", tmp_path, use_cpu=False, dataloader_pin_memory=False)
    assert not parse_recipe([str(unpinned)])[3].accelerator_config.non_blocking


def _pretend_gpu(monkeypatch) -> None:
    """No GPU here: torch is told there is one, as far as the arguments ask; accelerate's process state (a shared
    singleton) set up under that pretence is thrown away after the test."""
    monkeypatch.setattr(PartialState, "_shared_state", {})
    for name, value in (
        ("is_available", lambda: True),
        ("is_bf16_supported", lambda: True),
        ("set_device", lambda device: None),
        ("device_count", lambda: 1),
    ):
        monkeypatch.setattr(torch.cuda, name, value)


def _recipe_without_workers(path, tmp_path, **values):
    import yaml

    recipe_path = write_recipe(path, tmp_path, **values)
    recipe = yaml.safe_load(recipe_path.read_text())
    recipe.pop("dataloader_num_workers", None)
    recipe_path.write_text(yaml.safe_dump(recipe))
    return recipe_path


def test_dataloader_workers_follow_the_device_unless_the_recipe_sets_them(tmp_path, monkeypatch):
    cpu = parse_recipe([str(_recipe_without_workers(tmp_path / "cpu.yaml", tmp_path, use_cpu=False))])[3]
    assert cpu.dataloader_num_workers == 0 and not cpu.dataloader_persistent_workers
    _pretend_gpu(monkeypatch)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    gpu = parse_recipe([str(_recipe_without_workers(tmp_path / "gpu.yaml", tmp_path, use_cpu=False))])[3]
    assert gpu.dataloader_num_workers == 4 and gpu.dataloader_pin_memory
    # Workers are per process: two processes of a launch on a 4-core machine get 2 each.
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    shared = parse_recipe([str(_recipe_without_workers(tmp_path / "shared.yaml", tmp_path, use_cpu=False))])[3]
    assert shared.dataloader_num_workers == 2
    # What the recipe or the command line says wins, 0 included.
    told = _recipe_without_workers(tmp_path / "told.yaml", tmp_path, use_cpu=False)
    assert parse_recipe([str(told), "--dataloader_num_workers", "0"])[3].dataloader_num_workers == 0
    in_yaml = write_recipe(tmp_path / "yaml.yaml", tmp_path, use_cpu=False, dataloader_num_workers=1)
    assert parse_recipe([str(in_yaml)])[3].dataloader_num_workers == 1
    # use_cpu on a GPU machine trains on CPU: no workers.
    on_cpu = parse_recipe([str(_recipe_without_workers(tmp_path / "on_cpu.yaml", tmp_path, use_cpu=True))])[3]
    assert on_cpu.dataloader_num_workers == 0


def test_negative_dataloader_workers_are_refused(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, dataloader_num_workers=-1)
    with pytest.raises(RecipeError, match="dataloader_num_workers must be 0 or more, got -1"):
        parse_recipe([str(recipe)])
