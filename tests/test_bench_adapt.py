"""bench/adapt.py's own logic on made-up cells: the draws of labelled clips, the learning-curve summary (TESS's two
directions averaged into one corpus), the forgetting table, and a results file read back by a second run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import load_bench

adapt = load_bench("adapt")


def test_draws_take_k_clips_of_every_label_from_the_adaptation_speakers_only():
    labels = [0, 1, 0, 1, 0, 1, 0, 1]
    speakers = ["a", "a", "a", "a", "b", "b", "t", "t"]
    rows = adapt.draw_clips(labels, speakers, ["a", "b"], 2, seed=1)
    assert sorted(np.asarray(labels)[rows].tolist()) == [0, 0, 1, 1]
    assert {speakers[row] for row in rows} <= {"a", "b"}
    assert rows.tolist() == adapt.draw_clips(labels, speakers, ["a", "b"], 2, seed=1).tolist()  # seeded
    with pytest.raises(SystemExit, match="fewer than k = 4"):
        adapt.draw_clips(labels, speakers, ["a", "b"], 4, seed=1)


def _cell(direction, arm, k, draw, ua, **extra):
    metrics = {"unweighted_accuracy": ua / 100, "accuracy": ua / 100, "macro_f1": ua / 100}
    return adapt.cell(direction, arm, k, draw, metrics, 1.0, **extra)


def test_the_summary_averages_draws_then_teses_two_directions_then_the_corpora():
    cells = [
        _cell("ravdess", "adapted", 5, 1, 60.0),
        _cell("ravdess", "adapted", 5, 2, 70.0),
        _cell("tess:OAF->YAF", "adapted", 5, 1, 80.0),
        _cell("tess:OAF->YAF", "adapted", 5, 2, 90.0),
        _cell("tess:YAF->OAF", "adapted", 5, 1, 100.0),
        _cell("tess:YAF->OAF", "adapted", 5, 2, 90.0),
        _cell("nemo", "adapted", 5, 1, 50.0),
        _cell("nemo", "adapted", 5, 2, 40.0),
    ]
    (row,) = adapt.summary(cells)
    assert row["by_corpus"] == {"ravdess": 65.0, "tess": 90.0, "nemo": 45.0}
    assert row["loco_mean"] == pytest.approx(200 / 3, abs=0.01)
    # Draw 1: (60 + (80 + 100) / 2 + 50) / 3; draw 2: (70 + (90 + 90) / 2 + 40) / 3.
    assert row["loco_draw_range"] == [pytest.approx(66.67, abs=0.01), pytest.approx(66.67, abs=0.01)]
    assert "| adapted | 5 | 65.0 | 90.0 | 45.0 | 66.7 (66.7-66.7) |" in adapt.markdown([row])


def test_forgetting_compares_the_adapted_models_with_the_general_one_on_each_training_corpus(tmp_path):
    forgetting = adapt.FORGETTING
    cells = [
        {**_cell("ravdess", "zero-shot", 0, None, 76.0, corpus_of_scores="nemo"), "variant": forgetting},
        {**_cell("ravdess", adapt.ZERO_SHOT_SPEAKER, 0, None, 79.0, corpus_of_scores="nemo"), "variant": forgetting},
        {**_cell("ravdess", "adapted", 5, 1, 78.0, corpus_of_scores="nemo"), "variant": forgetting},
        {**_cell("ravdess", "adapted", 5, 2, 80.0, corpus_of_scores="nemo"), "variant": forgetting},
        _cell("ravdess", "adapted", 5, 1, 66.0),  # a learning-curve cell: not a forgetting one
    ]
    (row,) = adapt.forgetting(cells, forgetting)
    assert row == {
        "direction": "ravdess",
        "training_corpus": "nemo",
        "general": 76.0,
        "general_speaker_statistics": 79.0,
        "adapted": 79.0,
        "change": 3.0,
        "draws": 2,
    }
    results = tmp_path / "curve.json"
    adapt.write(results, cells, "python bench/adapt.py ...")
    written = json.loads(results.read_text())
    assert written["forgetting"] == [row] and written["cells"] == cells
    assert list(written["summary"]) == [""]  # the forgetting cells make no learning curve of their own
    assert "| ravdess | nemo | 76.0 | 79.0 | 79.0 | +3.0 |" in results.with_suffix(".md").read_text()


def test_the_general_model_adapted_from_is_the_general_recipe_with_speaker_statistics():
    """bench/adapt.py trains the model it adapts as recipes/general_whisper_base.yaml with ``--general-normalization``
    (speaker by default); recipes/general_whisper_base_speaker.yaml, which users train, must be that model."""
    import yaml

    general = yaml.safe_load(adapt.GENERAL_RECIPE.read_text())
    speaker = yaml.safe_load((adapt.GENERAL_RECIPE.parent / "general_whisper_base_speaker.yaml").read_text())
    assert speaker["feature_extractor_config"] == {"normalization": adapt.GENERAL_NORMALIZATION}
    assert general["feature_extractor_config"] == {"normalization": "corpus"}
    same = {key: value for key, value in speaker.items() if key not in ("feature_extractor_config", "output_dir")}
    assert same == {
        key: value for key, value in general.items() if key not in ("feature_extractor_config", "output_dir")
    }


def test_choice_cells_of_another_starting_model_are_named_apart():
    settings = {"num_train_epochs": 60, "soup_size": 5}
    assert adapt.choice_variant(settings, "corpus") == "num_train_epochs=60, soup_size=5"
    assert (
        adapt.choice_variant(settings, "speaker") == "general_normalization=speaker, num_train_epochs=60, soup_size=5"
    )
