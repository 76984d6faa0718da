"""A run without test speakers (a recipe for RAVDESS actors 01-24 on a copy of fewer actors) cannot pass unnoticed: the
split warns, report.md and the model card say its only figures are the validation speakers', and what those speakers
chose (the best epoch only where they did); ``ser-hf compare`` compares on the split every run has and says which."""

from __future__ import annotations

import json
import logging

import pytest
from huggingface_hub import ModelCard

from ser_hf.cli import main as cli_main
from ser_hf.train import main as train_main
from tests.conftest import write_cnn_recipe


@pytest.fixture(scope="module")
def validation_only_run(tmp_path_factory, tiny_ravdess):
    """A tiny CNN for fixed steps, the last model kept (load_best_model_at_end false), the temperature fitted on the
    validation actors 03-04; train and validation lists take every actor of the corpus, so no test split is left."""
    folder = tmp_path_factory.mktemp("validation_only")
    recipe = write_cnn_recipe(
        folder / "recipe.yaml",
        data_dir=[str(tiny_ravdess)],
        train_speakers=["01", "02"],
        validation_speakers=["03", "04"],
        test_speakers=None,
        load_best_model_at_end=False,
        calibration_min_clips=1,
        # Trained until its scores carry signal on the validation actors: after the shared fixture's 4 steps they
        # are near uniform (NLL ~ log 8), and the temperature fit on them landed anywhere, its bound included.
        max_steps=40,
        eval_steps=20,
        save_steps=20,
    )
    handler = _Records()
    logging.getLogger("ser_hf").addHandler(handler)
    try:
        (report,) = train_main([str(recipe)])
    finally:
        logging.getLogger("ser_hf").removeHandler(handler)
    return folder / "run", report, handler.messages


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_run_without_test_speakers_says_so_in_the_log_report_and_card(validation_only_run):
    run_dir, report, warnings = validation_only_run
    assert list(report.evaluation) == ["validation"]
    assert report.calibration.fitted_on == "validation"  # the speakers reported on also fitted T
    assert report.validation_choices.to_dict() == {"best_epoch": False, "early_stopping": False, "temperature": True}
    assert any(
        m.startswith("NO TEST SPEAKERS") and "--validation_speakers 03 --test_speakers 04" in m for m in warnings
    )

    markdown = (run_dir / "report.md").read_text()
    assert (
        "**No test speakers: this run has no test split, so its only figures are on the validation speakers, which "
        "chose no epoch (fixed epochs, the last model kept) but fitted the calibration temperature: their ECE is "
        "in-sample, and no held-out speaker confirms their accuracy.**" in markdown
    )
    assert "chose the best epoch" not in markdown and "the last model kept" in markdown

    card = ModelCard.load(run_dir / "README.md").text
    assert "**No test speakers: this run has no test split" in card and "fitted the calibration temperature" in card
    assert "chose the best epoch" not in card
    assert "the exported weights are the last model's (no epoch chosen on the validation speakers)" in card


def test_validation_speakers_that_chose_the_best_epoch_are_said_to(cnn_run):
    """The shared tiny run keeps its best checkpoint by validation UA (load_best_model_at_end, on by default)."""
    report = json.loads((cnn_run / "metrics.json").read_text())
    assert report["validation_choices"]["best_epoch"] and report["training"]["best_checkpoint"]
    markdown = (cnn_run / "report.md").read_text()
    assert "Validation speakers: they chose the best epoch" in markdown and "No test speakers" not in markdown
    card = ModelCard.load(cnn_run / "README.md").text
    assert "Validation speakers: they chose the best epoch" in card and "No test speakers" not in card


def test_compare_uses_the_split_every_run_has_and_says_which(tmp_path, cnn_run, validation_only_run, capsys):
    run_dir, report, _ = validation_only_run
    output = tmp_path / "comparison"
    assert cli_main(["compare", str(cnn_run), str(run_dir), "--names", "a,b", "--output-dir", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "# Comparison on the validation split" in printed
    assert "**Compared on the validation split: b has no test split (no test speakers).**" in printed
    validation_ua = f"{100 * report.evaluation['validation'].unweighted_accuracy:.1f}"
    assert f"| b | cnn2d | speaker | 1 | {validation_ua} |" in printed
    # Runs that all have a test split are compared on it, and the table says so.
    assert cli_main(["compare", str(cnn_run), "--output-dir", str(tmp_path / "test")]) == 0
    assert "Compared on the test split: held-out speakers of every run." in capsys.readouterr().out


def test_evaluate_says_what_the_runs_validation_speakers_chose(tmp_path, cnn_run, validation_only_run, tiny_ravdess):
    """ser-hf evaluate on a run's validation speakers: 'they chose the best epoch' only for the run that did."""
    run_dir, _, _ = validation_only_run
    for model, expected in (
        (run_dir, "(they chose no epoch, fixed epochs; they fitted the calibration temperature)"),
        (cnn_run, "(they chose the best epoch: optimistic)"),
    ):
        output = tmp_path / model.parent.name
        evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(tiny_ravdess)]
        assert cli_main([*evaluate, "--split", "validation", "--output-dir", str(output)]) == 0
        line = next(
            line
            for line in (output / "eval_report.md").read_text().splitlines()
            if line.startswith("- Speakers of the run's validation split")
        )
        assert line.endswith(expected), line
