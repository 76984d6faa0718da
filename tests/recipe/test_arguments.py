"""The recipe's dataclasses: checks across sections, and the training arguments' device-dependent defaults."""

from __future__ import annotations

import pytest
import torch
from accelerate import PartialState

from ser_hf.recipe.errors import RecipeError
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
        augmentation_args.check_model(model_args)


def test_gpu_runs_copy_pinned_batches_without_waiting(tmp_path, monkeypatch):
    cpu = parse_recipe([str(write_recipe(tmp_path / "cpu.yaml", tmp_path, use_cpu=False))])[3]
    assert not cpu.dataloader_pin_memory and not cpu.accelerator_config.non_blocking
    # No GPU here: torch is told there is one, as far as the arguments ask; accelerate's process state (a shared
    # singleton) set up under that pretence is thrown away after the test.
    monkeypatch.setattr(PartialState, "_shared_state", {})
    for name, value in (
        ("is_available", lambda: True),
        ("is_bf16_supported", lambda: True),
        ("set_device", lambda device: None),
        ("device_count", lambda: 1),
    ):
        monkeypatch.setattr(torch.cuda, name, value)
    gpu = parse_recipe([str(write_recipe(tmp_path / "gpu.yaml", tmp_path, use_cpu=False))])[3]
    assert gpu.dataloader_pin_memory and gpu.accelerator_config.non_blocking and gpu.bf16
    told = write_recipe(tmp_path / "told.yaml", tmp_path, use_cpu=False, accelerator_config={"non_blocking": False})
    assert not parse_recipe([str(told)])[3].accelerator_config.non_blocking
    unpinned = write_recipe(tmp_path / "unpinned.yaml", tmp_path, use_cpu=False, dataloader_pin_memory=False)
    assert not parse_recipe([str(unpinned)])[3].accelerator_config.non_blocking
