"""bench/crosscorpus.py answers a recipe it cannot run, a results file cut short while written and one of an older
format in one line naming the file, before any corpus is read (issue 67, point 15)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, load_bench

RECIPE = REPO / "recipes" / "general_whisper_base.yaml"


def _error(capsys, *argv: str) -> str:
    crosscorpus = load_bench("crosscorpus")
    with pytest.raises(SystemExit) as exit_info:
        crosscorpus.main([*map(str, argv)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_a_recipe_that_fails_its_checks_is_named_with_train_labels_all(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(RECIPE.read_text() + "learning_rat: 1.0e-4\n")
    line = _error(capsys, recipe, "--train-labels", "all")
    assert "error: Unknown key(s) 'learning_rat'" in line and str(recipe) in line
    recipe.write_text("model_type: [unclosed\n")
    assert f"error: Recipe {recipe} is not valid YAML" in _error(capsys, recipe, "--train-labels", "all")


def test_a_half_written_results_file_is_named_not_overwritten(tmp_path, capsys):
    results = tmp_path / "loco.json"
    results.write_text('{"command": "bench/crosscorpus.py", "rows": [{"variant": "x",')
    line = _error(capsys, RECIPE, "--results", results)
    assert f"error: --results {results} is not valid JSON (" in line
    assert "move it aside or give another --results" in line
    assert results.read_text().endswith('"x",')  # left as it was


def test_an_old_format_results_file_names_the_row_and_the_missing_key(tmp_path, capsys):
    results = tmp_path / "loco.json"
    row = {"recipe": str(RECIPE), "normalization": "corpus", "test": "tess", "unweighted_accuracy": 60.0}
    results.write_text(json.dumps({"rows": [row]}))
    line = _error(capsys, RECIPE, "--results", results)
    assert f"error: --results {results}: row 1 lacks 'variant', 'confidence_intervals' (written by an older" in line
