"""``ser-hf train RECIPE.yaml [--key value ...]`` (and ``python -m ser_hf.train``) as a user runs it: recipe values
refused on the command line, one-line errors with status 2 (also under accelerate launch), Ctrl-C (status 130, and
the run resumes), and a NaN loss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ser_hf.cli import main as cli_main
from ser_hf.inputs.collators import AudioClassificationCollator
from ser_hf.run_folder import METRICS_FILE
from ser_hf.train import main
from tests.conftest import REPO
from tests.recipe.test_parser import write_recipe


@pytest.mark.reliability
def test_negative_epochs_on_the_command_line_are_refused_not_saved_as_a_finished_run(tmp_path, tiny_ravdess, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess)
    assert cli_main(["train", str(recipe), "--max_steps", "-1", "--num_train_epochs", "-1"]) == 2
    assert "ser-hf: error: num_train_epochs must be positive, got -1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # no untrained model, no report a later run would read back


@pytest.mark.reliability
def test_an_os_error_during_a_run_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys):
    def unreadable(data_args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "corpus" / "Actor_01"))

    monkeypatch.setattr("ser_hf.training.stages.load_dataset_from_args", unreadable)  # ser_hf.train imports it per run
    assert cli_main(["train", str(write_recipe(tmp_path / "r.yaml", tmp_path))]) == 2
    err = capsys.readouterr().err
    assert f"ser-hf: error: {tmp_path / 'corpus' / 'Actor_01'}: Permission denied\n" in err
    assert "Traceback" not in err


@pytest.mark.reliability
def test_python_m_ser_hf_train_prints_the_same_one_line_errors_as_ser_hf_train(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "missing_corpus")
    assert cli_main(["train", str(recipe)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == f"ser-hf: error: data_dir: '{tmp_path / 'missing_corpus'}' does not exist. (recipe {recipe})"

    result = subprocess.run(
        [sys.executable, "-m", "ser_hf.train", str(recipe)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == message.replace("ser-hf:", "ser_hf.train:", 1)


@pytest.mark.reliability
@pytest.mark.slow
def test_an_error_under_accelerate_launch_is_printed_once_without_a_traceback_of_ser_hf(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "missing_corpus")
    accelerate = str(Path(sys.executable).parent / "accelerate")
    result = subprocess.run(
        [
            accelerate,
            "launch",
            "--num_processes",
            "1",
            "--cpu",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "ser_hf.train",
            str(recipe),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode != 0
    message = f"ser_hf.train: error: data_dir: '{tmp_path / 'missing_corpus'}' does not exist. (recipe {recipe})"
    assert result.stderr.count(message) == 1, result.stderr[-3000:]
    # What is left is accelerate's own report that its child failed (`accelerate launch -q` leaves it out).
    assert result.stderr.count("Traceback") <= 1 and "ser_hf/" not in result.stderr.partition("Traceback")[2]


@pytest.mark.reliability
def test_too_many_folds_for_the_speakers_names_the_recipe_key(tmp_path, tiny_ravdess, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        split_protocol="kfold",
        num_folds=12,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
        validation_size=0.0,
    )
    assert cli_main(["train", str(recipe)]) == 2
    assert (
        "ser-hf: error: 12 folds asked for (num_folds in a recipe, --n-splits on the command line), but a "
        "speaker-grouped k-fold needs at least one speaker per fold and the dataset has 4 speakers: ask for 2 to "
        "4 folds."
    ) in capsys.readouterr().err


@pytest.mark.reliability
def test_a_nan_loss_under_ser_hf_train_is_one_line_and_status_2(tmp_path, tiny_ravdess, monkeypatch, capsys):
    original_call = AudioClassificationCollator.__call__

    def poisoning_call(self, rows):
        batch = original_call(self, rows)
        if self.extra_columns and self._calls == 2:  # the second training batch
            batch["input_features"][1, 3, 0] = float("nan")
        return batch

    monkeypatch.setattr(AudioClassificationCollator, "__call__", poisoning_call)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "run"))
    assert cli_main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("ser-hf: error: The training loss is nan at step 2 (epoch 0.25), in a batch of 4 clips: ")
    )
    assert not (tmp_path / "run" / METRICS_FILE).exists()


INTERRUPTER = """
import os, signal, sys
# As in a terminal: a test runner's worker may ignore SIGINT, and a child inherits that.
signal.signal(signal.SIGINT, signal.default_int_handler)
from transformers import TrainerCallback
from ser_hf.cli import main
from ser_hf.training import trainer as trainer_module

class CtrlCAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal sends

original_init = trainer_module.SERTrainer.__init__
def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self.add_callback(CtrlCAtStep())
trainer_module.SERTrainer.__init__ = init
sys.exit(main(["train", *sys.argv[1:]]))
"""


@pytest.mark.reliability
@pytest.mark.slow
def test_ctrl_c_during_ser_hf_train_is_one_line_status_130_and_the_run_resumes(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "run"), max_steps=6)
    interrupted = subprocess.run(
        [sys.executable, "-c", INTERRUPTER, str(recipe)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    assert "Traceback" not in interrupted.stderr, interrupted.stderr[-3000:]
    assert interrupted.stderr.strip().splitlines()[-1] == (
        "ser-hf: interrupted; re-run the same command to resume from its last checkpoint"
    )
    assert (tmp_path / "run" / "checkpoint-2").is_dir() and not (tmp_path / "run" / METRICS_FILE).exists()
    (report,) = main([str(recipe)])
    assert report["training"]["resumed_from"].endswith("checkpoint-2")
