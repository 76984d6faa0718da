"""bench/accuracy.py's k-fold recipe for a merged (general) recipe: RAVDESS is folded, every other corpus trains in
every fold from ../shared/data."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, load_bench

SHARED = REPO.parent / "shared" / "data"


def test_the_kfold_benchmark_folds_ravdess_and_trains_every_other_corpus_of_a_general_recipe(tmp_path):
    """bench/accuracy.py on a shipped general recipe: RAVDESS folded, TESS, nEMO and BanglaSER from ../shared/data in
    every training split; a corpus ../shared/data lacks is named before anything loads."""
    from ser_hf.errors import RecipeError

    accuracy = load_bench("accuracy")
    recipe = REPO / "recipes" / "general_whisper_base.yaml"
    values = accuracy.kfold_recipe(recipe, tmp_path / "ravdess", 5, 42, tmp_path / "out", 0.0)
    assert values["corpus"] == ["ravdess", "tess", "nemo", "banglaser"]
    assert values["data_dir"] == [
        str(tmp_path / "ravdess"),
        *(str(SHARED / c) for c in ("tess", "nemo", "banglaser")),
    ]
    assert values["train_only_corpora"] == ["tess", "nemo", "banglaser"]
    other = tmp_path / "other.yaml"
    other.write_text(
        recipe.read_text().replace("corpus: [ravdess, tess, nemo, banglaser]", "corpus: [ravdess, savee]")
    )
    with pytest.raises(RecipeError, match="merges savee: not among ../shared/data's ravdess, tess, nemo, banglaser"):
        accuracy.kfold_recipe(other, tmp_path / "ravdess", 5, 42, tmp_path / "out", 0.0)
