"""bench/adapt.py's own logic, the rest being ``ser-hf learning-curve`` (tests/cli/test_learning_curve.py): the general
model of each direction is the shipped speaker-statistics recipe less the left-out corpus (its validation speakers kept
where they exist; values, no recipe file written), and the summary averages draws, then TESS's two directions, then the
corpora."""

from __future__ import annotations

import pytest
import yaml

from ser_hf.recipe import Recipe
from tests.conftest import load_bench

adapt = load_bench("adapt")


def _document(cells: list[tuple[str, int, int, float]]) -> dict:
    return {
        "cells": [{"arm": arm, "k": k, "draw": draw, "unweighted_accuracy": ua} for arm, k, draw, ua in cells],
    }


def test_the_summary_averages_draws_then_teses_two_directions_then_the_corpora():
    directions = {
        "ravdess": _document([("oracle", 5, 1, 60.0), ("oracle", 5, 2, 70.0)]),
        "tess:OAF->YAF": _document([("oracle", 5, 1, 80.0), ("oracle", 5, 2, 90.0)]),
        "tess:YAF->OAF": _document([("oracle", 5, 1, 100.0), ("oracle", 5, 2, 90.0)]),
        "nemo": _document([("oracle", 5, 1, 50.0), ("oracle", 5, 2, 40.0)]),
    }
    (row,) = adapt.summary(directions)
    assert row["scenario"] == "ordinary" and row["estimate_mean"] is None
    assert row["by_corpus"] == {"ravdess": 65.0, "tess": 90.0, "nemo": 45.0}
    assert row["loco_mean"] == pytest.approx(200 / 3, abs=0.01)
    # Draw 1: (60 + (80 + 100) / 2 + 50) / 3; draw 2: (70 + (90 + 90) / 2 + 40) / 3.
    assert row["loco_draw_range"] == [pytest.approx(66.67, abs=0.01), pytest.approx(66.67, abs=0.01)]
    assert row["by_direction"]["nemo"] == {"mean": 45.0, "min": 40.0, "max": 50.0, "draws": 2}
    assert row["mean_without_choice_corpus"] == 67.5  # TESS and nEMO: the settings were chosen on RAVDESS


def test_the_summary_keeps_the_scenarios_apart_and_scores_the_adaptations_own_estimate():
    # Cells as the result files written before the word changed hold them: their scenario under "condition".
    def cell(condition, arm, draw, ua, estimate=None):
        return {"condition": condition, "arm": arm, "k": 5, "draw": draw, "unweighted_accuracy": ua,
                "estimate_ua": estimate, "kept": "prototypes"}  # fmt: skip

    directions = {
        "ravdess": {
            "cells": [cell("ordinary", "random", 1, 60.0, 70.0), cell("few-emotions", "random", 1, 40.0, 30.0)]
        },
        "nemo": {"cells": [cell("ordinary", "random", 1, 50.0, 48.0), cell("few-emotions", "random", 1, 44.0, 44.0)]},
    }
    ordinary, few = adapt.summary(directions)
    assert (ordinary["scenario"], few["scenario"]) == ("ordinary", "few-emotions")
    assert ordinary["loco_mean"] == 55.0 and ordinary["corpora"] == ["nemo", "ravdess"]
    assert ordinary["estimate_mean"] == 59.0 and ordinary["estimate_error"] == 6.0  # |70 - 60| and |48 - 50|
    assert few["loco_mean"] == 42.0 and few["estimate_error"] == 5.0


@pytest.mark.parametrize("left_out", ["ravdess", "tess", "nemo"])
def test_each_general_model_is_the_shipped_speaker_recipe_without_the_left_out_corpus(tmp_path, left_out):
    shipped = yaml.safe_load(adapt.GENERAL_RECIPE.read_text())
    recipe = adapt.general_values(left_out, "whisper-base", tmp_path / "general")
    assert left_out not in recipe["corpus"] and len(recipe["corpus"]) == len(shipped["corpus"]) - 1
    assert left_out not in recipe["corpus_weights"] and left_out not in recipe["train_only_corpora"]
    # BanglaSER (never left out: it lacks fear) trains in every direction, read from ../shared/data/banglaser.
    assert recipe["data_dir"][recipe["corpus"].index("banglaser")] == str(adapt.SHARED / "banglaser")
    assert "banglaser" in recipe["train_only_corpora"]
    changed = {"corpus", "data_dir", "corpus_weights", "train_only_corpora", "model_name_or_path", "output_dir"}
    changed |= {"push_to_hub", "report_to", "train_speakers", "validation_speakers", "test_speakers"}
    # Everything else (statistics, head, training settings) as shipped.
    assert {key: value for key, value in recipe.items() if key not in changed} == {
        key: value for key, value in shipped.items() if key not in changed
    }
    assert recipe["feature_extractor_config"] == {"normalization": "speaker", "speaker_statistics_check": True}
    # The values train as they are (ser-hf train's parser, every key checked), into the folder asked for.
    assert Recipe.from_values(recipe).training.output_dir == str(tmp_path / "general")
    if left_out == "ravdess":  # nEMO's two speakers validate (and fit the temperature) in RAVDESS's place
        assert recipe["validation_speakers"] == ["nemo:TP0", "nemo:WR0"]
        assert "nemo" not in recipe["train_only_corpora"] and "nemo:TP0" not in recipe["train_speakers"]
    else:
        assert recipe["validation_speakers"] == shipped["validation_speakers"]
