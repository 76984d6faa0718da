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


def test_banglaser_joins_by_name_and_each_left_out_corpus_is_scored_on_its_own_emotions_the_model_has(
    tmp_path, monkeypatch
):
    """Issue 76: BanglaSER (no fear, no disgust) in play with --corpora; RAVDESS, TESS and nEMO are scored on the six
    emotions as in the three-corpus benchmark, BanglaSER on its five, and the table says so beside the mean of the
    three directions the three-corpus benchmark reports."""
    crosscorpus = load_bench("crosscorpus")
    six = ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
    assert crosscorpus.benchmark_labels() == six
    assert crosscorpus.scored_labels("banglaser", crosscorpus.corpus_labels(["ravdess", "tess", "nemo"])) == [
        "neutral", "happy", "sad", "angry", "surprised"
    ]  # fmt: skip
    for left_out in ("ravdess", "tess", "nemo"):
        sources = [name for name in ("ravdess", "tess", "nemo", "banglaser") if name != left_out]
        assert crosscorpus.scored_labels(left_out, crosscorpus.corpus_labels(sources)) == six
    # A model that lacks an emotion (trained on the benchmark's six) is not scored on it, and neither are clips of it.
    assert crosscorpus.scored_labels("ravdess", ["neutral", "happy", "sad"]) == ["neutral", "happy", "sad"]
    four = {crosscorpus.CORPORA_KEY: ["ravdess", "tess", "nemo", "banglaser"]}
    values = crosscorpus.merged_values(RECIPE, tmp_path / "out", {}, four)
    assert values["corpus"] == four[crosscorpus.CORPORA_KEY] and values["labels"] == six
    assert values["data_dir"][-1] == str(crosscorpus.EXTRA_CORPORA["banglaser"])
    # --corpora names it; the default stays the three corpora (no corpora= in the variant).
    calls = []
    monkeypatch.setattr(crosscorpus, "run_recipe", lambda *args: calls.append((args[4], args[5])))
    monkeypatch.setattr(crosscorpus, "SHARED_CORPORA", {name: tmp_path for name in crosscorpus.SHARED_CORPORA})
    monkeypatch.setattr(crosscorpus, "EXTRA_CORPORA", {"banglaser": tmp_path})
    crosscorpus.main([str(RECIPE), "--normalizations", "speaker", "--corpora", "banglaser", "nemo", "tess", "ravdess"])
    crosscorpus.main([str(RECIPE), "--normalizations", "speaker"])
    assert calls == [(["ravdess", "tess", "nemo", "banglaser"], four), (["ravdess", "tess", "nemo"], {})]
    # The table: a BanglaSER column, the mean of four and of the three, the scored emotions under it.
    rows = [
        {
            "variant": f"r seed={seed}",
            "normalization": "speaker",
            "test": corpus,
            "unweighted_accuracy": ua + shift,
            "confidence_intervals": None,
            "scored_labels": six[:4] + six[5:] if corpus == "banglaser" else six,
        }
        for seed, shift in ((42, 0.0), (7, 4.0))
        for corpus, ua in (("ravdess", 60.0), ("tess", 80.0), ("nemo", 50.0), ("banglaser", 50.0))
    ]
    lines = crosscorpus.markdown_table(rows).splitlines()
    assert lines[0].endswith("| nEMO left out | BanglaSER left out | mean | mean of RAVDESS, TESS, nEMO |")
    assert (
        lines[2]
        == "| `r seed=42` | speaker (the speaker's unlabelled clips) | 60.0 | 80.0 | 50.0 | 50.0 | 60.0 | 63.3 |"
    )
    assert lines[4].endswith("| 52.0 (50.0-54.0) | 62.0 (60.0-64.0) | 65.3 (63.3-67.3) |")
    assert "BanglaSER neutral, happy, sad, angry, surprised (chance 20.0 %)" in lines[-1]
    assert "RAVDESS neutral, happy, sad, angry, fearful, surprised (chance 16.7 %)" in lines[-1]
