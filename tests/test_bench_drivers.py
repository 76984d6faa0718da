"""bench/accuracy.py is a driver over ser-hf kfold: it names the corpora's folders, the fold seeds and the result
files; the protocol (and its tests) is ser_hf.experiments'."""

from __future__ import annotations

import json

import pytest

from ser_hf.errors import RecipeError
from tests.conftest import REPO, load_bench
from tests.recipe.test_parser import write_recipe


@pytest.mark.slow  # trains two folds, as the speed benchmarks' smoke runs (tests/test_bench.py) are slow
def test_the_kfold_driver_runs_ser_hf_kfold_on_the_benchmarks_folders(tmp_path, tiny_ravdess, capsys):
    """A recipe's folds through run_kfold, its result file named after the recipe and a digest of the overrides (a
    variant never reads back the plain recipe's runs)."""
    accuracy = load_bench("accuracy")
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "elsewhere", eval_strategy="no", save_strategy="no")
    common = ["--data-dir", str(tiny_ravdess), "--folds", "2", "--output-dir", str(tmp_path / "runs")]
    (document,) = accuracy.main([str(recipe), *common, "--results", str(tmp_path), "--max_steps", "1"])
    (written,) = tmp_path.glob("accuracy-r-*-seed42.json")
    assert json.loads(written.read_text())["cells"] == document["cells"]
    assert document["settings"]["recipe_values"]["data_dir"] == [str(tiny_ravdess)]
    assert document["settings"]["overrides"]["max_steps"] == 1 and document["command"].startswith("python -m bench")
    assert sorted(s for cell in document["cells"] for s in cell["test_speakers"]) == ["01", "02", "03", "04"]
    assert "| r (2 folds, seed 42) |" in capsys.readouterr().out


def test_the_kfold_driver_folds_ravdess_and_reads_a_merged_recipes_other_corpora_from_shared(tmp_path, tiny_ravdess):
    """A merged recipe gets RAVDESS from --data-dir and its other corpora from ../shared/data; a corpus the benchmark
    cannot read is named before anything loads."""
    accuracy = load_bench("accuracy")
    general = REPO / "recipes" / "general_whisper_base.yaml"
    shared = accuracy.SHARED_CORPORA["tess"].parent
    assert accuracy.corpus_folders(general, tiny_ravdess) == [
        str(tiny_ravdess),
        *(str(shared / name) for name in ("tess", "nemo", "banglaser")),
    ]
    other = tmp_path / "other.yaml"
    other.write_text(
        general.read_text().replace("corpus: [ravdess, tess, nemo, banglaser]", "corpus: [ravdess, savee]")
    )
    with pytest.raises(RecipeError, match="merges savee: not among ../shared/data's"):
        accuracy.corpus_folders(other, tiny_ravdess)
