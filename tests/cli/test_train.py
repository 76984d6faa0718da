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
    def unreadable(data_args, shortest_clip=None):
        raise PermissionError(13, "Permission denied", str(tmp_path / "corpus" / "Actor_01"))

    # ser_hf.train imports it per run
    monkeypatch.setattr("ser_hf.training.data_stage.load_dataset_from_args", unreadable)
    assert cli_main(["train", str(write_recipe(tmp_path / "r.yaml", tmp_path))]) == 2
    err = capsys.readouterr().err
    assert f"ser-hf: error: {tmp_path / 'corpus' / 'Actor_01'}: Permission denied\n" in err
    assert "Traceback" not in err


@pytest.mark.reliability
def test_python_m_ser_hf_train_prints_the_same_one_line_errors_as_ser_hf_train(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "missing_corpus")
    assert cli_main(["train", str(recipe)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == (
        f"ser-hf: error: data_dir: '{tmp_path / 'missing_corpus'}' does not exist. (recipe {recipe}) RAVDESS is not "
        "shipped with ser-hf: download it from https://zenodo.org/record/1188976 (its official source) and pass its "
        "folder with --data_dir PATH."
    )

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
    assert result.stderr.index(message) < result.stderr.find("Traceback") or "Traceback" not in result.stderr


def test_the_headline_command_without_crema_d_names_the_corpus_its_source_and_the_flag_before_torch_loads(tmp_path):
    """`ser-hf train recipes/cremad_full.yaml` where CREMA-D is not: one line that says what to do, read from the
    corpus module's SPEC, before torch or transformers is imported."""
    from ser_hf.data.corpora.cremad import SPEC
    from tests.cli.test_train_help import run_ser_hf

    recipe = tmp_path / "cremad_full.yaml"
    recipe.write_text((REPO / "recipes" / "cremad_full.yaml").read_text())  # data_dir: data/cremad/AudioWAV
    result, status, imported = run_ser_hf(["train", str(recipe)])
    assert status == 2 and imported == []
    line = result.stderr.strip().splitlines()[-1]
    assert line == (
        f"ser-hf: error: data_dir: 'data/cremad/AudioWAV' does not exist. (recipe {recipe}) CREMA-D is not "
        f"shipped with ser-hf: download it from {SPEC.homepage} (its official source) and pass its folder with "
        "--data_dir PATH."
    )


def test_a_folder_corpus_that_is_missing_asks_for_the_folder_of_your_clips(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "my_clips", corpus="folder")
    assert cli_main(["train", str(recipe)]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("does not exist. (recipe " + str(recipe) + ") Pass the folder of your clips with --data_dir PATH.")
    )


@pytest.fixture
def no_data_loaded(monkeypatch):
    def refuse(data_args, **kwargs):
        raise AssertionError("the corpus was loaded before the model was found")

    monkeypatch.setattr("ser_hf.training.data_stage.load_dataset_from_args", refuse)


def test_a_hub_model_offline_and_not_cached_stops_the_run_before_the_data(
    tmp_path, monkeypatch, capsys, no_data_loaded
):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    (tmp_path / "AudioWAV").mkdir()
    output_dir = tmp_path / "run"
    argv = ["train", str(REPO / "recipes" / "cremad_full.yaml"), "--data_dir", str(tmp_path / "AudioWAV")]
    assert cli_main([*argv, "--output_dir", str(output_dir)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"ser-hf: error: No such folder: facebook/wav2vec2-base, and facebook/wav2vec2-base is not in the Hub cache "
        f"({tmp_path / 'hub_cache'}); HF_HUB_OFFLINE is set, so the Hub was not asked."
    )
    assert not output_dir.exists()


def test_an_unreachable_hub_stops_the_run_before_the_data(tmp_path, monkeypatch, capsys, no_data_loaded):
    import socket

    import huggingface_hub

    with socket.socket() as probe:  # a port nothing listens on: no network
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    (tmp_path / "AudioWAV").mkdir()
    argv = ["train", str(REPO / "recipes" / "cremad_full.yaml"), "--data_dir", str(tmp_path / "AudioWAV")]
    assert cli_main([*argv, "--output_dir", str(tmp_path / "run")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"ser-hf: error: No such folder: facebook/wav2vec2-base, and the Hub at {closed} could not")
    assert not (tmp_path / "run").exists()


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
        "ser-hf: error: 12 folds asked for (a recipe's num_folds, n_splits), but a "
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
    assert report.training.resumed_from.endswith("checkpoint-2")
