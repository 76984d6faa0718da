"""``ser-hf leakage-study RECIPE.yaml [--key value ...]`` as a user runs it: its help is the study's description, and a
recipe it cannot study is one line before any work. The study itself (two runs, the inflation) is tested in
tests/experiments."""

from __future__ import annotations

import pytest

from ser_hf.cli import main as cli_main
from tests.conftest import last_error_line
from tests.recipe.test_parser import write_recipe


def test_help_describes_the_study_and_its_outputs(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["leakage-study", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: ser-hf leakage-study RECIPE.yaml [--key value ...]")
    assert "leakage.json" in out and "speaker_independent/" in out and "``" not in out


def test_a_recipe_without_a_speaker_split_is_one_line_before_any_work(tmp_path, tiny_ravdess, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        split_protocol="kfold",
        num_folds=2,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
        output_dir=str(tmp_path / "study"),
    )
    assert cli_main(["leakage-study", str(recipe)]) == 2
    assert last_error_line(capsys) == (
        "ser-hf: error: leakage-study compares a speaker-independent train/validation/test split with a random one; "
        f"{recipe} has split_protocol 'kfold': use a recipe with split_protocol: speaker."
    )
    assert not (tmp_path / "study").exists()
