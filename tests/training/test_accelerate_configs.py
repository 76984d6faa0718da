"""The accelerate configs shipped in recipes/accelerate_configs/: each one is read by accelerate's own config loader
(the one `accelerate launch --config_file` uses), and the single-GPU one launches the training module. The 2-process
CPU run that trains through `accelerate launch` is tests/training/test_train.py's
`test_two_process_accelerate_run_evaluates_the_full_split_once`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.utils import DistributedType

from tests.conftest import REPO

CONFIGS = sorted((REPO / "recipes" / "accelerate_configs").glob("*.yaml"))


def test_the_configs_cover_cpu_one_gpu_and_several():
    assert {path.stem for path in CONFIGS} >= {"cpu", "single_gpu", "multi_gpu"}


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_accelerate_reads_each_config(path):
    # An unknown key or a wrong distributed_type / mixed_precision value fails here, as it would at launch.
    config = load_config_from_file(str(path))
    assert isinstance(config, ClusterConfig)
    assert config.compute_environment.value == "LOCAL_MACHINE" and config.main_training_function == "main"
    assert config.num_processes >= 1 and config.num_machines >= 1 and config.machine_rank == 0
    if config.distributed_type == DistributedType.MULTI_CPU:
        assert config.use_cpu and config.mixed_precision == "no"
    else:
        # GPU configs train in bf16, as ser-hf's precision: auto does on a GPU that supports it.
        assert not config.use_cpu and config.mixed_precision == "bf16"
    # The usage line at the top of each file names the file itself.
    assert f"--config_file recipes/accelerate_configs/{path.name}" in path.read_text()


@pytest.mark.slow
def test_the_single_gpu_config_launches_the_training_module():
    """No GPU needed: `accelerate launch` reads the config, sets up the process' environment and runs
    `python -m ser_hf.train`, whose argument parser answers --help-all with every recipe key."""
    accelerate = str(Path(sys.executable).parent / "accelerate")
    result = subprocess.run(
        [
            accelerate,
            "launch",
            "--config_file",
            str(REPO / "recipes" / "accelerate_configs" / "single_gpu.yaml"),
            "-m",
            "ser_hf.train",
            "--help",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage: ser-hf train RECIPE.yaml" in result.stdout and "python -m ser_hf.train RECIPE.yaml" in result.stdout
    assert "--dataloader_num_workers" in result.stdout and "--cache_feature_encoder" in result.stdout
