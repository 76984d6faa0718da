"""What a training run prints: each model loading or building line once per run (a run builds its model to encode
the corpus and again for each split), and the Trainer's log dicts at DEBUG or in the progress bar, not one printed
dict per log step."""

from __future__ import annotations

import logging

from ser_hf.train import main as train_main
from ser_hf.training.run_recipe import model_lines_once
from tests.conftest import write_cnn_recipe


def test_a_build_line_is_logged_once_per_run_and_no_log_dict_is_printed(tmp_path, tiny_ravdess, capsys, caplog):
    """A 2-fold k-fold run builds the same CNN for each fold (and the printer callback of disable_tqdm would print a
    dict at every logging step and evaluation)."""
    recipe = write_cnn_recipe(
        tmp_path / "r.yaml",
        data_dir=[str(tiny_ravdess)],
        split_protocol="kfold",
        num_folds=2,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
        validation_size=0.0,
        output_dir=str(tmp_path / "run"),
    )
    with caplog.at_level(logging.DEBUG, logger="ser_hf"):
        train_main([str(recipe), "--disable_tqdm", "true", "--logging_steps", "1"])
    out = capsys.readouterr().out
    assert "{'loss'" not in out and "{'eval_loss'" not in out and "{'train_runtime'" not in out
    built = [
        record for record in caplog.records if record.getMessage().startswith("Built CNN2DForAudioClassification")
    ]
    assert len(built) == 1, [record.getMessage() for record in built]


def test_the_log_dicts_go_to_the_debug_log(caplog):
    from transformers import TrainerState, TrainingArguments

    from ser_hf.training.trainer import LogsAtDebugCallback

    state = TrainerState()
    with caplog.at_level(logging.DEBUG, logger="ser_hf.training.trainer"):
        LogsAtDebugCallback().on_log(TrainingArguments("out"), state, None, logs={"loss": 1.23456, "epoch": 1.0})
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "{'loss': '1.235', 'epoch': '1'}")
    ]


def test_the_once_filter_lets_other_lines_repeat_and_is_removed_after_the_run(caplog):
    model_logger = logging.getLogger("ser_hf.models.runtime.ssl")
    other = logging.getLogger("ser_hf.evaluation.report")
    with caplog.at_level(logging.INFO), model_lines_once():
        for _ in range(2):
            model_logger.info("Built %s", "X")
            other.info("validation: UA 50%")
    assert [r.getMessage() for r in caplog.records] == ["Built X", "validation: UA 50%", "validation: UA 50%"]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        model_logger.info("Built %s", "X")
    assert [r.getMessage() for r in caplog.records] == ["Built X"]
