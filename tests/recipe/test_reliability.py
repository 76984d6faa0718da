"""Reliability of reading a recipe: a bad value, a learning rate that is not finite and positive, test_size beside
speaker lists, an output_dir that cannot be written, a file that is not plain YAML or not UTF-8 each stop before
any work, in one line naming the key, the value and the file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ser_hf.cli import main as cli_main
from ser_hf.data.split_settings import split_options
from ser_hf.errors import RecipeError
from ser_hf.recipe.parser import parse_recipe
from ser_hf.train import main
from tests.conftest import REPO, ser_hf_error_lines
from tests.conftest_models import TINY_SSL
from tests.recipe.test_parser import write_recipe

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize(
    "values, message",
    [
        ({"max_steps": -1, "num_train_epochs": -1}, "num_train_epochs must be positive, got -1"),
        ({"max_steps": -1, "num_train_epochs": 0}, "num_train_epochs must be positive, got 0"),
        ({"max_steps": 0}, "max_steps must be a positive number of optimizer steps, got 0"),
        ({"max_steps": -3}, "max_steps must be a positive number of optimizer steps, got -3"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be at least 1, got 0"),
        ({"per_device_eval_batch_size": 0}, "per_device_eval_batch_size must be at least 1, got 0"),
        ({"label_smoothing_factor": 1.0}, r"label_smoothing_factor must be in \[0, 1\) \(0: no smoothing\), got 1"),
        (
            {"label_smoothing_factor": -0.1},
            r"label_smoothing_factor must be in \[0, 1\) \(0: no smoothing\), got -0.1",
        ),
        ({"sampling_rate": 0}, "sampling_rate must be a positive number of samples per second, got 0"),
        # Every numeric value with a range, finite (recipe/values.py's NUMBER_RULES), in each dataclass.
        ({"max_duration_seconds": float("inf")}, "max_duration_seconds must be a positive number of seconds, got inf"),
        ({"max_grad_norm": float("nan")}, r"max_grad_norm must be 0 \(no clipping\) or positive, got nan"),
        ({"save_total_limit": -3}, "save_total_limit must be at least 1 .*, got -3"),
        ({"calibration_min_clips": 0}, "calibration_min_clips must be at least 1, got 0"),
        ({"self_training_rounds": -1}, r"self_training_rounds must be 0 \(off\) or a positive whole number, got -1"),
        ({"self_training_share": 0}, r"self_training_share must be in \(0, 1\], got 0: the share of each"),
        ({"weight_decay": -0.1}, r"weight_decay must be 0 \(none\) or positive, got -0.1"),
        (
            {"model_type": "wav2vec2", "model_config": TINY_SSL, "use_lora": True, "lora_dropout": float("nan")},
            r"lora_dropout must be in \[0, 1\), got nan",
        ),
        (
            {"model_type": "wav2vec2", "model_config": TINY_SSL, "use_lora": True, "lora_r": 0},
            "lora_r must be at least 1",
        ),
        ({"split_protocol": "kfold", "num_folds": 1}, "num_folds must be at least 2 .*, got 1"),
        (
            {"model_config": {"conv_channels": 16}},
            r"model_config\.conv_channels: 16 is not a valid list\[int\] \| tuple\[int, \.\.\.\]",
        ),
        (
            {"model_config": {"conv_channels": [4, 8], "pool_size": "2x2"}},
            r"model_config\.pool_size: '2x2' is not a valid list\[int\] \| tuple\[int, \.\.\.\]",
        ),
        (
            {"model_config": {"conv_channels": [0, 8]}},
            "model_config: num_mel_bins and every conv_channels entry must be positive",
        ),
        (
            {"model_type": "wav2vec2", "model_config": {**TINY_SSL, "conv_dim": 32}},
            r"model_config\.conv_dim: 32 is not a valid list\[int\] \| tuple\[int, \.\.\.\]",
        ),
        ({"test_size": 0.3}, "test_size cannot be used with train_speakers, validation_speakers, test_speakers"),
    ],
)
def test_a_bad_recipe_value_stops_before_any_work_naming_the_key_value_and_file(tmp_path, values, message):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, **values)
    with pytest.raises(RecipeError, match=message) as error:
        main([str(recipe)])
    assert str(error.value).endswith(f"(recipe {recipe})") and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_test_size_with_speaker_lists_is_refused_on_the_command_line_too(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, train_speakers=None, validation_speakers=None)
    with pytest.raises(
        RecipeError,
        match=r"validation_size cannot be used with test_speakers: the split takes the "
        r"speakers named and would ignore validation_size",
    ):
        parse_recipe([str(recipe), "--validation_size=0.2"])
    # Without speaker lists the shares apply.
    no_lists = write_recipe(
        tmp_path / "shares.yaml", tmp_path, train_speakers=None, validation_speakers=None, test_speakers=None
    )
    _, data_args, _, _ = parse_recipe([str(no_lists), "--test_size", "0.25"])
    assert split_options(data_args) == {"test_size": 0.25, "validation_size": 0.1, "seed": 42}

    assert (
        cli_main(
            [
                "data",
                "split",
                "--corpus",
                "ravdess",
                "--data-dir",
                str(REPO / "data" / "ravdess_sample"),
                "--test-speakers",
                "07",
                "--test-size",
                "0.3",
                "--output",
                str(tmp_path / "split"),
            ]
        )
        == 2
    )
    assert (
        "ser-hf: error: --test-size cannot be used with --test-speakers: the split takes the speakers named and "
        "would ignore --test-size"
    ) in capsys.readouterr().err
    assert not (tmp_path / "split").exists()


def test_an_output_dir_that_cannot_be_written_is_named_before_any_work(tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("the user's own file")
    long_name = tmp_path / ("r" * 300) / "run"
    cases = {
        str(a_file): f"output_dir {a_file} is a file, not a folder: choose another output_dir.",
        str(a_file / "run"): f"output_dir {a_file / 'run'} cannot be created: {a_file} is a file, not a folder.",
        str(long_name): "is 300 bytes long, over the file system's limit of 255",
    }
    for output_dir, message in cases.items():
        with pytest.raises(RecipeError, match=re.escape(message)):
            main([str(write_recipe(tmp_path / "r.yaml", tmp_path, output_dir=output_dir))])
    assert a_file.read_text() == "the user's own file"


def test_a_read_only_output_folder_is_named_before_any_work(tmp_path, monkeypatch):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):
        # Running as root, for whom permission bits do not bind: answer as the kernel answers any other user.
        real_access = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda path, mode, *args, **kwargs: (
                False if Path(path) == read_only and mode & os.W_OK else real_access(path, mode, *args, **kwargs)
            ),
        )
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, output_dir=str(read_only / "run"))
    with pytest.raises(
        RecipeError,
        match=re.escape(
            f"output_dir {read_only / 'run'} cannot be created: {read_only} "
            "is not writable (permissions, or a read-only file system)"
        ),
    ):
        main([str(recipe)])
    read_only.chmod(0o755)


@pytest.mark.parametrize(
    "key, value, text",
    [
        ("learning_rate", float("inf"), "learning_rate: .inf"),
        ("learning_rate", -0.01, "learning_rate: -0.01"),
        ("learning_rate", 0.0, "learning_rate: 0.0"),
        ("learning_rate", float("nan"), "learning_rate: .nan"),
        ("head_learning_rate", float("inf"), "head_learning_rate: .inf"),
        ("head_learning_rate", -1.0e-3, "head_learning_rate: -0.001"),
    ],
)
def test_a_learning_rate_that_is_not_finite_and_positive_stops_at_parse_time(tmp_path, key, value, text):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, **{key: value})
    assert text in recipe.read_text().splitlines()
    with pytest.raises(RecipeError) as error:
        parse_recipe([str(recipe)])
    assert str(error.value) == (
        f"{key} must be a positive, finite number (2.0e-5, say), got {value:g}. (recipe {recipe})"
    )
    with pytest.raises(
        RecipeError, match=re.escape(f"{key} must be a positive, finite number (2.0e-5, say), got inf")
    ):
        parse_recipe([str(write_recipe(tmp_path / "ok.yaml", tmp_path)), f"--{key}", "inf"])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            "seed: !!python/object/apply:os.system ['touch {marker}']\n",
            "line 2, column 7: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'; recipes are read with a safe loader, which builds "
            "no Python objects: write plain values",
        ),
        (
            "seed: [1, 2\n",
            "line 3, column 1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 2, "
            "column 7)",
        ),
    ],
)
def test_an_ensemble_recipe_that_is_not_plain_yaml_is_one_line_naming_the_file(tmp_path, capsys, text, problem):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "ensemble.yaml"
    recipe.write_text("ensemble_members: [a.yaml, b.yaml]\n" + text.format(marker=marker))
    assert cli_main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not marker.exists()
    assert err.strip().splitlines() == [f"ser-hf: error: Recipe {recipe} is not valid YAML: {problem}"]


def test_a_recipe_that_is_not_utf8_is_named_with_its_line(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes("model_type: cnn2d\n# Données de l'été\nseed: 3\n".encode("latin-1"))
    assert cli_main(["train", str(recipe)]) == 2
    assert ser_hf_error_lines(capsys) == [
        f"ser-hf: error: Recipe {recipe}, line 2: not UTF-8 text (invalid continuation byte at byte 24, b'\\xe9'). "
        "Save the recipe as UTF-8."
    ]
